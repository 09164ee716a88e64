"""Conditional variational autoencoder: encoder q(z|x,c), decoder p(x|z,c), loss = reconstruction + beta KL.

``decoder_noise: false``: p(x|z,c) has a fixed width, the loss is the mean squared error and a sample is
the decoder's mean. ``decoder_noise: true``: the decoder also predicts a per-feature width sigma(z,c),
the reconstruction term is the Gaussian negative log-likelihood, and a sample is mean + sigma * noise.
The mean of p(x|z,c) averages over the cell-to-cell fluctuations the latent code does not carry, so
showers decoded to their mean are too smooth (measured: shower widths and per-layer sparsity were
the features that gave the VAE away); drawing from p(x|z,c) puts those fluctuations back.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from hepfastsim.models.neural import TorchGenerator, mlp


class _VAE(torch.nn.Module):
    def __init__(self, d: int, nc: int, latent: int, hidden: int, layers: int, noise: bool):
        super().__init__()
        self.enc = mlp(d + nc, 2 * latent, hidden, layers)
        self.dec = mlp(latent + nc, 2 * d if noise else d, hidden, layers)


class VAE(TorchGenerator):
    family: ClassVar[str] = "vae"

    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        return _VAE(n_features, n_cond, int(self.config["latent"]), int(self.config["hidden"]), int(self.config["layers"]),
                    bool(self.config["decoder_noise"]))

    def _decoder(self, net: _VAE, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean and log-width of p(x|z,c) (log-width None without decoder noise)."""
        out = net.dec(torch.cat([z, c], 1))
        if not self.config["decoder_noise"]:
            return out, None
        mean, log_sigma = out.chunk(2, dim=1)
        return mean, log_sigma.clamp(-7.0, 2.0)

    def loss(self, net: _VAE, x: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = net.enc(torch.cat([x, c], 1)).chunk(2, dim=1)
        z = mu + torch.randn(mu.shape, generator=gen, device=mu.device) * (0.5 * logvar).exp()
        mean, log_sigma = self._decoder(net, z, c)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean() / x.shape[1]
        if log_sigma is None:
            rec = ((mean - x) ** 2).mean()
        else:  # Gaussian negative log-likelihood per feature (constant dropped)
            rec = (0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2 + log_sigma).mean()
        return rec + float(self.config["beta"]) * kl

    def latent_dim(self) -> int:
        """The latent code, plus one noise number per feature when the decoder draws from p(x|z,c)."""
        return int(self.config["latent"]) + (self.x_tf_.n_out if self.config["decoder_noise"] else 0)

    def decode(self, net, c, z):
        k = int(self.config["latent"])
        mean, log_sigma = self._decoder(net, z[:, :k], c)
        return mean if log_sigma is None else mean + torch.exp(log_sigma) * z[:, k:]
