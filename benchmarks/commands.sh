#!/usr/bin/env bash
# Times the README's commands on a fresh clone of this checkout: set-up, `make book`, a second
# `make book` (nothing changed), `make slides`, `make pdf` and `make test`. Targets: `make book`
# <= 5 minutes after set-up, `make slides` and `make pdf` <= 60 s each after `make book`,
# `make test` <= 15 minutes. Usage: benchmarks/commands.sh [clone-dir]
# XNN_DATA_DIR is passed through, so run it with and without the full MNIST.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
git clone --quiet "$repo" "$work/course"
cd "$work/course"

step() {
  local name="$1"
  shift
  local start end
  start=$(date +%s)
  "$@" >"$work/$name.log" 2>&1 || { echo "$name failed; see $work/$name.log"; exit 1; }
  end=$(date +%s)
  printf '%-22s %5d s\n' "$name" "$((end - start))"
}

echo "XNN_DATA_DIR=${XNN_DATA_DIR:-<unset: embedded default>}  clone: $work/course"
step "set-up" make setup
step "make book" make book
step "make book (again)" make book
step "make slides" make slides
step "make pdf" make pdf
rm -rf _build .cache  # make test from a clean build: it executes every notebook itself
step "make test" make test
tail -n 3 "$work/make test.log"
