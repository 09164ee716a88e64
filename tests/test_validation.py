"""Validation on the field's terms: CaloChallenge's features, classifier, histograms; JetNet's FPD/KPD."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy import linalg
from scipy.optimize import curve_fit
from sklearn.metrics import roc_auc_score

from hepfastsim.geometry.binning import builtin_binning, builtin_binning_path
from hepfastsim.validation import calochallenge as CC
from hepfastsim.validation import metrics as M
from hepfastsim.validation.classifier import PROTOCOLS, _dnn, classifier_auc, low_level_inputs
from hepfastsim.validation.features import compute_features, feature_matrix, high_level_vector

B = builtin_binning("demo")


# ---------------------------------------------------------------- CaloChallenge's HighLevelFeatures, re-done here
def calochallenge_vector(showers: np.ndarray, energies: np.ndarray, xml_path, threshold: float) -> np.ndarray:
    """The high-level vector as CaloChallenge computes it, written out voxel by voxel from its algorithm
    (XMLHandler: r mid-points, alpha centres of linspace(-pi, pi, n + 1), eta = r cos(alpha), phi = r sin(alpha);
    HighLevelFeatures: moments over (sum E + 1e-16), widths clipped at 0; evaluate.py: voxels below the threshold
    set to 0, then [log10 Einc, log10(E_layer + 1e-8), EC_eta/100, EC_phi/100, width_eta/100, width_phi/100,
    log10(E_tot + 1e-8), sparsity, EC_r/100, width_r/100])."""
    layers = ET.parse(xml_path).getroot().find("Bin").findall("Layer")
    data = np.where(showers < threshold, 0.0, showers.astype(np.float64))
    e_layer, ec_eta, ec_phi, w_eta, w_phi, sparsity, ec_r, w_r = ([] for _ in range(8))
    start = 0
    for layer in layers:
        r_list = [float(v) for v in layer.attrib["r_edges"].split(",")]
        n_alpha = int(layer.attrib["n_bin_alpha"])
        n_r = len(r_list) - 1
        if n_r == 0:
            continue
        r_mid = [r_list[i] + (r_list[i + 1] - r_list[i]) / 2 for i in range(n_r)]
        a_edges = np.linspace(-math.pi, math.pi, n_alpha + 1)
        a_mid = [a_edges[j] + (a_edges[j + 1] - a_edges[j]) / 2 for j in range(n_alpha)]
        eta, phi, rad = [], [], []
        for j in range(n_alpha):          # alpha slow, r fast
            for i in range(n_r):
                eta.append(r_mid[i] * math.cos(a_mid[j]))
                phi.append(r_mid[i] * math.sin(a_mid[j]))
                rad.append(r_mid[i])
        eta, phi, rad = map(np.array, (eta, phi, rad))
        e = data[:, start:start + n_r * n_alpha]
        start += n_r * n_alpha
        tot = e.sum(-1) + 1e-16
        e_layer.append(e.sum(-1))
        sparsity.append(1.0 - (e > 0).mean(-1))
        c = (rad * e).sum(-1) / tot
        ec_r.append(c)
        w_r.append(np.sqrt(((rad * rad * e).sum(-1) / tot - c**2).clip(min=0.0)))
        if n_alpha > 1:
            for coord, centres, widths in ((eta, ec_eta, w_eta), (phi, ec_phi, w_phi)):
                c = (coord * e).sum(-1) / tot
                centres.append(c)
                widths.append(np.sqrt(((coord * coord * e).sum(-1) / tot - c**2).clip(min=0.0)))
    stack = lambda v: np.stack(v, axis=1)  # noqa: E731
    e_tot = data.sum(-1).reshape(-1, 1)
    return np.concatenate([np.log10(energies.reshape(-1, 1)), np.log10(stack(e_layer) + 1e-8), stack(ec_eta) / 1e2,
                           stack(ec_phi) / 1e2, stack(w_eta) / 1e2, stack(w_phi) / 1e2, np.log10(e_tot + 1e-8),
                           stack(sparsity), stack(ec_r) / 1e2, stack(w_r) / 1e2], axis=1)


@pytest.mark.parametrize("name", ["ds1-photons", "ds1-pions", "ds2", "ds3"])
def test_feature_vector_equals_calochallenge(name):
    b = builtin_binning(name)
    rng = np.random.default_rng(7)
    n = 12
    showers = rng.lognormal(np.log(b.threshold), 2.0, size=(n, b.n_voxels)) * (rng.random((n, b.n_voxels)) < 0.4)
    showers[0] = 0.0                                         # an empty shower
    showers[1, : b.n_voxels // 2] = 0.0                       # empty layers
    energies = np.exp(rng.uniform(np.log(1e3), np.log(1e6), n))
    ours, names = feature_matrix(showers.astype(np.float32), energies, b)
    theirs = calochallenge_vector(showers.astype(np.float32), energies, builtin_binning_path(name), b.threshold)
    assert ours.shape == theirs.shape == (n, len(names))
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-6)


# ---------------------------------------------------------------- JetNet's FPD / KPD, re-done here
def jetnet_fpd(x, y, min_samples=10_000, max_samples=50_000, num_batches=20, num_points=10, seed=42):
    """JetNet's fpd (evaluation/gen_metrics.py) from its published algorithm: normalise by the real sample's max |x|,
    batches with replacement at sizes regular in 1/N, mean Frechet distance per size, bounded linear fit in 1/N."""
    maxes = np.abs(x).max(0)
    maxes[maxes == 0] = 1
    x, y = x / maxes, y / maxes
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals = []
    for size in sizes:
        fds = []
        for _ in range(num_batches):
            a, b = x[rng.choice(len(x), size=size)], y[rng.choice(len(y), size=size)]
            s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
            cm = linalg.sqrtm(s1.dot(s2)).real
            d = a.mean(0) - b.mean(0)
            fds.append(d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(cm))
        vals.append(np.mean(fds))
    p, c = curve_fit(lambda t, i, s: i + s * t, 1 / sizes, vals, bounds=([0, 0], [np.inf, np.inf]))
    return p[0], np.sqrt(np.diag(c)[0])


def jetnet_kpd(x, y, num_batches=10, batch_size=5000, seed=42):
    """JetNet's kpd: median over batches (seed + 1000 i, with replacement) of the unbiased MMD^2 with the kernel
    (x.y / d + 1)^4; error half the 16.275-83.725 % range."""
    maxes = np.abs(x).max(0)
    maxes[maxes == 0] = 1
    x, y = x / maxes, y / maxes
    d = x.shape[1]
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        a, b = x[rng.choice(len(x), size=batch_size)], y[rng.choice(len(y), size=batch_size)]
        kxx, kyy, kxy = ((a @ a.T) / d + 1) ** 4, ((b @ b.T) / d + 1) ** 4, ((a @ b.T) / d + 1) ** 4
        m = len(a)
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    lo, hi = np.percentile(vals, [16.275, 83.725])
    return np.median(vals), (hi - lo) / 2


def test_fpd_kpd_equal_jetnet_on_toy_inputs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 6)) * [1, 2, 3, 1, 1, 5]
    y = rng.normal(size=(3000, 6)) * [1, 2, 3, 1, 1, 5] + [0.1, 0, 0, 0.2, 0, 0]
    f, fe = M.fpd(x, y, min_samples=1000, max_samples=3000)
    jf, jfe = jetnet_fpd(x, y, min_samples=1000, max_samples=3000)
    k, ke = M.kpd(x, y, batch_size=1500)
    jk, jke = jetnet_kpd(x, y, batch_size=1500)
    assert f > 5 * fe and k > 3 * ke                          # the shift is seen
    assert abs(f - jf) <= 0.01 * fe and fe == pytest.approx(jfe, rel=1e-3)
    assert abs(k - jk) <= 0.01 * ke and ke == pytest.approx(jke, rel=1e-3)


# ---------------------------------------------------------------- classifier protocol
def test_a_layer_hit_in_one_cell_has_width_zero_and_fpd_kpd_stay_finite():
    """JetNet divides every feature by the reference's max |x|: a reference whose last layer is always hit in a
    single cell must give width 0 there (not the moments' r sqrt(EPS / E) ~ 1e-9 after /100), or a real width in the
    other sample becomes ~1e7 and FPD/KPD explode (dataset 2 at 10 GeV: floor KPD 3.6e38)."""
    rng = np.random.default_rng(0)
    n, first, last = 3000, B.layer_slice(B.relevant_layers[0]), B.layer_slice(B.relevant_layers[-1])

    def sample(two_cells: float) -> np.ndarray:
        x = np.zeros((n, B.n_voxels), np.float32)
        x[:, first] = rng.exponential(1.0, (n, first.stop - first.start)) + 0.02
        x[np.arange(n), rng.integers(last.start, last.stop, n)] = rng.uniform(0.02, 0.2, n)
        hit = rng.random(n) < two_cells   # a second cell of the last layer in some showers
        x[np.flatnonzero(hit), rng.integers(last.start, last.stop, hit.sum())] += 0.05
        return x

    e = np.full(n, 1000.0)
    fr, fg = compute_features(sample(0.0), e, B), compute_features(sample(0.02), e, B)
    assert fr.values["width_r"][:, -1].max() == 0.0
    assert fg.values["width_r"][:, -1].max() > 1.0   # mm: the generated sample's real widths survive
    xr, _ = high_level_vector(fr, B)
    xg, _ = high_level_vector(fg, B)
    f, _ = M.fpd(xr, xg, min_samples=1000, max_samples=3000)
    k, _ = M.kpd(xr, xg, batch_size=1500)
    assert 0.0 <= f < 1.0 and abs(k) < 1.0


def test_classifier_is_calochallenges_dnn():
    p = PROTOCOLS["calochallenge"]
    assert (p.hidden, p.hidden_layers, p.lr, p.batch_size, p.epochs, p.split) == (2048, 2, 2e-4, 1000, 50, (0.6, 0.2, 0.2))
    net = _dnn(10, p)
    linear = [m for m in net if isinstance(m, __import__("torch").nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(10, 2048), (2048, 2048), (2048, 2048), (2048, 1)]
    assert all(m.negative_slope == 0.01 for m in net if isinstance(m, __import__("torch").nn.LeakyReLU))
    assert not p.standardise_features


def test_low_level_inputs_are_thresholded_voxels_over_energy():
    showers = np.array([[0.01, 0.02, 5.0], [1.0, 0.0, 0.015]], dtype=np.float32)
    x = low_level_inputs(showers, np.array([100.0, 1000.0]), threshold=0.0151).rows(np.array([0, 1]))
    np.testing.assert_allclose(x, [[2.0, 0.0, 0.0002, 0.05], [3.0, 0.001, 0.0, 0.0]], rtol=1e-6)


def test_same_simulation_indistinguishable(demo_samples):
    ref, other = demo_samples
    fr, fo = compute_features(ref.showers, ref.energies, B), compute_features(other.showers, other.energies, B)
    xr, _ = high_level_vector(fr, B)
    xo, _ = high_level_vector(fo, B)
    low = classifier_auc(low_level_inputs(ref.showers, ref.energies, B.threshold),
                         low_level_inputs(other.showers, other.energies, B.threshold), protocol="quick", runs=3, epochs=8)
    high = classifier_auc(xr, xo, protocol="quick", runs=3, epochs=8, standardise=True)
    print("same simulation AUC", low.aucs, high.aucs)
    assert low.auc == pytest.approx(0.5, abs=0.02)
    assert high.auc == pytest.approx(0.5, abs=0.02)
    # FPD >= 0 by JetNet's bounded fit; two samples of one distribution give a value within its error of the small
    # finite-sample floor; the unbiased KPD is consistent with 0
    f, fe = M.fpd(xr, xo)
    k, ke = M.kpd(xr, xo, batch_size=2000)
    print("same-simulation FPD", f, fe, "KPD", k, ke)
    assert 0.0 <= f < 0.02
    assert abs(k) < 3 * ke
    seps = CC.separation_powers(fr, fo, B, CC.histogram_edges(fr, B))
    consistent = [abs(s.value - s.floor) < max(3 * s.floor, 1e-3) for s in seps.values()]
    assert np.mean(consistent) >= 0.9


@pytest.mark.slow
def test_scaled_voxels_at_10_gev_low_level_sees_what_the_best_feature_sees(samples_10gev):
    """5 % more energy in every voxel at 10 GeV: the low-level classifier (CaloChallenge's protocol, mean of 3
    trainings: one training's AUC scatters by ~0.01, half the margin) must be at least as sensitive as the best single
    high-level feature, minus 0.02. Slow (10 000 simulated showers at 10 GeV and three full 50-epoch trainings, ~10 min
    on 2 cores): `make test-slow`."""
    ref, other = samples_10gev
    scaled = other.showers * 1.05
    xr, names = feature_matrix(ref.showers, ref.energies, B)
    xs, _ = feature_matrix(scaled, other.energies, B)
    y = np.r_[np.zeros(len(xr)), np.ones(len(xs))]
    single = [abs(roc_auc_score(y, np.r_[xr[:, j], xs[:, j]]) - 0.5) + 0.5 for j in range(xr.shape[1])]
    best = int(np.argmax(single))
    low = classifier_auc(low_level_inputs(ref.showers, ref.energies, B.threshold),
                         low_level_inputs(scaled, other.energies, B.threshold), protocol="calochallenge", runs=3)
    print("best single feature", names[best], single[best], "low-level AUC", low.auc, "runs", low.aucs)
    assert low.auc >= single[best] - 0.02


def test_shuffled_voxels_detected(demo_samples):
    ref, other = demo_samples
    rng = np.random.default_rng(0)
    shuffled = np.array([rng.permutation(s) for s in other.showers])
    low = classifier_auc(low_level_inputs(ref.showers, ref.energies, B.threshold),
                         low_level_inputs(shuffled, other.energies, B.threshold), protocol="quick", runs=1, epochs=10)
    assert low.auc >= 0.95


def test_cylinder_padding_makes_the_cnn_equivariant_in_alpha():
    """Rolling every layer of the demo readout by 2 of its 8 alpha bins rolls the CNN's lowest-resolution maps (4
    alpha bins) by one: the angle closes on itself. With zero padding in alpha the seam breaks this."""
    import torch

    from hepfastsim.validation.classifier import CylindricalResNet, regular_grid

    grid = regular_grid(B)
    assert grid == (9, 8, 8)
    torch.manual_seed(0)
    net = CylindricalResNet(grid, channels=4)
    x = torch.rand(3, 1 + int(np.prod(grid)))
    x[:, 1:] *= torch.rand(3, int(np.prod(grid))) > 0.5
    v = x[:, 1:].reshape(3, *grid)
    rolled = torch.cat([x[:, :1], torch.roll(v, 2, dims=2).reshape(3, -1)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(net.trunk(rolled), torch.roll(net.trunk(x), 1, dims=3), atol=1e-5, rtol=1e-5)
    assert regular_grid(builtin_binning("ds1-photons")) is None


def test_cnn_classifier_column(demo_samples):
    """The CNN column ("binary cls cnn"): two samples of one simulation are not told apart; the same showers with 30 %
    of every cell's energy moved one radial bin outwards are. A binning without a regular grid is a one-line error."""
    from hepfastsim.data.calo_io import ShowerDataset
    from hepfastsim.errors import HepFastSimError
    from hepfastsim.validation.evaluate import cnn_classifier

    ref, other = (d.subset(slice(0, 1500)) for d in demo_samples)
    same = cnn_classifier(ref, other, B, runs=1, epochs=4)
    v = other.showers.reshape(len(other), 9, 8, 8)
    moved = 0.3 * v[..., :-1]
    smeared = v.copy()
    smeared[..., :-1] -= moved
    smeared[..., 1:] += moved
    wide = cnn_classifier(ref, ShowerDataset(other.energies, smeared.reshape(len(other), -1)), B, runs=1, epochs=4)
    print("CNN AUC same", same.auc, "smeared", wide.auc)
    assert same.auc == pytest.approx(0.5, abs=0.06)
    assert wide.auc > 0.9
    assert CC.auc_columns({"classifier_cnn": wide.as_dict()})["auc_cnn"] == wide.auc
    with pytest.raises(HepFastSimError, match="same alpha x r grid"):
        cnn_classifier(ref, other, builtin_binning("ds1-photons"))


# ---------------------------------------------------------------- histograms and separation power
def test_separation_power_limits():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 20000)
    assert M.separation_power(a, rng.normal(0, 1, 20000)) < 0.005
    assert M.separation_power(a, a + 100, bins=np.linspace(-5, 105, 200)) == pytest.approx(1.0)


def test_separation_power_reports_what_falls_outside_the_range():
    """CaloChallenge normalises within the histogram range, so entries outside change nothing but the overflow."""
    edges = np.linspace(0.5, 1.5, 101)
    rng = np.random.default_rng(1)
    ref = rng.normal(1.0, 0.05, 10000)
    gen = np.r_[rng.normal(1.0, 0.05, 7000), np.full(3000, 5.0)]       # 30 % far outside
    s = CC.separation(np.histogram(ref, edges)[0], np.histogram(gen, edges)[0], len(ref), len(gen))
    assert s.value < 0.01
    assert s.overflow_generated == pytest.approx(0.3, abs=1e-9) and s.overflow_reference < 1e-3


def test_histogram_edges_are_calochallenges():
    b = builtin_binning("ds2")
    rng = np.random.default_rng(2)
    showers = rng.exponential(0.5, size=(50, b.n_voxels)).astype(np.float32)
    f = compute_features(showers, np.full(50, 1e4), b)
    e = CC.histogram_edges(f, b)
    assert len(e["E_tot/E_inc"]) == 101 and e["E_tot/E_inc"][0] == 0.5 and e["E_tot/E_inc"][-1] == 1.5
    assert (e["ec_x_0"][0], e["ec_x_0"][-1], len(e["ec_x_0"])) == (-30.0, 30.0, 101)
    assert (e["width_r_3"][-1], e["ec_r_3"][-1]) == (20.0, 42.0)
    assert e["e_layer_5"][0] == pytest.approx(0.5e-3 / 0.033) and len(e["e_layer_5"]) == 40
    assert e["e_layer_5"][-1] == pytest.approx(f.values["e_layer"][:, 5].max(), rel=1e-6)
    assert len(e["sparsity_0"]) == 21 and len(e["cell_E"]) == 50
    p = builtin_binning("ds1-pions")
    fp = compute_features(np.ones((3, p.n_voxels), np.float32), np.full(3, 1e4), p)
    ep = CC.histogram_edges(fp, p)
    assert ep["ec_x_12"][-1] == 500.0 and ep["ec_x_1"][-1] == 100.0 and ep["ec_r_14"][-1] == 1500.0


def test_published_rows_are_shipped():
    rows = CC.published_rows(builtin_binning("ds2"))
    dream = next(r for r in rows if r["submission"] == "CaloDREAM")
    assert dream["binary cls low"] == pytest.approx(0.531, abs=1e-3)
    assert any(r["submission"] == "GEANT4" for r in rows)


# ---------------------------------------------------------------- other metrics
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
    r = interpolation(other, ref, B, 3000.0, protocol="quick", classifier_runs=1, classifier_epochs=5)
    assert r["n_reference"] >= 50 and 0.3 < r["auc_high"] < 0.7
    from hepfastsim.errors import HepFastSimError

    with pytest.raises(HepFastSimError, match="within 5 % of 50000"):
        interpolation(other, ref, B, 50000.0)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory, demo_samples):
    """An evaluation (quick protocol, 3 epochs) of two simulation samples and its report."""
    from hepfastsim.validation.evaluate import evaluate, sample_features
    from hepfastsim.validation.report import write_report

    ref, other = (d.subset(slice(0, 1500)) for d in demo_samples)
    feats = sample_features(ref, other, B)
    m = evaluate(ref, other, B, protocol="quick", classifier_runs=1, classifier_epochs=3, features=feats)
    return m, write_report(tmp_path_factory.mktemp("report"), ref, other, B, m, features=feats)


def test_evaluate_end_to_end_row_and_report(demo_report):
    m, path = demo_report
    row = m["calochallenge_row"]
    assert set(CC.TABLE_COLUMNS) <= set(row) and row["auc_low_std"] is None      # one run: no spread quoted
    assert m["separation_power"]["cell_E"]["overflow_reference"] > 0.5           # empty voxels are outside
    text = path.read_text()
    assert "CaloDREAM" in text and "Geant4" in text and "(1 training" in text
    assert re.search(r"± 0\.0+(?![0-9])", text) is None          # no spread printed as an exact zero


def test_evaluate_without_classifiers_gives_the_distances_alone():
    """classifier_runs=0 (benchmarks re-scoring FPD/KPD without retraining the classifiers): no AUC, the rest kept."""
    from hepfastsim.data.calo_io import ShowerDataset
    from hepfastsim.validation.evaluate import evaluate

    rng = np.random.default_rng(1)
    e = rng.uniform(1000.0, 5000.0, 400)
    ref, gen = (ShowerDataset(e, (rng.exponential(0.1, (400, B.n_voxels)) * e[:, None] / 1000).astype(np.float32))
                for _ in range(2))
    m = evaluate(ref, gen, B, fast=True, classifier_runs=0)
    assert "classifier_low" not in m and np.isfinite(m["fpd"]) and np.isfinite(m["kpd"])
    assert m["calochallenge_row"]["auc_low"] is None and m["calochallenge_row"]["fpd_x1e3"] == 1e3 * m["fpd"]


def test_report_panels_keep_their_texts_apart():
    """A grid of (histogram, ratio) panels as the report draws them, with the longest titles it writes (three lines:
    name, separation power, overflow) and log axes: no title, axis label or tick label of one panel overlaps a text
    of another, and every text lies inside the figure (the report's pages once had labels running into the next
    row's titles)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.style import context
    import mplhep as hep

    from hepfastsim.validation.report import _panel_grid, _ratio_hist

    rng = np.random.default_rng(0)
    names = [f"e_layer_{i}" for i in range(9)]
    sep = {"value": 0.123, "overflow_reference": 0.012, "overflow_generated": 0.345}
    with context(hep.style.ROOT):
        fig, pairs = _panel_grid(names)
        for (top, bot), name in zip(pairs, names):
            _ratio_hist(top, bot, rng.lognormal(3, 1, 500), rng.lognormal(3, 1.1, 500), name,
                        np.geomspace(1e-2, 1e4, 30), sep=sep, log_x=True)
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)

    def drawn(labels, lim, i):   # tick labels inside the view limits (matplotlib draws only those)
        lo, hi = sorted(lim)
        tol = 1e-9 * max(abs(lo), abs(hi))
        return [t for t in labels if lo - tol <= t.get_position()[i] <= hi + tol]

    page = fig.bbox
    boxes = []   # (panel, text bbox)
    for k, (top, bot) in enumerate(pairs):
        texts = [top.title, top.yaxis.label, bot.xaxis.label, bot.yaxis.label]
        texts += drawn(top.get_yticklabels(), top.get_ylim(), 1) + drawn(bot.get_xticklabels(), bot.get_xlim(), 0)
        texts += drawn(bot.get_yticklabels(), bot.get_ylim(), 1)
        for t in texts:
            if t.get_visible() and t.get_text():
                bb = t.get_window_extent(renderer)
                assert page.x0 <= bb.x0 and bb.x1 <= page.x1 and page.y0 <= bb.y0 and bb.y1 <= page.y1, (k, t.get_text())
                boxes.append((k, bb))
    clashes = [(i, j) for a, (i, bi) in enumerate(boxes) for j, bj in boxes[a + 1:] if i != j and bi.overlaps(bj)]
    assert not clashes, clashes[:5]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian: apt-get install chromium) for the screenshot test")
def test_report_renders_in_headless_chromium(demo_report, tmp_path):
    """The page as a physicist sees it: rendered by a real browser, the screenshot holds the summary table and
    the figures (dark pixels on most of the page, not an empty or broken page)."""
    from PIL import Image

    _, path = demo_report
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1400,4000", f"--screenshot={shot}", path.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (4000, 1400)
    rows_with_ink = (img < 128).mean(axis=1) > 0.002
    assert rows_with_ink[:300].mean() > 0.3            # title and summary table at the top
    assert rows_with_ink.mean() > 0.5                  # text and figures fill the page
    broken = Image.open(shot).convert("RGB").getcolors(1 << 20)
    assert broken is None or len(broken) > 50          # figures, not a blank page of one or two colours


def test_auc_per_energy_decade_finds_the_decade_that_differs():
    """A mismatch only above 10 GeV: the same classifiers' AUC on the val rows of each decade is ~0.5 below and
    clearly above 0.5 above (the per-decade rows of the dataset-2 table)."""
    from hepfastsim.validation.classifier import Inputs
    from hepfastsim.validation.evaluate import decade_edges

    rng = np.random.default_rng(0)
    n = 3000
    e1, e2 = 10 ** rng.uniform(3, 5, n), 10 ** rng.uniform(3, 5, n)
    a, b = rng.normal(size=(n, 5)), rng.normal(size=(n, 5))
    b[e2 > 1e4, 0] += 1.0
    edges = decade_edges(e1)
    assert np.allclose(edges, (1e3, 1e4, 1e5)) and decade_edges(np.array([2e3, 9e3])) is None
    r = classifier_auc(Inputs(np.column_stack([np.log10(e1), a]), e1), Inputs(np.column_stack([np.log10(e2), b]), e2),
                       protocol="quick", runs=2, energy_bins=edges)
    low, high = r.energy_bins["auc"]
    assert abs(low - 0.5) < 0.06 and high > 0.66, r.energy_bins
    assert sum(r.energy_bins["n_val"]) == 2 * r.n_per_sample["val"]
