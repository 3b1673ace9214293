#!/bin/bash
# boot-legacy-today.sh: the boot flow rubybencher's task-runner instances run today (its aws/user-data.sh), as a
# local "instance" runs it: update the OS packages, install Docker, start it, log in, pull the image, start the
# workers. Why: bench/boot.ts times it side by side with imgtool's baked user-data.
#
# Written as what it is, with three local necessities: apt instead of dnf (Debian twin), dockerd started by hand
# (no systemd in a container; IMGTOOL_DOCKERD_ARGS keeps it off the host's bridge and iptables), and the workers
# on the host network (the instance shares the host's).
# Inputs: IMAGE (by digest), REGISTRY, REGISTRY_USER, WORKERS; the password in /run/secrets/registry-password.
set -o errexit -o nounset -o pipefail
t0=$(date +%s%N)
log() { printf 'legacy-today: %s\n' "$*" >&2; }

log "updating system packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get upgrade -y -q

log "installing Docker"
apt-get install -y -q --no-install-recommends docker.io

# systemctl enable --now docker: start the engine and wait until it answers.
# shellcheck disable=SC2086 # IMGTOOL_DOCKERD_ARGS is a list of arguments
dockerd ${IMGTOOL_DOCKERD_ARGS:-} >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 300); do
  docker info >/dev/null 2>&1 && break
  sleep 0.1
done
docker info >/dev/null

log "logging in to $REGISTRY and pulling $IMAGE"
docker login --username "$REGISTRY_USER" --password-stdin "$REGISTRY" </run/secrets/registry-password
docker pull --quiet "$IMAGE"

log "starting $WORKERS worker(s)"
for i in $(seq 1 "$WORKERS"); do
  docker run --detach --name "task-runner-$i" --cpus=1 --restart=no --network host \
    --env ORCHESTRATOR_URL=http://127.0.0.1:1 "$IMAGE" >/dev/null
done

ms=$((($(date +%s%N) - t0) / 1000000))
mkdir -p /run/imgtool
printf '{"status": "ready", "bootToReadySeconds": %d.%03d}\n' $((ms / 1000)) $((ms % 1000)) >/run/imgtool/ready
log "ready in $(printf '%d.%03d' $((ms / 1000)) $((ms % 1000))) s"
sleep infinity
