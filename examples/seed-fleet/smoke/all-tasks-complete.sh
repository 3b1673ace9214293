#!/bin/sh
# The seed example's smoke check (config smoke.script), run by imgtool on the smoke launch's orchestrator
# instance: create a run named after the launch's run id (the id its task runners were started with, --run-id)
# with one task per worker, then wait until PostgreSQL itself (psql in the stack's db service) holds every task
# of that run completed, by a runner, with a result. Exit 0 passes; a failed task or imgtool's timeout fails.
set -eu
base=${IMGTOOL_ORCHESTRATOR_URL:?imgtool sets IMGTOOL_ORCHESTRATOR_URL}
run=${IMGTOOL_RUN_ID:?imgtool sets IMGTOOL_RUN_ID}
workers=${IMGTOOL_WORKERS:?imgtool sets IMGTOOL_WORKERS}
: "${API_KEY:?smoke.env gives API_KEY}"
benchmark=${SMOKE_BENCHMARK:-fib}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# The key goes to curl on its standard input as a header line (-H @-: the line as it is, no quoting to get
# wrong, whatever quotes or backslashes the key holds), never on a command line. A line break in it would
# start another header: refused.
nl='
'
cr=$(printf '\r')
case $API_KEY in
  *"$nl"* | *"$cr"*)
    echo "API_KEY holds a line break: it cannot be an HTTP header value"
    exit 1
    ;;
esac
code=$(printf 'Authorization: Bearer %s\n' "$API_KEY" |
  curl -s --max-time 10 -H @- -o "$tmp" -w '%{http_code}' -X POST -H 'content-type: application/json' \
    --data "{\"run_id\":\"$run\",\"tasks\":$workers,\"benchmark\":\"$benchmark\"}" "$base/runs") || code=000
if [ "$code" != 201 ]; then
  echo "the orchestrator refused the run (HTTP $code): $(cat "$tmp")"
  exit 1
fi
echo "created run $run with $workers $benchmark task(s)"

db=$(docker ps -q --filter label=com.docker.compose.project=imgtool --filter label=com.docker.compose.service=db)
[ -n "$db" ] || { echo "no running db service of the stack on this instance"; exit 1; }

# One line from PostgreSQL for this run: total|completed|failed, where completed counts the tasks whose result
# names the runner that claimed them and the --run-id it was started with.
query() {
  printf '%s\n' "SELECT count(*), count(*) FILTER (WHERE t.status = 'completed' AND t.result->'runner'->>'runner_id' = t.runner_id AND t.result->'runner'->>'run_id' = r.name), count(*) FILTER (WHERE t.status = 'failed') FROM tasks t JOIN runs r ON r.id = t.run_id WHERE r.name = :'run';" |
    docker exec -i "$db" psql -U orchestrator -d orchestrator -v ON_ERROR_STOP=1 -v run="$run" -qtA -F '|'
}

# imgtool's timeout (smoke.timeout_seconds) ends this loop if the tasks never complete.
while :; do
  counts=$(query) || { echo "psql in the db service failed"; exit 1; }
  total=${counts%%|*}
  rest=${counts#*|}
  completed=${rest%%|*}
  failed=${rest#*|}
  if [ "$failed" != 0 ]; then
    echo "run $run: $failed of $total task(s) failed in PostgreSQL"
    exit 1
  fi
  if [ "$total" = "$workers" ] && [ "$completed" = "$total" ]; then
    echo "run $run: all $total task(s) complete in PostgreSQL"
    exit 0
  fi
  sleep 1
done
