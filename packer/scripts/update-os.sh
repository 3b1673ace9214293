#!/usr/bin/env bash
# update-os.sh: applies every pending OS update (apt on Debian/Ubuntu, dnf on Amazon Linux 2023) at bake time.
# Why: instances boot from an up-to-date image, so none of them spends its first minutes updating packages.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

detect_os
log "updating $OS_NAME with $PKG"

case $PKG in
  apt)
    retry 4 3 apt-get update -qq || die "apt-get update failed"
    retry 3 5 env DEBIAN_FRONTEND=noninteractive apt-get -y -qq \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade ||
      die "apt-get full-upgrade failed"
    DEBIAN_FRONTEND=noninteractive apt-get -y -qq autoremove --purge
    ;;
  dnf)
    # AL2023 locks each AMI to its release; --releasever=latest applies the newest release's updates.
    retry 3 5 dnf -y -q upgrade --releasever=latest || die "dnf upgrade failed"
    ;;
esac

# No instance updates at boot: cloud-init is told not to upgrade packages on first boot.
if [[ -d /etc/cloud/cloud.cfg.d ]]; then
  printf '%s\n' "# imgtool: packages are updated at bake time (update-os.sh), never at boot" \
    "package_update: false" "package_upgrade: false" "repo_upgrade: none" \
    >/etc/cloud/cloud.cfg.d/90-imgtool-no-boot-upgrade.cfg
  log "cloud-init: no package upgrade at boot"
fi

# Self-check: nothing left to upgrade.
case $PKG in
  apt)
    pending=$(apt-get -s -o Debug::NoLocking=1 full-upgrade | grep -c '^Inst ' || true)
    ((pending == 0)) || die "$pending package(s) still upgradable after the update"
    ;;
  dnf)
    rc=0
    dnf -q check-update --releasever=latest >/dev/null || rc=$?
    ((rc == 0)) || die "dnf check-update reports pending updates (exit $rc)"
    ;;
esac
log "ok: $OS_NAME is up to date"
