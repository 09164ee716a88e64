"""Metric-prioritised training: a differentiable surrogate of a non-differentiable observable.

The sparsity of a layer (fraction of its cells at or below the readout threshold) is a step
function of the response, so a generator gets no gradient from it. The surrogate is a small
regressor of it with the observable's structure: every cell gets a learned soft "above threshold"
probability sigmoid(exp(a_i) * (x_i - b_i(context))), with one learned slope a_i per cell and
offsets b(context) from a small MLP of the conditions and the group (layer-energy) variables; a
layer's predicted sparsity is 1 - the mean of its cells' probabilities. It is trained with the
cells' true above-threshold flags, which the model's inverse transform gives for any preprocessed
shower, first on the training showers and then, at every generator step, on the current generated
and real batches (``update``), so that it stays accurate where the generator is, not only on the
training showers. A generic MLP of the whole shower trained once on the training showers (this
module's first version) gave no measurable gain: its predictions off the training showers, and its
batch-moment penalty, were too weak a signal.

The generator loss gets, per layer, the squared 1-d Wasserstein-2 distance between the predicted
sparsities of the generated and the real batch (sorted values, same conditions), in units of the
real sparsity's standard deviation, times ``surrogate_weight``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hepfastsim.errors import HepFastSimError
from hepfastsim.rng import isolated_torch_rng
from hepfastsim.data.samples import Samples
from hepfastsim.models.nets import mlp

OBSERVABLES = ("sparsity",)   # observables with a surrogate (per layer, or of the whole response without layers)


class _CellHitNet(torch.nn.Module):
    """Logit that a cell is above threshold: exp(log_slope_i) * (x_i - offset_i(conditions, group variables))."""

    def __init__(self, n_cells: int, n_context: int, hidden: int):
        super().__init__()
        self.n_cells = n_cells
        self.log_slope = torch.nn.Parameter(torch.zeros(n_cells))
        self.offset = mlp(n_context, n_cells, hidden, 1)

    def forward(self, x_pre: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        cells, context = x_pre[:, :self.n_cells], torch.cat([x_pre[:, self.n_cells:], c], 1)
        return self.log_slope.exp() * (cells - self.offset(context))


class Surrogate:
    """Differentiable per-group sparsity of preprocessed showers, kept accurate on generated ones."""

    def __init__(self, observable: str, n_cells: int, groups: tuple[tuple[int, int], ...],
                 hits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], hidden: int = 64,
                 device: torch.device | str = "cpu"):
        """hits(x_pre, c_pre): the true (N, n_cells) above-threshold flags of preprocessed showers."""
        if observable not in OBSERVABLES:
            raise HepFastSimError(f"unknown surrogate observable {observable!r}; known: {sorted(OBSERVABLES)}")
        self.observable, self.hits, self.device = observable, hits, torch.device(device)
        self.groups = groups or ((0, n_cells),)
        self.n_cells, self.hidden = n_cells, hidden
        self.net: _CellHitNet | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.y_std: torch.Tensor | None = None
        self.mse = float("nan")

    def group_sparsity(self, above: torch.Tensor) -> torch.Tensor:
        """(N, groups) sparsity from (N, n_cells) above-threshold flags or probabilities: 1 - their mean per group."""
        return torch.stack([1.0 - above[:, a:b].float().mean(1) for a, b in self.groups], 1)

    def predict(self, x_pre: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(N, groups) predicted sparsity, differentiable in x_pre."""
        return self.group_sparsity(torch.sigmoid(self.net(x_pre, c)))

    def _step(self, x_pre: torch.Tensor, c: torch.Tensor, flags: torch.Tensor) -> float:
        """One optimiser step of the cross-entropy between predicted and true cell flags."""
        with torch.enable_grad():
            self.net.requires_grad_(True)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self.net(x_pre, c), flags.to(x_pre.dtype))
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.net.requires_grad_(False)
        return loss.item()

    def update(self, x_pre: torch.Tensor, c: torch.Tensor) -> float:
        """One optimiser step on these showers' true cell flags (e.g. a generated batch); returns the cross-entropy."""
        x_pre, c = x_pre.detach(), c.detach()
        return self._step(x_pre, c, self.hits(x_pre, c))

    @isolated_torch_rng
    def fit(self, x_pre: torch.Tensor, c: torch.Tensor, steps: int = 1500, seed: int = 0) -> float:
        """Train on the (preprocessed) training showers, the first 10 % held out; returns the held-out MSE of the
        predicted group sparsity in units of its variance (0 = perfect surrogate, 1 = no information)."""
        torch.manual_seed(seed)
        self.net = _CellHitNet(self.n_cells, x_pre.shape[1] - self.n_cells + c.shape[1], self.hidden).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=3e-3)
        x_pre, c = x_pre.to(self.device), c.to(self.device)
        flags = torch.cat([self.hits(x_pre[i:i + 10_000], c[i:i + 10_000]) for i in range(0, len(x_pre), 10_000)])
        n_va = max(len(x_pre) // 10, 1)
        for _ in range(steps):
            idx = torch.randint(n_va, len(x_pre), (256,), device=self.device)
            self._step(x_pre[idx], c[idx], flags[idx])
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)   # gentler steps while following the generator
        truth = self.group_sparsity(flags)
        self.y_std = truth[n_va:].std(0) + 1e-3
        with torch.no_grad():
            self.mse = float((((self.predict(x_pre[:n_va], c[:n_va]) - truth[:n_va]) / self.y_std) ** 2).mean())
        return self.mse

    def penalty(self, fake_pre: torch.Tensor, real_pre: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Per group, squared 1-d Wasserstein-2 distance of generated vs real predicted sparsity (in units of the
        real sparsity's std), averaged over groups; the surrogate is first updated on both batches."""
        both, cc = torch.cat([fake_pre, real_pre]), torch.cat([c, c])
        self.update(both, cc)
        sf, sr = (torch.sort(s, 0)[0] for s in (self.predict(both, cc) / self.y_std).chunk(2))
        return ((sf - sr) ** 2).mean(0).mean()


def fit_surrogate(model, train: Samples, observable: str, seed: int = 0) -> Surrogate:
    """Train the surrogate for a TorchGenerator whose transforms are fitted (used from the family's ``prepare``).

    The true cell flags of a preprocessed shower are those of its physical response (``x_tf.inverse`` at the
    shower's incident energy, recovered from the transformed conditions)."""
    spec = model.spec

    def hits(x_pre: torch.Tensor, c_pre: torch.Tensor) -> torch.Tensor:
        scale = model.c_tf_.physical_column(c_pre.cpu().numpy(), spec.scale_column)
        x = model.x_tf_.inverse(x_pre.cpu().numpy(), scale)
        return torch.from_numpy(x > spec.threshold).to(x_pre.device)

    s = Surrogate(observable, spec.n_features, spec.groups, hits, device=model.device)
    rng = np.random.default_rng(seed)
    x_pre = torch.from_numpy(model.x_tf_.forward(train.x, model._scale(train.c), rng if model.x_tf_.dequantize else None))
    s.fit(x_pre, torch.from_numpy(model.c_tf_.forward(train.c)), seed=seed)
    return s
