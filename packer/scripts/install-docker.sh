#!/usr/bin/env bash
# install-docker.sh: installs the Docker engine and makes it start at boot (systemd unit on AMIs; on the Docker
# twin, which has no systemd, the /usr/local/sbin/imgtool-boot entrypoint starts it). Why: task runners start
# their workers as containers the moment they boot.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

detect_os
package_var=IMGTOOL_DOCKER_PACKAGE_${PKG^^}
require_var "$package_var"
package=${!package_var}

pkg_install "$package"

# At boot: systemd starts the engine where systemd exists (enabling works without a running systemd).
if has_systemctl; then
  systemctl enable docker.service >/dev/null 2>&1 || die "systemctl enable docker.service failed"
  if systemctl list-unit-files containerd.service >/dev/null 2>&1; then
    systemctl enable containerd.service >/dev/null 2>&1 || true
  fi
  log "docker.service enabled at boot"
else
  log "no systemd here (a container): /usr/local/sbin/imgtool-boot starts the engine at boot"
fi

# The boot entrypoint of the Docker twin: what systemd does on the AMI, then the given command (user-data).
install -D -m 0755 "$IMGTOOL_LIB_DIR/imgtool-boot" /usr/local/sbin/imgtool-boot
# The one way a nested engine starts (imgtool-boot calls it; so can a local instance's boot).
install -D -m 0755 "$IMGTOOL_LIB_DIR/imgtool-engine" /usr/local/sbin/imgtool-engine
# The boot's pre-warm of what the workers read (the user-data calls it), with the shell library it sources.
install -D -m 0644 "$IMGTOOL_LIB_DIR/core.sh" /usr/local/lib/imgtool/core.sh
install -D -m 0755 "$IMGTOOL_LIB_DIR/imgtool-prewarm" /usr/local/lib/imgtool/imgtool-prewarm
ln -sfn /usr/local/lib/imgtool/imgtool-prewarm /usr/local/sbin/imgtool-prewarm

# Self-check: client and engine binaries run, and the engine starts at boot.
docker --version >/dev/null || die "docker (client) does not run"
dockerd --version >/dev/null || die "dockerd does not run"
if has_systemctl; then
  [[ $(systemctl is-enabled docker.service 2>/dev/null) == enabled ]] || die "docker.service is not enabled"
fi
[[ -x /usr/local/sbin/imgtool-boot ]] || die "/usr/local/sbin/imgtool-boot is missing"
[[ -x /usr/local/sbin/imgtool-engine ]] || die "/usr/local/sbin/imgtool-engine is missing"
[[ -x /usr/local/sbin/imgtool-prewarm ]] || die "/usr/local/sbin/imgtool-prewarm is missing"
log "ok: $(docker --version)"
