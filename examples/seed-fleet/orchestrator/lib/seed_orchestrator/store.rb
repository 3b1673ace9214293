# frozen_string_literal: true

require "json"
require "pg"

module SeedOrchestrator
  # Runs and tasks in PostgreSQL. One connection, used by one thread at a time (WEBrick serves each request on a
  # thread of its own); a claim is one transaction whose row lock (FOR UPDATE SKIP LOCKED) hands a task to one
  # runner only, even with several web processes.
  #
  # Connection settings come from libpq's own variables (PGHOST, PGUSER, PGPASSWORD, PGDATABASE), so a password
  # needs no URL escaping.
  class Store
    NotFound = Class.new(StandardError)
    Conflict = Class.new(StandardError)

    STATUSES = %w[pending claimed completed failed].freeze

    SCHEMA = <<~SQL
      CREATE TABLE IF NOT EXISTS runs (
        id bigserial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        benchmark text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS tasks (
        id bigserial PRIMARY KEY,
        run_id bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position integer NOT NULL,
        benchmark text NOT NULL,
        provider text,
        instance_type text,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'completed', 'failed')),
        runner_id text,
        claimed_at timestamptz,
        heartbeat_at timestamptz,
        finished_at timestamptz,
        progress jsonb,
        result jsonb,
        error text,
        attempts integer NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS tasks_run_status ON tasks (run_id, status);
    SQL

    TASK_COLUMNS = "id, position, benchmark, provider, instance_type, status, runner_id, result, error"
    private_constant :TASK_COLUMNS

    # An arbitrary but fixed key: the web and jobs processes create the schema one at a time.
    SCHEMA_LOCK = 7_305_917

    def initialize(connect = -> { PG.connect })
      @connect = connect
      @lock = Mutex.new
      @conn = nil
    end

    # Create the tables when missing (both processes call it at start; the advisory lock serialises them).
    def migrate!
      with_conn do |c|
        c.exec("SELECT pg_advisory_lock(#{SCHEMA_LOCK})")
        begin
          c.exec(SCHEMA)
        ensure
          c.exec("SELECT pg_advisory_unlock(#{SCHEMA_LOCK})")
        end
      end
    end

    def ping
      with_conn { |c| c.exec("SELECT 1").getvalue(0, 0) == "1" }
    end

    # A run named `name` with `count` tasks of `benchmark`, each open to any runner or only to one provider and
    # instance type. Conflict when the name is taken.
    def create_run(name:, count:, benchmark:, provider: nil, instance_type: nil)
      with_conn do |c|
        c.transaction do
          run = c.exec_params(
            "INSERT INTO runs (name, benchmark) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id, name, benchmark",
            [name, benchmark]
          ).first
          raise Conflict, "run #{name} exists" unless run

          tasks = (1..count).map do |position|
            c.exec_params(
              "INSERT INTO tasks (run_id, position, benchmark, provider, instance_type) VALUES ($1, $2, $3, $4, $5) " \
              "RETURNING #{TASK_COLUMNS}",
              [run["id"], position, benchmark, provider, instance_type]
            ).first
          end
          { run: run, tasks: tasks.map { |t| task_json(t) } }
        end
      end
    end

    # Hand the oldest pending task of run `name` that fits the runner to it: [:assigned, task], or [:wait] while
    # the run does not exist yet or still has tasks that are pending (for other runners) or claimed (and may come
    # back if their runner dies), or [:done].
    def claim(name:, runner_id:, provider:, instance_type:)
      with_conn do |c|
        c.transaction do
          run = c.exec_params("SELECT id FROM runs WHERE name = $1", [name]).first
          next [:wait] unless run

          task = c.exec_params(<<~SQL, [run["id"], provider, instance_type]).first
            SELECT id FROM tasks
            WHERE run_id = $1 AND status = 'pending'
              AND (provider IS NULL OR provider = $2) AND (instance_type IS NULL OR instance_type = $3)
            ORDER BY position
            LIMIT 1
            FOR UPDATE SKIP LOCKED
          SQL
          if task
            claimed = c.exec_params(
              "UPDATE tasks SET status = 'claimed', runner_id = $2, claimed_at = now(), heartbeat_at = now(), " \
              "attempts = attempts + 1 WHERE id = $1 RETURNING #{TASK_COLUMNS}",
              [task["id"], runner_id]
            ).first
            next [:assigned, task_json(claimed)]
          end
          open = c.exec_params(
            "SELECT count(*) FROM tasks WHERE run_id = $1 AND status IN ('pending', 'claimed')", [run["id"]]
          ).getvalue(0, 0).to_i
          open.positive? ? [:wait] : [:done]
        end
      end
    end

    def heartbeat(id, runner_id:, progress: nil)
      owned_update(id, runner_id, "heartbeat_at = now(), progress = $3", [progress&.to_json])
    end

    def complete(id, runner_id:, result:)
      owned_update(id, runner_id, "status = 'completed', finished_at = now(), result = $3", [result.to_json])
    end

    def fail(id, runner_id:, error:)
      owned_update(id, runner_id, "status = 'failed', finished_at = now(), error = $3", [error.to_s])
    end

    # Task counts of run `name` by status, and its tasks; NotFound when there is no such run.
    def run_summary(name)
      with_conn do |c|
        run = c.exec_params("SELECT id, name, benchmark, created_at FROM runs WHERE name = $1", [name]).first
        raise NotFound, "no run #{name}" unless run

        tasks = c.exec_params("SELECT #{TASK_COLUMNS} FROM tasks WHERE run_id = $1 ORDER BY position", [run["id"]])
                 .map { |t| task_json(t) }
        counts = STATUSES.to_h { |s| [s, tasks.count { |t| t["status"] == s }] }
        { "run_id" => run["name"], "benchmark" => run["benchmark"], "tasks" => tasks, "counts" => counts }
      end
    end

    # The jobs worker's sweep: claimed tasks whose last heartbeat is older than `seconds` go back to pending, for
    # another runner. Answers the ids requeued.
    def requeue_stale(seconds)
      with_conn do |c|
        c.exec_params(<<~SQL, [seconds]).map { |r| r["id"].to_i }
          UPDATE tasks SET status = 'pending', runner_id = NULL, claimed_at = NULL, heartbeat_at = NULL
          WHERE status = 'claimed' AND heartbeat_at < now() - make_interval(secs => $1)
          RETURNING id
        SQL
      end
    end

    private

    def task_json(row)
      row.merge(
        "id" => row["id"].to_i,
        "position" => row["position"].to_i,
        "result" => row["result"] && JSON.parse(row["result"])
      )
    end

    # Update task `id` while `runner_id` holds its claim: NotFound when there is no such task, Conflict when
    # another runner holds it or it is no longer claimed.
    def owned_update(id, runner_id, set, params)
      with_conn do |c|
        row = c.exec_params(
          "UPDATE tasks SET #{set} WHERE id = $1 AND status = 'claimed' AND runner_id = $2 RETURNING id",
          [id, runner_id, *params]
        ).first
        next true if row

        found = c.exec_params("SELECT status, runner_id FROM tasks WHERE id = $1", [id]).first
        raise NotFound, "no task #{id}" unless found

        raise Conflict, "task #{id} is #{found["status"]}#{" by another runner" if found["runner_id"] != runner_id}"
      end
    end

    # The connection, made on first use and made again after it broke (the database restarted).
    def with_conn
      @lock.synchronize do
        @conn ||= @connect.call
        begin
          yield @conn
        rescue PG::ConnectionBad, PG::UnableToSend
          @conn&.close unless @conn&.finished?
          @conn = nil
          raise
        end
      end
    end
  end
end
