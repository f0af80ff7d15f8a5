"""The comparison twin: gan_fast's GAN (model, loss, algorithm, optimiser) in PyTorch.

Used only by the benchmarks (and the quality comparison), never by the package.
Same layers, same non-saturating BCE-with-logits loss, same Adam settings, same step:
D on a real batch (target 1) and a fake batch G(z).detach() (target 0), one Adam step;
then G through D with target 1, one Adam step. `dropout=False` removes both Dropout
layers (PyTorch's CPU dropout is expensive, so the comparison is made both ways).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

Z_DIM = 100


def generator():
    layers, width = [], Z_DIM
    for out in (256, 512, 1024):
        layers += [nn.Linear(width, out, bias=False), nn.BatchNorm1d(out), nn.LeakyReLU(0.2)]
        width = out
    return nn.Sequential(*layers, nn.Linear(width, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))


def discriminator(dropout=True):
    drop = (lambda: nn.Dropout(0.3)) if dropout else nn.Identity
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, 2, 1, bias=False), nn.LeakyReLU(0.2), drop(),
        nn.Conv2d(64, 128, 3, 2, 1, bias=False), nn.LeakyReLU(0.2), drop(),
        nn.Flatten(), nn.Linear(6272, 1))


class TorchGAN:
    def __init__(self, batch_size, device="cpu", dropout=True, seed=0, lr=2e-4, betas=(0.5, 0.999)):
        torch.manual_seed(seed)
        self.device, self.batch_size = torch.device(device), batch_size
        self.G = generator().to(self.device)
        self.D = discriminator(dropout).to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.ones = torch.ones(batch_size, 1, device=self.device)
        self.zeros = torch.zeros(batch_size, 1, device=self.device)

    def step(self, real):
        """One D step and one G step on a real batch [N, 1, 28, 28] in [-1, 1]."""
        z = torch.randn(self.batch_size, Z_DIM, device=self.device)
        fake = self.G(z)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = (F.binary_cross_entropy_with_logits(self.D(real), self.ones)
                  + F.binary_cross_entropy_with_logits(self.D(fake.detach()), self.zeros))
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy_with_logits(self.D(fake), self.ones)
        loss_g.backward()
        self.opt_g.step()
        return loss_d, loss_g
