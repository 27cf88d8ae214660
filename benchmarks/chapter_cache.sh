#!/usr/bin/env bash
# Times a chapter twice, the way nbval runs it in `make test`: first with an empty model and
# course cache (the chapter trains what it needs), then again with the cache it left. Target
# for chapter 3: the second run at least 3x faster than the first.
# Usage: benchmarks/chapter_cache.sh [chapters/03_input_optimization.ipynb]
# XNN_DATA_DIR and XNN_IMAGENET_WEIGHTS are passed through, as in CI.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
notebook="${1:-chapters/03_input_optimization.ipynb}"
cache="$(mktemp -d)"
trap 'rm -rf "$cache"' EXIT
export XNN_CACHE_DIR="$cache" XNN_COURSE_CACHE_DIR="$cache" TQDM_DISABLE=1
cd "$repo"
ms=()
for run in first second; do
  start=$(date +%s%N)
  .venv/bin/pytest -q --nbval-lax "$notebook" >"$cache/$run.log" 2>&1 ||
    { cat "$cache/$run.log"; echo "$run run failed"; exit 1; }
  ms+=("$(( ($(date +%s%N) - start) / 1000000 ))")
  printf '%-7s run: %6d ms\n' "$run" "${ms[-1]}"
done
echo "speed-up: $(( ms[0] * 10 / ms[1] / 10 )).$(( ms[0] * 10 / ms[1] % 10 ))x"
