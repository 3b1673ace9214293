# shellcheck shell=bash
# Small helpers shared by scripts/setup and scripts/teardown: logging, retries, bounded waits, root check.
# Sourced, never run. The caller sets IMGTOOL_LOG_PREFIX (e.g. "setup") and may set IMGTOOL_QUIET=1.

# log, warn, die [CODE] MESSAGE, retry ATTEMPTS DELAY CMD: the one shell library of imgtool, shared with the
# provisioning scripts.
# shellcheck source=packer/scripts/lib/core.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../packer/scripts/lib/core.sh"

# step NAME STATUS [DETAIL]: the one line each step prints, e.g. "setup: engine     ok      reused (pid 42)".
step() {
  log "$(printf '%-10s %-7s %s' "$1" "$2" "${3:-}")"
}

# now: seconds since the epoch with microseconds (bash 5's EPOCHREALTIME).
now() {
  printf '%s' "$EPOCHREALTIME"
}

# since START: seconds elapsed since START (a value of `now`), one decimal, e.g. "2.4s".
since() {
  local start=$1 end
  end=$(now)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1fs", b - a }'
}

# wait_until SECONDS CMD...: poll CMD (in this shell, so it may `die`) every 0.2 s until it succeeds;
# returns 1 if it still fails after SECONDS.
wait_until() {
  local seconds=$1 deadline
  shift
  deadline=$(($(date +%s) + seconds))
  until "$@"; do
    if (($(date +%s) >= deadline)); then
      return 1
    fi
    sleep 0.2
  done
}

# require_root: exit 2 unless running as root.
require_root() {
  if ((EUID != 0)); then
    die 2 "must run as root (it installs packages and starts dockerd); try: sudo $0"
  fi
}

# run_logged LOGFILE CMD...: run CMD with its output in LOGFILE; on failure show the log's tail and return CMD's code.
run_logged() {
  local logfile=$1 rc=0
  shift
  "$@" >"$logfile" 2>&1 </dev/null || rc=$?
  if ((rc != 0)); then
    warn "failed (exit $rc): $*"
    warn "last lines of $logfile:"
    tail -n 30 "$logfile" >&2
  fi
  return "$rc"
}

# pid_cmdline PID: the process's command line with spaces between arguments (empty if it is gone).
pid_cmdline() {
  { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true
}

# pid_matches PID WORD...: true if PID is a live process whose command line contains every WORD.
pid_matches() {
  local pid=$1 cmdline word
  shift
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(pid_cmdline "$pid")
  [[ -n $cmdline ]] || return 1
  for word in "$@"; do
    [[ $cmdline == *"$word"* ]] || return 1
  done
}

# pid_from_file FILE WORD...: print the pid in FILE if that process is alive and its command line contains
# every WORD (so a reused pid is never mistaken for ours); false otherwise.
pid_from_file() {
  local file=$1 pid
  shift
  [[ -r $file ]] || return 1
  pid=$(tr -dc '0-9' <"$file")
  pid_matches "$pid" "$@" || return 1
  printf '%s\n' "$pid"
}

# stop_pid PID SECONDS WORD...: SIGTERM the process if its command line still contains every WORD, wait up to
# SECONDS for it to exit, then SIGKILL. Never signals a process whose command line does not match.
stop_pid() {
  local pid=$1 seconds=$2
  shift 2
  pid_matches "$pid" "$@" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  if wait_until "$seconds" pid_gone "$pid" "$@"; then
    return 0
  fi
  warn "pid $pid did not stop within ${seconds}s of SIGTERM; sending SIGKILL"
  pid_matches "$pid" "$@" && kill -KILL "$pid" 2>/dev/null
  wait_until 10 pid_gone "$pid" "$@"
}

# pid_alive PID: true if PID is a running process (not a zombie). For a child just started in the background,
# whose command line is still the parent's until it execs.
pid_alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
  [[ -n $state && $state != Z ]]
}

# pid_gone PID WORD...: true once PID no longer names a process whose command line contains every WORD
# (a zombie counts as gone).
pid_gone() {
  local state
  pid_matches "$@" || return 0
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
  [[ $state == Z ]]
}

# write_file_atomic PATH MODE: write stdin to PATH through a temporary file in the same folder, then rename.
write_file_atomic() {
  local path=$1 mode=$2 tmp
  tmp=$(mktemp "$path.tmp.XXXXXX")
  if ! cat >"$tmp" || ! chmod "$mode" "$tmp" || ! mv -f "$tmp" "$path"; then
    rm -f "$tmp"
    return 1
  fi
}

# unmount_under DIR: unmount every mount point at or below DIR, deepest first (leftovers of a killed dockerd).
unmount_under() {
  local dir=$1 mp
  local -a points=()
  dir=${dir%/}
  # /proc/self/mountinfo field 5 is the mount point, with spaces and the like as octal escapes.
  while IFS= read -r mp; do
    mp=$(printf '%b' "$mp")
    if [[ $mp == "$dir" || $mp == "$dir"/* ]]; then
      points+=("$mp")
    fi
  done < <(awk '{ print $5 }' /proc/self/mountinfo)
  ((${#points[@]} > 0)) || return 0
  while IFS= read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || warn "could not unmount $mp"
  done < <(printf '%s\n' "${points[@]}" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
}

# image_label NAME: the key of the image label imgtool calls NAME (e.g. baseSpec), read from the one tag table,
# IMAGE_LABEL in src/config/tags.ts (through tsx, which setup's npm step installs). Fails for an unknown NAME.
image_label() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
  # shellcheck disable=SC2016 # JavaScript in single quotes
  "$root/node_modules/.bin/tsx" -e '
    const [file, name] = process.argv.slice(1);
    import(file).then(({ IMAGE_LABEL }) => {
      const key = Object.hasOwn(IMAGE_LABEL, name) ? IMAGE_LABEL[name] : undefined;
      if (typeof key !== "string" || !/^[a-z0-9][a-z0-9.-]*$/.test(key)) {
        console.error(`image_label: ${name} is not a key of IMAGE_LABEL in ${file}`);
        process.exit(1);
      }
      console.log(key);
    });
  ' "$root/src/config/tags.ts" "$1"
}
