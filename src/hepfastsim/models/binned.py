"""Binned resampling: the histogram method of PID analysts, the baseline of the PID task.

The conditions are cut into bins (``bins`` per condition, at quantiles of the training sample: equal
populations; a condition with fewer distinct values than bins, like the charge, gets one bin per value); a
request draws a random training response of its bin (the nearest occupied bin, in bin-index distance, when
its own is empty). It reproduces the training responses exactly within a bin and nothing in between.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hepfastsim.errors import HepFastSimError
from hepfastsim.models.base import Generator, Samples


def bin_table(flat: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lookup of stored rows by bin: rows sorted by their bin index ``flat`` (order), and per bin the number of rows
    and the offset of its first row in that order; an empty bin answers with the nearest occupied one
    (L1 distance of the bins' grid positions ``coords``, (bins, dims); ties to the lower index)."""
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=len(coords))
    full = np.flatnonzero(counts)
    near = full[np.abs(coords[:, None, :] - coords[full][None, :, :]).sum(2).argmin(1)]
    return order, counts[near], (np.cumsum(counts) - counts)[near]


class BinnedResampling(Generator):
    family: ClassVar[str] = "binned"

    def fit(self, train: Samples, val: Samples | None = None, *, trainer=None) -> "BinnedResampling":
        if trainer is not None and (trainer.tensorboard or trainer.calibration is not None):
            raise HepFastSimError("binned resampling has no training loop to log or calibrate")
        self.fit_transforms(train)
        c = np.asarray(train.c, np.float64)
        self.edges_ = []
        for j in range(c.shape[1]):
            values = np.unique(c[:, j])
            if len(values) <= self.config["bins"]:
                inner = 0.5 * (values[1:] + values[:-1])
            else:
                inner = np.unique(np.quantile(c[:, j], np.linspace(0, 1, self.config["bins"] + 1)[1:-1]))
            self.edges_.append(inner)
        self.x_ = np.asarray(train.x, np.float32)
        self._index(self._cell(c))
        return self

    def _cell(self, c: np.ndarray) -> np.ndarray:
        """Bin indices (n, C) of condition rows."""
        return np.column_stack([np.searchsorted(e, c[:, j], side="right") for j, e in enumerate(self.edges_)])

    def _index(self, cells: np.ndarray) -> None:
        self.shape_ = tuple(len(e) + 1 for e in self.edges_)
        grid = np.stack(np.unravel_index(np.arange(int(np.prod(self.shape_))), self.shape_), 1)
        self.order_, self.counts_, self.offsets_ = bin_table(np.ravel_multi_index(cells.T, self.shape_), grid)
        self.cells_ = cells

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        c = self._check_conditions(conditions)
        flat = np.ravel_multi_index(self._cell(c).T, self.shape_)
        u = np.random.default_rng(seed).random(len(c))
        return self.x_[self.order_[self.offsets_[flat] + (u * self.counts_[flat]).astype(np.int64)]].copy()

    def _extra_state(self) -> dict:
        return {"edges": [np.asarray(e) for e in self.edges_], "x": self.x_, "cells": self.cells_}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        self.edges_ = [np.asarray(e) for e in state["edges"]]
        self.x_ = np.asarray(state["x"], np.float32)
        self._index(np.asarray(state["cells"]))
