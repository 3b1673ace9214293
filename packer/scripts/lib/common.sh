# shellcheck shell=bash disable=SC2034 # the variables set here are read by the scripts that source this file
# common.sh: the helpers every provisioning script sources (required variables, downloads, OS detection,
# package installs; logging, retries and JSON strings from core.sh). Why: one convention for the bake steps, on AMIs, twins and in
# Dockerfiles alike.
#
# Inputs: the IMGTOOL_* variables each script names. When IMGTOOL_ENV_FILE names a file (the build.env that
# imgtool renders, uploaded by Packer), it is read first: its values are shell words quoted by imgtool's
# shellWord helper, so sourcing it expands nothing. Values already in the environment win over the file, so a
# Dockerfile or a test can set or override one with ENV or `VAR=... script`.

# The folder of this file: the other files of lib/ (imgtool-boot, imgtool-cpu-setup) are beside it.
IMGTOOL_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
IMGTOOL_STEP=${IMGTOOL_STEP:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}
# Where the bake leaves its records (cpu settings, pre-load, ruby-bench, the version manifest).
IMGTOOL_STATE_DIR=${IMGTOOL_STATE_DIR:-/etc/imgtool}
# The aws bake runs each step through sudo, whose secure_path on Amazon Linux (/sbin:/bin:/usr/sbin:/usr/bin)
# leaves out /usr/local, where ruby-build's and a tarball's Ruby are linked: validate.sh would find no ruby.
case ":$PATH:" in
  *:/usr/local/bin:*) ;;
  *) export PATH=/usr/local/sbin:/usr/local/bin:$PATH ;;
esac

IMGTOOL_LOG_PREFIX="imgtool[$IMGTOOL_STEP]"
# log, warn, die, retry: the one shell library of imgtool, beside this file.
# shellcheck source=core.sh
. "$IMGTOOL_LIB_DIR/core.sh"

# load_env_file: read IMGTOOL_ENV_FILE (if set) without overriding variables already in the environment.
load_env_file() {
  local file=${IMGTOOL_ENV_FILE:-} name
  [[ -n $file ]] || return 0
  [[ -r $file ]] || die "IMGTOOL_ENV_FILE=$file is not readable"
  local -a preset=()
  while IFS= read -r name; do
    preset+=("$name=${!name}")
  done < <(compgen -v IMGTOOL_ || true)
  set -o allexport
  # shellcheck disable=SC1090 # rendered per build
  . "$file"
  set +o allexport
  local kv
  for kv in "${preset[@]}"; do
    export "${kv%%=*}=${kv#*=}"
  done
}
load_env_file

# require_var NAME...: each must be set and non-empty.
require_var() {
  local name
  for name in "$@"; do
    [[ -n ${!name:-} ]] || die "$name is required (set it in the environment or in IMGTOOL_ENV_FILE)"
  done
}

# require_set NAME...: each must be set (it may be empty, meaning "none").
require_set() {
  local name
  for name in "$@"; do
    [[ -n ${!name+x} ]] || die "$name must be set (empty means none)"
  done
}

# download URL DEST: fetch URL to DEST (written only when complete), retrying transient failures: curl's own
# retries (IMGTOOL_DOWNLOAD_CURL_RETRIES, default 2, a second apart: curl waits at least 1 s), inside
# IMGTOOL_DOWNLOAD_ATTEMPTS attempts IMGTOOL_DOWNLOAD_DELAY seconds apart (doubling). The tests set curl's to 0
# and the delay to 0, so a failed first request is retried at once by the outer loop.
download() {
  local url=$1 dest=$2
  retry "${IMGTOOL_DOWNLOAD_ATTEMPTS:-5}" "${IMGTOOL_DOWNLOAD_DELAY:-2}" \
    curl --fail --silent --show-error --location --connect-timeout 20 \
    --retry "${IMGTOOL_DOWNLOAD_CURL_RETRIES:-2}" --retry-delay 1 \
    --output "$dest.partial" -- "$url" || die "download failed: $url"
  mv -f -- "$dest.partial" "$dest"
}

# detect_os: set OS_ID, OS_VERSION_ID, OS_NAME and PKG (apt or dnf) from /etc/os-release.
detect_os() {
  local file=${IMGTOOL_OS_RELEASE:-/etc/os-release} id="" version_id="" id_like="" pretty=""
  [[ -r $file ]] || die "$file is missing: cannot tell the OS"
  # Read the fields without sourcing the file.
  local line key value
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line == *=* ]] || continue
    key=${line%%=*}
    value=${line#*=}
    value=${value#\"}
    value=${value%\"}
    case $key in
      ID) id=$value ;;
      VERSION_ID) version_id=$value ;;
      ID_LIKE) id_like=$value ;;
      PRETTY_NAME) pretty=$value ;;
    esac
  done <"$file"
  OS_ID=$id
  OS_VERSION_ID=$version_id
  OS_NAME=${pretty:-$id $version_id}
  case " $id $id_like " in
    *" amzn "* | *" fedora "* | *" rhel "* | *" centos "*) PKG=dnf ;;
    *" debian "* | *" ubuntu "*) PKG=apt ;;
    *) die "unsupported OS '$OS_NAME' (ID=$id): imgtool's scripts know dnf (Amazon Linux 2023) and apt (Debian, Ubuntu)" ;;
  esac
  if [[ $PKG == dnf ]] && ! command -v dnf >/dev/null 2>&1; then
    die "$OS_NAME has no dnf: imgtool supports Amazon Linux 2023, not Amazon Linux 2 (yum)"
  fi
  export OS_ID OS_VERSION_ID OS_NAME PKG
}

# pkg_refresh: update the package index once per bake (cleanup.sh removes it again).
pkg_refresh() {
  case $PKG in
    apt)
      # Refresh when there is no index, or when it is older than an hour (so the steps of one bake share one).
      if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null ||
        [[ -n $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin +60 -print -quit) ]]; then
        retry 4 3 apt-get update -qq || die "apt-get update failed"
      fi
      ;;
    dnf) retry 4 3 dnf -q makecache || die "dnf makecache failed" ;;
  esac
}

# pkg_installed NAME: true if the package is installed.
pkg_installed() {
  case $PKG in
    apt) [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]] ;;
    dnf) rpm -q --quiet "$1" ;;
  esac
}

# pkg_available NAME: true if the package manager can install NAME.
pkg_available() {
  case $PKG in
    apt) apt-cache policy "$1" 2>/dev/null | grep -q '^ *Candidate: [^(]' ;;
    dnf) dnf -q list --available "$1" >/dev/null 2>&1 || rpm -q --quiet "$1" ;;
  esac
}

# pkg_install NAME...: install the packages that are not installed yet (idempotent).
pkg_install() {
  local -a missing=()
  local p
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "already installed: $*"
    return 0
  fi
  pkg_refresh
  log "installing: ${missing[*]}"
  case $PKG in
    apt)
      retry 3 5 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -- "${missing[@]}" ||
        die "apt-get install failed: ${missing[*]}"
      ;;
    dnf) retry 3 5 dnf install -y -q -- "${missing[@]}" || die "dnf install failed: ${missing[*]}" ;;
  esac
}

# pkg_version NAME: the installed version, or nothing.
pkg_version() {
  case $PKG in
    apt) dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true ;;
    dnf)
      # rpm answers a name nothing installed provides on stdout ("package X is not installed"), and lists each
      # installed version (two kernels after an update): the newest, or nothing. A name that a package only
      # provides (Amazon Linux's ruby, from ruby3.2) counts too.
      local versions
      versions=$(rpm -q --whatprovides --qf '%{VERSION}-%{RELEASE}\n' "$1" 2>/dev/null) || return 0
      sort -V <<<"$versions" | tail -n 1 | tr -d '\n'
      ;;
  esac
}

# has_systemctl: systemd's tools are installed (units can be enabled, even while systemd is not running, as in
# a bake chroot or container). has_systemd_running: systemd is PID 1 here.
has_systemctl() { command -v systemctl >/dev/null 2>&1; }
has_systemd_running() { [[ -d /run/systemd/system ]]; }

# machine_arch: x86_64 or arm64 (the names imgtool and EC2 use).
machine_arch() {
  case $(uname -m) in
    x86_64 | amd64) echo x86_64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# state_write NAME CONTENT: write a record under IMGTOOL_STATE_DIR (atomically).
state_write() {
  mkdir -p -- "$IMGTOOL_STATE_DIR"
  printf '%s\n' "$2" >"$IMGTOOL_STATE_DIR/$1.tmp"
  mv -f -- "$IMGTOOL_STATE_DIR/$1.tmp" "$IMGTOOL_STATE_DIR/$1"
}

# words VALUE: split a space-separated list (the env file's lists) into the array WORDS.
words() {
  WORDS=()
  [[ -z $1 ]] || read -r -a WORDS <<<"$1"
}
