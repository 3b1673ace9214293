#!/bin/bash
# boot-legacy-older.sh: rubybencher's older boot flow, as a local "instance" runs it: today's flow (update the OS
# packages, install Docker, log in) plus cloning the repository and building the task-runner image at boot, then
# starting the workers from it. Why: bench/boot.ts times it side by side with imgtool's baked user-data.
#
# Written as what it is, with the local necessities of boot-legacy-today.sh; the repository is a local clone
# source (GitHub is not reachable here) and the build's base comes from the local registry.
# Inputs: BASE_IMAGE (the Ruby base, by reference), REGISTRY, REGISTRY_USER, WORKERS, REPOSITORY (git URL); the
# password in /run/secrets/registry-password.
set -o errexit -o nounset -o pipefail
t0=$(date +%s%N)
log() { printf 'legacy-older: %s\n' "$*" >&2; }

log "updating system packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get upgrade -y -q

log "installing Docker and git"
apt-get install -y -q --no-install-recommends docker.io git ca-certificates

# shellcheck disable=SC2086 # IMGTOOL_DOCKERD_ARGS is a list of arguments
dockerd ${IMGTOOL_DOCKERD_ARGS:-} >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 300); do
  docker info >/dev/null 2>&1 && break
  sleep 0.1
done
docker info >/dev/null

log "logging in to $REGISTRY"
docker login --username "$REGISTRY_USER" --password-stdin "$REGISTRY" </run/secrets/registry-password

log "cloning $REPOSITORY"
git clone --quiet --depth 1 "$REPOSITORY" /opt/repo

log "building the task-runner image"
docker build --quiet --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t task-runner:local /opt/repo >/dev/null

log "starting $WORKERS worker(s)"
for i in $(seq 1 "$WORKERS"); do
  docker run --detach --name "task-runner-$i" --cpus=1 --restart=no --network host \
    --env ORCHESTRATOR_URL=http://127.0.0.1:1 task-runner:local >/dev/null
done

ms=$((($(date +%s%N) - t0) / 1000000))
mkdir -p /run/imgtool
printf '{"status": "ready", "bootToReadySeconds": %d.%03d}\n' $((ms / 1000)) $((ms % 1000)) >/run/imgtool/ready
log "ready in $(printf '%d.%03d' $((ms / 1000)) $((ms % 1000))) s"
sleep infinity
