#!/usr/bin/env bash
# configure-cloud-init.sh: makes cloud-init (installed by install-packages.sh, as Amazon Linux 2023 has it) run the
# user-data at boot. Why: instances decode and run their user-data the way EC2 instances do (gzip, MIME, per instance).
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

require_var IMGTOOL_TARGET
command -v cloud-init >/dev/null 2>&1 ||
  die "cloud-init is not installed (packer/versions.json packages.core lists it; install-packages.sh installs it)"

# On an AMI, cloud-init finds the EC2 datasource by itself and systemd runs its stages. The Docker twin has no
# systemd: imgtool-boot runs the stages, and a local instance is seeded through NoCloud with the settings below.
TWIN_CFG=/etc/cloud/cloud.cfg.d/90-imgtool-twin.cfg
if [[ $IMGTOOL_TARGET == local ]]; then
  mkdir -p "$(dirname "$TWIN_CFG")"
  cat >"$TWIN_CFG" <<'CFG'
# cloud-init's settings on the Docker twin (written by imgtool's configure-cloud-init.sh, local target only).
# A local instance is seeded through NoCloud (/var/lib/cloud/seed/nocloud: the rendered user-data and the
# meta-data), where an EC2 instance reads its metadata service.
datasource_list: [NoCloud, None]
# The instance shares this machine's network namespace: cloud-init must neither write nor bring up an interface.
network: { config: disabled }
# The engine names the container; it has no hostname of its own to set.
preserve_hostname: true
# The container's root is the engine's overlay: no partition or filesystem to grow.
growpart: { mode: "off" }
resize_rootfs: false
# No boot loader in a container (and Amazon Linux 2023 has no grub-dpkg module).
grub_dpkg: { enabled: false }
# The minimal base has no SSH server: no host keys to generate (an empty set of given keys), and the locale
# is the one that needs no generating. Both valid against cloud-init's schema: an invalid setting would put a
# schema WARNING on every boot's console, among the words a failed boot is reported with.
locale: C.UTF-8
ssh_keys: {}
CFG
fi

# Self-check: cloud-init runs, and the twin's settings are in place.
version=$(cloud-init --version 2>&1) || die "cloud-init --version failed: $version"
if [[ $IMGTOOL_TARGET == local ]]; then
  grep -qx 'datasource_list: \[NoCloud, None\]' "$TWIN_CFG" || die "$TWIN_CFG was not written"
  # cloud-init's own schema judges the settings (a user-data file must start with #cloud-config; ours does not).
  checked=$(mktemp)
  { echo "#cloud-config"; cat "$TWIN_CFG"; } >"$checked"
  schema=$(cloud-init schema --config-file "$checked" 2>&1) || die "$TWIN_CFG fails cloud-init's schema: $schema"
  rm -f "$checked"
fi
log "ok: $version"
