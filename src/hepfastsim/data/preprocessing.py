"""Invertible preprocessing shared by every model family.

Responses x >= 0 (voxel energies in MeV, or TPC amplitudes) are divided by a scale set by the
conditions (the incident energy for showers, 1 for TPC), mapped with u = log(x/scale + eps)
and standardised per feature. The inverse clips at zero and applies the readout threshold,
so generated responses are physical (non-negative, zero-suppressed like the reference).
Conditions are log-transformed where requested and standardised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ResponseTransform:
    """x -> standardised log(x/scale + eps). Fitted constants travel inside every checkpoint."""

    eps: float = 1e-6
    threshold: float = 0.0
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, x: np.ndarray, scale: np.ndarray) -> "ResponseTransform":
        u = np.log(np.asarray(x, np.float64) / scale[:, None] + self.eps)
        self.mean = u.mean(0)
        self.std = u.std(0) + 1e-6
        return self

    def forward(self, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
        u = np.log(np.asarray(x, np.float64) / scale[:, None] + self.eps)
        return ((u - self.mean) / self.std).astype(np.float32)

    def inverse(self, u: np.ndarray, scale: np.ndarray) -> np.ndarray:
        x = (np.exp(np.asarray(u, np.float64) * self.std + self.mean) - self.eps) * scale[:, None]
        x = np.clip(x, 0.0, None)
        x[x < self.threshold] = 0.0
        return x.astype(np.float32)

    def state(self) -> dict:
        return {"eps": self.eps, "threshold": self.threshold, "mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, s: dict) -> "ResponseTransform":
        return cls(float(s["eps"]), float(s["threshold"]), np.asarray(s["mean"]), np.asarray(s["std"]))


@dataclass
class ConditionTransform:
    """Conditions (N, C) -> standardised, with log applied to the columns flagged in log_columns."""

    log_columns: tuple[bool, ...] = ()
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    names: tuple[str, ...] = field(default_factory=tuple)

    def _pre(self, c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, np.float64).reshape(len(c), -1).copy()
        for j, flag in enumerate(self.log_columns):
            if flag:
                c[:, j] = np.log(c[:, j])
        return c

    def fit(self, c: np.ndarray) -> "ConditionTransform":
        p = self._pre(c)
        self.mean, self.std = p.mean(0), p.std(0) + 1e-6
        return self

    def forward(self, c: np.ndarray) -> np.ndarray:
        return ((self._pre(c) - self.mean) / self.std).astype(np.float32)

    def state(self) -> dict:
        return {"log_columns": list(self.log_columns), "mean": self.mean, "std": self.std, "names": list(self.names)}

    @classmethod
    def from_state(cls, s: dict) -> "ConditionTransform":
        return cls(tuple(bool(v) for v in s["log_columns"]), np.asarray(s["mean"]), np.asarray(s["std"]), tuple(s["names"]))
