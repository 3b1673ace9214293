#!/usr/bin/env bash
# install-ruby-bench.sh: caches the ruby-bench checkout at /opt/ruby-bench at the pinned commit (clone; when
# already there, fetch and reset). Why: a task runner starts benchmarking at once and fetches only for another ref.
set -o errexit -o nounset -o pipefail
# shellcheck source=lib/common.sh
. "${IMGTOOL_COMMON:-$(dirname "${BASH_SOURCE[0]}")/lib/common.sh}"

# SOURCE: where this machine clones from (the repository URL, or the folder Packer uploaded a local repository
# to); ORIGIN: the configured repository, kept as the checkout's origin; COMMIT: the commit imgtool resolved from
# REF (or REF itself when it was not resolved, as for `imgtool render`).
require_var IMGTOOL_RUBY_BENCH_SOURCE IMGTOOL_RUBY_BENCH_ORIGIN IMGTOOL_RUBY_BENCH_REF IMGTOOL_RUBY_BENCH_COMMIT
dir=${IMGTOOL_RUBY_BENCH_DIR:-/opt/ruby-bench}
src=$IMGTOOL_RUBY_BENCH_SOURCE
ref=$IMGTOOL_RUBY_BENCH_REF
command -v git >/dev/null 2>&1 || die "git is not installed (install-packages.sh installs it)"

# An uploaded folder belongs to the uploading user: git refuses repositories of other owners.
if [[ -d $src && $(id -u) == 0 ]]; then
  chown -R 0:0 -- "$src"
fi

if [[ -d $dir/.git ]]; then
  log "$dir is present: fetching $ref"
  git -C "$dir" remote set-url origin "$src"
else
  rm -rf -- "$dir"
  log "cloning $IMGTOOL_RUBY_BENCH_ORIGIN into $dir"
  retry 3 5 git clone --quiet --no-checkout --no-hardlinks -- "$src" "$dir" || die "git clone of $src failed"
fi
retry 3 5 git -C "$dir" fetch --quiet --force --tags origin "$ref" || die "cannot fetch $ref from $src"
ref_commit=$(git -C "$dir" rev-parse --verify 'FETCH_HEAD^{commit}')

want=$IMGTOOL_RUBY_BENCH_COMMIT
if [[ $want =~ ^[0-9a-f]{40}$ ]]; then
  if ! git -C "$dir" cat-file -e "$want^{commit}" 2>/dev/null; then
    retry 3 5 git -C "$dir" fetch --quiet --force origin "$want" ||
      die "commit $want (resolved from $ref) is not in $src"
  fi
  [[ $want == "$ref_commit" ]] || warn "$ref is now at $ref_commit; checking out the pinned commit $want"
else
  want=$ref_commit
fi
git -C "$dir" -c advice.detachedHead=false checkout --quiet --force --detach "$want"
git -C "$dir" clean -ffdxq
git -C "$dir" remote set-url origin "$IMGTOOL_RUBY_BENCH_ORIGIN"

state_write ruby-bench.json "{\"repository\": $(json_str "$IMGTOOL_RUBY_BENCH_ORIGIN"), \"ref\": $(json_str "$ref"), \"commit\": $(json_str "$want"), \"path\": $(json_str "$dir")}"

# Self-check: HEAD is the pinned commit and the work tree is clean.
head=$(git -C "$dir" rev-parse HEAD)
[[ $head == "$want" ]] || die "$dir is at $head, not $want"
[[ -z $(git -C "$dir" status --porcelain) ]] || die "$dir has local changes after the reset"
log "ok: $dir at $head ($ref)"
