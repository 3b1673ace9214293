#!/usr/bin/env bash
# install-packages.sh: installs the core tools (git, curl, ...), the benchmark build dependencies (task runners)
# and the role's extra packages from the config. Why: benchmarks run offline at launch, with nothing to install.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

detect_os
# Space-separated lists, one per package manager; IMGTOOL_PACKAGES are the config's extra packages.
core_var=IMGTOOL_CORE_PACKAGES_${PKG^^}
bench_var=IMGTOOL_BENCH_PACKAGES_${PKG^^}
require_set "$core_var" "$bench_var" IMGTOOL_PACKAGES

words "${!core_var} ${!bench_var} $IMGTOOL_PACKAGES"
packages=("${WORDS[@]}")
if ((${#packages[@]} == 0)); then
  log "no packages to install"
  exit 0
fi
pkg_install "${packages[@]}"

# Self-check: every package is installed.
for p in "${packages[@]}"; do
  pkg_installed "$p" || die "package $p is not installed after the install"
done
log "ok: ${#packages[@]} package(s) installed: ${packages[*]}"
