#!/usr/bin/env bash
# configure-cpu.sh: benchmark-quiet settings for task runners, each switchable from the config and each recorded,
# also where the platform does not allow it: performance CPU governor and turbo/boost off at every boot, noisy
# timers and services (package auto-updates, log rotation) off, and (aws) kernel arguments that keep the OS and
# interrupts off the workers' CPUs. Why: less noise in benchmark results.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

require_var IMGTOOL_CPU_GOVERNOR IMGTOOL_CPU_TURBO IMGTOOL_CPU_QUIET_SERVICES IMGTOOL_TARGET
require_set IMGTOOL_CPU_KERNEL_ARGS
case $IMGTOOL_CPU_GOVERNOR in performance | unchanged) ;; *) die "IMGTOOL_CPU_GOVERNOR=$IMGTOOL_CPU_GOVERNOR: must be performance or unchanged" ;; esac
case $IMGTOOL_CPU_TURBO in off | unchanged) ;; *) die "IMGTOOL_CPU_TURBO=$IMGTOOL_CPU_TURBO: must be off or unchanged" ;; esac
case $IMGTOOL_CPU_QUIET_SERVICES in true | false) ;; *) die "IMGTOOL_CPU_QUIET_SERVICES=$IMGTOOL_CPU_QUIET_SERVICES: must be true or false" ;; esac

# Timers and services that wake up on their own: package auto-updates, index refreshes, log rotation.
NOISY_UNITS=(apt-daily.timer apt-daily-upgrade.timer unattended-upgrades.service dnf-makecache.timer
  dnf-automatic.timer dnf-automatic-install.timer logrotate.timer man-db.timer e2scrub_all.timer fstrim.timer
  motd-news.timer)
NOISY_CRON=(/etc/cron.daily/apt-compat /etc/cron.daily/logrotate /etc/cron.daily/man-db /etc/cron.weekly/man-db)

# 1. Kernel arguments (task runners on aws): isolate every CPU but the first from the scheduler, the tick and RCU
# callbacks, interrupts on CPU 0. In the boot entries of the AMI; read back from the running kernel at each boot.
kernel_status=unchanged
kernel_detail="not asked for"
if [[ -n $IMGTOOL_CPU_KERNEL_ARGS ]]; then
  if [[ $IMGTOOL_TARGET != aws ]]; then
    kernel_status=not-allowed
    kernel_detail="a Docker twin shares its host's kernel: its kernel arguments are not the image's to set"
  elif command -v grubby >/dev/null 2>&1; then
    grubby --update-kernel=ALL --args="$IMGTOOL_CPU_KERNEL_ARGS" || die "grubby --update-kernel=ALL --args=\"$IMGTOOL_CPU_KERNEL_ARGS\" failed"
    entry=$(grubby --info=DEFAULT) || die "grubby --info=DEFAULT failed"
    for arg in $IMGTOOL_CPU_KERNEL_ARGS; do
      [[ $entry == *"$arg"* ]] || die "the default boot entry lacks $arg after grubby added it: $entry"
    done
    kernel_status=applied
    kernel_detail="in every boot entry (grubby)"
  else
    kernel_status=not-allowed
    kernel_detail="no grubby on this OS (Amazon Linux 2023 has it): the boot entries were not changed"
  fi
fi

# 2. Governor, turbo, masks and interrupts: applied at every boot by imgtool-cpu-setup (they do not survive a
# reboot), from this file. imgtool-cpu-setup sources core.sh, installed beside it.
mkdir -p "$IMGTOOL_STATE_DIR"
quiet_units=""
[[ $IMGTOOL_CPU_QUIET_SERVICES != true ]] || quiet_units="${NOISY_UNITS[*]}"
printf '%s\n' "GOVERNOR=$IMGTOOL_CPU_GOVERNOR" "TURBO=$IMGTOOL_CPU_TURBO" "QUIET_UNITS=$quiet_units" \
  "KERNEL_ARGS=$IMGTOOL_CPU_KERNEL_ARGS" "KERNEL_ARGS_STATUS=$kernel_status" "KERNEL_ARGS_DETAIL=$kernel_detail" \
  >"$IMGTOOL_STATE_DIR/cpu.conf"
install -D -m 0644 "$IMGTOOL_LIB_DIR/core.sh" /usr/local/lib/imgtool/core.sh
for tool in imgtool-cpu-setup imgtool-cpu-state; do
  install -D -m 0755 "$IMGTOOL_LIB_DIR/$tool" "/usr/local/lib/imgtool/$tool"
  ln -sfn "/usr/local/lib/imgtool/$tool" "/usr/local/sbin/$tool"
done
boot="imgtool-boot (Docker twin)"
if has_systemctl; then
  cat >/etc/systemd/system/imgtool-cpu.service <<'UNIT'
[Unit]
Description=imgtool: benchmark-quiet CPU settings (governor, turbo, masks, interrupts), recorded in /run/imgtool/cpu.json
Before=docker.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/imgtool-cpu-setup
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
  systemctl enable imgtool-cpu.service >/dev/null 2>&1 || die "systemctl enable imgtool-cpu.service failed"
  boot="imgtool-cpu.service"
fi
# Try once now, to record what this platform allows (at boot, the instance's own hardware decides).
bake_record=$(mktemp)
IMGTOOL_CPU_CONF=$IMGTOOL_STATE_DIR/cpu.conf IMGTOOL_CPU_RECORD=$bake_record /usr/local/sbin/imgtool-cpu-setup

# 3. Noisy timers and services.
units_json=""
add_unit() { units_json+="${units_json:+, }$(json_str "$1"): $(json_str "$2")"; }
if [[ $IMGTOOL_CPU_QUIET_SERVICES == true ]]; then
  for unit in "${NOISY_UNITS[@]}"; do
    if ! has_systemctl; then
      add_unit "$unit" "not-applicable: no systemd"
    elif [[ -n $(systemctl list-unit-files --no-legend "$unit" 2>/dev/null) ]]; then
      systemctl disable "$unit" >/dev/null 2>&1 || true
      systemctl mask "$unit" >/dev/null 2>&1 || die "systemctl mask $unit failed"
      add_unit "$unit" masked
    else
      add_unit "$unit" absent
    fi
  done
  for job in "${NOISY_CRON[@]}"; do
    if [[ -f $job ]]; then
      chmod a-x "$job"
      add_unit "$job" "disabled (cron job made non-executable)"
    fi
  done
else
  add_unit "*" "unchanged: quiet_services is false"
fi

cpu_json="{\"governor\": $(json_str "$IMGTOOL_CPU_GOVERNOR"), \"turbo\": $(json_str "$IMGTOOL_CPU_TURBO")"
cpu_json+=", \"quiet_services\": $IMGTOOL_CPU_QUIET_SERVICES, \"applied_at_boot_by\": $(json_str "$boot")"
cpu_json+=", \"kernel_args\": {\"wanted\": $(json_str "$IMGTOOL_CPU_KERNEL_ARGS"), \"status\": $(json_str "$kernel_status"), \"detail\": $(json_str "$kernel_detail")}"
cpu_json+=", \"boot_record\": \"/run/imgtool/cpu.json\", \"at_bake\": $(cat "$bake_record"), \"services\": {$units_json}}"
state_write cpu.json "$cpu_json"
rm -f "$bake_record"

# Self-check: the boot step and the per-worker reader are installed, the record exists, and every noisy unit that
# exists is masked.
[[ -x /usr/local/sbin/imgtool-cpu-setup ]] || die "/usr/local/sbin/imgtool-cpu-setup is missing"
/usr/local/sbin/imgtool-cpu-state 0 0 >/dev/null || die "/usr/local/sbin/imgtool-cpu-state does not run"
if has_systemctl; then
  [[ $(systemctl is-enabled imgtool-cpu.service 2>/dev/null) == enabled ]] || die "imgtool-cpu.service is not enabled"
  if [[ $IMGTOOL_CPU_QUIET_SERVICES == true ]]; then
    for unit in "${NOISY_UNITS[@]}"; do
      state=$(systemctl is-enabled "$unit" 2>/dev/null || true)
      [[ -z $state || $state == masked || $state == not-found ]] || die "$unit is $state, not masked"
    done
  fi
fi
grep -q '"governor"' "$IMGTOOL_STATE_DIR/cpu.json" || die "$IMGTOOL_STATE_DIR/cpu.json was not written"
log "ok: governor=$IMGTOOL_CPU_GOVERNOR turbo=$IMGTOOL_CPU_TURBO quiet_services=$IMGTOOL_CPU_QUIET_SERVICES kernel_args=$kernel_status (applied at boot by $boot; record: $IMGTOOL_STATE_DIR/cpu.json)"
