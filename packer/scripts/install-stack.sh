#!/usr/bin/env bash
# install-stack.sh: for a role that is a Compose stack, bakes in Compose, the rendered compose.yaml (every image
# by digest) and the boot helper imgtool-stack. Why: at boot nothing is pulled, cloned or built; the user-data
# only starts the project and waits for its services.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

# IMGTOOL_STACK_COMPOSE_B64: the rendered compose.yaml (base64), empty when the role is not a stack;
# IMGTOOL_STACK_WAIT_FOR: the services the boot waits for (space-separated); IMGTOOL_STACK_SETTLE_MS: how long
# those without a healthcheck must stay up; IMGTOOL_STACK_BRIDGES: the project's bridge networks (their keys;
# src/bake/stack-images.ts, projectBridges) and IMGTOOL_STACK_BRIDGES_OVERRIDE_B64 (the Compose file that names each
# through a variable; empty when none), for a local instance's forwarding; IMGTOOL_STACK_VOLUMES: the named volumes
# the pre-load fills (KEY,PATH,IMAGE words; stackVolumes), listed for `imgtool-stack fill`.
require_set IMGTOOL_STACK_COMPOSE_B64 IMGTOOL_STACK_WAIT_FOR IMGTOOL_STACK_SETTLE_MS IMGTOOL_STACK_BRIDGES \
  IMGTOOL_STACK_BRIDGES_OVERRIDE_B64 IMGTOOL_STACK_VOLUMES
STACK_DIR=${IMGTOOL_STACK_DIR:-/etc/imgtool/stack}
if [[ -z $IMGTOOL_STACK_COMPOSE_B64 ]]; then
  log "skipped: the role is not a Compose stack"
  exit 0
fi

detect_os
case $PKG in
  apt)
    # Debian's own Compose (the local twin's): installed from the archive like every other package.
    pkg_install "$IMGTOOL_COMPOSE_PACKAGE_APT"
    ;;
  dnf)
    # Amazon Linux has no Compose package: the release binary, pinned by version and checksum (packer/versions.json).
    require_var IMGTOOL_COMPOSE_URL
    arch=$(machine_arch)
    sum_var=IMGTOOL_COMPOSE_SHA256_${arch^^}
    [[ -n ${!sum_var:-} ]] || die "no checksum is pinned for Compose on $arch: set compose.sha256.$arch in packer/versions.json"
    url=${IMGTOOL_COMPOSE_URL//\{arch\}/$([[ $arch == arm64 ]] && echo aarch64 || echo x86_64)}
    plugin=/usr/local/lib/docker/cli-plugins/docker-compose
    mkdir -p "$(dirname "$plugin")"
    download "$url" "$plugin.download"
    printf '%s  %s\n' "${!sum_var}" "$plugin.download" | sha256sum --check --quiet ||
      die "the Compose download $url does not match its pinned checksum"
    install -m 0755 "$plugin.download" "$plugin"
    rm -f -- "$plugin.download"
    ;;
esac

install -d -m 0755 "$STACK_DIR"
printf '%s' "$IMGTOOL_STACK_COMPOSE_B64" | base64 -d >"$STACK_DIR/compose.yaml.tmp"
mv -f -- "$STACK_DIR/compose.yaml.tmp" "$STACK_DIR/compose.yaml"
words "$IMGTOOL_STACK_WAIT_FOR"
printf '%s\n' "${WORDS[@]}" >"$STACK_DIR/wait-for"
printf '%s\n' "$IMGTOOL_STACK_SETTLE_MS" >"$STACK_DIR/settle-ms"
words "$IMGTOOL_STACK_BRIDGES"
if ((${#WORDS[@]} > 0)); then printf '%s\n' "${WORDS[@]}"; fi >"$STACK_DIR/bridges"
words "$IMGTOOL_STACK_VOLUMES"
for w in "${WORDS[@]}"; do
  IFS=, read -r key path image extra <<<"$w"
  [[ -n $key && $path == /* && -n $image && -z $extra ]] || die "IMGTOOL_STACK_VOLUMES: $w is not KEY,PATH,IMAGE"
  printf '%s %s %s\n' "$key" "$path" "$image"
done >"$STACK_DIR/volumes"
rm -f -- "$STACK_DIR/bridges.yaml"
if [[ -n $IMGTOOL_STACK_BRIDGES_OVERRIDE_B64 ]]; then
  printf '%s' "$IMGTOOL_STACK_BRIDGES_OVERRIDE_B64" | base64 -d >"$STACK_DIR/bridges.yaml"
fi
install -D -m 0755 "$IMGTOOL_LIB_DIR/imgtool-stack" /usr/local/sbin/imgtool-stack

# Self-check: Compose runs, and reads the baked project.
if docker compose version >/dev/null 2>&1; then
  version=$(docker compose version --short)
else
  version=$(docker-compose version --short) || die "Compose does not run"
fi
[[ -x /usr/local/sbin/imgtool-stack ]] || die "/usr/local/sbin/imgtool-stack is missing"
state_write stack.json "{\"compose\": $(json_str "$version"), \"services\": $(json_str "$IMGTOOL_STACK_WAIT_FOR")}"
log "ok: Compose $version, $STACK_DIR/compose.yaml, waits for: $IMGTOOL_STACK_WAIT_FOR"
