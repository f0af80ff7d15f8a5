"""Where a training step's time goes: gan_fast's step with every op call timed (median of
`reps` steps per op call site), largest first. CPU only.

    python -m benchmarks.perf.profile_step [batch ...]      # default: 64 256

Each op call is timed around its return, so the numbers include OpenMP fork/join; their
sum is close to the whole step (the rest is Python)."""
from __future__ import annotations

import collections
import statistics
import sys
import time

import numpy as np

from gan_fast import ops

from .step_bench import gan_step


class TimedOps:
    """gan_fast.ops with every call timed under op name + first argument's shape."""

    def __init__(self):
        self.samples = collections.defaultdict(list)

    def __getattr__(self, name):
        fn = getattr(ops, name)

        def timed(*args, **kwargs):
            shape = next((list(a.shape) for a in args if hasattr(a, "shape")), [])
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self.samples[f"{name}{shape}"].append(time.perf_counter() - t0)
            return out
        return timed


def profile(batch, reps=10):
    timed = TimedOps()
    step = gan_step(timed, np, batch)
    for _ in range(3):
        step()
    timed.samples.clear()
    steps = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        steps.append(time.perf_counter() - t0)
    per_op = {k: sum(v) / reps for k, v in timed.samples.items()}  # mean per step
    print(f"batch {batch}: {statistics.median(steps) * 1e3:.2f} ms/step (median of {reps}); "
          f"ops {sum(per_op.values()) * 1e3:.2f} ms")
    for key, sec in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f"  {sec * 1e3:8.3f} ms  {key}")


if __name__ == "__main__":
    for b in map(int, sys.argv[1:] or ["64", "256"]):
        profile(b)
