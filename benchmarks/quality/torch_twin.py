"""The comparison twin: gan_fast's GAN (model, loss, algorithm, optimiser, recipe) in PyTorch.

Used only by the benchmarks (speed comparisons and the quality study), never by the package.
Same layers, same non-saturating BCE-with-logits loss, same Adam settings, same step as
gan_fast.engine: D on the concatenated batch [real; G(z).detach()] (targets real_label and
0, the sum of the two means), one Adam step; then G through the updated D with target 1,
one Adam step; then the EMA generator, if any. The recipe's options follow gan_fast.config:
lr_d / lr_g, real_label, ema_decay (decay warmed up as min(decay, (1 + t)/(10 + t))),
minibatch_stddev (group size; the real and generated halves kept apart), spectral_norm
(torch.nn.utils.spectral_norm: one power iteration per training forward, as gan_fast's),
d_dropout. `dropout=False` removes D's dropout (PyTorch's CPU dropout is expensive, so
speed comparisons are made both ways). PyTorch's own initialisation and random numbers.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

Z_DIM = 100
SEED_RECIPE = dict(lr_d=2e-4, lr_g=2e-4, real_label=1.0, ema_decay=0.0, minibatch_stddev=0,
                   spectral_norm=False, d_dropout=0.3)


def generator():
    layers, width = [], Z_DIM
    for out in (256, 512, 1024):
        layers += [nn.Linear(width, out, bias=False), nn.BatchNorm1d(out), nn.LeakyReLU(0.2)]
        width = out
    return nn.Sequential(*layers, nn.Linear(width, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))


class MinibatchStdDev(nn.Module):
    """ProGAN's feature, as gan_fast.reference.minibatch_stddev_forward: consecutive groups
    of `group` rows within each segment; per group the mean over features of the standard
    deviation over the group (biased variance + eps), appended as one more channel."""

    def __init__(self, group, eps=1e-8):
        super().__init__()
        self.group, self.eps = group, eps
        self.segments = 1          # the D step sets 2: [real; fake] halves kept apart

    def _one(self, x):
        n = x.shape[0]
        out = []
        for lo in range(0, n, self.group):
            g = x[lo:lo + self.group]
            s = torch.sqrt(g.var(dim=0, unbiased=False) + self.eps).mean()
            out.append(s.expand(g.shape[0], 1, *x.shape[2:]))
        return torch.cat([x, torch.cat(out)], dim=1)

    def forward(self, x):
        return torch.cat([self._one(part) for part in x.chunk(self.segments)])


def discriminator(dropout=0.3, minibatch_stddev=0, spectral_norm=False):
    def sn(layer):
        return nn.utils.spectral_norm(layer) if spectral_norm else layer
    drop = (lambda: nn.Dropout(dropout)) if dropout else nn.Identity
    layers = [sn(nn.Conv2d(1, 64, 3, 2, 1, bias=False)), nn.LeakyReLU(0.2), drop(),
              sn(nn.Conv2d(64, 128, 3, 2, 1, bias=False)), nn.LeakyReLU(0.2), drop()]
    flat = 6272
    if minibatch_stddev:
        layers.append(MinibatchStdDev(minibatch_stddev))
        flat += 49
    return nn.Sequential(*layers, nn.Flatten(), sn(nn.Linear(flat, 1)))


class TorchGAN:
    def __init__(self, batch_size, device="cpu", dropout=True, seed=0, recipe=None,
                 betas=(0.5, 0.999)):
        r = {**SEED_RECIPE, **(recipe or {})}
        torch.manual_seed(seed)
        self.device, self.batch_size, self.recipe = torch.device(device), batch_size, r
        self.G = generator().to(self.device)
        self.D = discriminator(r["d_dropout"] if dropout else 0.0, r["minibatch_stddev"],
                               r["spectral_norm"]).to(self.device)
        self.mbstd = next((m for m in self.D if isinstance(m, MinibatchStdDev)), None)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=r["lr_g"], betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=r["lr_d"], betas=betas)
        self.G_ema = copy.deepcopy(self.G).eval() if r["ema_decay"] > 0 else None
        self.steps = 0
        self._target_cache = {}

    def _targets(self, n):
        """(real targets, fake targets, ones) for n rows, made once per batch size."""
        if n not in self._target_cache:
            self._target_cache[n] = (
                torch.full((n, 1), self.recipe["real_label"], device=self.device),
                torch.zeros(n, 1, device=self.device), torch.ones(n, 1, device=self.device))
        return self._target_cache[n]

    def step(self, real):
        """One D step and one G step on a real batch [N, 1, 28, 28] in [-1, 1]."""
        n = real.shape[0]
        t_real, t_fake, ones = self._targets(n)
        z = torch.randn(n, Z_DIM, device=self.device)
        fake = self.G(z)
        self.opt_d.zero_grad(set_to_none=True)
        if self.mbstd is not None:
            self.mbstd.segments = 2
        logits = self.D(torch.cat([real, fake.detach()]))
        loss_d = (F.binary_cross_entropy_with_logits(logits[:n], t_real)
                  + F.binary_cross_entropy_with_logits(logits[n:], t_fake))
        loss_d.backward()
        self.opt_d.step()
        if self.mbstd is not None:
            self.mbstd.segments = 1
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy_with_logits(self.D(fake), ones)
        loss_g.backward()
        self.opt_g.step()
        self.steps += 1
        if self.G_ema is not None:
            self._update_ema()
        return loss_d, loss_g

    @torch.no_grad()
    def _update_ema(self):
        t = self.steps
        beta = min(self.recipe["ema_decay"], (1 + t) / (10 + t))
        for avg, cur in zip(self.G_ema.parameters(), self.G.parameters()):
            avg.mul_(beta).add_(cur, alpha=1 - beta)
        for avg, cur in zip(self.G_ema.buffers(), self.G.buffers()):
            if avg.dtype.is_floating_point:            # running statistics, not the counter
                avg.mul_(beta).add_(cur, alpha=1 - beta)

    def sampler(self):
        """The generator users get (the EMA one when the recipe has it), in eval mode."""
        return self.G_ema if self.G_ema is not None else self.G
