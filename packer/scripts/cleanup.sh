#!/usr/bin/env bash
# cleanup.sh: removes what must not ship in the image: package caches and indexes, SSH host keys, the machine id,
# logs, cloud-init's per-instance state and the bake's uploads. Why: every instance starts clean and unique.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

detect_os
case $PKG in
  apt)
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
    ;;
  dnf)
    dnf clean all -q
    rm -rf /var/cache/dnf/*
    ;;
esac

# Each instance makes its own host keys (sshd-keygen / cloud-init) and machine id (systemd, first boot).
rm -f /etc/ssh/ssh_host_*
if [[ -e /etc/machine-id ]]; then
  : >/etc/machine-id
fi
if [[ -f /var/lib/dbus/machine-id && ! -L /var/lib/dbus/machine-id ]]; then
  rm -f /var/lib/dbus/machine-id
fi

# cloud-init runs as on a first boot; logs start empty.
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs >/dev/null 2>&1 || warn "cloud-init clean failed"
fi
if [[ -d /var/log ]]; then
  find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
  find /var/log -type f -exec truncate -s 0 {} +
fi
rm -rf /var/log/journal/* /var/tmp/* /tmp/imgtool-ruby-bench-src
rm -f /root/.bash_history /home/*/.bash_history

# Self-check.
! compgen -G '/etc/ssh/ssh_host_*' >/dev/null || die "SSH host keys are still there"
[[ ! -s /etc/machine-id ]] || die "/etc/machine-id is not empty"
if [[ $PKG == apt ]]; then
  ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null || die "apt indexes are still there"
fi
if [[ -d /var/log ]]; then
  [[ -z $(find /var/log -type f -size +0 -print -quit) ]] || die "logs are not empty"
fi
log "ok: caches, host keys, machine id and logs removed"
