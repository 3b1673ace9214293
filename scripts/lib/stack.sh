# shellcheck shell=bash disable=SC2034 # the path variables are used by the scripts that source this file
# Where the local stack (setup's dockerd, registry, base image cache, stack.json) lives under the state folder,
# and how setup and teardown recognise their own processes. Sourced after common.sh; the caller sets REPO_ROOT.

REGISTRY_USER=AWS

# config_get KEY: print `bin/imgtool config get KEY`; on failure show the CLI's own error and exit 2.
config_get() {
  local key=$1 out err rc=0
  err=$(mktemp)
  out=$(cd "$REPO_ROOT" && timeout 60 bin/imgtool config get "$key" 2>"$err" </dev/null) || rc=$?
  if ((rc != 0)); then
    sed 's/^/  | /' "$err" >&2
    rm -f "$err"
    die 2 "\`bin/imgtool config get $key\` failed (exit $rc), see above. Fix the config or the build" \
      "(npm run build), or set IMGTOOL_STATE_DIR and IMGTOOL_REGISTRY_PORT to override."
  fi
  rm -f "$err"
  # Trim whitespace, and unquote a JSON string if the CLI printed one.
  out=$(printf '%s' "$out" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
  if [[ $out == \"*\" ]]; then
    out=$(node -e 'process.stdout.write(String(JSON.parse(process.argv[1])))' "$out")
  fi
  [[ -n $out ]] || die 2 "\`bin/imgtool config get $key\` printed nothing"
  printf '%s\n' "$out"
}

# resolve_state_dir: set STATE_DIR (absolute; relative values are taken from the repository root) and
# STATE_DIR_SOURCE, from IMGTOOL_STATE_DIR or else the project config.
resolve_state_dir() {
  local dir
  if [[ -n ${IMGTOOL_STATE_DIR:-} ]]; then
    dir=$IMGTOOL_STATE_DIR
    STATE_DIR_SOURCE=IMGTOOL_STATE_DIR
  else
    dir=$(config_get local.state_dir)
    STATE_DIR_SOURCE=config
  fi
  [[ $dir == /* ]] || dir=$REPO_ROOT/$dir
  # Normalise without requiring the folder to exist yet.
  STATE_DIR=$(realpath -m -- "$dir")
  if [[ $STATE_DIR == / || $STATE_DIR == "$REPO_ROOT" ]]; then
    die 2 "state folder '$STATE_DIR' (from $STATE_DIR_SOURCE) must be a folder of its own, not / or the repository"
  fi
  stack_paths
}

# resolve_registry_port: set REGISTRY_PORT and REGISTRY_PORT_SOURCE from IMGTOOL_REGISTRY_PORT or the config.
resolve_registry_port() {
  if [[ -n ${IMGTOOL_REGISTRY_PORT:-} ]]; then
    REGISTRY_PORT=$IMGTOOL_REGISTRY_PORT
    REGISTRY_PORT_SOURCE=IMGTOOL_REGISTRY_PORT
  else
    REGISTRY_PORT=$(config_get local.registry_port)
    REGISTRY_PORT_SOURCE=config
  fi
  if ! [[ $REGISTRY_PORT =~ ^[0-9]+$ ]] || ((REGISTRY_PORT < 1 || REGISTRY_PORT > 65535)); then
    die 2 "registry port '$REGISTRY_PORT' (from $REGISTRY_PORT_SOURCE) is not a port number"
  fi
}

# stack_paths: set every path of the stack from STATE_DIR.
stack_paths() {
  # Unix socket paths are limited to 107 bytes and CI clones the repository anywhere: keep the socket and
  # dockerd's exec-root (which holds containerd's sockets) under a short folder named after the state folder.
  RUN_DIR=/run/imgtool-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-8)
  OWN_DOCKER_SOCK=$RUN_DIR/docker.sock
  OWN_DOCKER_HOST=unix://$OWN_DOCKER_SOCK
  DOCKER_EXEC_ROOT=$RUN_DIR/exec

  DOCKER_DIR=$STATE_DIR/docker
  DOCKER_DATA=$DOCKER_DIR/data
  DOCKERD_CONFIG=$DOCKER_DIR/daemon.json
  DOCKERD_PIDFILE=$DOCKER_DIR/dockerd.pid
  DOCKERD_LOG=$DOCKER_DIR/dockerd.log

  REG_DIR=$STATE_DIR/registry
  REG_DATA=$REG_DIR/data
  REG_CONFIG=$REG_DIR/config.yml
  REG_HTPASSWD=$REG_DIR/htpasswd
  REG_PASSWORD_FILE=$REG_DIR/password
  REG_PIDFILE=$REG_DIR/registry.pid
  REG_LOG=$REG_DIR/registry.log

  CACHE_DIR=$STATE_DIR/cache
  STACK_FILE=$STATE_DIR/stack.json
  LOCK_FILE=$STATE_DIR/.stack.lock
}

# own_dockerd_pid: print the pid of setup's dockerd for this state folder, if it is alive.
# /proc/PID/cmdline ends in a NUL, turned into a space: the trailing space makes the path match exactly.
own_dockerd_pid() {
  pid_from_file "$DOCKERD_PIDFILE" dockerd "--data-root $DOCKER_DATA "
}

# own_registry_pid: print the pid of setup's registry for this state folder, if it is alive.
own_registry_pid() {
  pid_from_file "$REG_PIDFILE" docker-registry "serve $REG_CONFIG "
}

# lock_stack SECONDS: hold an exclusive lock on the state folder until this script exits, so two setup or
# teardown runs never start or stop the same stack at once. The lock is fd 9: daemons must be started with 9>&-
# or they would hold it for ever.
lock_stack() {
  exec 9>"$LOCK_FILE"
  if ! flock -n 9; then
    log "waiting for another setup/teardown on $STATE_DIR to finish..."
    flock -w "$1" 9 || die 1 "another setup/teardown still holds $LOCK_FILE after $1 s"
  fi
}

# docker_answers HOST: true if a Docker engine answers at HOST (unix://... or tcp://...).
docker_answers() {
  DOCKER_HOST=$1 timeout 15 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# registry_status PORT [PASSWORD]: print the HTTP status of GET /v2/ on 127.0.0.1:PORT, with credentials if
# PASSWORD is given (passed to curl on stdin, never on its command line); "000" if nothing answers.
registry_status() {
  local url="http://127.0.0.1:$1/v2/"
  if (($# > 1)); then
    printf 'user = "%s:%s"\n' "$REGISTRY_USER" "$2" |
      curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -K - "$url" 2>/dev/null || true
  else
    curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$url" 2>/dev/null || true
  fi
}

# registry_answers PORT PASSWORD: true if the registry on PORT wants credentials (401) and takes these (200).
registry_answers() {
  [[ $(registry_status "$1") == 401 && $(registry_status "$1" "$2") == 200 ]]
}

# registry_config_port: the port in the registry config that setup last wrote (empty if none).
registry_config_port() {
  sed -n 's/^[[:space:]]*addr:[[:space:]]*127\.0\.0\.1:\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$REG_CONFIG" 2>/dev/null | head -n 1
}
