"""Layer-wise conditional flow matching: an energy model and one shape model shared by all layers (CaloDREAM's split).

Why this family: one network over all voxels (``fm``) grows with the readout (6480 inputs for dataset 2, 40 500 for
dataset 3) and has to learn the longitudinal profile, the layer energies and every layer's lateral shape at once.
CaloDREAM (Favaro et al., arXiv:2405.09629) splits the problem: an *energy model* learns the layer energies given
the incident energy, a *shape model* the voxels of a layer given the layer energies, with its weights shared across
layers. CaloDREAM's shape model is a transformer over layers sampled by a many-step ODE (seconds per shower on a
CPU); here the shape model is an MLP that sees one layer at a time, conditioned on the incident
energy, all layer energies, the layer's index and the previous layer's voxels (autoregressive in depth, like
L2LFlows' layer-to-layer conditioning, arXiv:2302.11594), so its size is set by one layer (144 voxels for dataset 2)
and sampling costs layers x steps calls of a small network.

Preprocessing (``response_transform``): each cell as log(E / E_thr + 1), with E_thr the readout threshold (MeV, stored
units) and the sub-threshold cells dequantised into log(1 - U/2) (the band just below an empty cell's 0), so the
hit / no-hit boundary sits at the same place (log 2) at every incident energy; the layer energies in CaloFlow's
parametrisation (log total energy + stick-breaking fractions) as the energy model's variables, and the generated
voxels of each layer rescaled to the generated layer energy (data/preprocessing.ResponseTransform with groups); a
layer the energy model gives energy but whose generated cells all fall below threshold keeps it in its largest
cell (the energy model decides whether a layer is hit, the shape model where; an empty layer is far from any
filled one in CaloChallenge's high-level input log10(E_layer + 1e-8)).
The energy model sees the total-energy variable as its residual from a linear fit in log E_inc (``to_model``: in
effect log E_tot/E_inc), whose conditional width is a sizeable part of its range. Both parts are trained jointly
(sum of the two flow-matching losses) by the engine.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from hepfastsim.data.preprocessing import ResponseTransform
from hepfastsim.errors import HepFastSimError
from hepfastsim.models.flow_matching import FlowMatching, _Velocity, integrate
from hepfastsim.models.neural import TorchGenerator


def layer_index(groups: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(G, L) voxel index of each layer's cells, L the largest layer; shorter layers padded with index -1."""
    width = max(b - a for a, b in groups)
    idx = np.full((len(groups), width), -1, np.int64)
    for g, (a, b) in enumerate(groups):
        idx[g, :b - a] = np.arange(a, b)
    return idx


class _LayerFM(torch.nn.Module):
    """Energy velocity v_E(e_t, t | c) on the G layer-energy variables; shape velocity v_S(y_t, t | c, e, layer,
    previous layer) on the L voxels of one layer."""

    def __init__(self, index: np.ndarray, n_cond: int, hidden: int, layers: int, energy_hidden: int):
        super().__init__()
        g, width = index.shape
        self.register_buffer("index", torch.as_tensor(index))
        self.register_buffer("mask", torch.as_tensor(index >= 0, dtype=torch.float32))
        self.register_buffer("onehot", torch.eye(g))
        # the total-energy variable relative to the incident energy: e0' = (e0 - slope * c0 - offset) / width
        self.register_buffer("total_fit", torch.tensor([0.0, 0.0, 1.0]))
        self.energy = _Velocity(g, n_cond, energy_hidden, layers)
        self.shape = _Velocity(width, n_cond + g + g + width, hidden, layers)

    @property
    def n_layers(self) -> int:
        return self.index.shape[0]

    def split(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed responses (B, n_voxels + G) -> layer energies (B, G), voxels per layer (B, G, L) (pads 0)."""
        g = self.n_layers
        vox = torch.cat([u[:, :-g], torch.zeros_like(u[:, :1])], 1)   # pads (index -1) read the appended zero
        return u[:, -g:], vox[:, self.index]

    def join(self, e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Inverse of ``split``: (B, G), (B, G, L) -> (B, n_voxels + G)."""
        n_vox = int(self.index.max()) + 1
        out = torch.zeros(len(e), n_vox + 1, dtype=y.dtype, device=y.device)
        out[:, self.index.reshape(-1)] = y.reshape(len(y), -1)   # pads land in the extra last column
        return torch.cat([out[:, :n_vox], e], 1)

    def to_model(self, e: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Layer-energy variables as the energy model sees them: the total energy as its residual from the linear
        fit in log E_inc (i.e. log E_tot/E_inc, a width of a few percent, standardised), the fractions unchanged."""
        slope, offset, width = self.total_fit
        return torch.cat([((e[:, 0] - slope * c[:, 0] - offset) / width)[:, None], e[:, 1:]], 1)

    def from_model(self, e: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Inverse of ``to_model``."""
        slope, offset, width = self.total_fit
        return torch.cat([(e[:, 0] * width + slope * c[:, 0] + offset)[:, None], e[:, 1:]], 1)

    def shape_condition(self, c: torch.Tensor, e: torch.Tensor, layer: int | torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """What the shape model sees besides its voxels: conditions, all layer energies, layer one-hot, previous layer."""
        return torch.cat([c, e, self.onehot[layer].expand(len(c), -1) if isinstance(layer, int) else self.onehot[layer], prev], 1)


class LayerFlowMatching(TorchGenerator):
    family: ClassVar[str] = "layer_fm"

    # -- preprocessing: cells in units of the readout threshold --------------------------------------------------
    def _energy_unit(self) -> float:
        """MeV per unit of the cell preprocessing: the readout threshold (1 keV where a task has none)."""
        return float(self.spec.threshold) if self.spec.threshold > 0 else 1e-3

    def _scale(self, c: np.ndarray) -> np.ndarray:
        return np.full(len(c), self._energy_unit())

    def response_transform(self) -> ResponseTransform:
        if not self.spec.groups:
            raise HepFastSimError("layer_fm needs a layered readout (a calorimeter binning)")
        return ResponseTransform(eps=1.0, threshold=self.spec.threshold, groups=self.spec.groups, dequantize=True,
                                 fill_empty_groups=True)

    # -- the engine's hooks --------------------------------------------------------------------------------------
    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        return _LayerFM(layer_index(self.spec.groups), n_cond, int(self.config["hidden"]), int(self.config["layers"]),
                        int(self.config["energy_hidden"]))

    def prepare(self, train, seed: int) -> None:
        """Fit the total-energy variable's linear dependence on log E_inc (up to 20 000 training showers), set in
        the networks and their EMA copy (a resumed fit keeps the checkpoint's)."""
        if self.epoch_ > 0:
            return
        idx = np.sort(np.random.default_rng(seed).permutation(len(train.x))[:20_000])
        e0 = self.x_tf_.forward(train.x[idx], self._scale(train.c[idx]))[:, self.spec.n_features]
        c0 = self.c_tf_.forward(train.c[idx])[:, 0]
        slope, offset = np.polyfit(c0, e0, 1)
        width = float(np.std(e0 - slope * c0 - offset)) + 1e-6
        for net in (self.net_, self.ema_.module):
            net.total_fit.copy_(torch.tensor([slope, offset, width], dtype=torch.float32))

    def loss(self, net, x, c, gen=None):
        e, y = net.split(x)
        e = net.to_model(e, c)
        et, te, target_e = FlowMatching._path_point(e, gen)
        loss_e = ((net.energy(et, te, c) - target_e) ** 2).mean()
        b, g, width = y.shape
        k = int(self.config["layers_per_step"]) or g
        if k < g:   # a random subset of layers of every shower in this step (an unbiased estimate of the full loss)
            layers = torch.argsort(torch.rand(b, g, generator=gen, device=x.device), 1)[:, :k]
        else:
            layers = torch.arange(g, device=x.device).expand(b, g)
        rows = torch.arange(b, device=x.device)[:, None].expand(b, layers.shape[1]).reshape(-1)
        layers = layers.reshape(-1)
        prev = torch.where((layers > 0)[:, None], y[rows, (layers - 1).clamp(min=0)], torch.zeros_like(y[rows, 0]))
        cond = net.shape_condition(c[rows], e[rows], layers, prev)
        yt, ts, target_s = FlowMatching._path_point(y[rows, layers], gen)
        mask = net.mask[layers]
        loss_s = (((net.shape(yt, ts, cond) - target_s) ** 2) * mask).sum() / mask.sum()
        return loss_e + loss_s

    def generate(self, net, c, gen):
        """Layer energies by the energy model's ODE, then the layers front to back, each given the one before."""
        g, width = net.index.shape
        e = integrate(net.energy, torch.randn(len(c), g, generator=gen, device=c.device), c, int(self.config["energy_steps"]))
        prev = torch.zeros(len(c), width, device=c.device)
        ys = []
        for layer in range(g):
            z = torch.randn(len(c), width, generator=gen, device=c.device)
            prev = integrate(net.shape, z, net.shape_condition(c, e, layer, prev), int(self.config["steps"])) * net.mask[layer]
            ys.append(prev)
        return net.join(net.from_model(e, c), torch.stack(ys, 1))

    def function_output(self, net, x, c, gen):
        e = net.to_model(net.split(x)[0], c)
        et, te, _ = FlowMatching._path_point(e, gen)
        return net.energy(et, te, c)
