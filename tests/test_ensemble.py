"""Ensembles: mixture sampling, checkpoints, and the band that measures the model's systematic uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import builtin_binning
from hepfastsim.models import get_family, load_generator
from hepfastsim.tasks import calo_samples, calo_spec
from hepfastsim.validation.ensemble import (
    ensemble_bands,
    ensemble_summary,
    prediction_factor,
)
from hepfastsim.validation.features import compute_features

B = builtin_binning("demo")


def test_ensemble_of_libraries_round_trip(demo_samples, tmp_path):
    ref, other = demo_samples
    ens = get_family("ensemble")(calo_spec(B), base="library", members=3, options={"per_bin": 100})
    ens.set_params(seed=4).fit(calo_samples(ref))
    assert len(ens.members_) == 3
    # members trained with different seeds store different showers
    assert not np.array_equal(ens.members_[0].x_lib_, ens.members_[1].x_lib_)
    x = ens.sample(other.energies[:300], seed=1)
    assert x.shape == (300, B.n_voxels) and set(np.unique(ens.last_members)) == {0, 1, 2}
    back = load_generator(ens.save(tmp_path / "ens.pt"))
    assert np.array_equal(back.sample(other.energies[:300], seed=1), x)
    with pytest.raises(HepFastSimError, match="members.*greater than or equal to 2"):
        get_family("ensemble")(calo_spec(B), members=1)
    with pytest.raises(HepFastSimError, match="unknown model family"):
        get_family("ensemble")(calo_spec(B), base="nope")


def test_bootstrap_members_see_resampled_training_sets(tiny):
    """bootstrap: each member's training set is a resample with replacement (~63 % distinct showers), different
    per member; without it every member sees the whole set."""
    train, _ = tiny
    n = len(train)
    plain = get_family("ensemble")(calo_spec(B), base="library", members=2, options={"energy_bins": 0})
    plain.set_params(seed=1).fit(train)
    assert all(len(np.unique(m.x_lib_, axis=0)) == n for m in plain.members_)
    boot = get_family("ensemble")(calo_spec(B), base="library", members=2, options={"energy_bins": 0}, bootstrap=True)
    boot.set_params(seed=1).fit(train)
    a, b = (m.x_lib_ for m in boot.members_)
    assert len(a) == n and 0.55 * n < len(np.unique(a, axis=0)) < 0.72 * n
    assert not np.array_equal(a, b)


def test_band_covers_perfect_and_not_biased_members(demo_samples):
    ref, other = demo_samples
    who = np.random.default_rng(0).integers(0, 3, len(other))
    fr, fo = compute_features(ref.showers, ref.energies, B), compute_features(other.showers, other.energies, B)
    s = ensemble_summary(ensemble_bands(fr, fo, who, B))
    assert s["band_coverage_high_level"] >= 0.68
    biased = compute_features(other.showers * 1.15, other.energies, B)
    b = ensemble_bands(fr, biased, who, B)
    assert b["E_tot/E_inc"]["coverage"] < 0.3
    with pytest.raises(HepFastSimError, match="at least 2 members"):
        ensemble_bands(fr, fo, np.zeros(len(other)), B)


@pytest.mark.parametrize("k", [3, 5])
def test_band_is_a_68_percent_prediction_interval(k):
    """K normal draws, then one more: mean +- prediction_factor(K) * std covers the new draw 68 % of the time;
    mean +- std covers it only ~52 % (K = 3) / ~61 % (K = 5)."""
    rng = np.random.default_rng(k)
    draws = rng.normal(size=(200_000, k + 1))
    m, s = draws[:, :k].mean(1), draws[:, :k].std(1, ddof=1)
    dev = np.abs(draws[:, k] - m)
    assert abs((dev <= prediction_factor(k) * s).mean() - 0.6827) < 0.005
    assert (dev <= s).mean() < 0.63
    assert prediction_factor(3) == pytest.approx(1.52, abs=0.01) and prediction_factor(5) == pytest.approx(1.25, abs=0.01)


def test_fixed_dropout_masks(tiny, tmp_path):
    """An ensemble member's fixed mask silences about p of the hidden units, for good: same mask after loading,
    the next member another mask."""
    from hepfastsim.models.ensemble import FixedMask

    train, val = tiny
    ens = get_family("ensemble")(calo_spec(B), base="vae", members=2, fixed_dropout=0.5, seed=3,
                                 options={"hidden": 64, "layers": 2, "epochs": 2})
    ens.fit(train, val)
    m, other = ens.members_
    masks = [mod for mod in m.net_.modules() if isinstance(mod, FixedMask)]
    assert len(masks) == 4                                     # 2 hidden activations in encoder and decoder
    assert [mod.seed for mod in masks] == [3000, 3001, 3002, 3003]   # member 0: mask seed = ensemble seed
    kept = np.concatenate([(mod._mask > 0).numpy() for mod in masks])
    assert 0.35 < kept.mean() < 0.65
    e = np.array([2000.0, 6000.0] * 5)
    x = ens.sample(e, seed=1)
    loaded = load_generator(ens.save(tmp_path / "ens.pt"))
    assert np.array_equal(loaded.sample(e, seed=1), x)
    assert [mod for mod in loaded.members_[0].ema_.module.modules() if isinstance(mod, FixedMask)]
    m2 = [mod for mod in other.net_.modules() if isinstance(mod, FixedMask)]
    assert not np.array_equal(m2[0]._mask.numpy(), masks[0]._mask.numpy())
    with pytest.raises(HepFastSimError, match="unknown option 'fixed_dropout' for model 'vae'"):
        get_family("vae")(calo_spec(B), fixed_dropout=0.5)    # an ensemble's option, not a family's


def test_repulsion_pushes_members_apart(tiny):
    """A second member trained with repulsion from the first differs more from it (in the compared function)
    than one trained with the same seed without repulsion; an ensemble passes the earlier members on."""
    import torch

    from hepfastsim.models.ensemble import Repulsion

    train, val = tiny
    opts = {"hidden": 32, "layers": 2, "batch_size": 64, "steps": 2, "ema_decay": 0.0, "epochs": 3}
    first = get_family("fm")(calo_spec(B), **opts, seed=0).fit(train, val)
    xv = torch.from_numpy(first.x_tf_.forward(val.x, val.c[:, 0]))
    cv = torch.from_numpy(first.c_tf_.forward(val.c))

    def distance(m) -> float:
        g = torch.Generator()
        with torch.no_grad():
            g.manual_seed(5)
            a = m.function_output(m.ema_.module, xv, cv, g)
            g.manual_seed(5)
            return float(((a - first.function_output(first.ema_.module, xv, cv, g)) ** 2).mean())

    plain = get_family("fm")(calo_spec(B), **opts, seed=1).fit(train, val)
    pushed = get_family("fm")(calo_spec(B), **opts, seed=1)
    pushed.penalties.append(Repulsion([first], strength=5.0, epochs=3))
    pushed.fit(train, val)
    # same seed: without the repulsion the two are identical (ratio 1); with it 1.19 on the corrected simulation
    assert distance(pushed) > 1.1 * distance(plain)
    ens = get_family("ensemble")(calo_spec(B), base="fm", members=2, repulsion=1.0, fixed_dropout=0.2,
                                 options={**opts, "epochs": 1})
    ens.fit(train, val)
    assert ens.mask_seeds_ == [0, 1] and all(not m.penalties for m in ens.members_)


def test_cli_ensemble_band_in_evaluate_and_report(tmp_path, demo_samples):
    """train --model ensemble -> generate (records each shower's member) -> evaluate: metrics.json carries the
    band's coverage of the high-level histograms and the 68 % systematic of every observable's mean, which is
    prediction_factor(3) times the members' spread of that mean; the report draws the band."""
    import json

    from conftest import check_report_html
    from typer.testing import CliRunner

    from hepfastsim.cli import app
    from hepfastsim.data.calo_io import read_showers, write_showers
    ref, other = demo_samples
    tr = write_showers(tmp_path / "train.h5", ref.subset(slice(0, 900)), attrs={"binning": "binning_demo"})
    te = write_showers(tmp_path / "test.h5", other.subset(slice(0, 900)), attrs={"binning": "binning_demo"})
    cfg = tmp_path / "ens.yaml"
    cfg.write_text("base: library\nmembers: 3\noptions: {per_bin: 60}\n")
    runner = CliRunner()
    for args in (["train", "--data", str(tr), "--model", "ensemble", "--config", str(cfg), "--out", str(tmp_path / "ens.pt"),
                  "--quiet", "--binning", "demo"],
                 ["generate", "--model", str(tmp_path / "ens.pt"), "--like", str(te), "--out", str(tmp_path / "gen.h5")],
                 ["evaluate", "--reference", str(te), "--generated", str(tmp_path / "gen.h5"), "--out", str(tmp_path / "rep"),
                  "--epochs", "2", "--binning", "demo", "--runs", "2"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
    ens = json.loads((tmp_path / "rep" / "metrics.json").read_text())["ensemble"]
    assert 0.3 < ens["band_coverage_high_level"] <= 1.0 and "e_layer_0" in ens["coverage"]
    gen = read_showers(tmp_path / "gen.h5", binning=B)
    who = np.asarray(gen.extras["member"])
    means = [compute_features(gen.showers[who == k], gen.energies[who == k], B)["e_ratio"].mean() for k in range(3)]
    assert ens["systematic_of_mean"]["E_tot/E_inc"] == pytest.approx(prediction_factor(3) * np.std(means, ddof=1), rel=1e-6)
    assert check_report_html(tmp_path / "rep" / "report.html") >= 8
