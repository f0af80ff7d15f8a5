"""GPU benchmark: every op at the model's shapes (batch 64 and 256) and the whole
training step, gan_fast's CUDA kernels beside CuPy/cuBLAS and PyTorch on the same GPU,
timed with CUDA events after warm-up (median of many runs). Prints a table and writes
JSON. Run by benchmarks/gpu_check.sh; needs a CUDA device, CuPy, and (optionally) torch.

    python benchmarks/gpu_bench.py [--json out.json] [--batches 64 256]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import cupy  # noqa: E402

from cases import model_cases  # noqa: E402
from step_bench import step_rows  # noqa: E402
from timing import time_cuda  # noqa: E402


def device_ceilings():
    """Measured copy bandwidth (read + write) of this GPU, the memory-bound ceiling."""
    n = 1 << 28  # 1 GiB of float32
    a, b = cupy.empty(n, cupy.float32), cupy.empty(n, cupy.float32)
    a.fill(1.0)
    seconds = time_cuda(lambda: b.__setitem__(Ellipsis, a), warmup=3, reps=10)
    return {"copy_GBps": 2 * 4 * n / seconds / 1e9}


def op_rows(batches):
    rows = []
    for batch in batches:
        for case in model_cases("cuda", batch):
            row = {"batch": batch, "op": case.name, "gan_fast_ms": time_cuda(case.ours) * 1e3}
            sec = row["gan_fast_ms"] / 1e3
            if case.flop:
                row["rate"] = f"{case.flop / sec / 1e9:.0f} GFLOP/s"
            else:
                row["rate"] = f"{case.nbytes / sec / 1e9:.0f} GB/s"
            for label, fn in case.baselines.items():
                row[f"{label}_ms"] = time_cuda(fn) * 1e3
            rows.append(row)
    return rows


def print_table(title, rows, columns):
    print(f"\n{title}")
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        print(" | ".join(cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    args = ap.parse_args()
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    info = {"gpu": props["name"].decode(), "sm_count": props["multiProcessorCount"]}
    info.update(device_ceilings())
    print(f"GPU: {info['gpu']}, {info['sm_count']} SMs, measured copy {info['copy_GBps']:.0f} GB/s")
    ops_ = op_rows(args.batches)
    for r in ops_:
        for label in ("cupy", "torch"):
            if f"{label}_ms" in r:
                r[f"vs_{label}"] = f"{r[f'{label}_ms'] / r['gan_fast_ms']:.2f}x"
    print_table("Ops (ms, median of 50 CUDA-event timings; vs_X = X time / gan_fast time)", ops_,
                ["batch", "op", "gan_fast_ms", "rate", "cupy_ms", "vs_cupy", "torch_ms", "vs_torch"])
    steps = step_rows("cuda", args.batches)
    print_table("Training step (D step + G step, dropout on)", steps,
                ["batch", "impl", "ms_per_step", "images_per_s", "speedup_vs_torch"])
    if args.json:
        args.json.write_text(json.dumps({"device": info, "ops": ops_, "steps": steps}, indent=1))


if __name__ == "__main__":
    main()
