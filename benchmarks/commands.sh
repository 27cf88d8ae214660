#!/usr/bin/env bash
# Times the README's commands on a fresh clone of this checkout, with the machine's load average
# before each step (run it on an idle machine; a busy one inflates every number):
#
#   set-up              make setup (.venv from PyPI)
#   make check (1..3)   three runs; target: under 60 s each
#   make book           cold: trains the course models (make course-models), executes every chapter
#   make book (again)   nothing changed; target for the first: 5 minutes after set-up
#   make slides, make pdf   after make book; target: 60 s each
#   make test (warm)    course models cached, no built book or execution cache; target: 8 minutes
#                       of pytest time
#   make test (cold)    no cache at all, as CI runs it
#
# For each pytest run it prints pytest's own time; the logs (in the work folder) hold the
# --durations tables. Usage: benchmarks/commands.sh [work-dir]
# STEPS picks steps, e.g. STEPS="check test-warm" (default: all, in the order above; slides and
# pdf come with book).
# XNN_DATA_DIR and XNN_IMAGENET_WEIGHTS pass through (run it with and without them, as CI and a
# user's machine differ); the model caches are the clone's own, so that "cold" means cold.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
steps="${STEPS:-setup check book test-warm test-cold}"
unset XNN_CACHE_DIR XNN_COURSE_CACHE_DIR
git clone --quiet "$repo" "$work/course"
cd "$work/course"

step() {
  local name="$1"
  shift
  local load start end log="$work/$name.log"
  load=$(cut -d' ' -f1 /proc/loadavg)
  start=$(date +%s)
  "$@" >"$log" 2>&1 || { echo "$name failed; see $log"; exit 1; }
  end=$(date +%s)
  printf '%-20s %5d s  (load before: %s)' "$name" "$((end - start))" "$load"
  # pytest's summary line, e.g. "=== 412 passed in 301.22s (0:05:01) ===".
  grep -aoE '[0-9]+ passed.* in [0-9.]+s' "$log" | tail -n 1 | sed 's/^/  pytest: /' || true
  echo
}

has() { [[ " $steps " == *" $1 "* ]]; }

echo "XNN_DATA_DIR=${XNN_DATA_DIR:-<unset: embedded default>}  clone: $work/course"
has setup && step "set-up" make setup
if has check; then
  for run in 1 2 3; do step "make check ($run)" make check; done
fi
if has book; then
  step "make book" make book
  step "make book (again)" make book
  step "make slides" make slides
  step "make pdf" make pdf
fi
if has test-warm; then
  make --no-print-directory course-models >/dev/null  # cached: the warm run only loads them
  rm -rf _build  # the warm run builds and executes the book itself
  step "make test (warm)" make test
fi
if has test-cold; then
  rm -rf _build .cache  # no course models, no execution cache: as on CI
  step "make test (cold)" make test
fi
echo "logs: $work/*.log"
