"""Issue: RICH particle identification — the built-in RICH simulation (thresholds, identification, LHCb's
efficiencies) and the PID table readers."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import check_report_html

from hepfastsim.data.pid_io import PIDDataset, read_pid, write_pid
from hepfastsim.errors import HepFastSimError
from hepfastsim.fullsim.rich import RICH1, RICH2, SPECIES, cherenkov, in_acceptance, sample_tracks, simulate_rich
from hepfastsim.validation.pid import calibration_like, compare_with_lhcb


def _tracks(particle: str, n: int, p_mev: float, eta: float = 3.5, ntracks: float = 150.0) -> tuple[np.ndarray, np.ndarray]:
    return np.full(n, SPECIES.index(particle)), np.column_stack([np.full(n, p_mev), np.full(n, eta),
                                                                 np.full(n, ntracks), np.ones(n)])


def test_below_both_thresholds_no_light_and_no_kaon_pion_information():
    """A 2 GeV pion is below threshold in both radiators (2.6 / 4.4 GeV): no signal photons are expected for it
    or for a kaon, so the pion and kaon hypotheses predict the same and DLLK is 0 (up to the rare decay in
    flight to a muon, which radiates above 2.0 GeV in RICH1)."""
    for radiator in (RICH1, RICH2):
        assert cherenkov(2000.0, "pi", radiator) == (0.0, 0.0)
        assert cherenkov(2000.0, "K", radiator) == (0.0, 0.0)
    s, c = _tracks("pi", 20_000, 2000.0)
    dll = simulate_rich(s, c, seed=1)
    assert np.mean(dll[:, 2] == 0.0) > 0.99
    assert abs(float(np.mean(dll[:, 2]))) < 0.01
    # above threshold the same pions are told from kaons
    s, c = _tracks("pi", 20_000, 8000.0)
    assert np.mean(simulate_rich(s, c, seed=1)[:, 2] < 0) > 0.9


def test_thresholds_and_saturated_angles():
    """Thresholds p = m / sqrt(n^2 - 1) and the beta = 1 angles of C4F10 (~53 mrad) and CF4 (~32 mrad)."""
    for radiator, pi_threshold in ((RICH1, 2.64e3), (RICH2, 4.41e3)):
        assert cherenkov(0.99 * pi_threshold, "pi", radiator)[1] == 0.0
        assert cherenkov(1.01 * pi_threshold, "pi", radiator)[1] > 0.0
    assert cherenkov(1e6, "e", RICH1)[0] == pytest.approx(52.9, abs=0.2)
    assert cherenkov(1e6, "e", RICH2)[0] == pytest.approx(31.6, abs=0.2)
    assert cherenkov(1e6, "e", RICH1)[1] == pytest.approx(RICH1.n_sat, rel=1e-3)


def test_50_gev_kaon_identified():
    s, c = _tracks("K", 20_000, 50_000.0)
    assert np.mean(simulate_rich(s, c, seed=2)[:, 2] > 0) > 0.9


def test_no_rich_information_outside_acceptance():
    s, c = _tracks("K", 1000, 50_000.0, eta=5.4)     # 9 mrad: inside neither radiator
    assert not in_acceptance(c[:, 1]).any()
    assert np.all(simulate_rich(s, c, seed=3) == 0.0)


def test_tuned_efficiencies_match_lhcb_2018():
    """Kaon DLLK > 0 and pion DLLK < 0 efficiencies of calibration-like tracks within 0.03 of LHCb's 2018 values
    in every momentum bin (plus three binomial errors of this smaller sample); >= 10 000 tracks per second."""
    out = []
    for k, particle in enumerate(("K", "pi")):
        s, c = sample_tracks(150_000, 20 + k, species=(particle,))
        c[:, 0] = np.exp(np.random.default_rng(30 + k).uniform(np.log(3000.0), np.log(100_000.0), len(c)))
        t0 = time.perf_counter()
        d = simulate_rich(s, c, seed=40 + k)
        rate = len(c) / (time.perf_counter() - t0)
        keep = calibration_like(c, in_acceptance(c[:, 1]).any(1))
        out.append((c[keep], d[keep]))
    res = compare_with_lhcb(*out)
    for name in ("K DLLK > 0", "pi DLLK < 0"):
        r = res[name]
        diff = np.abs(np.asarray(r["simulated"]) - np.asarray(r["lhcb"]))
        assert np.all(diff < 0.03 + 3 * np.asarray(r["error"])), (name, np.round(diff, 3))
    assert rate > 10_000


def test_bad_rich_input():
    s, c = _tracks("K", 3, 50_000.0)
    c[1, 0] = np.nan
    with pytest.raises(HepFastSimError, match="NaN"):
        simulate_rich(s, c, seed=0)
    with pytest.raises(HepFastSimError, match="unknown particle 'kaon'"):
        sample_tracks(10, 0, species=("kaon",))


@pytest.mark.parametrize("suffix", [".h5", ".csv", ".root", ".parquet"])
def test_pid_table_round_trip(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (pip install 'hepfastsim[parquet]')")
    s, c = sample_tracks(500, 5)
    ds = PIDDataset(c, simulate_rich(s, c, seed=6), species=s)
    path = write_pid(tmp_path / f"tracks{suffix}", ds)
    back = read_pid(path)
    np.testing.assert_allclose(back.conditions, ds.conditions, rtol=1e-8)
    np.testing.assert_allclose(back.responses, ds.responses, rtol=1e-6, atol=1e-6)
    assert np.array_equal(back.species, s) and back.of_species("K").species.tolist() == [3] * int((s == 3).sum())
    with pytest.raises(HepFastSimError, match="exists"):
        write_pid(path, ds)                                   # never silently overwritten


def test_pid_reader_errors(tmp_path):
    s, c = sample_tracks(50, 5)
    ds = PIDDataset(c, simulate_rich(s, c, seed=6), species=s)
    path = write_pid(tmp_path / "t.root", ds)
    with pytest.raises(HepFastSimError, match="no column 'DLLpi'; columns:"):
        read_pid(path, responses=("DLLpi",))
    bad = ds.subset(slice(None))
    bad.responses = bad.responses.copy()
    bad.responses[3, 2] = np.nan
    with pytest.raises(HepFastSimError, match="response column 'DLLK' has 1 NaN"):
        read_pid(write_pid(tmp_path / "nan.csv", bad))
    with pytest.raises(HepFastSimError, match="PID file not found"):
        read_pid(tmp_path / "missing.h5")
    (tmp_path / "junk.root").write_bytes(b"not a root file")
    with pytest.raises(HepFastSimError, match="not a readable root table"):
        read_pid(tmp_path / "junk.root")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(HepFastSimError, match="unknown PID table format"):
        read_pid(tmp_path / "t.xlsx")


def test_cli_pid_simulate_train_generate_evaluate(tmp_path):
    """--task pid through simulate, info, train, generate and evaluate (binned resampling); bad input is one line."""
    import json

    from typer.testing import CliRunner

    from hepfastsim.cli import app

    run = lambda *a: CliRunner().invoke(app, [str(x) for x in a])
    r = run("simulate", "--task", "pid", "--n", 6000, "--species", "K,pi", "--out", tmp_path / "tracks.h5", "--seed", 1)
    assert r.exit_code == 0, r.output
    r = run("simulate", "--task", "pid", "--n", 3000, "--species", "K,pi", "--out", tmp_path / "test.root", "--seed", 2)
    assert r.exit_code == 0, r.output
    r = run("info", tmp_path / "test.root")
    assert r.exit_code == 0 and "tracks:    3000" in r.output and "hasRich" in r.output
    r = run("train", "--task", "pid", "--data", tmp_path / "tracks.h5", "--species", "K", "--model", "binned",
            "--out", tmp_path / "binned.pt", "--quiet")
    assert r.exit_code == 0, r.output
    r = run("generate", "--model", tmp_path / "binned.pt", "--like", tmp_path / "test.root", "--out", tmp_path / "gen.csv")
    assert r.exit_code == 0, r.output
    r = run("evaluate", "--task", "pid", "--species", "K", "--reference", tmp_path / "test.root", "--generated",
            tmp_path / "gen.csv", "--out", tmp_path / "rep", "--runs", 1, "--epochs", 2)
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m["n_reference"] == m["n_generated"] and m["efficiency_bins"] > 50 and (tmp_path / "rep" / "report.html").exists()
    h = m["dll_histograms"]
    assert set(h["reference"]) == {"DLLe", "DLLmu", "DLLK", "DLLp"} and len(h["reference"]["DLLK"]) == 6
    assert check_report_html(tmp_path / "rep" / "report.html") == 2       # both figures embedded and readable
    r = run("simulate", "--task", "pid", "--n", 10, "--species", "K,kaon", "--out", tmp_path / "x.h5")
    assert r.exit_code == 2 and "unknown particle 'kaon'" in r.output
    r = run("train", "--task", "pid", "--data", tmp_path / "tracks.h5", "--responses", "DLLK,DLLx", "--model", "binned",
            "--out", tmp_path / "b2.pt", "--quiet")
    assert r.exit_code == 2 and "no column 'DLLx'" in r.output and "Traceback" not in r.output


def test_signed_preprocessing_round_trip_and_onnx_graph():
    """DLLs of either sign: asinh preprocessing inverts exactly, in numpy and in the exported torch graph."""
    import torch

    from hepfastsim.data.preprocessing import ConditionTransform, InverseResponse, ResponseTransform

    x = np.array([[-250.0, -1.5, 0.0, 3.0], [0.2, 40.0, -0.01, 120.0]] * 50, np.float32)
    c = np.ones((len(x), 1))
    tf = ResponseTransform(eps=1.0, signed=True).fit(x, np.ones(len(x)))
    u = tf.forward(x, np.ones(len(x)))
    np.testing.assert_allclose(tf.inverse(u, np.ones(len(x))), x, rtol=1e-4, atol=1e-4)
    graph = InverseResponse(tf, ConditionTransform((False,)).fit(c), None)
    np.testing.assert_allclose(graph(torch.from_numpy(u), torch.zeros(len(x), 1)).numpy(), x, rtol=1e-4, atol=1e-4)


def test_binned_resampling_draws_from_the_request_bin():
    from hepfastsim.data.pid_io import PIDDataset
    from hepfastsim.models import get_family
    from hepfastsim.tasks import pid_samples, pid_spec

    s, c = sample_tracks(4000, 8, species=("K",))
    d = simulate_rich(s, c, seed=9)
    ds = PIDDataset(c, d, species=s)
    m = get_family("binned")(pid_spec(ds, "K"), bins=4).fit(pid_samples(ds))
    assert [len(e) for e in m.edges_] == [3, 3, 3, 1]                # quantile bins; the charge one per value
    req = np.array([[80_000.0, 3.0, 150.0, 1.0]] * 300)
    got = m.sample(req, seed=1)
    cell = m._cell(req[:1])[0]
    members = d[np.all(m._cell(c) == cell, axis=1)]
    assert all((members == row).all(1).any() for row in got)          # every answer a training track of that bin
    assert len(np.unique(got, axis=0)) > 0.6 * len(members) > 10        # drawn at random among them


@pytest.mark.parametrize("family, opts", [("gan", {"hidden": 16, "layers": 1, "epochs": 1, "latent": 4}),
                                          ("flow", {"hidden": 16, "transforms": 2, "epochs": 1})])
def test_pid_model_onnx_parity(tmp_path, family, opts):
    """A PID model (signed responses, no energy scale) exports to ONNX and agrees with torch at another batch size
    than the one traced: the GAN and the one-stage spline flow."""
    from hepfastsim.bench.export import OnnxSampler, export_onnx, torch_from_latent
    from hepfastsim.data.pid_io import PIDDataset
    from hepfastsim.models import get_family
    from hepfastsim.tasks import pid_samples, pid_spec

    s, c = sample_tracks(3000, 8, species=("K",))
    ds = PIDDataset(c, simulate_rich(s, c, seed=9), species=s)
    m = get_family(family)(pid_spec(ds, "K"), **opts).fit(pid_samples(ds))
    z = np.random.default_rng(0).standard_normal((7, m.latent_dim())).astype(np.float32)
    got = OnnxSampler(m, export_onnx(m, tmp_path / "k.onnx")).run_latent(c[:7], z)
    ref = torch_from_latent(m, c[:7], z)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    assert (got < 0).any() and (got > 0).any()                 # DLLs of either sign come out of the graph


def test_dllp_modelled_as_difference_keeps_exact_ties():
    """DLLp - DLLK is the modelled variable: tracks with DLLp == DLLK (below the kaon and proton thresholds) come back
    with exactly equal values, in numpy and in the exported torch graph; other values invert to rounding."""
    import torch

    from hepfastsim.data.preprocessing import ConditionTransform, InverseResponse, ResponseTransform

    x = np.array([[-25.0, -1.5, 7.25, 7.25], [0.2, 40.0, -3.0, 12.0], [1.0, 0.0, 0.0, 0.0]] * 40, np.float32)
    one = np.ones(len(x))
    tf = ResponseTransform(eps=1.0, signed=True, differences=((3, 2),)).fit(x, one)
    u = tf.forward(x, one)
    assert len(np.unique(u[:, 3].round(6))) == 2                     # the tie is one value of the modelled difference
    back = tf.inverse(u, one)
    np.testing.assert_allclose(back, x, rtol=1e-4, atol=1e-4)
    assert np.all(back[0::3, 3] == back[0::3, 2]) and np.all(back[2::3] [:, 1:] == 0.0)   # exact ties and zeros
    graph = InverseResponse(tf, ConditionTransform((False,)).fit(one[:, None]), None)
    g = graph(torch.from_numpy(u), torch.zeros(len(x), 1)).numpy()
    np.testing.assert_allclose(g, back, rtol=1e-5, atol=1e-5)
    assert np.all(g[0::3, 3] == g[0::3, 2])
    assert ResponseTransform.from_state(tf.state()).differences == ((3, 2),)
    # a generated value a rounding error away from the data's exact zero comes out exactly zero (and a tie stays one);
    # a small but real value does not
    zero_u = (np.arcsinh(0.0) - tf.mean) / tf.std
    near = np.tile(zero_u, (2, 1)).astype(np.float32)
    near[0] += 3e-6
    near[1] += np.float32(1e-3) / tf.std.astype(np.float32)
    out, out_g = tf.inverse(near, np.ones(2)), graph(torch.from_numpy(near), torch.zeros(2, 1)).numpy()
    assert np.all(out[0] == 0.0) and np.all(out_g[0] == 0.0)
    assert np.all(np.abs(out[1, :3]) > 5e-4) and np.all(np.abs(out_g[1, :3]) > 5e-4)


def test_calibration_in_momentum_bins_reproduces_exact_ties():
    """A small flow-matching model calibrated in P bins generates DLLp == DLLK exactly for about the fraction of
    tracks that have it in the simulation (below the kaon and proton thresholds); an uncalibrated continuous
    model never does. An unknown calibration condition is a one-line error."""
    from hepfastsim.models import get_family
    from hepfastsim.models.options import CalibrationOptions
    from hepfastsim.tasks import pid_samples, pid_spec
    from hepfastsim.train import Trainer

    s, c = sample_tracks(6000, 21, species=("K",))
    keep = in_acceptance(c[:, 1]).any(1)
    ds = PIDDataset(c[keep], simulate_rich(s[keep], c[keep], seed=22), species=s[keep])
    spec = pid_spec(ds, "K")
    assert spec.response_differences == ((3, 2),)
    tie = (ds.responses[:, 3] == ds.responses[:, 2]).mean()
    assert tie > 0.2
    opts = dict(hidden=32, layers=2, epochs=3, batch_size=256, steps=2, seed=0)
    plain = Trainer(progress=False).fit(get_family("fm")(spec, **opts), pid_samples(ds))
    g = plain.sample(ds.conditions, seed=1)
    assert (g[:, 3] == g[:, 2]).mean() < 0.01
    cal = CalibrationOptions(calibrate=True, calibration_condition="P", calibration_bins=4, calibration_samples=len(ds))
    model = Trainer(progress=False, calibration=cal).fit(get_family("fm")(spec, **opts), pid_samples(ds))
    assert model.calibration_.column == 0                            # bins of P, the first condition
    g = model.sample(ds.conditions, seed=1)
    assert abs((g[:, 3] == g[:, 2]).mean() - tie) < 0.05
    quarter = np.digitize(ds.conditions[:, 0], np.quantile(ds.conditions[:, 0], [0.25, 0.5, 0.75]))
    for q in range(4):   # ties belong to slow tracks: per momentum quarter, not only on average
        sel = quarter == q
        want, got = (ds.responses[sel, 3] == ds.responses[sel, 2]).mean(), (g[sel, 3] == g[sel, 2]).mean()
        assert abs(got - want) < 0.06, (q, want, got)
    with pytest.raises(HepFastSimError, match="calibration_condition 'E' is not a condition of this task"):
        Trainer(progress=False, calibration=CalibrationOptions(calibrate=True, calibration_condition="E")).fit(
            get_family("fm")(spec, **{**opts, "epochs": 1}), pid_samples(ds))


def test_flow_on_pid_is_one_spline_flow_that_follows_the_momentum():
    """The flow family on DLLs (either sign: no layer energies) is one conditional spline flow over the four
    DLLs; trained briefly on DLLs whose sign and spread change with momentum, it reproduces the DLLK > 0 fraction
    and the mean DLLK in each momentum range."""
    from hepfastsim.models import get_family
    from hepfastsim.tasks import pid_samples, pid_spec
    from hepfastsim.train import Trainer

    s, c = sample_tracks(6000, 31, species=("K",))
    rng = np.random.default_rng(3)
    shift = 20.0 * np.tanh(np.log(c[:, 0] / 20_000.0))          # negative below 20 GeV, positive above
    dllk = shift + rng.normal(0.0, 5.0, len(c)) * (1.0 + c[:, 0] / 50_000.0)
    dll = np.column_stack([rng.normal(-5.0, 2.0, len(c)), rng.normal(-2.0, 1.0, len(c)), dllk,
                           dllk + rng.normal(3.0, 4.0, len(c))])
    ds = PIDDataset(c, dll.astype(np.float32), species=s)
    model = get_family("flow")(pid_spec(ds, "K"), hidden=32, transforms=2, epochs=8, batch_size=128, lr=3e-3,
                                                 ema_decay=0.9, seed=0)
    Trainer(progress=False).fit(model, pid_samples(ds))
    assert model.latent_dim() == 4 and not model.spec.groups
    g = model.sample(ds.conditions, seed=1)
    assert np.isfinite(g).all()
    p = ds.conditions[:, 0]
    for sel in (p < 8000.0, (p > 15_000.0) & (p < 30_000.0), p > 60_000.0):
        assert abs((g[sel, 2] > 0).mean() - (dll[sel, 2] > 0).mean()) < 0.06
        assert abs(g[sel, 2].mean() - dll[sel, 2].mean()) < 2.0, (g[sel, 2].mean(), dll[sel, 2].mean())
