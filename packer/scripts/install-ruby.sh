#!/usr/bin/env bash
# install-ruby.sh: installs each configured Ruby version by the configured method: the distribution's package
# (distro), ruby-build from source (ruby-build) or a prebuilt tarball (tarball). Why: Rubies ready at boot.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

require_var IMGTOOL_RUBY_METHOD IMGTOOL_RUBY_VERSIONS
RUBIES_DIR=${IMGTOOL_RUBIES_DIR:-/opt/rubies}
BIN_DIR=${IMGTOOL_BIN_DIR:-/usr/local/bin}
words "$IMGTOOL_RUBY_VERSIONS"
versions=("${WORDS[@]}")
((${#versions[@]} > 0)) || die "IMGTOOL_RUBY_VERSIONS lists no version"

# version_matches REQUESTED ACTUAL: 3.3 matches 3.3.6; 3.3.6 matches only 3.3.6.
version_matches() { [[ $2 == "$1" || $2 == "$1".* ]]; }

# ruby_version RUBY: the RUBY_VERSION that RUBY reports, or nothing if it does not run.
ruby_version() { "$1" -e 'print RUBY_VERSION' 2>/dev/null || true; }

records=()
# record REQUESTED RUBY: remember where a requested version is, for the self-check and validate.sh.
record() { records+=("$1"$'\t'"$2"); }

# already_installed REQUESTED RUBY: RUBY (a tarball's or ruby-build's, under RUBIES_DIR) runs and is the
# requested version: recorded, nothing to install (a second run changes nothing).
already_installed() {
  [[ -x $2 ]] && version_matches "$1" "$(ruby_version "$2")" || return 1
  log "Ruby $1 already in ${2%/bin/ruby}"
  record "$1" "$2"
}

install_distro() {
  local v=${versions[0]} pkg="" dev="" ruby=""
  ((${#versions[@]} == 1)) || die "method distro installs the distribution's one Ruby; ${#versions[@]} versions were asked for"
  detect_os
  local default_candidate default_name=ruby
  # Prefer the distribution's default Ruby when it is the requested version, then a versioned package
  # (ruby3.3, ruby3.2, ...), and else the default Ruby with a warning: the manifest records what it is.
  pkg_refresh
  case $PKG in
    apt) default_candidate=$(apt-cache policy ruby | sed -n 's/^ *Candidate: *\([0-9]*:\)\{0,1\}//p') ;;
    dnf)
      # Amazon Linux 2023 has no package named ruby: its default Ruby is a versioned package (ruby3.2) that
      # provides it. Its name gives the headers' package (ruby3.2-devel).
      read -r default_name default_candidate < <(dnf -q repoquery --whatprovides ruby \
        --qf '%{name} %{version}\n' 2>/dev/null | sort -k2,2 -V | tail -n 1) || true
      default_name=${default_name:-ruby}
      ;;
  esac
  if version_matches "$v" "${default_candidate:-none}"; then
    pkg=$default_name
  elif pkg_available "ruby$v"; then
    pkg=ruby$v
  else
    pkg=$default_name
    warn "$OS_NAME has no Ruby $v package: installing its default Ruby (${default_candidate:-unknown}); use method ruby-build or tarball for an exact version"
  fi
  case $PKG in
    apt) dev=${pkg}-dev ;;
    dnf) dev=${pkg}-devel ;;
  esac
  if pkg_available "$dev"; then
    pkg_install "$pkg" "$dev"
  else
    pkg_install "$pkg"
  fi
  if [[ $pkg == "$default_name" ]]; then ruby=$(command -v ruby || true); else ruby=$(command -v "ruby$v" || command -v ruby || true); fi
  [[ -n $ruby ]] || die "package $pkg installed no ruby executable"
  record "$v" "$ruby"
}

install_tarball() {
  require_var IMGTOOL_RUBY_TARBALL_URL
  local arch v url dest tmp root ruby
  arch=$(machine_arch)
  for v in "${versions[@]}"; do
    dest=$RUBIES_DIR/$v
    ruby=$dest/bin/ruby
    already_installed "$v" "$ruby" && continue
    url=${IMGTOOL_RUBY_TARBALL_URL//\{version\}/$v}
    url=${url//\{arch\}/$arch}
    tmp=$(mktemp -d)
    log "Ruby $v: downloading $url"
    download "$url" "$tmp/ruby.tar"
    mkdir "$tmp/x"
    tar -xf "$tmp/ruby.tar" -C "$tmp/x" || die "cannot unpack $url (a tar archive, optionally gz/bz2/xz-compressed, is expected)"
    # The Ruby prefix is the archive's root, or its one top folder.
    root=$tmp/x
    if [[ ! -e $root/bin/ruby ]]; then
      local -a tops=("$tmp"/x/*)
      if ((${#tops[@]} == 1)) && [[ -e ${tops[0]}/bin/ruby ]]; then
        root=${tops[0]}
      else
        die "$url holds no bin/ruby (at its root or under one top folder)"
      fi
    fi
    mkdir -p "$RUBIES_DIR"
    rm -rf "$dest.new"
    mv "$root" "$dest.new"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    rm -rf "$tmp"
    record "$v" "$ruby"
  done
}

install_ruby_build() {
  require_var IMGTOOL_RUBY_BUILD_REF IMGTOOL_RUBY_BUILD_URL
  detect_os
  local deps_var=IMGTOOL_RUBY_BUILD_PACKAGES_${PKG^^}
  words "${!deps_var:-}"
  ((${#WORDS[@]} == 0)) || pkg_install "${WORDS[@]}"
  local want=${IMGTOOL_RUBY_BUILD_REF#v} prefix=${IMGTOOL_RUBY_BUILD_PREFIX:-/usr/local} tmp src v def dest ruby
  local rb=$prefix/bin/ruby-build
  if [[ $("$rb" --version 2>/dev/null || true) != "ruby-build $want" ]]; then
    tmp=$(mktemp -d)
    log "installing ruby-build $IMGTOOL_RUBY_BUILD_REF from $IMGTOOL_RUBY_BUILD_URL"
    download "$IMGTOOL_RUBY_BUILD_URL" "$tmp/ruby-build.tar.gz"
    tar -xzf "$tmp/ruby-build.tar.gz" -C "$tmp"
    src=$(find "$tmp" -mindepth 2 -maxdepth 2 -name install.sh -printf '%h\n' -quit)
    [[ -n $src ]] || die "$IMGTOOL_RUBY_BUILD_URL holds no ruby-build (no install.sh)"
    PREFIX=$prefix "$src/install.sh"
    rm -rf "$tmp"
  else
    log "ruby-build $want already installed"
  fi
  [[ $("$rb" --version) == "ruby-build $want" ]] || die "ruby-build reports '$("$rb" --version)', not $want"
  for v in "${versions[@]}"; do
    dest=$RUBIES_DIR/$v
    ruby=$dest/bin/ruby
    already_installed "$v" "$ruby" && continue
    # 3.3 means the newest 3.3.x that this ruby-build knows.
    if [[ $v =~ ^[0-9]+\.[0-9]+$ ]]; then
      def=$("$rb" --definitions | grep -E "^${v//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
      [[ -n $def ]] || die "ruby-build $want knows no Ruby $v.x"
    else
      def=$v
    fi
    log "Ruby $v: building $def with ruby-build (minutes)"
    mkdir -p "$RUBIES_DIR"
    rm -rf "$dest"
    MAKE_OPTS=${MAKE_OPTS:--j$(nproc)} "$rb" "$def" "$dest" || die "ruby-build $def failed"
    record "$v" "$ruby"
  done
}

case $IMGTOOL_RUBY_METHOD in
  distro) install_distro ;;
  tarball) install_tarball ;;
  ruby-build) install_ruby_build ;;
  *) die "IMGTOOL_RUBY_METHOD=$IMGTOOL_RUBY_METHOD: must be distro, ruby-build or tarball" ;;
esac

# The first version is the default ruby (for methods other than distro, whose ruby is already on PATH).
if [[ $IMGTOOL_RUBY_METHOD != distro ]]; then
  ln -sfn "$RUBIES_DIR/${versions[0]}" "$RUBIES_DIR/default"
  mkdir -p "$BIN_DIR"
  for tool in ruby gem bundle bundler irb rake erb; do
    if [[ -e $RUBIES_DIR/default/bin/$tool ]]; then
      ln -sfn "$RUBIES_DIR/default/bin/$tool" "$BIN_DIR/$tool"
    fi
  done
fi

# Self-check: every version runs and reports what was asked (distro: a mismatch was warned about above).
lines=""
for rec in "${records[@]}"; do
  v=${rec%%$'\t'*}
  ruby=${rec#*$'\t'}
  actual=$(ruby_version "$ruby")
  [[ -n $actual ]] || die "Ruby $v ($ruby) does not run"
  if ! version_matches "$v" "$actual"; then
    [[ $IMGTOOL_RUBY_METHOD == distro ]] || die "Ruby $v ($ruby) reports $actual"
  fi
  lines+="$v"$'\t'"$actual"$'\t'"$ruby"$'\n'
  log "ok: Ruby $v -> $actual ($ruby)"
done
# requested <TAB> actual <TAB> path, one line per version, the first being the default ruby.
state_write rubies.tsv "$IMGTOOL_RUBY_METHOD"$'\n'"${lines%$'\n'}"
