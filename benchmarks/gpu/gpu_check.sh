#!/usr/bin/env bash
# The one GPU check, for a machine with an NVIDIA GPU and no internet (the H200 image:
# python3 with numpy, cupy-cuda13x, torch, pybind11, scikit-build-core, cmake, ninja, pytest,
# pytest-benchmark; pytest-timeout and pytest-xdist are used when present). In order of value,
# within one time budget (default 470 s, GPU_CHECK_BUDGET_S; each section gets what is left):
#   build      pip install --no-build-isolation --no-deps . with CUDA (sm_90 unless
#              GAN_FAST_CUDA_ARCHITECTURES says otherwise)
#   gpu_tests  the test suite's GPU tests (pytest -m cuda; GAN_FAST_REQUIRE_CUDA=1 is exported
#              for every pytest run, so a CUDA test that cannot reach the GPU fails, not skips)
#   bench      gpu_bench.py: ms/step at batch 64 and 256 of gan_fast (graph replay and
#              launch by launch), PyTorch eager and PyTorch in a CUDA graph; every op
#   readme     the README's 20-epoch training command, wall time, and its digit grid
#   cpu_tests  the rest of the suite (pytest -m "not cuda")
#   memcheck   compute-sanitizer memcheck on the CUDA tests of the device-side data ops, the
#              graph capture, Adam and dropout, if 60 s are left, then racecheck on Adam and
#              the reductions (BatchNorm, BCE, softmax cross-entropy: their parity sweep in
#              tests/test_parity.py and their own files) if 45 s are left (it needs a runtime
#              that supports it: Firecracker yes, gVisor no)
# then prints one short table (summary.py) against the issue's targets. OUT_DIR receives four
# files (the device tool brings back at most eight): summary.txt (that table), gpu_bench.json,
# digits.png (the README run's 8x8 grid) and logs.tgz (every section's log). MNIST:
# $GAN_FAST_DATA, else shared/data/mnist in the checkout (tests and the README run need it).
#
#   bash benchmarks/gpu/gpu_check.sh [OUT_DIR]        # run with a lease timeout of >= 540 s
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-${OUT:-$repo/gpu_check_out}}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
py="${PYTHON:-python3}"
work="$(mktemp -d)"
logs="$work/logs"   # packed into OUT_DIR/logs.tgz at the end
mkdir -p "$logs"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
if [ -z "${GAN_FAST_DATA:-}" ] && [ -e "$repo/shared/data/mnist/train-images-idx3-ubyte.gz" ]; then
  export GAN_FAST_DATA="$repo/shared/data/mnist"
fi
[ -n "${GAN_FAST_DATA:-}" ] && export GAN_FAST_TEST_DATA="${GAN_FAST_TEST_DATA:-$GAN_FAST_DATA}"
deadline=$((SECONDS + ${GPU_CHECK_BUDGET_S:-470}))
: > "$logs/sections.tsv"

section() {  # section NAME LIMIT_S COMMAND... (runs in the current directory)
  local name=$1 limit=$2; shift 2
  local left=$((deadline - SECONDS))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 15 ]; then
    printf '%s\tskipped\t0\n' "$name" >> "$logs/sections.tsv"; echo "=== $name: no time left"
    return 1
  fi
  echo; echo "=== $name (at most ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@" > >(tee "$logs/$name.log") 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >> "$logs/sections.tsv"
  return $rc
}

finish() {  # the table, then OUT_DIR's four files
  echo; echo "=== summary"
  $py "$repo/benchmarks/gpu/summary.py" "$logs" | tee "$out/summary.txt"
  cp "$logs/gpu_bench.json" "$out/" 2>/dev/null
  tar czf "$out/logs.tgz" -C "$work" logs
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$logs/gpu.txt"
$py -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__)"
$py -c "import torch; print('torch', torch.__version__, torch.version.cuda)" 2>/dev/null || echo "torch: not installed"

cd "$repo"
section build 200 env GAN_FAST_CUDA=ON GAN_FAST_CUDA_ARCHITECTURES="${GAN_FAST_CUDA_ARCHITECTURES:-90}" \
  $py -m pip install --no-build-isolation --no-deps . \
  || { finish; exit 1; }

# Everything else runs outside the checkout, so `import gan_fast` is the installed package;
# the benchmarks package is copied there (gpu_bench imports the perf and quality helpers).
cp -r "$repo/benchmarks" "$work/benchmarks"
cd "$work"
$py -c "import gan_fast; assert gan_fast.cuda_available(), 'CUDA not available to gan_fast'; print('gan_fast CUDA ok, cpu isa', gan_fast.cpu_isa())" \
  || { echo "gan_fast does not see the GPU"; finish; exit 1; }
pytest_opts=(-q -rs -p no:cacheprovider)
# A CUDA test that cannot run fails instead of skipping (tests/conftest.py): on this machine a
# skip means the GPU tests did not run, and the run must not pass that way.
export GAN_FAST_REQUIRE_CUDA=1
$py -c "import pytest_timeout" 2>/dev/null && pytest_opts+=(--timeout=150)

section gpu_tests 170 $py -m pytest "$repo/tests" -m cuda "${pytest_opts[@]}"
section bench 110 $py -m benchmarks.gpu.gpu_bench --json "$logs/gpu_bench.json"
if [ -n "${GAN_FAST_DATA:-}" ]; then
  t0=$(date +%s%N)
  section readme 75 $py -m gan_fast train --epochs 20 --seed 0 --out "$work/readme" --quiet \
    && ms=$((($(date +%s%N) - t0) / 1000000)) \
    && printf '%d.%03d\n' $((ms / 1000)) $((ms % 1000)) > "$logs/readme_seconds" \
    && $py -m gan_fast sample --checkpoint "$work/readme/checkpoints/last.npz" --n 64 --out "$out/digits.png"
else
  printf 'readme\tskipped (no MNIST: set GAN_FAST_DATA)\t0\n' >> "$logs/sections.tsv"
fi
cpu_opts=("${pytest_opts[@]}")
$py -c "import xdist" 2>/dev/null && cpu_opts+=(-n 8)
section cpu_tests 200 $py -m pytest "$repo/tests" -m "not cuda" "${cpu_opts[@]}"
if command -v compute-sanitizer > /dev/null && [ $((deadline - SECONDS)) -ge 60 ]; then
  section memcheck 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
    $py -m pytest "$repo/tests/test_random.py" "$repo/tests/test_cuda_graph.py" \
    "$repo/tests/test_adam.py" "$repo/tests/test_dropout.py" -m cuda -x -k "not distribution" \
    "${pytest_opts[@]}"
else
  printf 'memcheck\tskipped (no compute-sanitizer or under 60 s left)\t0\n' >> "$logs/sections.tsv"
fi
# Adam's per-block constants go through shared memory (thread 0 writes, all read after a
# barrier); the reductions as before. -k picks them by name (test ids carry the op's name,
# module names count too) from the parity sweep and the ops' own files.
if command -v compute-sanitizer > /dev/null && [ $((deadline - SECONDS)) -ge 45 ]; then
  section racecheck 90 compute-sanitizer --tool racecheck \
    --error-exitcode 9 $py -m pytest "$repo/tests/test_parity.py" "$repo/tests/test_adam.py" \
    "$repo/tests/test_batchnorm.py" "$repo/tests/test_bce_with_logits.py" \
    "$repo/tests/test_softmax_cross_entropy.py" -m cuda -k "adam or batchnorm or bce or softmax" \
    -x "${pytest_opts[@]}"
fi

finish
