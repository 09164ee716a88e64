"""Issue: validation suite — metrics behave as the field expects on controlled samples."""

from __future__ import annotations

import numpy as np
import pytest

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.geometry.binning import builtin_binning
from hepfastsim.validation import metrics as M
from hepfastsim.validation.features import feature_matrix

B = builtin_binning("demo")


def test_separation_power_limits():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 20000)
    assert M.separation_power(a, rng.normal(0, 1, 20000)) < 0.005
    assert M.separation_power(a, a + 100, bins=np.linspace(-5, 105, 200)) == pytest.approx(1.0)


def test_same_simulation_indistinguishable(demo_samples):
    ref, other = demo_samples
    # mean over 3 runs (different splits): one test split of 2000 events alone fluctuates by 0.013
    low = M.classifier_auc(M.low_level_inputs(ref.showers, ref.energies), M.low_level_inputs(other.showers, other.energies),
                           epochs=10, runs=3, seed=0)
    xr, _ = feature_matrix(ref.showers, ref.energies, B)
    xo, _ = feature_matrix(other.showers, other.energies, B)
    high = M.classifier_auc(xr, xo, epochs=15, runs=3, seed=0)
    assert low.auc == pytest.approx(0.5, abs=0.02)
    assert high.auc == pytest.approx(0.5, abs=0.02)
    # JetNet's FPD/KPD: FPD >= 0 by its bounded fit; with replacement from 5000 showers it tends to the finite-sample
    # floor (~ features / N), not to 0; KPD (unbiased MMD) is consistent with 0
    f, fe = M.fpd(xr, xo)
    k, ke = M.kpd(xr, xo, batch_size=2000)
    print("same-simulation FPD", f, fe, "KPD", k, ke)
    assert 0.0 <= f < 0.01
    assert abs(k) < 3 * ke
    seps = [M.separation_power_error(xr[:, j], xo[:, j]) for j in range(xr.shape[1])]
    assert np.median([v for v, _, _ in seps]) < 0.01
    # separation powers consistent with their statistical floor (value - floor within 3 bootstrap errors)
    consistent = [abs(v - f) < 3 * e for v, e, f in seps]
    assert np.mean(consistent) >= 0.9


def test_scaled_voxels_detected(high_energy_samples):
    ref, other = high_energy_samples
    scaled = ShowerDataset(other.energies, other.showers * 1.05)
    low = M.classifier_auc(M.low_level_inputs(ref.showers, ref.energies), M.low_level_inputs(scaled.showers, scaled.energies),
                           epochs=15, seed=0)
    xr, _ = feature_matrix(ref.showers, ref.energies, B)
    xs, _ = feature_matrix(scaled.showers, scaled.energies, B)
    high = M.classifier_auc(xr, xs, epochs=15, seed=0)
    # measured: low 0.8, high 0.87 at 10-30 GeV (at 1-10 GeV, where 5 % is below the sampling resolution:
    # low 0.57, high 0.67 with 5000 events; see benchmarks/RESULTS.md)
    assert low.auc >= 0.60
    assert high.auc >= 0.60
    v, e, f = M.separation_power_error(ref.showers.sum(1) / ref.energies, scaled.showers.sum(1) / scaled.energies)
    assert v - f > 5 * e                        # E_tot/E_inc separation power significantly above its floor
    f, fe = M.fpd(xr, xs)
    f0, _ = M.fpd(xr, feature_matrix(other.showers, other.energies, B)[0])  # the floor at the same size
    print("5 % scaled FPD", f, fe, "floor", f0)
    assert f > f0 + 5 * fe  # significantly above the floor of two simulation samples of the same size


def test_shuffled_voxels_detected(demo_samples):
    ref, other = demo_samples
    rng = np.random.default_rng(0)
    shuffled = np.array([rng.permutation(s) for s in other.showers])
    low = M.classifier_auc(M.low_level_inputs(ref.showers, ref.energies), M.low_level_inputs(shuffled, other.energies),
                           epochs=10, seed=0)
    assert low.auc >= 0.95


def test_diversity_and_support_detect_collapse(demo_samples):
    ref, _ = demo_samples
    collapsed = np.repeat(ref.showers[:2], 500, axis=0)   # mode collapse onto two showers
    assert M.ssim_pairs(collapsed).mean() > M.ssim_pairs(ref.showers).mean() + 0.1
    s_ref = M.support_size(ref.showers)
    s_col = M.support_size(collapsed)
    assert s_col["batch_size_50pct"] is not None and s_col["batch_size_50pct"] <= 16
    assert s_ref["batch_size_50pct"] is None


def test_prdc_identical_vs_shifted():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(1500, 4)), rng.normal(size=(1500, 4))
    same = M.prdc(a, b)
    far = M.prdc(a, b + 5)
    assert same["precision"] > 0.8 and same["coverage"] > 0.8
    assert far["precision"] < 0.05 and far["coverage"] < 0.05


def test_amplification_and_interpolation(demo_samples):
    from hepfastsim.validation.evaluate import amplification, interpolation

    ref, other = demo_samples
    # a perfect generator (more full-simulation showers) beats a small training set once N > N_train
    a = amplification(ref.subset(slice(0, 300)), other, ref.subset(slice(300, 5000)), B)
    w = a["w1_generated"]
    assert a["n_train"] == 300 and max(w) == 4700
    assert w[4700] < a["w1_train"] and w[4700] < w[100]
    r = interpolation(other, ref, B, 3000.0, classifier_epochs=5)
    assert r["n_reference"] >= 50 and 0.3 < r["auc_high"] < 0.7
    from hepfastsim.errors import HepFastSimError

    with pytest.raises(HepFastSimError, match="within 5 % of 50000"):
        interpolation(other, ref, B, 50000.0)
