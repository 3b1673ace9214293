#!/usr/bin/env bash
# write-manifest.sh: writes the version manifest, /etc/imgtool/manifest.json, from what the bake recorded and
# what is installed (OS, kernel, packages, Rubies, Docker, ruby-bench, images, CPU). Why: each image says
# exactly what it holds; it runs after validate.sh, so it only describes an image that keeps its promises.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

require_var IMGTOOL_PIPELINE IMGTOOL_ROLE IMGTOOL_TARGET IMGTOOL_RUBY_VERSIONS
require_set IMGTOOL_PACKAGES
detect_os
MANIFEST=${IMGTOOL_MANIFEST:-$IMGTOOL_STATE_DIR/manifest.json}

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
record_of() { cat "$IMGTOOL_STATE_DIR/$1" 2>/dev/null || true; }

# Rubies: each configured version as recorded by install-ruby.sh, with the version it reports.
rubies_json=""
default_ruby=""
ruby_method=""
if [[ -s $IMGTOOL_STATE_DIR/rubies.tsv ]]; then
  ruby_method=$(head -n 1 "$IMGTOOL_STATE_DIR/rubies.tsv")
  words "$IMGTOOL_RUBY_VERSIONS"
  for v in "${WORDS[@]}"; do
    line=$(awk -F '\t' -v v="$v" 'NR > 1 && $1 == v { print; exit }' "$IMGTOOL_STATE_DIR/rubies.tsv")
    [[ -n $line ]] || continue
    path=${line##*$'\t'}
    actual=$("$path" -e 'print RUBY_VERSION' 2>/dev/null || true)
    [[ -n $default_ruby ]] || default_ruby=$path
    rubies_json+="${rubies_json:+, }{\"requested\": $(json_str "$v"), \"version\": $(json_str "$actual"), \"path\": $(json_str "$path")}"
  done
fi
docker_version=$(docker --version 2>/dev/null || true)
dockerd_version=$(dockerd --version 2>/dev/null || true)
if has_systemctl; then boot_by=systemd; else boot_by=imgtool-boot; fi
bench_record=$(record_of ruby-bench.json)
cpu_record=$(record_of cpu.json)
preload_record=$(record_of preload.json)

# The manifest.
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
  "ruby": {"method": $(json_str "$ruby_method"), "default": $(json_str "$default_ruby"), "versions": [$rubies_json]},
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
log "ok: version manifest written to $MANIFEST"
