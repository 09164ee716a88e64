"""Adapters from detector data to the generic (responses, conditions) pairs the models learn.

calo: responses = voxel energies (MeV, stored units: active deposit / sampling fraction),
      conditions = (incident energy MeV,), responses scale with the incident energy, readout
      threshold = the binning's (15.15 keV for datasets 2/3, 1 MeV for dataset 1), feature
      groups = readout layers.
tpc:  responses = pad x time-bin amplitudes (ADC counts) of one pad row, conditions = the track
      parameters of the digits file; no scaling, log(x + 1) preprocessing like the study, the
      sub-bin positions (drift length and pad coordinate mod 1) and the track's expected cluster
      extent (``preprocessing.tpc_track_features``) fed to the networks, zero suppression at the
      smallest amplitude present in the training data.
"""

from __future__ import annotations

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.data.pid_io import PIDDataset
from hepfastsim.data.tpc_io import TPCDataset
from hepfastsim.geometry.binning import Binning
from hepfastsim.data.samples import Samples, TaskSpec


def layer_slices(binning: Binning) -> tuple[tuple[int, int], ...]:
    """(start, stop) voxel ranges of the layers with voxels: the flow's stage-1 variables."""
    return tuple((int(binning.layer_offsets[l]), int(binning.layer_offsets[l + 1])) for l in binning.relevant_layers)


def calo_spec(binning: Binning, threshold: float | None = None) -> TaskSpec:
    """Task of a calorimeter readout; threshold (MeV, stored units) defaults to the binning's."""
    threshold = binning.threshold if threshold is None else threshold
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


def tpc_spec(ds: TPCDataset) -> TaskSpec:
    pos = ("drift_length", "pad_coordinate")
    nz = ds.responses[ds.responses > 0]
    return TaskSpec(task="tpc", n_features=int(np.prod(ds.shape)), condition_names=ds.names, geometry_id=ds.geometry_id,
                    geometry_name=f"MPD TPC {ds.shape[0]}x{ds.shape[1]} ({len(ds.names)} parameters)", scale_column=None,
                    log_conditions=(False,) * len(ds.names), threshold=float(np.floor(10 * nz.min()) / 10) if len(nz) else 0.0,
                    shape=ds.shape, fraction_conditions=tuple(n in pos for n in ds.names), eps=1.0,
                    condition_features="tpc_track")


def tpc_samples(ds: TPCDataset) -> Samples:
    return Samples(ds.responses.reshape(len(ds), -1).astype(np.float32), ds.params)


def pid_spec(ds: PIDDataset, species: str) -> TaskSpec:
    """The PID task of one species: DLLs (either sign) given P, eta, nTracks, charge (P and nTracks
    log-transformed); the species is part of the task's identity (geometry_id pid:SPECIES:RESPONSES).
    DLLp is modelled as DLLp - DLLK: below the kaon and proton thresholds the two hypotheses predict the
    same rings, so the difference is exactly 0 for a large fraction of tracks (the cut DLLp - DLLK > 0)."""
    logs = tuple(n in ("P", "nTracks") for n in ds.condition_names)
    names = ds.response_names
    diff = ((names.index("DLLp"), names.index("DLLK")),) if {"DLLp", "DLLK"} <= set(names) else ()
    return TaskSpec(task="pid", n_features=len(names), condition_names=ds.condition_names,
                    geometry_id=f"pid:{species}:{','.join(names)}",
                    geometry_name=f"PID {species} ({', '.join(names)})", scale_column=None,
                    log_conditions=logs, eps=1.0, signed=True, response_differences=diff)


def pid_species(spec: TaskSpec) -> str:
    """The species a PID task models (inverse of ``pid_spec``)."""
    return spec.geometry_id.split(":")[1]


def pid_response_names(spec: TaskSpec) -> tuple[str, ...]:
    """The response columns of a PID task, in order (inverse of ``pid_spec``)."""
    return tuple(spec.geometry_id.split(":")[2].split(","))


def pid_samples(ds: PIDDataset) -> Samples:
    return Samples(ds.responses.astype(np.float32), ds.conditions)
