#!/usr/bin/env bash
# Everything a GPU lease should run, most valuable first, into one folder:
#   1. gpu_check.sh: build, tests, benchmarks, the README's 20-epoch run and its digits,
#      memcheck (at most 8 minutes);
#   2. benchmarks/quality/quality_run.py: the 20-epoch, 2-seed confirmation of the default
#      recipe and the seed's, against PyTorch, if QUALITY=1 (several more minutes).
# Needs MNIST in $GAN_FAST_DATA (or shared/data/mnist in the checkout). Packs the logs into
# OUT_DIR/all.tgz and copies the table inputs and images beside it.
#
#   GAN_FAST_DATA=/path/to/mnist bash benchmarks/gpu/gpu_session.sh OUT_DIR
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?usage: gpu_session.sh OUT_DIR}"
py="${PYTHON:-python3}"
work="$(mktemp -d)"
export PYTHONUNBUFFERED=1

bash "$repo/benchmarks/gpu/gpu_check.sh" "$work/check" > "$work/check.txt" 2>&1
echo "gpu_check.sh exit $?"; sed -n '/=== summary/,$p' "$work/check.txt"

if [ "${QUALITY:-0}" = 1 ]; then
  cp -r "$repo/benchmarks" "$work/benchmarks"
  cd "$work" || exit 1  # outside the source tree: import the installed gan_fast
  timeout 300 $py -m benchmarks.quality.quality_run --device cuda --jobs 1 --epochs 20 \
    --seeds 0 1 --variants default,seed --torch-variants default,seed \
    --data-dir "$GAN_FAST_DATA" --out "$work/quality" > "$work/quality.txt" 2>&1
  echo "quality_run exit $?"; tail -n 30 "$work/quality.txt"
fi

tar czf "$out/all.tgz" --exclude='*.npz' -C "$work" .
cp "$work/check/gpu_bench.json" "$work/check/digits.png" "$out/" 2>/dev/null
cp "$work/quality/study.md" "$work/quality/"grid_*.png "$out/" 2>/dev/null
ls -la "$out"
