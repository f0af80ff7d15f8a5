#!/usr/bin/env bash
# One-shot GPU check, for a machine with an NVIDIA GPU and no internet:
#   build gan_fast with CUDA, run the GPU tests (parity against the NumPy reference, CUDA
#   against CPU, training-step parity and determinism), run them again under
#   compute-sanitizer (memcheck; racecheck on the reduction kernels), then the GPU
#   benchmarks against CuPy/cuBLAS and PyTorch on the same GPU, and print a short table.
# Needs python3 with numpy, cupy, pytest, pybind11, scikit-build-core, cmake, ninja
# (torch optional). Budget: under 8 minutes on one H200.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]       # logs and JSON land in OUT_DIR
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-${OUT:-$repo/gpu_check_out}}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
declare -A status
summary=()

section() {  # section NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2; shift 2
  echo; echo "=== $name"
  local t0=$SECONDS
  timeout "$limit" "$@" > >(tee "$out/$name.log") 2>&1
  local rc=$?
  status[$name]=$rc
  summary+=("$(printf '%-22s rc=%-4s %4ss' "$name" "$rc" "$((SECONDS - t0))")")
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
  | tee "$out/gpu.txt"
$py -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__)"
$py -c "import torch; print('torch', torch.__version__, torch.version.cuda)" 2>/dev/null || echo "torch: not installed"

cd "$repo"
section build 300 env GAN_FAST_CUDA=ON GAN_FAST_CUDA_ARCHITECTURES="${GAN_FAST_CUDA_ARCHITECTURES:-90}" \
  $py -m pip install --no-build-isolation --no-deps -v . || { printf '%s\n' "${summary[@]}"; exit 1; }

# Run from outside the repo so `import gan_fast` finds the installed package.
cd /tmp
$py -c "import gan_fast; assert gan_fast.cuda_available(), 'CUDA not available to gan_fast'; print('gan_fast CUDA ok, cpu isa', gan_fast.cpu_isa())" \
  || { echo "gan_fast does not see the GPU"; exit 1; }
section gpu_tests 200 $py -m pytest "$repo/tests" -q -rs -m cuda -p no:cacheprovider
section bench 180 $py "$repo/benchmarks/gpu_bench.py" --json "$out/gpu_bench.json"
section train 150 $py "$repo/benchmarks/gpu_train_smoke.py" "$out"
section memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 9 \
  $py -m pytest "$repo/tests" -q -x -p no:cacheprovider -m cuda -k "not train and not kept_fraction and not evaluation"
section racecheck 150 compute-sanitizer --tool racecheck --error-exitcode 9 \
  $py -m pytest "$repo/tests" -q -x -p no:cacheprovider -m cuda -k "test_batchnorm or test_bce or test_softmax"

echo; echo "=== summary"
printf '%s\n' "${summary[@]}"
grep -hE "passed|failed|error" "$out"/*_tests.log "$out"/memcheck.log "$out"/racecheck.log 2>/dev/null | tail -n 6
tail -n 40 "$out/bench.log"
fail=0
for s in "${!status[@]}"; do [ "${status[$s]}" = 0 ] || fail=1; done
exit $fail
