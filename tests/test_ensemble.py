"""Ensembles: mixture sampling, checkpoints, and the band that measures the model's systematic uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import builtin_binning
from hepfastsim.models import get_family, load_generator
from hepfastsim.tasks import calo_samples, calo_spec
from hepfastsim.validation.ensemble import ensemble_bands, ensemble_summary

B = builtin_binning("demo")


def test_ensemble_of_libraries_round_trip(demo_samples, tmp_path):
    ref, other = demo_samples
    ens = get_family("ensemble")(calo_spec(B), base="library", members=3, options={"per_bin": 100})
    ens.fit(calo_samples(ref), seed=4)
    assert len(ens.members) == 3
    # members trained with different seeds store different showers
    assert not np.array_equal(ens.members[0].x_lib, ens.members[1].x_lib)
    x = ens.sample(other.energies[:300], seed=1)
    assert x.shape == (300, B.n_voxels) and set(np.unique(ens.last_members)) == {0, 1, 2}
    back = load_generator(ens.save(tmp_path / "ens.pt"))
    assert np.array_equal(back.sample(other.energies[:300], seed=1), x)
    with pytest.raises(HepFastSimError, match="at least 2"):
        get_family("ensemble")(calo_spec(B), members=1)
    with pytest.raises(HepFastSimError, match="unknown model family"):
        get_family("ensemble")(calo_spec(B), base="nope")


def test_band_covers_perfect_and_not_biased_members(demo_samples):
    ref, other = demo_samples
    who = np.random.default_rng(0).integers(0, 3, len(other))
    perfect = ShowerDataset(other.energies, other.showers, {"member": who})
    s = ensemble_summary(ensemble_bands(ref, perfect, B))
    assert s["members_band_coverage_mean"] >= 0.68
    biased = ShowerDataset(other.energies, other.showers * 1.15, {"member": who})
    b = ensemble_bands(ref, biased, B)
    assert b["E_tot/E_inc"]["coverage"] < 0.3
    with pytest.raises(HepFastSimError, match="no 'member'"):
        ensemble_bands(ref, other, B)
