#!/bin/bash
# boot-legacy-stack.sh: the seed system's orchestrator flow (its meta/user-data.sh and deploy.sh), as a local
# "instance" runs it: update the OS packages, install the engine, git and Compose, start the engine, write the
# env file, clone the repository, `compose build`, `compose up`, wait until GET /up answers 200. Why:
# bench/stack.ts times it side by side with imgtool's baked orchestrator stack.
#
# Written as what it is, with these local necessities: apt instead of dnf (Debian twin), Debian's docker-compose
# instead of the release binary from GitHub (not reachable here), dockerd started by hand (no systemd in a
# container; IMGTOOL_DOCKERD_ARGS keeps it off the host's iptables), the repository cloned from a local bare
# repository (REPO), and the images the seed pulls from Docker Hub (postgres, the Ruby base its Dockerfile starts
# FROM) pulled from the local registry (REGISTRY), after a log-in.
# Inputs: REPO, REGISTRY, REGISTRY_USER, PORT; the password in /run/secrets/registry-password.
set -o errexit -o nounset -o pipefail
t0=$(date +%s%N)
log() { printf 'legacy-stack: %s\n' "$*" >&2; }

log "updating system packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get upgrade -y -q

log "installing Docker, git and Compose"
apt-get install -y -q --no-install-recommends docker.io git docker-compose

# systemctl enable --now docker: start the engine and wait until it answers.
# shellcheck disable=SC2086 # IMGTOOL_DOCKERD_ARGS is a list of arguments
dockerd ${IMGTOOL_DOCKERD_ARGS:-} >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 300); do
  docker info >/dev/null 2>&1 && break
  sleep 0.1
done
docker info >/dev/null
docker login --username "$REGISTRY_USER" --password-stdin "$REGISTRY" </run/secrets/registry-password

log "writing the env file and cloning $REPO"
mkdir -p /opt/orchestrator
cd /opt/orchestrator
{
  printf 'API_KEY=%s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf 'POSTGRES_PASSWORD=%s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf 'SECRET_KEY_BASE=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf 'PORT=%s\nREGISTRY=%s\n' "$PORT" "$REGISTRY"
} >.env
git clone --quiet --depth 1 "file://$REPO" repo
cp -r repo/. .
rm -rf repo

log "compose build"
docker-compose build --quiet
log "compose up"
# Local necessity: this engine runs without iptables in the host's network namespace, where the host's FORWARD
# policy drops the packets between two services of a project bridge (web -> db). imgtool's instances open them
# through the chain the launcher names (packer/scripts/lib/imgtool-stack); the same here, before any service
# starts, as EC2's engine would with its own iptables: the project's one (default) bridge gets a name of this
# instance's in an override file, its rule goes in, then one `compose up`, as imgtool's boot does (a bare
# networks.default: the example's compose file defines no top-level network, which the override would replace).
# imgtool-shutdown removes the chain.
files=()
if [[ -n ${IMGTOOL_STACK_FORWARD_CHAIN:-} ]]; then
  bridge=ib$(printf '%s/default' "$IMGTOOL_STACK_FORWARD_CHAIN" | sha256sum | cut -c1-12)
  printf 'networks:\n  default:\n    driver_opts:\n      com.docker.network.bridge.name: "%s"\n' "$bridge" >bridges.yaml
  files=(--file docker-compose.yml --file bridges.yaml)
  iptables -w 10 -N "$IMGTOOL_STACK_FORWARD_CHAIN"
  iptables -w 10 -A "$IMGTOOL_STACK_FORWARD_CHAIN" -i "$bridge" -o "$bridge" -j ACCEPT
  iptables -w 10 -I DOCKER-USER -j "$IMGTOOL_STACK_FORWARD_CHAIN"
fi
docker-compose "${files[@]}" up --detach

log "waiting for GET /up"
until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/up" || true) == 200 ]]; do
  sleep 0.2
done

ms=$((($(date +%s%N) - t0) / 1000000))
mkdir -p /run/imgtool
printf '{"status": "ready", "bootToReadySeconds": %d.%03d}\n' $((ms / 1000)) $((ms % 1000)) >/run/imgtool/ready
log "ready in $(printf '%d.%03d' $((ms / 1000)) $((ms % 1000))) s"
sleep infinity
