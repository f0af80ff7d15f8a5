"""The PyTorch twin's training step (benchmarks/torch_twin.py) as gpu_bench.py times it:
eager, and captured once in a torch.cuda.CUDAGraph and replayed, the way a serious PyTorch
user would run a fixed-shape step.

Both draw the real batch on the device each step (torch.randint indices into 60,000
device-resident images) and the noise with torch.randn, as gan_fast's engine does with
batch_indices, gather_rows and random_normal, so neither side reads anything from the host.
The graph follows PyTorch's whole-network capture recipe (torch.cuda.graphs docs): Adam with
capturable=True (its step count lives on the device), a few warm-up iterations on a side
stream, zero_grad(set_to_none=True) inside the captured step, then graph.replay().
Needs the directory benchmarks/ on PYTHONPATH (gpu_check.sh sets it) for torch_twin.
"""
from __future__ import annotations

import torch

from ..quality.torch_twin import TorchGAN

N_IMAGES = 60_000


class TorchSteps:
    """run(k) enqueues k training steps on self.stream without synchronising."""

    def __init__(self, batch_size, graph, seed=0):
        torch.backends.cuda.matmul.allow_tf32 = False   # FP32 against FP32
        torch.backends.cudnn.allow_tf32 = False
        self.gan = TorchGAN(batch_size, "cuda", dropout=True, seed=seed)
        gen = torch.Generator(device="cuda").manual_seed(seed)
        self.images = torch.rand(N_IMAGES, 1, 28, 28, device="cuda", generator=gen) * 2 - 1
        self.batch_size = batch_size
        self.stream = torch.cuda.current_stream()
        self.graph = None
        if graph:
            gan = self.gan
            lr, betas = gan.opt_g.defaults["lr"], gan.opt_g.defaults["betas"]
            gan.opt_g = torch.optim.Adam(gan.G.parameters(), lr=lr, betas=betas, capturable=True)
            gan.opt_d = torch.optim.Adam(gan.D.parameters(), lr=lr, betas=betas, capturable=True)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._step()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._step()

    def _step(self):
        idx = torch.randint(0, N_IMAGES, (self.batch_size,), device="cuda")
        return self.gan.step(self.images.index_select(0, idx))

    def run(self, k):
        for _ in range(k):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()

    def synchronize(self):
        torch.cuda.synchronize()

    def time_ms_per_step(self, k, reps, warmup=20):
        """Median over reps of (CUDA-event time of k steps) / k, after warm-up."""
        self.run(warmup)
        self.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        samples = []
        for _ in range(reps):
            start.record(self.stream)
            self.run(k)
            stop.record(self.stream)
            stop.synchronize()
            samples.append(start.elapsed_time(stop) / k)
        return sorted(samples)[len(samples) // 2]
