#!/usr/bin/env bash
# Everything a short GPU lease should run, most valuable first, into one folder:
#   1. benchmarks/gpu_check.sh: build, GPU tests, GPU benchmarks, training smoke, sanitizers;
#   2. benchmarks/quality_run.py: the 10-epoch, 2-seed quality record against PyTorch;
#   3. the README's digits: the two README commands, as written there.
# Needs MNIST in $GAN_FAST_DATA. Packs the logs into OUT_DIR/all.tgz and copies the
# tables and images beside it.
#
#   GAN_FAST_DATA=/path/to/mnist bash benchmarks/gpu_session.sh OUT_DIR
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: gpu_session.sh OUT_DIR}"
py="${PYTHON:-python3}"
work="$(mktemp -d)"
export GAN_FAST_TEST_DATA="${GAN_FAST_TEST_DATA:-$GAN_FAST_DATA}" PYTHONUNBUFFERED=1

bash "$repo/benchmarks/gpu_check.sh" "$work/check" > "$work/check.txt" 2>&1
echo "gpu_check.sh exit $?"; sed -n '/=== summary/,$p' "$work/check.txt"

cd "$work" || exit 1  # outside the source tree: import the installed gan_fast
timeout 240 $py "$repo/benchmarks/quality_run.py" --device cuda --data-dir "$GAN_FAST_DATA" \
  --out "$work/quality" > "$work/quality.txt" 2>&1
echo "quality_run.py exit $?"; tail -n 30 "$work/quality.txt"

t0=$SECONDS
timeout 100 $py -m gan_fast train --epochs 20 --seed 0 --out runs/readme --quiet \
  && $py -m gan_fast sample --checkpoint runs/readme/checkpoints/last.npz --n 64 --out digits.png
echo "README digits exit $? in $((SECONDS - t0)) s"

tar czf "$out/all.tgz" --exclude='*.npz' -C "$work" .
cp "$work/check/bench.log" "$work/check/gpu_samples.png" "$out/" 2>/dev/null
cp "$work/quality/quality.md" "$work/quality/samples_gan_fast.png" "$work/quality/samples_torch.png" "$out/" 2>/dev/null
cp "$work/digits.png" "$out/" 2>/dev/null
ls -la "$out"
