# shellcheck shell=bash
# core.sh: the one logging, dying, retrying and JSON quoting of imgtool's shell (log, warn, die, retry, json_str),
# sourced by scripts/lib/common.sh (setup, teardown), packer/scripts/lib/common.sh (the provisioning steps) and
# imgtool-cpu-setup (at boot, installed beside it). Why: one signature each, so a script moved between the sides
# behaves the same. Sourced, never run.
#
# Inputs: IMGTOOL_LOG_PREFIX (the word before each line, e.g. "setup" or "imgtool[validate]"; default
# "imgtool"), IMGTOOL_QUIET=1 silences `log` (never `warn` or `die`).

# log MESSAGE...: a progress line on stderr ("PREFIX: MESSAGE").
log() {
  [[ ${IMGTOOL_QUIET:-0} == 1 ]] || printf '%s: %s\n' "${IMGTOOL_LOG_PREFIX:-imgtool}" "$*" >&2
}

# warn MESSAGE...: always shown ("PREFIX: warning: MESSAGE").
warn() {
  printf '%s: warning: %s\n' "${IMGTOOL_LOG_PREFIX:-imgtool}" "$*" >&2
}

# die [CODE] MESSAGE...: print "PREFIX: error: MESSAGE" and exit with CODE (2: wrong input or environment,
# 1: the work failed). Without a CODE (a first argument that is not a number, or the only argument) it exits 1.
die() {
  local code=1
  if (($# > 1)) && [[ $1 =~ ^[0-9]+$ ]]; then
    code=$1
    shift
  fi
  printf '%s: error: %s\n' "${IMGTOOL_LOG_PREFIX:-imgtool}" "$*" >&2
  exit "$code"
}

# retry ATTEMPTS DELAY_SECONDS COMMAND...: run COMMAND until it succeeds, at most ATTEMPTS times, waiting
# DELAY_SECONDS, then twice that, and so on, in between. Returns 1 when every attempt failed.
retry() {
  # (Locals are visible to COMMAND under bash's dynamic scoping: keep their names out of the way.)
  local _retry_max=$1 _retry_delay=$2 _retry_n=1
  shift 2
  until "$@"; do
    if ((_retry_n >= _retry_max)); then
      warn "gave up after $_retry_n attempts: $*"
      return 1
    fi
    warn "attempt $_retry_n of $_retry_max failed, retrying in ${_retry_delay}s: $*"
    sleep "$_retry_delay"
    _retry_n=$((_retry_n + 1))
    _retry_delay=$((_retry_delay * 2))
  done
}

# json_str VALUE: VALUE as a JSON string literal.
json_str() {
  local s=$1 out="" c i
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  if [[ $s == *[$'\001'-$'\037']* ]]; then
    for ((i = 0; i < ${#s}; i++)); do
      c=${s:i:1}
      if [[ $c == [$'\001'-$'\037'] ]]; then
        printf -v c '\\u%04x' "'$c"
      fi
      out+=$c
    done
    s=$out
  fi
  printf '"%s"' "$s"
}
