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

from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.neighbors import NearestNeighbors

from hepfastsim.models.base import Generator, Samples, TrainLog


class ShowerLibrary(Generator):
    family: ClassVar[str] = "library"
    defaults: ClassVar[dict] = {"k": 5, "energy_bins": 10, "per_bin": 200}

    def fit(self, train: Samples, val: Samples | None = None, *, epochs: int | None = None, seed: int = 0,
            progress: bool = True, log_csv: str | Path | None = None, resume=None, checkpoint=None) -> TrainLog:
        """Store the training responses (binned in energy); neighbours are searched in the standardised conditions."""
        self._fit_transforms(train)
        rng = np.random.default_rng(seed)
        nb = int(self.config["energy_bins"]) if self.spec.scale_column is not None else 0
        self.edges = np.array([])
        keep = np.arange(len(train))
        if nb > 0:
            le = np.log(self._scale(train.c))
            self.edges = np.linspace(le.min(), le.max() + 1e-9, nb + 1)
            which = self._bin(le)
            keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(which == b))[: int(self.config["per_bin"])]
                                           for b in range(nb)]))
        self.x_lib = np.asarray(train.x[keep], np.float32)
        self.c_lib = np.asarray(train.c[keep], np.float64)
        self._index()
        return self.log

    def _bin(self, log_e: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.edges, log_e, side="right") - 1, 0, len(self.edges) - 2)

    def _index(self) -> None:
        if len(self.edges):
            which = self._bin(np.log(self._scale(self.c_lib)))
            self.order = np.argsort(which, kind="stable")
            counts = np.bincount(which, minlength=len(self.edges) - 1)
            full = np.flatnonzero(counts)
            # a request in an empty bin uses the nearest filled bin
            nearest = full[np.abs(np.arange(len(counts))[:, None] - full[None, :]).argmin(1)]
            self.counts, self.offsets = counts[nearest], (np.cumsum(counts) - counts)[nearest]
        else:
            self.nn = NearestNeighbors(n_neighbors=min(int(self.config["k"]), len(self.c_lib))).fit(self.c_tf.forward(self.c_lib))

    def _pick(self, c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Library row for each request: random member of its energy bin, or one of the k nearest neighbours."""
        if len(self.edges):
            b = self._bin(np.log(self._scale(c)))
            return self.order[self.offsets[b] + (rng.random(len(c)) * self.counts[b]).astype(np.int64)]
        _, idx = self.nn.kneighbors(self.c_tf.forward(c))
        return idx[np.arange(len(c)), rng.integers(0, idx.shape[1], len(c))]

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        c = self._check_conditions(conditions)
        pick = self._pick(c, np.random.default_rng(seed))
        out = self.x_lib[pick].copy()
        out *= (self._scale(c) / self._scale(self.c_lib[pick]))[:, None].astype(np.float32)
        out[out < self.spec.threshold] = 0.0
        return out

    def _extra_state(self) -> dict:
        return {"x_lib": self.x_lib, "c_lib": self.c_lib, "edges": self.edges}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        self.x_lib, self.c_lib, self.edges = state["x_lib"], state["c_lib"], np.asarray(state.get("edges", []))
        self._index()
