"""A/B of two (or more) builds of gan_fast._C on the model's GEMM-shaped ops, in one run.

    python -m benchmarks.perf.ab_builds before=/path/to/old/_C.so after=build/.../_C.so
           [--images 512] [--rounds 10] [--linear]

Each build runs in its own worker process (one interpreter cannot load two extension
modules of the same name: the second import returns the first); the parent asks the
workers for one timing at a time, case by case and round by round, so all builds see the
same machine state on this noisy VM. The parent waits kSettle seconds before each
timing, so the previous worker's OpenMP threads have stopped spinning on the cores the
next one is timing (OMP_WAIT_POLICY=passive would avoid the wait but is no fair stand-in:
it puts every fork behind a thread wake-up, which here made conv1's forward 2-3x slower).
Prints the median seconds per call of each case and build, and the first build's time
over each.
"""
from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import statistics
import time

import numpy as np

kSettle = 0.05  # seconds: libgomp's idle threads spin for up to a few ms after a call


def _cases(m, images, linear):
    rng = np.random.default_rng(0)
    f = lambda *shape: rng.standard_normal(shape, dtype=np.float32)
    if linear:
        cases = {}
        for rows, k, n in ((64, 512, 1024), (64, 1024, 784), (256, 512, 1024), (256, 1024, 784)):
            x, w, y, dy, dx, dw = f(rows, k), f(n, k), f(rows, n), f(rows, n), f(rows, k), f(n, k)
            cases[f"linear {rows}x{k}->{n} forward"] = lambda x=x, w=w, y=y: m.linear_forward(x, w, None, out=y)
            cases[f"linear {rows}x{k}->{n} backward"] = (
                lambda x=x, w=w, dy=dy, dx=dx, dw=dw: m.linear_backward(dy, x, w, True, True, False, dx, dw))
        return cases
    x, w, y, dy, dx, dw = (f(images, 64, 14, 14), f(128, 64, 3, 3), f(images, 128, 7, 7),
                           f(images, 128, 7, 7), f(images, 64, 14, 14), f(128, 64, 3, 3))
    x1, w1, y1, dy1, dw1 = (f(images, 1, 28, 28), f(64, 1, 3, 3), f(images, 64, 14, 14),
                            f(images, 64, 14, 14), f(64, 1, 3, 3))
    return {
        "conv2 forward": lambda: m.conv2d_forward(x, w, None, 2, 1, out=y),
        "conv2 backward dw": lambda: m.conv2d_backward(dy, x, w, 2, 1, False, True, False, None, dw),
        "conv2 backward dx": lambda: m.conv2d_backward(dy, x, w, 2, 1, True, False, False, dx),
        "conv1 forward": lambda: m.conv2d_forward(x1, w1, None, 2, 1, out=y1),
        "conv1 backward dw": lambda: m.conv2d_backward(dy1, x1, w1, 2, 1, False, True, False, None, dw1),
    }


def _worker(path, images, linear, conn):
    spec = importlib.util.spec_from_file_location("_C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = _cases(module, images, linear)
    conn.send(list(cases))
    while (name := conn.recv()) is not None:
        fn = cases[name]
        fn()  # warm-up
        t0 = time.perf_counter()
        fn()
        fn()
        conn.send((time.perf_counter() - t0) / 2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="+", help="name=path of a _C*.so")
    ap.add_argument("--images", type=int, default=512, help="batch of the conv2d cases")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--linear", action="store_true", help="the linear layers instead of conv2d")
    args = ap.parse_args(argv)
    names, paths = zip(*(b.split("=", 1) for b in args.builds))
    ctx = mp.get_context("spawn")
    conns, procs = [], []
    for path in paths:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(os.path.abspath(path), args.images, args.linear, child))
        proc.start()
        conns.append(parent)
        procs.append(proc)
    cases = [c.recv() for c in conns][0]
    times = {(case, name): [] for case in cases for name in names}
    for _ in range(args.rounds):
        for case in cases:
            for name, conn in zip(names, conns):
                time.sleep(kSettle)
                conn.send(case)
                times[(case, name)].append(conn.recv())
    for conn in conns:
        conn.send(None)
    for proc in procs:
        proc.join()
    for case in cases:
        med = {name: statistics.median(times[(case, name)]) for name in names}
        first = med[names[0]]
        print(f"{case:32s} " + "  ".join(f"{n} {t * 1e3:8.3f} ms ({first / t:4.2f}x)" for n, t in med.items()))


if __name__ == "__main__":
    main()
