"""Shower library ("frozen showers"): the nearest stored training shower in the conditions,
rescaled to the requested incident energy. The baseline every learned model must beat."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.neighbors import NearestNeighbors

from hepfastsim.models.base import Generator, Samples, TrainLog


class ShowerLibrary(Generator):
    family: ClassVar[str] = "library"
    defaults: ClassVar[dict] = {"k": 5}

    def fit(self, train: Samples, val: Samples | None = None, *, epochs: int | None = None, seed: int = 0,
            progress: bool = True, log_csv: str | Path | None = None, resume=None, checkpoint=None) -> TrainLog:
        """Store the training responses; neighbours are searched in the standardised condition space."""
        self._fit_transforms(train)
        self.x_lib = np.asarray(train.x, np.float32)
        self.c_lib = np.asarray(train.c, np.float64)
        self._index()
        return self.log

    def _index(self) -> None:
        self.nn = NearestNeighbors(n_neighbors=min(int(self.config["k"]), len(self.c_lib))).fit(self.c_tf.forward(self.c_lib))

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        c = self._check_conditions(conditions)
        rng = np.random.default_rng(seed)
        _, idx = self.nn.kneighbors(self.c_tf.forward(c))
        pick = idx[np.arange(len(c)), rng.integers(0, idx.shape[1], len(c))]
        out = self.x_lib[pick].copy()
        out *= (self._scale(c) / self._scale(self.c_lib[pick]))[:, None].astype(np.float32)
        out[out < self.spec.threshold] = 0.0
        return out

    def _extra_state(self) -> dict:
        return {"x_lib": self.x_lib, "c_lib": self.c_lib}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        self.x_lib, self.c_lib = state["x_lib"], state["c_lib"]
        self._index()
