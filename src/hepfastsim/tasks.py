"""Adapters from detector data to the generic (responses, conditions) pairs the models learn.

calo: responses = voxel energies (MeV), conditions = (incident energy MeV,), responses scale
      with the incident energy, readout threshold 15.15 keV.
tpc:  responses = pad x time amplitudes, conditions = the track parameters.
"""

from __future__ import annotations

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.geometry.binning import Binning
from hepfastsim.models.base import Samples, TaskSpec

CELL_THRESHOLD_MEV = 15.15e-3


def calo_spec(binning: Binning, threshold: float = CELL_THRESHOLD_MEV) -> TaskSpec:
    return TaskSpec(task="calo", n_features=binning.n_voxels, condition_names=("energy_MeV",),
                    geometry_id=binning.geometry_id, geometry_name=binning.name, scale_column=0,
                    log_conditions=(True,), threshold=threshold)


def calo_samples(ds: ShowerDataset) -> Samples:
    return Samples(np.asarray(ds.showers, np.float32), ds.energies.reshape(-1, 1))


def layer_slices(binning: Binning) -> list[tuple[int, int]]:
    """(start, stop) voxel ranges of the layers with voxels: the flow's stage-1 variables."""
    return [(int(binning.layer_offsets[l]), int(binning.layer_offsets[l + 1])) for l in binning.relevant_layers]


def split_indices(n: int, fractions=(0.7, 0.15, 0.15), seed: int = 1234) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed train/validation/test split by event index (permutation with a fixed seed)."""
    perm = np.random.default_rng(seed).permutation(n)
    a = int(fractions[0] * n)
    b = a + int(fractions[1] * n)
    return np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])
