#!/bin/bash
# docker-entrypoint.sh: runs the server as the postgres user, listening on every address of the container's own
# network, on a cluster made ready for POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (as the official image
# reads them) on its first start.
#
# The image holds a cluster initialised at build time (`docker-entrypoint.sh prepare`, in the Dockerfile): a new
# named volume starts as a copy of it, so the first start does no initdb (seconds on a loaded machine). That
# cluster has no password and none of the stack's user and database yet (the password is a boot-time secret and
# is never baked): the first start applies them in single-user mode, before the server listens, then removes the
# marker file $PGDATA/imgtool-unconfigured. An empty PGDATA (e.g. a bind mount) is initialised at start the
# same way. Later starts on the same cluster change nothing, like the official image.
set -o errexit -o nounset -o pipefail
MARKER=imgtool-unconfigured

# init_cluster: initdb with the bootstrap superuser postgres (no password, trusted on the local socket only),
# every other client by password, and the marker that says POSTGRES_* are still to be applied.
init_cluster() {
  initdb --username=postgres --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
    --wal-segsize=1 -D "$PGDATA" "$@" >/dev/null
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  : >"$PGDATA/$MARKER"
}

# sql_literal / sql_ident: VALUE quoted as an SQL string / identifier.
sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }
sql_ident() { printf '"%s"' "${1//\"/\"\"}"; }

# configure: POSTGRES_USER (a superuser that logs in with POSTGRES_PASSWORD) and POSTGRES_DB on a cluster that
# has the marker, in one single-user session. The password goes through stdin, never argv; on failure the output
# is shown without any line that holds it.
configure() {
  local user=${POSTGRES_USER:-postgres} db=${POSTGRES_DB:-${POSTGRES_USER:-postgres}} sql out
  if [[ $user == postgres ]]; then
    sql="ALTER ROLE postgres PASSWORD $(sql_literal "$POSTGRES_PASSWORD");"$'\n\n'
  else
    sql="CREATE ROLE $(sql_ident "$user") SUPERUSER LOGIN PASSWORD $(sql_literal "$POSTGRES_PASSWORD");"$'\n\n'
  fi
  if [[ $db != postgres ]]; then
    sql+="CREATE DATABASE $(sql_ident "$db") OWNER $(sql_ident "$user");"$'\n\n'
  fi
  if ! out=$(postgres --single -D "$PGDATA" -j postgres <<<"$sql" 2>&1) || [[ $out == *ERROR:* ]]; then
    echo "docker-entrypoint: cannot create the user $user and the database $db:" >&2
    grep -vF -- "$POSTGRES_PASSWORD" <<<"$out" >&2 || true
    exit 1
  fi
  rm -f "$PGDATA/$MARKER"
  echo "docker-entrypoint: $PGDATA ready (user $user, database $db)"
}

if [[ ${1:-} == prepare ]]; then
  # Build time: the cluster the image ships (run as postgres; no secret involved).
  init_cluster
  exit 0
fi
if [[ ${1:-} != postgres ]]; then exec "$@"; fi
if [[ $(id -u) == 0 ]]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required (the password of the database superuser)}"
if [[ ! -s $PGDATA/PG_VERSION ]]; then
  init_cluster --no-sync
  sync -f "$PGDATA"
fi
if [[ -e $PGDATA/$MARKER ]]; then configure; fi
shift
exec postgres -c listen_addresses='*' "$@"
