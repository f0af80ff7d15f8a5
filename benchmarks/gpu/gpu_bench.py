"""GPU benchmark, run by gpu_check.sh: every op at the model's shapes beside CuPy/cuBLAS and
PyTorch, and the whole training step (one D step + one G step, dropout on) of

  gan_fast graph      the engine's step captured as a CUDA graph and replayed,
  gan_fast launches   the same step launched kernel by kernel from Python,
  torch eager         the PyTorch twin (benchmarks/quality/torch_twin.py) step by step,
  torch graph         the twin's step captured in a torch.cuda.CUDAGraph (torch_steps.py),

at batch 64 and 256, in one process. Every time is CUDA events around k steps on the stream
the steps run on, after warm-up; the median of many such runs, divided by k. Prints the
tables and writes JSON.

    python -m benchmarks.gpu.gpu_bench [--json OUT] [--batches 64 256]   # see gpu_check.sh

The gan_fast whole-step rows need gan_fast.engine.Engine with (the interface this script
expects; the rows are skipped, saying why, when it is missing):
    Engine.create(batch_size=64, device="cuda", cuda_graph=True, seed=0) -> engine
    engine.run_steps(k)      k training steps on device-resident data and noise, no host sync
    engine.synchronize()     wait for them
    engine.stream            (optional) the CuPy stream the steps run on; default: current
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import traceback

import cupy

STEPS_PER_RUN, RUNS = 50, 15


def device_info():
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    n = 1 << 28  # 1 GiB of float32
    a, b = cupy.empty(n, cupy.float32), cupy.empty(n, cupy.float32)
    a.fill(1.0)
    from ..perf.timing import time_cuda
    seconds = time_cuda(lambda: b.__setitem__(Ellipsis, a), warmup=3, reps=10)
    name = props["name"]
    return {"gpu": name.decode() if isinstance(name, bytes) else str(name),
            "sm_count": props["multiProcessorCount"], "copy_GBps": 2 * 4 * n / seconds / 1e9}


def op_rows(batches):
    """One row per op case; a case (or a baseline) that raises gets its error in the row
    instead of ending the run (the whole-step rows are measured and kept already)."""
    from ..perf.cases import model_cases
    from ..perf.timing import time_cuda
    rows = []
    for batch in batches:
        for case in model_cases("cuda", batch):
            row = {"batch": batch, "op": case.name}
            try:
                row["gan_fast_ms"] = time_cuda(case.ours) * 1e3
            except Exception as err:  # noqa: BLE001 - reported in the table and the JSON
                row["error"] = f"{type(err).__name__}: {err}"
                rows.append(row)
                continue
            sec = row["gan_fast_ms"] / 1e3
            row["rate"] = (f"{case.flop / sec / 1e9:.0f} GFLOP/s" if case.flop
                           else f"{case.nbytes / sec / 1e9:.0f} GB/s")
            for label, fn in case.baselines.items():
                try:
                    row[f"{label}_ms"] = time_cuda(fn) * 1e3
                    row[f"vs_{label}"] = f"{row[f'{label}_ms'] / row['gan_fast_ms']:.2f}x"
                except Exception as err:  # noqa: BLE001
                    row[f"vs_{label}"] = f"{label} failed: {type(err).__name__}"
            rows.append(row)
    return rows


class EngineSteps:
    """gan_fast's engine behind the interface the timing loop uses."""

    def __init__(self, batch_size, cuda_graph):
        from gan_fast.engine import Engine
        self.engine = Engine.create(batch_size=batch_size, device="cuda", cuda_graph=cuda_graph,
                                    seed=0)
        self.stream = getattr(self.engine, "stream", None) or cupy.cuda.get_current_stream()

    def run(self, k):
        self.engine.run_steps(k)

    def time_ms_per_step(self, k, reps, warmup=20):
        self.run(warmup)
        self.engine.synchronize()
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        samples = []
        for _ in range(reps):
            start.record(self.stream)
            self.run(k)
            stop.record(self.stream)
            stop.synchronize()
            samples.append(cupy.cuda.get_elapsed_time(start, stop) / k)
        return statistics.median(samples)


def _engine_missing():
    try:
        from gan_fast.engine import Engine
    except ImportError as err:
        return f"gan_fast.engine is not importable ({err})"
    if not all(hasattr(Engine, a) for a in ("create", "run_steps", "synchronize")):
        return "gan_fast.engine.Engine lacks create / run_steps / synchronize"
    return None


def _torch_missing():
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "torch sees no CUDA device"


def _step_flop():
    """step_bench.step_flop (FLOP of one step from the layer shapes), if it is there."""
    try:
        from ..perf.step_bench import step_flop
    except ImportError:
        return None
    return step_flop


def step_rows(batches):
    step_flop = _step_flop()
    impls = {"gan_fast graph": (_engine_missing, lambda b: EngineSteps(b, True)),
             "gan_fast launches": (_engine_missing, lambda b: EngineSteps(b, False)),
             "torch eager": (_torch_missing, lambda b: _torch_steps(b, False)),
             "torch graph": (_torch_missing, lambda b: _torch_steps(b, True))}
    rows, skipped = [], {}
    for batch in batches:
        times = {}
        for name, (missing, make) in impls.items():
            reason = missing()
            if reason:
                skipped[name] = reason
                continue
            try:      # one implementation failing must not cost the others' rows
                times[name] = make(batch).time_ms_per_step(STEPS_PER_RUN, RUNS)
            except Exception as err:  # noqa: BLE001 - reported in the table and the JSON
                skipped[f"{name}, batch {batch}"] = f"failed: {type(err).__name__}: {err}"
                traceback.print_exc()
        ours = times.get("gan_fast graph")
        for name, ms in times.items():
            row = {"batch": batch, "impl": name, "ms_per_step": ms,
                   "images_per_s": round(batch / ms * 1e3)}
            if step_flop is not None:
                row["GFLOP_per_s"] = round(step_flop(batch) / ms / 1e6, 1)
            if ours is not None:
                row["gan_fast_graph_speedup"] = f"{ms / ours:.2f}x"
            rows.append(row)
    return rows, skipped


def _torch_steps(batch, graph):
    from .torch_steps import TorchSteps
    return TorchSteps(batch, graph)


def print_table(title, rows, columns):
    print(f"\n{title}")
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for r in rows:
        print(" | ".join(f"{r.get(c, ''):.3f}" if isinstance(r.get(c), float) else str(r.get(c, ""))
                         for c in columns))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--no-ops", action="store_true", help="whole steps only")
    args = ap.parse_args()
    info = device_info()
    print(f"GPU: {info['gpu']}, {info['sm_count']} SMs, measured copy {info['copy_GBps']:.0f} GB/s")
    steps, skipped = step_rows(args.batches)
    if args.json:   # written now too: the step rows survive a crash in the op rows
        args.json.write_text(json.dumps({"device": info, "steps": steps, "skipped": skipped,
                                         "ops": []}, indent=1))
    print_table(f"Training step, ms (median of {RUNS} runs of {STEPS_PER_RUN} steps, CUDA events;"
                " speedup = that row's time / gan_fast graph's)", steps,
                ["batch", "impl", "ms_per_step", "images_per_s", "GFLOP_per_s",
                 "gan_fast_graph_speedup"])
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    ops_ = [] if args.no_ops else op_rows(args.batches)
    if ops_:
        print_table("Ops (ms, median of 50 CUDA-event timings; vs_X = X time / gan_fast time)",
                    ops_, ["batch", "op", "gan_fast_ms", "rate", "cupy_ms", "vs_cupy", "torch_ms",
                           "vs_torch", "error"])
    if args.json:
        args.json.write_text(json.dumps({"device": info, "steps": steps, "skipped": skipped,
                                         "ops": ops_}, indent=1))


if __name__ == "__main__":
    main()
