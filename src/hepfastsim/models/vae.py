"""Conditional variational autoencoder: encoder q(z|x,c), decoder p(x|z,c), loss = MSE + beta KL."""

from __future__ import annotations

from typing import ClassVar

import torch

from hepfastsim.models.base import TorchGenerator, mlp


class _VAE(torch.nn.Module):
    def __init__(self, d: int, nc: int, latent: int, hidden: int, layers: int):
        super().__init__()
        self.enc = mlp(d + nc, 2 * latent, hidden, layers)
        self.dec = mlp(latent + nc, d, hidden, layers)


class VAE(TorchGenerator):
    family: ClassVar[str] = "vae"
    defaults: ClassVar[dict] = {"latent": 32, "beta": 0.01}

    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        return _VAE(n_features, n_cond, int(self.config["latent"]), int(self.config["hidden"]), int(self.config["layers"]))

    def loss(self, net: _VAE, x: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = net.enc(torch.cat([x, c], 1)).chunk(2, dim=1)
        z = mu + torch.randn(mu.shape, generator=gen, device=mu.device) * (0.5 * logvar).exp()
        rec = net.dec(torch.cat([z, c], 1))
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean() / x.shape[1]
        return ((rec - x) ** 2).mean() + float(self.config["beta"]) * kl

    def decode(self, net, c, z):
        return net.dec(torch.cat([z, c], 1))
