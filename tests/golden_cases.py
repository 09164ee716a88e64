"""Seeded reference runs of every model family, shared by tests/test_golden.py and tests/make_golden.py.

Each case trains one small model at a fixed seed on a fixed synthetic calorimeter sample (numpy only, so the
reference does not move when the built-in simulation does) and samples fixed conditions at a fixed seed.
``tests/data/golden_samples.npz`` holds what the code gave when the case was written; a refactor of the
training machinery must reproduce it.
"""

from __future__ import annotations

import numpy as np
import torch

from hepfastsim.geometry.binning import builtin_binning
from hepfastsim.data.samples import Samples
from hepfastsim.models import get_family
from hepfastsim.models.options import split_calibration
from hepfastsim.train import Trainer
from hepfastsim.tasks import calo_spec, layer_slices

B = builtin_binning("demo")
SMALL = {"hidden": 16, "layers": 1, "batch_size": 64, "patience": 100}

# name: (family, options, epochs)
CASES: dict[str, tuple[str, dict, int]] = {
    "library": ("library", {}, 0),
    "library_knn": ("library", {"energy_bins": 0, "k": 3}, 0),
    "vae": ("vae", {**SMALL, "latent": 4, "decoder_noise": True, "dequantize": True}, 2),
    "vae_calibrated": ("vae", {**SMALL, "latent": 4, "calibrate": True, "calibration_bins": 2,
                               "calibration_samples": 150}, 2),
    "gan": ("gan", {**SMALL, "latent": 4, "n_critic": 2, "group_energies": True}, 2),
    "flow": ("flow", {"hidden": 16, "batch_size": 64, "transforms": 1, "layer_slices": [list(s) for s in layer_slices(B)]}, 2),
    "fm": ("fm", {**SMALL, "steps": 2}, 2),
    "fm_distilled": ("fm", {**SMALL, "steps": 2, "distill_epochs": 1, "distill_pairs": 300, "student_hidden": 16,
                            "student_layers": 1}, 2),
    "ensemble_masks_repulsion": ("ensemble", {"base": "fm", "members": 2, "fixed_dropout": 0.2, "repulsion": 1.0,
                                              "repulsion_epochs": 2, "options": {**SMALL, "steps": 2}}, 2),
    "ensemble_bootstrap": ("ensemble", {"base": "vae", "members": 2, "bootstrap": True,
                                        "options": {**SMALL, "latent": 4}}, 1),
}


def synthetic_samples(n: int, seed: int) -> Samples:
    """n showers of the demo readout: 1-10 GeV, a longitudinal profile times gamma noise, 15.15 keV cut (MeV)."""
    rng = np.random.default_rng(seed)
    e = np.exp(rng.uniform(np.log(1000.0), np.log(10000.0), n))
    depth = np.repeat(np.arange(B.n_layers), B.n_voxels // B.n_layers)
    profile = np.exp(-((depth - 3.0) ** 2) / 8.0)
    x = e[:, None] * 0.03 / B.n_voxels * profile * rng.gamma(0.7, 1.5, (n, B.n_voxels))
    x[x < 15.15e-3] = 0.0
    return Samples(x.astype(np.float32), e.reshape(-1, 1))


def run_case(name: str) -> dict[str, np.ndarray]:
    """The case's samples at 40 fixed energies (seed 7) and its validation-loss history."""
    family, options, epochs = CASES[name]
    torch.set_num_threads(1)
    train, val = synthetic_samples(200, 1), synthetic_samples(50, 2)
    options, calibration = split_calibration(options)
    if epochs:
        where = options["options"] if family == "ensemble" else options
        where["epochs"] = epochs
    m = get_family(family)(calo_spec(B), **options, seed=3)
    Trainer(calibration=calibration).fit(m, train, val)
    e = np.geomspace(1000.0, 10000.0, 40)
    return {"x": m.sample(e, seed=7), "val_loss": np.asarray(m.history_.val_loss, np.float64)}
