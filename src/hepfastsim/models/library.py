"""Shower library ("frozen showers"): stored full-simulation showers, rescaled to the requested
incident energy. The baseline every learned model must beat.

As in production frozen-shower libraries (ATLAS FCal) the library has a fixed budget: the
training energy range is cut into ``energy_bins`` log-spaced bins holding at most ``per_bin``
showers each, stored at their own energy; a request draws one shower of the bin nearest in
log-energy at random and scales it linearly to the requested energy. ``energy_bins: 0`` keeps every training shower (k nearest neighbours in all conditions),
which is a replay of the full simulation rather than a model. Tasks without an energy scale
(TPC) always use the k-nearest-neighbour form.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from hepfastsim.errors import HepFastSimError
from hepfastsim.models.base import Generator, Samples
from hepfastsim.models.binned import bin_table


class ShowerLibrary(Generator):
    family: ClassVar[str] = "library"

    def fit(self, train: Samples, val: Samples | None = None, *, trainer=None) -> "ShowerLibrary":
        """Store the training responses (binned in energy); neighbours are searched in the standardised conditions."""
        if trainer is not None and trainer.tensorboard:
            raise HepFastSimError("the shower library has no training loop to log to TensorBoard")
        if trainer is not None and trainer.calibration is not None:
            raise HepFastSimError("the shower library stores full-simulation showers: there is nothing to calibrate")
        self.fit_transforms(train)
        rng = np.random.default_rng(self.config["seed"])
        nb = int(self.config["energy_bins"]) if self.spec.scale_column is not None else 0
        self.edges_ = np.array([])
        keep = np.arange(len(train))
        if nb > 0:
            le = np.log(self._scale(train.c))
            self.edges_ = np.linspace(le.min(), le.max() + 1e-9, nb + 1)
            which = self._bin(le)
            keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(which == b))[: int(self.config["per_bin"])]
                                           for b in range(nb)]))
        self.x_lib_ = np.asarray(train.x[keep], np.float32)
        self.c_lib_ = np.asarray(train.c[keep], np.float64)
        self._index()
        return self

    def _bin(self, log_e: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.edges_, log_e, side="right") - 1, 0, len(self.edges_) - 2)

    def _index(self) -> None:
        if len(self.edges_):
            # a request in an empty bin uses the nearest filled bin
            which = self._bin(np.log(self._scale(self.c_lib_)))
            self.order_, self.counts_, self.offsets_ = bin_table(which, np.arange(len(self.edges_) - 1)[:, None])
        else:
            self.nn_ = NearestNeighbors(n_neighbors=min(int(self.config["k"]), len(self.c_lib_))).fit(self.c_tf_.forward(self.c_lib_))

    def _pick(self, c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Library row for each request: random member of its energy bin, or one of the k nearest neighbours."""
        if len(self.edges_):
            b = self._bin(np.log(self._scale(c)))
            return self.order_[self.offsets_[b] + (rng.random(len(c)) * self.counts_[b]).astype(np.int64)]
        _, idx = self.nn_.kneighbors(self.c_tf_.forward(c))
        return idx[np.arange(len(c)), rng.integers(0, idx.shape[1], len(c))]

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        c = self._check_conditions(conditions)
        pick = self._pick(c, np.random.default_rng(seed))
        out = self.x_lib_[pick].copy()
        out *= (self._scale(c) / self._scale(self.c_lib_[pick]))[:, None].astype(np.float32)
        out[out < self.spec.threshold] = 0.0
        return out

    def latent_dim(self) -> int:
        return 1

    def onnx_graph(self) -> torch.nn.Module:
        """The binned library as a graph (bank of showers + bin lookup), so C++ frameworks can run it too."""
        if not len(self.edges_):
            raise HepFastSimError("only the energy-binned library (energy_bins > 0) can be exported to ONNX, "
                                  "not the k-nearest-neighbour form")
        return _LibraryGraph(self)

    def _extra_state(self) -> dict:
        return {"x_lib": self.x_lib_, "c_lib": self.c_lib_, "edges": self.edges_}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        self.x_lib_, self.c_lib_, self.edges_ = state["x_lib"], state["c_lib"], np.asarray(state.get("edges", []))
        self._index()


class _LibraryGraph(torch.nn.Module):
    """(standardised conditions, latent (B, 1)) -> library shower scaled to the requested energy (MeV).

    Same rule as ``ShowerLibrary.sample``: the bin of log E picks the bin's stored showers; Phi(latent), a
    uniform number, picks one of them; it is scaled linearly to E and cells below threshold are zeroed.
    """

    def __init__(self, lib: ShowerLibrary):
        super().__init__()
        col = lib.spec.scale_column
        self.col = col
        self.log_mean, self.log_std = float(lib.c_tf_.mean[col]), float(lib.c_tf_.std[col])
        self.threshold = float(lib.spec.threshold)
        self.register_buffer("bank", torch.as_tensor(lib.x_lib_[lib.order_], dtype=torch.float32))
        self.register_buffer("bank_energy", torch.as_tensor(lib._scale(lib.c_lib_)[lib.order_], dtype=torch.float32))
        self.register_buffer("inner_edges", torch.as_tensor(lib.edges_[1:-1], dtype=torch.float32))
        self.register_buffer("offsets", torch.as_tensor(lib.offsets_, dtype=torch.int64))
        self.register_buffer("counts", torch.as_tensor(lib.counts_, dtype=torch.int64))

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        log_e = c[:, self.col] * self.log_std + self.log_mean
        b = (log_e[:, None] >= self.inner_edges[None, :]).sum(1)
        u = 0.5 * (1 + torch.erf(z[:, 0] / math.sqrt(2.0)))
        n = self.counts[b]
        k = self.offsets[b] + torch.minimum((u * n.float()).long(), n - 1)
        x = self.bank[k] * (torch.exp(log_e) / self.bank_energy[k])[:, None]
        return torch.where(x < self.threshold, torch.zeros_like(x), x)
