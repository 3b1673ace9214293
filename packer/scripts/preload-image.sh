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

# A Compose stack's other images (IMGTOOL_STACK_IMAGES, by digest) are pre-loaded beside the role's own.
words "${IMGTOOL_STACK_IMAGES:-}"
REFS=("$IMGTOOL_IMAGE_REF" "${WORDS[@]}")
logged_in=()
if [[ -n ${IMGTOOL_REGISTRY_ENDPOINT:-} && -n ${IMGTOOL_REGISTRY_USER:-} ]]; then
  password=${IMGTOOL_REGISTRY_PASSWORD:-}
  if [[ -z $password && -n ${IMGTOOL_REGISTRY_PASSWORD_B64:-} ]]; then
    password=$(printf '%s' "$IMGTOOL_REGISTRY_PASSWORD_B64" | base64 -d) || die "IMGTOOL_REGISTRY_PASSWORD_B64 is not base64"
  fi
  [[ -n $password ]] || die "no registry password: set the environment variable that imgtool names for $IMGTOOL_REGISTRY_ENDPOINT"
  # The endpoint's registry, then every other registry host of the images (a stack's registry, e.g. a pull-through
  # cache or another account's ECR in the same region): one ECR token opens each registry its principal may read.
  hosts=("$IMGTOOL_REGISTRY_ENDPOINT")
  endpoint_host=${IMGTOOL_REGISTRY_ENDPOINT#*://}
  endpoint_host=${endpoint_host%%/*}
  for ref in "${WORDS[@]}"; do
    host=${ref%%/*}
    [[ $host == "$endpoint_host" || " ${hosts[*]} " == *" $host "* ]] || hosts+=("$host")
  done
  # The password goes on stdin, never on a command line.
  login() { printf '%s' "$password" | docker login --username "$IMGTOOL_REGISTRY_USER" --password-stdin "$1" >/dev/null; }
  for host in "${hosts[@]}"; do
    retry 3 5 login "$host" || die "docker login to $host failed"
    logged_in+=("$host")
  done
  unset password
fi
failed=()
for ref in "${REFS[@]}"; do
  log "pulling $ref"
  retry 3 10 docker pull --quiet "$ref" >/dev/null || failed+=("$ref")
done
# No credentials stay on the image.
for host in "${logged_in[@]}"; do
  docker logout "$host" >/dev/null 2>&1 || true
done
rm -f "${DOCKER_CONFIG:-/root/.docker}/config.json"
((${#failed[@]} == 0)) || die "docker pull failed for: ${failed[*]}"

# Self-check: every image is in the store under its digest.
for ref in "${WORDS[@]}"; do
  docker image inspect --format '{{.Id}}' "$ref" >/dev/null || die "$ref is not in the store after the pull"
done
id=$(docker image inspect --format '{{.Id}}' "$IMGTOOL_IMAGE_REF") || die "$IMGTOOL_IMAGE_REF is not in the store after the pull"
# A Compose stack's named volumes (install-stack.sh listed them), filled from their images as the engine would fill
# them at boot: the copy lands on the snapshot instead of in the boot.
if [[ -s ${IMGTOOL_STACK_DIR:-/etc/imgtool/stack}/volumes ]]; then
  /usr/local/sbin/imgtool-stack fill || die "imgtool-stack fill failed: the stack's named volumes are not filled"
fi
state_write preload.json "{\"status\": \"pulled\", \"image\": $(json_str "$IMGTOOL_IMAGE_REF"), \"id\": $(json_str "$id")}"
log "ok: $IMGTOOL_IMAGE_REF is in the engine's store ($id)"
