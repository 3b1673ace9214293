#!/usr/bin/env bash
# validate.sh: asserts every promise of the image (Rubies, Docker, ruby-bench at its commit, CPU settings, image
# pre-load, cleanup) and writes the version manifest, /etc/imgtool/manifest.json. Why: a bake that broke a
# promise fails here instead of at launch, and each image says exactly what it holds.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

require_var IMGTOOL_PIPELINE IMGTOOL_ROLE IMGTOOL_TARGET IMGTOOL_RUBY_VERSIONS IMGTOOL_RUBY_BENCH_COMMIT
require_var IMGTOOL_CPU_GOVERNOR IMGTOOL_CPU_TURBO IMGTOOL_CPU_QUIET_SERVICES
require_set IMGTOOL_PACKAGES
detect_os
MANIFEST=${IMGTOOL_MANIFEST:-$IMGTOOL_STATE_DIR/manifest.json}
BENCH_DIR=${IMGTOOL_RUBY_BENCH_DIR:-/opt/ruby-bench}

# Per-build values come base64-encoded (Packer passes them so), or plain (a Dockerfile, a test).
b64var() {
  local plain=$1 enc=${1}_B64
  if [[ -n ${!plain:-} ]]; then
    printf '%s' "${!plain}"
  elif [[ -n ${!enc:-} ]]; then
    printf '%s' "${!enc}" | base64 -d
  fi
}
version=$(b64var IMGTOOL_VERSION)
inputs_hash=$(b64var IMGTOOL_INPUTS_HASH)
git_revision=$(b64var IMGTOOL_GIT_REVISION)

failures=()
fail() {
  failures+=("$*")
  warn "FAILED: $*"
}
record_of() { cat "$IMGTOOL_STATE_DIR/$1" 2>/dev/null || true; }

# 1. Ruby: every configured version runs and reports its version; the first is `ruby` on PATH.
rubies_json=""
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
    rubies_json+="${rubies_json:+, }{\"requested\": $(json_str "$v"), \"version\": $(json_str "$actual"), \"path\": $(json_str "$path")}"
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
  boot_by=systemd
  [[ $(systemctl is-enabled docker.service 2>/dev/null) == enabled ]] || fail "docker.service is not enabled at boot"
else
  boot_by=imgtool-boot
  [[ -x /usr/local/sbin/imgtool-boot ]] || fail "/usr/local/sbin/imgtool-boot (the twin's entrypoint) is missing"
fi

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
fi

# 6. Packages and cleanup.
words "$IMGTOOL_PACKAGES"
for p in "${WORDS[@]}"; do
  pkg_installed "$p" || fail "package $p is not installed"
done
! compgen -G '/etc/ssh/ssh_host_*' >/dev/null || fail "SSH host keys were left in the image"
[[ ! -s /etc/machine-id ]] || fail "/etc/machine-id is not empty"

if ((${#failures[@]} > 0)); then
  die "${#failures[@]} promise(s) not met: $(printf '%s; ' "${failures[@]}")"
fi

# The version manifest.
package_names=(git curl ca-certificates openssl containerd runc)
case $PKG in
  apt) package_names+=("$IMGTOOL_DOCKER_PACKAGE_APT" ruby "linux-image-$(uname -r)") ;;
  dnf) package_names+=("$IMGTOOL_DOCKER_PACKAGE_DNF" ruby kernel) ;;
esac
words "$IMGTOOL_PACKAGES"
package_names+=("${WORDS[@]}")
packages_json=""
for p in "${package_names[@]}"; do
  pv=$(pkg_version "$p")
  [[ -z $pv ]] || packages_json+="${packages_json:+, }$(json_str "$p"): $(json_str "$pv")"
done
mkdir -p "$(dirname "$MANIFEST")"
cat >"$MANIFEST.tmp" <<JSON
{
  "schema": 1,
  "imgtool": {
    "pipeline": $(json_str "$IMGTOOL_PIPELINE"),
    "role": $(json_str "$IMGTOOL_ROLE"),
    "target": $(json_str "$IMGTOOL_TARGET"),
    "version": $(json_str "$version"),
    "inputs_hash": $(json_str "$inputs_hash"),
    "git_revision": $(json_str "$git_revision")
  },
  "os": {"id": $(json_str "$OS_ID"), "version_id": $(json_str "$OS_VERSION_ID"), "name": $(json_str "$OS_NAME")},
  "kernel": $(json_str "$(uname -r)"),
  "arch": $(json_str "$(machine_arch)"),
  "packages": {$packages_json},
  "ruby": {"method": $(json_str "${ruby_method:-}"), "default": $(json_str "$default_ruby"), "versions": [$rubies_json]},
  "docker": {"client": $(json_str "$docker_version"), "engine": $(json_str "$dockerd_version"), "started_at_boot_by": $(json_str "$boot_by")},
  "ruby_bench": ${bench_record:-null},
  "images": [${preload_record:-}],
  "cpu": ${cpu_record:-null},
  "validated_at": $(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
}
JSON
mv -f "$MANIFEST.tmp" "$MANIFEST"

# Self-check: the manifest parses (with the image's own Ruby), and is written back formatted.
# shellcheck disable=SC2016 # Ruby code in single quotes
ruby -rjson -e '
  m = JSON.parse(File.read(ARGV[0]))
  %w[imgtool os kernel packages ruby docker ruby_bench images cpu].each { |k| abort "manifest: no #{k}" unless m.key?(k) }
  File.write(ARGV[0], JSON.pretty_generate(m) + "\n")
' "$MANIFEST" || die "$MANIFEST does not parse as JSON, or misses a part"
log "ok: every promise holds; version manifest written to $MANIFEST"
