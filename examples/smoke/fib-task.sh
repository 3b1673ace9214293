#!/bin/sh
# The example fleet's smoke check (config smoke.script): queue one fib task at the example orchestrator and wait
# until a task runner reports it done. imgtool runs it on the orchestrator instance of the smoke launch (local:
# inside the local instance; aws: through SSM Run Command) with IMGTOOL_ORCHESTRATOR_URL set; exit 0 passes.
set -eu
base=${IMGTOOL_ORCHESTRATOR_URL:?imgtool sets IMGTOOL_ORCHESTRATOR_URL}
benchmark=${SMOKE_BENCHMARK:-fib}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

code=$(curl -s --max-time 10 -o "$tmp" -w '%{http_code}' -X POST -H 'content-type: application/json' \
  --data "{\"benchmark\":\"$benchmark\"}" "$base/tasks") || code=000
if [ "$code" != 201 ]; then
  echo "the orchestrator refused the $benchmark task (HTTP $code)"
  exit 1
fi
id=$(sed -n 's/.*"id"[[:space:]]*:[[:space:]]*"\([A-Za-z0-9_-]*\)".*/\1/p' "$tmp" | head -n 1)
[ -n "$id" ] || { echo "the orchestrator's answer has no task id: $(cat "$tmp")"; exit 1; }
echo "queued task $id ($benchmark)"

# imgtool's timeout (smoke.timeout_seconds) ends this loop if the task never ends.
while :; do
  curl -s --max-time 10 -o "$tmp" "$base/tasks/$id" || true
  if grep -Eq '"status"[[:space:]]*:[[:space:]]*"done"' "$tmp"; then
    # A task's own status is queued, running, done or failed: "ok" is its result's.
    if grep -Eq '"status"[[:space:]]*:[[:space:]]*"ok"' "$tmp"; then
      echo "task $id done: $(cat "$tmp")"
      exit 0
    fi
    echo "task $id done without an ok result: $(cat "$tmp")"
    exit 1
  fi
  if grep -Eq '"status"[[:space:]]*:[[:space:]]*"failed"' "$tmp"; then
    echo "task $id failed: $(cat "$tmp")"
    exit 1
  fi
  sleep 1
done
