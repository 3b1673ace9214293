#!/usr/bin/env bash
# validate.sh: asserts every promise of the image (Rubies, Docker, ruby-bench at its commit, CPU settings, image
# pre-load, cleanup); it changes nothing. Why: a bake that broke a promise fails here instead of at launch.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

require_var IMGTOOL_RUBY_VERSIONS IMGTOOL_RUBY_BENCH_COMMIT
require_var IMGTOOL_CPU_GOVERNOR IMGTOOL_CPU_TURBO IMGTOOL_CPU_QUIET_SERVICES
require_set IMGTOOL_PACKAGES
detect_os
BENCH_DIR=${IMGTOOL_RUBY_BENCH_DIR:-/opt/ruby-bench}

failures=()
fail() {
  failures+=("$*")
  warn "FAILED: $*"
}
record_of() { cat "$IMGTOOL_STATE_DIR/$1" 2>/dev/null || true; }

# 1. Ruby: every configured version runs and reports its version; the first is `ruby` on PATH.
default_ruby=""
if [[ ! -s $IMGTOOL_STATE_DIR/rubies.tsv ]]; then
  fail "no Ruby record ($IMGTOOL_STATE_DIR/rubies.tsv): install-ruby.sh did not run"
else
  ruby_method=$(head -n 1 "$IMGTOOL_STATE_DIR/rubies.tsv")
  words "$IMGTOOL_RUBY_VERSIONS"
  for v in "${WORDS[@]}"; do
    line=$(awk -F '\t' -v v="$v" 'NR > 1 && $1 == v { print; exit }' "$IMGTOOL_STATE_DIR/rubies.tsv")
    if [[ -z $line ]]; then
      fail "Ruby $v: not installed"
      continue
    fi
    path=${line##*$'\t'}
    actual=$("$path" -e 'print RUBY_VERSION' 2>/dev/null || true)
    if [[ -z $actual ]]; then
      fail "Ruby $v ($path) does not run"
    elif [[ $actual != "$v" && $actual != "$v".* ]]; then
      if [[ $ruby_method == distro ]]; then
        warn "Ruby $v was asked for; the distribution's Ruby is $actual (recorded)"
      else
        fail "Ruby $v ($path) reports $actual"
      fi
    fi
    [[ -n $default_ruby ]] || default_ruby=$path
  done
  on_path=$(command -v ruby || true)
  if [[ -z $on_path ]]; then
    fail "no ruby on PATH"
  elif [[ $(ruby -e 'print RUBY_VERSION' 2>/dev/null) != $("$default_ruby" -e 'print RUBY_VERSION' 2>/dev/null) ]]; then
    fail "ruby on PATH ($on_path) is not the first configured version ($default_ruby)"
  fi
fi

# 2. Docker: installed and started at boot.
docker_version=$(docker --version 2>/dev/null || true)
dockerd_version=$(dockerd --version 2>/dev/null || true)
[[ -n $docker_version ]] || fail "docker (client) is not installed"
[[ -n $dockerd_version ]] || fail "dockerd (engine) is not installed"
if has_systemctl; then
  [[ $(systemctl is-enabled docker.service 2>/dev/null) == enabled ]] || fail "docker.service is not enabled at boot"
else
  [[ -x /usr/local/sbin/imgtool-boot ]] || fail "/usr/local/sbin/imgtool-boot (the twin's entrypoint) is missing"
fi

# The task runners' boot reads what its workers read before they start (imgtool-prewarm).
[[ -x /usr/local/sbin/imgtool-prewarm ]] || fail "/usr/local/sbin/imgtool-prewarm (the boot's pre-warm) is missing"

# 2b. cloud-init: runs the user-data at boot (systemd on the AMI; imgtool-boot on the twin).
command -v cloud-init >/dev/null 2>&1 || fail "cloud-init is not installed: nothing would run the user-data at boot"

# 3. ruby-bench: at the pinned commit, clean.
bench_record=$(record_of ruby-bench.json)
head=$(git -C "$BENCH_DIR" rev-parse HEAD 2>/dev/null || true)
if [[ -z $head ]]; then
  fail "$BENCH_DIR is not a git checkout"
else
  [[ -n $bench_record && $bench_record == *"\"commit\": \"$head\""* ]] || fail "$BENCH_DIR is at $head, not at the recorded commit ($bench_record)"
  if [[ $IMGTOOL_RUBY_BENCH_COMMIT =~ ^[0-9a-f]{40}$ && $head != "$IMGTOOL_RUBY_BENCH_COMMIT" ]]; then
    fail "$BENCH_DIR is at $head, not at the pinned $IMGTOOL_RUBY_BENCH_COMMIT"
  fi
  [[ -z $(git -C "$BENCH_DIR" status --porcelain 2>/dev/null) ]] || fail "$BENCH_DIR has local changes"
fi

# 4. CPU settings: recorded, as configured.
cpu_record=$(record_of cpu.json)
if [[ -z $cpu_record ]]; then
  fail "no CPU settings record ($IMGTOOL_STATE_DIR/cpu.json): configure-cpu.sh did not run"
else
  [[ $cpu_record == *"\"governor\": \"$IMGTOOL_CPU_GOVERNOR\""* ]] || fail "CPU governor record is not $IMGTOOL_CPU_GOVERNOR"
  [[ $cpu_record == *"\"turbo\": \"$IMGTOOL_CPU_TURBO\""* ]] || fail "turbo record is not $IMGTOOL_CPU_TURBO"
  [[ $cpu_record == *"\"quiet_services\": $IMGTOOL_CPU_QUIET_SERVICES"* ]] || fail "quiet_services record is not $IMGTOOL_CPU_QUIET_SERVICES"
  [[ -x /usr/local/sbin/imgtool-cpu-setup ]] || fail "/usr/local/sbin/imgtool-cpu-setup is missing"
fi

# 5. The role's image: pre-loaded, or the reason it is not.
preload_record=$(record_of preload.json)
if [[ -z $preload_record ]]; then
  fail "no pre-load record ($IMGTOOL_STATE_DIR/preload.json): preload-image.sh did not run"
elif [[ $preload_record == *'"status": "pulled"'* ]] && docker info >/dev/null 2>&1; then
  docker image inspect "${IMGTOOL_IMAGE_REF:-none}" >/dev/null 2>&1 || fail "${IMGTOOL_IMAGE_REF:-the image} is not in the engine's store"
  # A stack's named volumes, filled at the pre-load (imgtool-stack names the first that is missing).
  if [[ -s ${IMGTOOL_STACK_DIR:-/etc/imgtool/stack}/volumes ]]; then
    /usr/local/sbin/imgtool-stack filled || fail "the stack's named volumes are not all filled (imgtool-stack filled)"
  fi
fi

# 6. Packages and cleanup.
words "$IMGTOOL_PACKAGES"
for p in "${WORDS[@]}"; do
  pkg_installed "$p" || fail "package $p is not installed"
done
! compgen -G '/etc/ssh/ssh_host_*' >/dev/null || fail "SSH host keys were left in the image"
[[ ! -s /etc/machine-id ]] || fail "/etc/machine-id is not empty"

# Self-check: every promise holds.
if ((${#failures[@]} > 0)); then
  die "${#failures[@]} promise(s) not met: $(printf '%s; ' "${failures[@]}")"
fi
log "ok: every promise holds"
