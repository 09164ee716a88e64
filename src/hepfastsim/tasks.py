"""Adapters from detector data to the generic (responses, conditions) pairs the models learn.

calo: responses = voxel energies (MeV), conditions = (incident energy MeV,), responses scale
      with the incident energy, readout threshold 15.15 keV, feature groups = readout layers.
(The TPC task is planned.)
"""

from __future__ import annotations

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.geometry.binning import CELL_THRESHOLD_MEV, Binning
from hepfastsim.models.base import Samples, TaskSpec


def layer_slices(binning: Binning) -> tuple[tuple[int, int], ...]:
    """(start, stop) voxel ranges of the layers with voxels: the flow's stage-1 variables."""
    return tuple((int(binning.layer_offsets[l]), int(binning.layer_offsets[l + 1])) for l in binning.relevant_layers)


def calo_spec(binning: Binning, threshold: float = CELL_THRESHOLD_MEV) -> TaskSpec:
    return TaskSpec(task="calo", n_features=binning.n_voxels, condition_names=("energy_MeV",),
                    geometry_id=binning.geometry_id, geometry_name=binning.name, scale_column=0,
                    log_conditions=(True,), threshold=threshold, groups=layer_slices(binning))


def calo_samples(ds: ShowerDataset) -> Samples:
    return Samples(np.asarray(ds.showers, np.float32), ds.energies.reshape(-1, 1))


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) event indices from one fixed-seed permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    nv = int(val_fraction * n)
    return np.sort(perm[nv:]), np.sort(perm[:nv])
