#!/usr/bin/env bash
# preload-image.sh: pulls the role's container image (by digest) into the engine's image store at bake time.
# Why: the store lands on the AMI's snapshot, so the first worker starts with no pull and no load at boot.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

# IMAGE_REF: URI@sha256:..., empty when the catalog holds no image for the role yet. The registry password comes
# from IMGTOOL_REGISTRY_PASSWORD_B64 (base64, as Packer passes it) or IMGTOOL_REGISTRY_PASSWORD.
require_var IMGTOOL_TARGET IMGTOOL_ROLE
require_set IMGTOOL_IMAGE_REF

record() {
  state_write preload.json "{\"status\": $(json_str "$1"), \"image\": $(json_str "$IMGTOOL_IMAGE_REF"), \"reason\": $(json_str "$2")}"
}

if [[ -z $IMGTOOL_IMAGE_REF ]]; then
  log "skipped: no $IMGTOOL_ROLE image is published yet (push the image, then bake again to pre-load it)"
  record skipped "no image published for $IMGTOOL_ROLE"
  exit 0
fi
if [[ $IMGTOOL_TARGET == local ]]; then
  log "skipped on the Docker twin: its engine store cannot live in the image; imgtool pre-loads $IMGTOOL_IMAGE_REF into the twin's engine volume outside Packer"
  record skipped "twin: pre-loaded outside Packer into the engine volume"
  exit 0
fi
[[ $IMGTOOL_IMAGE_REF == *@sha256:* ]] || die "IMGTOOL_IMAGE_REF=$IMGTOOL_IMAGE_REF is not pinned by digest (URI@sha256:...)"

# The engine must run now (systemd on the AMI; dockerd by hand elsewhere).
if ! docker info >/dev/null 2>&1; then
  if has_systemd_running; then
    systemctl start docker.service || die "systemctl start docker.service failed"
  else
    dockerd >>/var/log/dockerd.log 2>&1 &
  fi
  retry 30 1 docker info >/dev/null 2>&1 || die "the Docker engine does not answer"
fi

logged_in=""
if [[ -n ${IMGTOOL_REGISTRY_ENDPOINT:-} && -n ${IMGTOOL_REGISTRY_USER:-} ]]; then
  password=${IMGTOOL_REGISTRY_PASSWORD:-}
  if [[ -z $password && -n ${IMGTOOL_REGISTRY_PASSWORD_B64:-} ]]; then
    password=$(printf '%s' "$IMGTOOL_REGISTRY_PASSWORD_B64" | base64 -d) || die "IMGTOOL_REGISTRY_PASSWORD_B64 is not base64"
  fi
  [[ -n $password ]] || die "no registry password: set the environment variable that imgtool names for $IMGTOOL_REGISTRY_ENDPOINT"
  # The password goes on stdin, never on a command line.
  login() { printf '%s' "$password" | docker login --username "$IMGTOOL_REGISTRY_USER" --password-stdin "$IMGTOOL_REGISTRY_ENDPOINT" >/dev/null; }
  retry 3 5 login || die "docker login to $IMGTOOL_REGISTRY_ENDPOINT failed"
  unset password
  logged_in=$IMGTOOL_REGISTRY_ENDPOINT
fi
# A Compose stack's other images (IMGTOOL_STACK_IMAGES, by digest) are pre-loaded beside the role's own.
words "${IMGTOOL_STACK_IMAGES:-}"
pull_rc=0
for ref in "$IMGTOOL_IMAGE_REF" "${WORDS[@]}"; do
  log "pulling $ref"
  retry 3 10 docker pull --quiet "$ref" >/dev/null || pull_rc=$?
done
# No credentials stay on the image.
if [[ -n $logged_in ]]; then
  docker logout "$logged_in" >/dev/null 2>&1 || true
fi
rm -f "${DOCKER_CONFIG:-/root/.docker}/config.json"
((pull_rc == 0)) || die "docker pull $IMGTOOL_IMAGE_REF failed"

# Self-check: the image is in the store under its digest.
id=$(docker image inspect --format '{{.Id}}' "$IMGTOOL_IMAGE_REF") || die "$IMGTOOL_IMAGE_REF is not in the store after the pull"
state_write preload.json "{\"status\": \"pulled\", \"image\": $(json_str "$IMGTOOL_IMAGE_REF"), \"id\": $(json_str "$id")}"
log "ok: $IMGTOOL_IMAGE_REF is in the engine's store ($id)"
