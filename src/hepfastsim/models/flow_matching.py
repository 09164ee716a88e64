"""Conditional flow matching (CaloDREAM / CaloDiffusion lineage).

A network v(x_t, t, c) learns the velocity of the straight path x_t = (1-t) z + t x from
Gaussian noise z to data x (rectified flow / OT-CFM); sampling integrates dx/dt = v from
t = 0 to 1 with a fixed number of midpoint steps (``steps``).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from hepfastsim.models.base import TorchGenerator, mlp


class _Velocity(torch.nn.Module):
    def __init__(self, d: int, nc: int, hidden: int, layers: int, n_freq: int = 8):
        super().__init__()
        self.register_buffer("freq", torch.pi * 2.0 ** torch.arange(n_freq).float())
        self.net = mlp(d + nc + 2 * n_freq, d, hidden, layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        tf = t[:, None] * self.freq[None, :]
        return self.net(torch.cat([x, c, torch.sin(tf), torch.cos(tf)], 1))


def integrate(net: _Velocity, z: torch.Tensor, c: torch.Tensor, steps: int) -> torch.Tensor:
    """Midpoint-rule ODE solve from noise z (t=0) to data (t=1); a plain function so ONNX export can trace it."""
    x = z
    h = 1.0 / steps
    for i in range(steps):
        t = torch.zeros_like(x[:, 0]) + i * h  # batch size stays dynamic in a traced (ONNX) graph
        k1 = net(x, t, c)
        x = x + h * net(x + 0.5 * h * k1, t + 0.5 * h, c)
    return x


class FlowMatching(TorchGenerator):
    family: ClassVar[str] = "fm"
    defaults: ClassVar[dict] = {"steps": 8}

    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        return _Velocity(n_features, n_cond, int(self.config["hidden"]), int(self.config["layers"]))

    def loss(self, net, x, c, gen=None):
        z = torch.randn(x.shape, generator=gen, device=x.device)
        t = torch.rand(len(x), generator=gen, device=x.device)
        xt = (1 - t[:, None]) * z + t[:, None] * x
        return ((net(xt, t, c) - (x - z)) ** 2).mean()

    def latent_dim(self) -> int:
        return self.spec.n_features

    def decode(self, net, c, z):
        """The fixed-step ODE solve from noise z: deterministic, so ONNX export contains the sampler."""
        return integrate(net, z, c, int(self.config["steps"]))
