"""Metric-prioritised training: a differentiable surrogate of a non-differentiable observable.

Observables like the sparsity (fraction of cells below the readout threshold) are step functions
of the response, so a generator gets no gradient from them. A small regressor is trained on the
training responses (preprocessed, as the generator sees them) to predict the observable; during
training the generator is penalised by the mismatch of the surrogate's batch mean and standard
deviation on generated vs real responses (weight ``surrogate_weight``), which pulls the observable's
distribution towards the reference.
"""

from __future__ import annotations

import numpy as np
import torch

from hepfastsim.errors import HepFastSimError
from hepfastsim.models.base import Samples, mlp


def group_sparsity(x: np.ndarray, groups: tuple[tuple[int, int], ...], threshold: float) -> np.ndarray:
    """Per group (calorimeter layer, or the whole response): fraction of cells at or below the threshold."""
    groups = groups or ((0, x.shape[1]),)
    return np.stack([(x[:, a:b] <= threshold).mean(1) for a, b in groups], 1)


OBSERVABLES = {"sparsity": group_sparsity}


class Surrogate:
    """MLP (preprocessed response, conditions) -> observable, trained once before the generator."""

    def __init__(self, observable: str, hidden: int = 128, device: torch.device | str = "cpu"):
        if observable not in OBSERVABLES:
            raise HepFastSimError(f"unknown surrogate observable {observable!r}; known: {sorted(OBSERVABLES)}")
        self.observable, self.hidden, self.device = observable, hidden, torch.device(device)
        self.net: torch.nn.Module | None = None
        self.mse = float("nan")

    def fit(self, x_pre: torch.Tensor, c: torch.Tensor, x_phys: np.ndarray, groups, threshold: float,
            epochs: int = 30, seed: int = 0) -> float:
        """Regress the (standardised) observable of the physical responses from the preprocessed ones; returns
        the validation MSE in units of the observable's variance (0 = perfect surrogate, 1 = no information)."""
        y = torch.from_numpy(OBSERVABLES[self.observable](x_phys, groups, threshold).astype(np.float32)).to(self.device)
        y = (y - y.mean(0)) / (y.std(0) + 1e-3)   # standardised, so every layer counts alike
        torch.manual_seed(seed)
        self.net = mlp(x_pre.shape[1] + c.shape[1], y.shape[1], self.hidden, 2).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        n_va = max(len(y) // 10, 1)
        xin = torch.cat([x_pre, c], 1).to(self.device)
        for _ in range(epochs):
            perm = torch.randperm(len(y) - n_va, device=self.device) + n_va
            for i in range(0, len(perm), 256):
                idx = perm[i:i + 256]
                opt.zero_grad()
                ((self.net(xin[idx]) - y[idx]) ** 2).mean().backward()
                opt.step()
        self.net.requires_grad_(False)
        with torch.no_grad():
            self.mse = float(((self.net(xin[:n_va]) - y[:n_va]) ** 2).mean())
        return self.mse

    def penalty(self, fake_pre: torch.Tensor, real_pre: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Squared differences of batch mean and std of the surrogate observable, generated vs real."""
        sf = self.net(torch.cat([fake_pre, c], 1))
        sr = self.net(torch.cat([real_pre, c], 1))
        return ((sf.mean(0) - sr.mean(0)) ** 2).sum() + ((sf.std(0) - sr.std(0)) ** 2).sum()


def fit_surrogate(model, train: Samples, observable: str, seed: int = 0) -> Surrogate:
    """Train the surrogate for a TorchGenerator whose transforms are fitted (used from the family's ``prepare``)."""
    s = Surrogate(observable, device=model.device)
    x_pre = torch.from_numpy(model.x_tf.forward(train.x, model._scale(train.c)))
    c = torch.from_numpy(model.c_tf.forward(train.c))
    s.fit(x_pre, c, np.asarray(train.x), model.spec.groups, model.spec.threshold, seed=seed)
    return s
