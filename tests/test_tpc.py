"""TPC task: digits reader (window, centring, errors), moments, chi2, split and the CLI path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.tpc_io import TPCDataset, read_digits, read_tpc, select_split, split_indices, write_digits
from hepfastsim.errors import HepFastSimError
from hepfastsim.tasks import tpc_spec
from hepfastsim.validation.tpc import chi2_terms, cluster_moments

from conftest import check_report_html

THREE_EVENTS = """params: 0.0 0.0 10.0 20.0 23 0.5
 20 10 2.0  21 10 2.0
params: 5.0 -5.0 100.7 30.3 23 0.5
 30 100 1.0  30 101 3.0
params: -5.0 5.0 50.2 25.9 23 0.5
 24 49 1.0  26 51 1.0  40 50 7.0
"""


@pytest.fixture
def three(tmp_path):
    p = tmp_path / "three.dat"
    p.write_text(THREE_EVENTS)
    return p


def test_reader_window_and_centring(three):
    ds = read_digits(three)
    assert ds.responses.shape == (3, 8, 16)
    assert ds.names[2:4] == ("drift_length", "pad_coordinate")
    # pad relative to int(pad_coordinate) from -3, time relative to int(drift_length) from -7
    assert ds.responses[0, 3, 7] == 2.0 and ds.responses[0, 4, 7] == 2.0
    assert ds.responses[1, 3, 7] == 1.0 and ds.responses[1, 3, 8] == 3.0
    assert ds.responses[2, 2, 6] == 1.0 and ds.responses[2, 4, 8] == 1.0
    assert ds.responses.sum() == pytest.approx(10.0)        # the pad-40 digit lies outside the window
    assert ds.outside_fraction == pytest.approx(7.0 / 17.0)


def test_moments_by_hand(three):
    m = cluster_moments(read_digits(three).responses)
    expected = np.array([
        [3.5, 7.0, 0.25, 0.0, 0.0, 4.0],
        [3.0, 7.75, 0.0, 0.1875, 0.0, 4.0],
        [3.0, 7.0, 1.0, 1.0, 1.0, 2.0],
    ])
    np.testing.assert_allclose(m, expected, atol=1e-12)


def test_v2_fixed_window(tmp_path):
    p = tmp_path / "v2.dat"
    p.write_text("params: 1.5 16.9\n 40 265 5.0  49 279 6.0  50 270 1.0\n")
    ds = read_digits(p)
    assert ds.responses.shape == (1, 10, 15) and not ds.centred
    assert ds.responses[0, 0, 0] == 5.0 and ds.responses[0, 9, 14] == 6.0
    assert ds.outside_fraction == pytest.approx(1 / 12)


def test_write_read_round_trip(three, tmp_path):
    ds = read_digits(three)
    out = write_digits(tmp_path / "back.dat", ds)
    back = read_digits(out)
    np.testing.assert_allclose(back.responses, ds.responses, rtol=1e-4)
    np.testing.assert_allclose(back.params, ds.params, rtol=1e-5)
    with pytest.raises(HepFastSimError, match="exists"):
        write_digits(out, ds)


@pytest.mark.parametrize("text, msg", [
    (" 1 2 3.0\n", "expected a 'params:' line"),
    ("params: 1.0 2.0 x 4 23 0.5\n 1 2 3.0\n", "'x' is not a number"),
    ("params: 1.0 2.0 3.0\n 1 2 3.0\n", "3 parameters"),
    ("params: 1.0 2.0\n 1 2\n", "not ipad itime amplitude triplets"),
    ("params: 1.0 2.0\n 1 2 -3.0\n", "negative amplitude"),
    ("params: 1.0 2.0\nparams: 1.0 2.0\n 1 2 3\n", "missing the digits line"),
])
def test_malformed_lines(tmp_path, text, msg):
    p = tmp_path / "bad.dat"
    p.write_text(text)
    with pytest.raises(HepFastSimError, match=msg):
        read_digits(p)


def test_missing_file(tmp_path):
    with pytest.raises(HepFastSimError, match="not found"):
        read_tpc(tmp_path / "nope.dat")


def test_fixed_split():
    a, b = split_indices(1000), split_indices(1000)
    assert [len(a[k]) for k in ("train", "val", "test")] == [700, 100, 200]
    allidx = np.concatenate(list(a.values()))
    assert len(np.unique(allidx)) == 1000
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _blobs(n: int, seed: int, widen: float = 1.0) -> TPCDataset:
    """Synthetic TPC-like clusters: a Gaussian blob whose time position follows the drift-length fraction."""
    rng = np.random.default_rng(seed)
    params = np.column_stack([rng.uniform(-20, 20, n), rng.uniform(-60, 60, n), rng.uniform(30, 300, n),
                              rng.uniform(27, 42, n), np.full(n, 23.0), np.full(n, 0.48)])
    i = np.arange(8)[None, :, None]
    j = np.arange(16)[None, None, :]
    ci = 3 + (params[:, 3] % 1)[:, None, None]
    cj = 7 + (params[:, 2] % 1)[:, None, None]
    sw = (0.7 + 0.02 * np.abs(params[:, 0]))[:, None, None] * widen
    amp = rng.uniform(300, 800, n)[:, None, None]
    r = amp * np.exp(-0.5 * ((i - ci) ** 2 / 0.6**2 + (j - cj) ** 2 / sw**2)) / (2 * np.pi * 0.6 * sw)
    r = np.where(r >= 1.0, r, 0.0).astype(np.float32)
    return TPCDataset(r, params, ("crossing_angle", "dip_angle", "drift_length", "pad_coordinate", "row", "pT"),
                      (-3, 5), (-7, 9), True)


def test_chi2_zero_for_identical_and_large_for_wider():
    a, b = _blobs(2000, 1), _blobs(2000, 2)
    same, ndf = chi2_terms(a, a)
    assert sum(same.values()) == 0.0 and ndf > 0
    indep, _ = chi2_terms(a, b)
    wide, _ = chi2_terms(a, _blobs(2000, 2, widen=1.3))
    assert 0.5 * ndf < sum(indep.values()) < 2.0 * ndf      # two samples of one 'simulation': chi2/ndf ~ 1
    assert sum(wide.values()) > 5 * sum(indep.values())


def test_spec_conditions_and_threshold():
    spec = tpc_spec(_blobs(100, 0))
    assert spec.task == "tpc" and spec.shape == (8, 16) and spec.n_features == 128
    assert spec.fraction_conditions == (False, False, True, True, False, False)
    assert spec.threshold == pytest.approx(1.0)


def test_cli_train_generate_evaluate(tmp_path):
    data = write_digits(tmp_path / "blobs.dat", _blobs(400, 3))
    cfg = tmp_path / "gan.yaml"
    cfg.write_text("hidden: 32\nlayers: 2\nlatent: 8\nepochs: 2\nbatch_size: 64\naux_weight: 0.0\n")
    r = CliRunner()
    res = r.invoke(app, ["train", "--task", "tpc", "--data", str(data), "--model", "gan", "--config", str(cfg),
                         "--out", str(tmp_path / "m.pt"), "--quiet"])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["generate", "--model", str(tmp_path / "m.pt"), "--like", str(data), "--split", "test",
                         "--out", str(tmp_path / "gen.h5")])
    assert res.exit_code == 0, res.output
    gen = read_tpc(tmp_path / "gen.h5")
    ref = select_split(read_tpc(data), "test")
    assert gen.responses.shape == ref.responses.shape == (80, 8, 16)
    np.testing.assert_allclose(gen.params, ref.params)
    assert np.all(np.isfinite(gen.responses)) and gen.responses.min() >= 0
    res = r.invoke(app, ["evaluate", "--task", "tpc", "--reference", str(data), "--split", "test",
                         "--generated", str(tmp_path / "gen.h5"), "--out", str(tmp_path / "rep"), "--epochs", "3",
                         "--max-events", "60"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m["chi2"] > 0 and 0.0 <= m["classifier_low"]["auc"] <= 1.0
    assert m["n_reference"] == m["n_generated"] == 60       # the stated sample size, both samples
    assert m["split"] == {"reference": "test", "sizes": {"train": 280, "val": 40, "test": 80}, "max_events": 60}
    assert (tmp_path / "rep" / "tpc_profiles.png").stat().st_size > 10_000
    assert check_report_html(tmp_path / "rep" / "report.html") == 3
    # a TPC model refuses a calorimeter request and data of another window
    res = r.invoke(app, ["generate", "--model", str(tmp_path / "m.pt"), "--energies", "1000", "--out", str(tmp_path / "x.h5")])
    assert res.exit_code == 2 and "--like" in res.output
    v2 = tmp_path / "v2.dat"
    v2.write_text("params: 1.5 16.9\n 40 265 5.0\n" * 5)
    res = r.invoke(app, ["generate", "--model", str(tmp_path / "m.pt"), "--like", str(v2), "--out", str(tmp_path / "y.h5")])
    assert res.exit_code == 2 and "geometry" in res.output


def test_track_features_by_hand():
    """Crossing 45 deg, dip 45 deg: 1 pad and sqrt(2) in z per unit row height; the tilt's sign follows both."""
    from hepfastsim.data.preprocessing import tpc_track_features

    names = ("crossing_angle", "dip_angle", "drift_length", "pad_coordinate", "row", "pT")
    c = np.array([[45.0, 45.0, 100.0, 30.0, 23, 0.5], [-45.0, 45.0, 25.0, 30.0, 23, 0.5], [0.0, -60.0, 0.0, 30.0, 23, 0.5]])
    abs_u, abs_w, u2, w2, uw, root_drift = tpc_track_features(c, names)
    np.testing.assert_allclose(abs_u, [1.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(abs_w, [np.sqrt(2), np.sqrt(2), np.sqrt(3)], rtol=1e-12)
    np.testing.assert_allclose(u2, abs_u**2, atol=1e-12)
    np.testing.assert_allclose(w2, abs_w**2, rtol=1e-12)
    np.testing.assert_allclose(uw, [np.sqrt(2), -np.sqrt(2), 0.0], atol=1e-12)
    np.testing.assert_allclose(root_drift, [10.0, 5.0, 0.0])
    # the 2-parameter files have no drift length: five features
    assert len(tpc_track_features(c[:, :2], names[:2])) == 5


def test_spec_feeds_track_features_and_checkpoint_keeps_them(tmp_path):
    from hepfastsim.data.preprocessing import ConditionTransform
    from hepfastsim.models import get_family, load_generator
    from hepfastsim.tasks import tpc_samples

    ds = _blobs(200, 0)
    spec = tpc_spec(ds)
    assert spec.condition_features == "tpc_track"
    gen = get_family("gan")(spec, hidden=16, layers=2, latent=4, epochs=1, batch_size=64, aux_weight=0.0)
    gen.fit(tpc_samples(ds), tpc_samples(ds))
    assert gen.c_tf_.n_out == 6 + 2 + 6           # parameters, two sub-bin positions, six track features
    gen.save(tmp_path / "m.pt")
    back = load_generator(tmp_path / "m.pt")
    np.testing.assert_array_equal(back.sample(ds.params[:5], seed=3), gen.sample(ds.params[:5], seed=3))
    state = gen.c_tf_.state()
    with pytest.raises(HepFastSimError, match="unknown condition feature map 'nope'"):
        ConditionTransform.from_state({**state, "features": "nope"})
