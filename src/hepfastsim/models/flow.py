"""CaloFlow-style two-stage normalizing flow on zuko.

Stage 1 learns p(layer energies | conditions) with a neural spline flow (few dimensions).
Stage 2 learns p(voxels | layer energies, conditions) with a coupling-style (passes=2)
masked autoregressive flow, fast in both directions. At sampling the stage-2 voxels are
rescaled per layer to the stage-1 layer energies. For responses without layers (TPC) the
whole response is one layer.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import zuko

from hepfastsim.models.base import TorchGenerator


class _TwoStage(torch.nn.Module):
    def __init__(self, d: int, nc: int, n_layers: int, hidden: int, transforms: int):
        super().__init__()
        self.stage1 = zuko.flows.NSF(n_layers, nc, transforms=transforms, hidden_features=[hidden, hidden])
        self.stage2 = zuko.flows.MAF(d, nc + n_layers, transforms=transforms, hidden_features=[hidden, hidden], passes=2)


class TwoStageFlow(TorchGenerator):
    family: ClassVar[str] = "flow"
    defaults: ClassVar[dict] = {"transforms": 4, "layer_slices": None, "grad_clip": 5.0}

    def _layers(self) -> list[tuple[int, int]]:
        """Stage-1 variables: the layer_slices option, else the task's feature groups, else the whole response."""
        sl = self.config.get("layer_slices") or self.spec.groups
        return [tuple(s) for s in sl] if sl else [(0, self.spec.n_features)]

    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        return _TwoStage(n_features, n_cond, len(self._layers()), int(self.config["hidden"]), int(self.config["transforms"]))

    def _fit_transforms(self, data) -> None:
        super()._fit_transforms(data)
        le = self._layer_log(data.x, self._scale(data.c))
        self.le_mean, self.le_std = le.mean(0), le.std(0) + 1e-6

    def _layer_log(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return np.stack([np.log(np.asarray(x[:, a:b], np.float64).sum(1) / scale + 1e-6) for a, b in self._layers()], 1)

    def _split(self, xpre: torch.Tensor) -> torch.Tensor:
        """Standardised log layer energies recomputed from preprocessed voxels (for stage-1 targets)."""
        u = xpre.double() * torch.as_tensor(self.x_tf.std, device=xpre.device) + torch.as_tensor(self.x_tf.mean, device=xpre.device)
        x = (u.exp() - self.x_tf.eps).clamp_min(0)
        le = torch.stack([torch.log(x[:, a:b].sum(1) + 1e-6) for a, b in self._layers()], 1)
        return ((le - torch.as_tensor(self.le_mean, device=xpre.device)) / torch.as_tensor(self.le_std, device=xpre.device)).float()

    def loss(self, net, x, c, gen=None):
        le = self._split(x)
        l1 = -net.stage1(c).log_prob(le).mean()
        l2 = -net.stage2(torch.cat([c, le], 1)).log_prob(x).mean()
        return (l1 + l2) / x.shape[1]

    def generate(self, net, c, gen):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))  # zuko samples with the global RNG
        le = net.stage1(c).sample().clamp(-6, 6)
        u = net.stage2(torch.cat([c, le], 1)).sample().clamp(-8, 8)
        # rescale each layer of the stage-2 voxels to the stage-1 layer energy
        std = torch.as_tensor(self.x_tf.std, device=c.device, dtype=torch.float64)
        mean = torch.as_tensor(self.x_tf.mean, device=c.device, dtype=torch.float64)
        x = ((u.double() * std + mean).exp() - self.x_tf.eps).clamp_min(0)
        target = (le.double() * torch.as_tensor(self.le_std, device=c.device) + torch.as_tensor(self.le_mean, device=c.device)).exp() - 1e-6
        for j, (a, b) in enumerate(self._layers()):
            s = x[:, a:b].sum(1, keepdim=True)
            x[:, a:b] = torch.where(s > 0, x[:, a:b] / s.clamp_min(1e-30) * target[:, j:j + 1].clamp_min(0), x[:, a:b])
        return ((torch.log(x + self.x_tf.eps) - mean) / std).float()

    def _extra_state(self) -> dict:
        return {**super()._extra_state(), "le_mean": self.le_mean, "le_std": self.le_std}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        self.le_mean, self.le_std = np.asarray(state["le_mean"]), np.asarray(state["le_std"])
        super()._load_extra_state(state, with_optim)
