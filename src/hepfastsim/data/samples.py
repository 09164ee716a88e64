"""What a generator models and what it learns from: the task specification and (conditions, responses) samples.

They belong to the data layer: the task adapters (``hepfastsim.tasks``) build them from files, every model family
consumes them, and nothing here depends on the models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepfastsim.errors import HepFastSimError


@dataclass
class TaskSpec:
    """What a generator models: response size, conditions, geometry and how responses scale."""

    task: str                       # "calo" or "tpc"
    n_features: int                 # voxels or pads x time bins
    condition_names: tuple[str, ...]
    geometry_id: str
    geometry_name: str
    scale_column: int | None = 0    # condition column that scales the response (incident energy), or None
    log_conditions: tuple[bool, ...] = (True,)
    threshold: float = 0.0          # readout threshold applied to generated responses
    shape: tuple[int, ...] = ()     # e.g. (pads, time) for TPC
    groups: tuple[tuple[int, int], ...] = ()  # (start, stop) feature ranges, e.g. calorimeter layers
    fraction_conditions: tuple[bool, ...] = ()  # also feed the fractional part (sub-bin position) of these columns
    eps: float = 1e-6               # offset of the log preprocessing, in response units / scale
    signed: bool = False            # responses of either sign (PID DLLs): asinh preprocessing with linear range eps
    condition_features: str = ""    # derived condition features fed to the networks (preprocessing.CONDITION_FEATURES)
    response_differences: tuple[tuple[int, int], ...] = ()  # signed: (i, j) models response i as x_i - x_j

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        """Inverse of dataclasses.asdict (lists back to tuples), for checkpoints."""
        return cls(**{**d, "condition_names": tuple(d["condition_names"]), "log_conditions": tuple(d["log_conditions"]),
                      "shape": tuple(d["shape"]), "groups": tuple(tuple(g) for g in d.get("groups", ())),
                      "fraction_conditions": tuple(d.get("fraction_conditions", ())),
                      "response_differences": tuple(tuple(v) for v in d.get("response_differences", ()))})


@dataclass
class Samples:
    """Responses x (N, D) >= 0 with conditions c (N, C); the common currency of all families. x is an array or
    anything that slices like one and converts with np.asarray, e.g. ``calo_io.StreamedShowers`` (showers read
    from disk when indexed: the training engine reads them in chunks)."""

    x: np.ndarray
    c: np.ndarray

    def __post_init__(self) -> None:
        self.c = np.asarray(self.c, np.float64).reshape(len(self.c), -1)
        if len(self.x) != len(self.c):
            raise HepFastSimError(f"{len(self.x)} responses but {len(self.c)} condition rows")

    def __len__(self) -> int:
        return len(self.x)


HOLDOUT_TOLERANCE = 0.05   # relative half-width of the window around an incident energy left out of training


def near_energy_mask(energies: np.ndarray, energy: float, tolerance: float = HOLDOUT_TOLERANCE) -> np.ndarray:
    """Events within +-tolerance (relative) of an incident energy in MeV: the window `train --holdout-energy`
    leaves out and `evaluate --holdout-energy` scores."""
    return np.abs(np.asarray(energies) / energy - 1) <= tolerance
