"""CaloFlow-style two-stage normalizing flow on zuko.

Stage 1 learns p(layer energies | conditions) with a neural spline flow (few dimensions).
Stage 2 learns p(voxels | layer energies, conditions) with a coupling-style (passes=2)
masked autoregressive flow, fast in both directions. The layer energies and the rescaling of
the stage-2 voxels to them are the shared preprocessing (``ResponseTransform`` groups). For
responses without layers (TPC) the whole response is one layer. Responses of either sign (PID
DLLs) have no layer energies: one conditional neural spline flow over all of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch
import zuko

from hepfastsim.models.neural import TorchGenerator


class _TwoStage(torch.nn.Module):
    def __init__(self, d: int, nc: int, n_layers: int, hidden: int, transforms: int):
        super().__init__()
        h = [hidden, hidden]
        if n_layers:
            self.stage1 = zuko.flows.NSF(n_layers, nc, transforms=transforms, hidden_features=h)
            self.stage2 = zuko.flows.MAF(d, nc + n_layers, transforms=transforms, hidden_features=h, passes=2)
        else:   # one stage: a spline flow over the few responses given the conditions
            self.stage2 = zuko.flows.NSF(d, nc, transforms=transforms, hidden_features=h)


class TwoStageFlow(TorchGenerator):
    family: ClassVar[str] = "flow"

    def _layers(self) -> tuple[tuple[int, int], ...]:
        """Stage-1 variables: the layer_slices option, else the task's feature groups, else the whole response;
        none for responses of either sign (their sum is no energy)."""
        if self.spec.signed:
            return ()
        sl = self.config.get("layer_slices") or self.spec.groups
        return tuple(tuple(s) for s in sl) if sl else ((0, self.spec.n_features),)

    def fit_transforms(self, data) -> None:
        # the shared preprocessing appends the log layer energies (stage 1) and rescales layers at inversion
        self.spec = replace(self.spec, groups=self._layers())
        self.config["group_energies"] = bool(self._layers())
        super().fit_transforms(data)

    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        g = len(self._layers())
        return _TwoStage(n_features - g, n_cond, g, int(self.config["hidden"]), int(self.config["transforms"]))

    def loss(self, net, x, c, gen=None):
        g = len(self._layers())
        if not g:
            return -net.stage2(c).log_prob(x).mean() / x.shape[1]
        vox, le = x[:, :x.shape[1] - g], x[:, x.shape[1] - g:]
        l1 = -net.stage1(c).log_prob(le).mean()
        l2 = -net.stage2(torch.cat([c, le], 1)).log_prob(vox).mean()
        return (l1 + l2) / x.shape[1]

    def latent_dim(self) -> int:
        """One standard-normal number per preprocessed variable (voxels, then layer energies)."""
        return self.x_tf_.n_out

    def decode(self, net, c, z):
        """Invert both flows on given base-distribution draws z (voxel part first, layer-energy part last)."""
        g = len(self._layers())
        if not g:
            return net.stage2(c).transform.inv(z).clamp(-8, 8)
        le = net.stage1(c).transform.inv(z[:, z.shape[1] - g:]).clamp(-6, 6)
        vox = net.stage2(torch.cat([c, le], 1)).transform.inv(z[:, :z.shape[1] - g]).clamp(-8, 8)
        return torch.cat([vox, le], 1)
