"""Issue: model zoo — every family fits, samples, saves and loads through one interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import XML_DIR, check_report_html
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.calo_io import write_showers
from hepfastsim.errors import HepFastSimError
from hepfastsim.train import Trainer
from hepfastsim.geometry.binning import builtin_binning, load_binning
from hepfastsim.models import get_family, load_generator
from hepfastsim.tasks import calo_spec, layer_slices

FAMILIES = ["library", "vae", "gan", "flow", "fm"]
B = builtin_binning("demo")


def _cfg(family):
    cfg = {"hidden": 32, "batch_size": 64, "layers": 2}
    if family == "flow":
        cfg = {"hidden": 32, "batch_size": 64, "transforms": 2, "layer_slices": layer_slices(B)}
    if family == "vae":   # the shipped options: draw from p(x|z,c), noise band for empty cells
        cfg.update(decoder_noise=True, beta=1.0, dequantize=True)
    if family == "library":
        cfg = {}
    else:
        cfg["epochs"] = 2
    return cfg


@pytest.mark.parametrize("family", FAMILIES)
def test_fit_sample_save_load(family, tiny, tmp_path):
    torch.set_num_threads(1)
    train, val = tiny
    m = get_family(family)(calo_spec(B), **_cfg(family)).fit(train, val)
    assert m.history_.epochs == ([] if family == "library" else [1, 2])
    e = np.array([1500.0, 3000.0, 9000.0] * 10)
    x = m.sample(e, seed=7)
    assert x.shape == (30, B.n_voxels)
    assert np.all(np.isfinite(x)) and np.all(x >= 0)
    assert np.all((x == 0) | (x >= 15.15e-3))      # readout threshold respected
    p = m.save(tmp_path / f"{family}.pt")
    m2 = load_generator(p)
    assert type(m2) is type(m)
    assert np.array_equal(m2.sample(e, seed=7), x)
    assert np.array_equal(m.sample(e, seed=7), x)


def test_vae_decoder_noise(tiny):
    """With decoder noise a VAE sample is decoder mean + sigma * noise, the noise being the last latent entries."""
    torch.set_num_threads(1)
    train, val = tiny
    m = get_family("vae")(calo_spec(B), **_cfg("vae"))
    m.set_params(epochs=2, seed=0).fit(train, val)
    assert m.latent_dim() == 32 + m.x_tf_.n_out
    c = torch.from_numpy(m.c_tf_.forward(np.full((50, 1), 5000.0)))
    z = torch.randn(50, m.latent_dim(), generator=torch.Generator().manual_seed(3))
    z0 = z.clone()
    z0[:, 32:] = 0.0
    net = m.ema_.module
    with torch.no_grad():
        mean, log_sigma = m._decoder(net, z[:, :32], c)
        np.testing.assert_allclose(m.decode(net, c, z0), mean, atol=1e-6)
        np.testing.assert_allclose(m.decode(net, c, z) - mean, torch.exp(log_sigma) * z[:, 32:], rtol=1e-4, atol=1e-5)
    assert float(log_sigma.std()) > 0      # a width per feature and shower, not one constant


def test_library_energy_scaling(tiny):
    train, _ = tiny
    order = np.argsort(train.c[:, 0])
    pick = order[[0, len(order) // 2, -1]]          # three showers of very different energy
    from hepfastsim.data.samples import Samples

    lib = get_family("library")(calo_spec(B), k=1, energy_bins=0)
    lib.fit(Samples(train.x[pick], train.c[pick]))
    lib.extrapolate = True  # 1.05 x the highest training energy lies outside the training domain
    x = lib.sample(train.c[pick, 0] * 1.05, seed=0)
    kept = train.x[pick] > 0
    np.testing.assert_allclose(x[kept] / train.x[pick][kept], 1.05, rtol=1e-5)


def test_library_bins_budget(tiny):
    """The binned library stores at most per_bin showers per log-energy bin and answers from the request's bin."""
    train, _ = tiny
    lib = get_family("library")(calo_spec(B), energy_bins=2, per_bin=50)
    lib.set_params(seed=0).fit(train)
    assert len(lib.x_lib_) == 100
    mid = np.exp(lib.edges_[1])
    stored_ratio = lib.x_lib_.sum(1) / lib.c_lib_[:, 0]
    low = lib.c_lib_[:, 0] < mid
    assert low.sum() == 50
    for e_req, members in ((mid * 0.99, low), (mid * 1.01, ~low)):
        got = lib.sample(np.full(100, e_req), seed=1).sum(1) / e_req
        # each answer is a stored shower of the request's bin, scaled by E_req / E_stored (threshold losses < 1 %)
        dist_in = np.abs(got[:, None] / stored_ratio[None, members] - 1).min(1)
        assert np.all(dist_in < 0.01)
        assert len(np.unique(np.round(got, 6))) > 20          # random members, not one shower


def test_group_energy_transform_round_trip(tiny):
    """forward -> inverse reproduces the showers when the layer energies are extra variables."""
    from hepfastsim.data.preprocessing import ResponseTransform

    train, _ = tiny
    tf = ResponseTransform(eps=1e-6, threshold=15.15e-3, groups=layer_slices(B)).fit(train.x, train.c[:, 0])
    assert tf.n_out == B.n_voxels + len(layer_slices(B))
    back = tf.inverse(tf.forward(train.x, train.c[:, 0]), train.c[:, 0])
    np.testing.assert_allclose(back, train.x, rtol=2e-4, atol=1e-6)
    u = tf.forward(train.x, train.c[:, 0])
    g0 = B.n_voxels                                   # first group variable: log(E_tot / E_inc + eps)
    u[:, g0] -= np.log(2.0) / tf.std[g0]              # halve the total energy, keep the longitudinal fractions
    half = tf.inverse(u, train.c[:, 0])
    np.testing.assert_allclose(half.sum(1), 0.5 * train.x.sum(1), rtol=0.02)   # minus cells now below threshold
    # CaloFlow noise injection: sub-threshold cells become noise below the threshold, and come back as zeros
    dq = ResponseTransform(eps=1e-6, threshold=15.15e-3, groups=layer_slices(B), dequantize=True).fit(train.x, train.c[:, 0])
    noisy = dq.forward(train.x, train.c[:, 0], np.random.default_rng(1))
    assert len(np.unique(noisy[:, 0])) > 0.9 * len(noisy)        # no spike at zero any more
    raw = noisy[:, :B.n_voxels] * dq.std[:B.n_voxels] + dq.mean[:B.n_voxels]
    empty = train.x < 15.15e-3
    # the noise band sits below log(eps) for every incident energy, apart from the smallest real deposit
    assert raw[empty].max() < np.log(1e-6) + 1e-4 and raw[empty].min() > np.log(0.5e-6) - 1e-4
    assert raw[~empty].min() > np.log(1e-6 + 15.15e-3 / train.c[:, 0].max()) - 1e-4
    np.testing.assert_allclose(dq.inverse(noisy, train.c[:, 0]), train.x, rtol=2e-4, atol=1e-6)
    layers = [half[:, a:b].sum(1) / half.sum(1) for a, b in layer_slices(B)]
    orig = [train.x[:, a:b].sum(1) / train.x.sum(1) for a, b in layer_slices(B)]
    np.testing.assert_allclose(layers, orig, atol=0.02)


def test_fm_layer_energies_and_distilled_student(tiny, tmp_path):
    """fm with layer energies and a distilled one-pass student: valid samples, ODE and student differ, ONNX parity."""
    from hepfastsim.bench.export import OnnxSampler, export_onnx, torch_from_latent

    train, val = tiny
    m = get_family("fm")(calo_spec(B), hidden=32, layers=2, steps=4, group_energies=True, distill_epochs=2,
                         distill_pairs=2000, student_hidden=32, student_layers=2)
    m.set_params(epochs=2).fit(train, val)
    e = np.array([1500.0, 3000.0, 9000.0] * 5)
    x = m.sample(e, seed=3)
    assert x.shape == (15, B.n_voxels) and np.all(np.isfinite(x)) and x.min() >= 0
    m.config["sampler"] = "ode"
    assert not np.allclose(m.sample(e, seed=3), x)
    m.config["sampler"] = "auto"
    p = m.save(tmp_path / "fm.pt")
    assert np.array_equal(load_generator(p).sample(e, seed=3), x)
    z = np.random.default_rng(0).standard_normal((3, m.latent_dim())).astype(np.float32)
    onnx = export_onnx(m, tmp_path / "fm.onnx")
    np.testing.assert_allclose(OnnxSampler(m, onnx).run_latent(e[:3], z), torch_from_latent(m, e[:3], z), rtol=1e-4, atol=1e-6)


def test_other_geometry_refused(tiny):
    train, _ = tiny
    m = get_family("library")(calo_spec(B))
    m.fit(train)
    other = load_binning(XML_DIR / "binning_dataset_2.xml")
    with pytest.raises(HepFastSimError, match="trained for geometry 'binning_demo'"):
        m.check_geometry(other.geometry_id, other.name)


def test_corrupt_checkpoint(tmp_path, tiny):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(HepFastSimError, match="corrupt or truncated"):
        load_generator(bad)
    with pytest.raises(HepFastSimError, match="checkpoint not found"):
        load_generator(tmp_path / "missing.pt")
    train, _ = tiny
    m = get_family("vae")(calo_spec(B), hidden=16, layers=1)
    m.set_params(epochs=1).fit(train)
    p = m.save(tmp_path / "good.pt")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(HepFastSimError, match="corrupt or truncated"):
        load_generator(p)


def test_unknown_family_and_option():
    with pytest.raises(HepFastSimError, match="unknown model family"):
        get_family("transformer9000")
    with pytest.raises(HepFastSimError, match="unknown option"):
        get_family("fm")(calo_spec(B), hiddden=3)


def test_bad_conditions(tiny):
    train, _ = tiny
    m = get_family("library")(calo_spec(B))
    m.fit(train)
    with pytest.raises(HepFastSimError, match="must be positive"):
        m.sample(np.array([-1.0]))
    with pytest.raises(HepFastSimError, match="NaN"):
        m.sample(np.array([np.nan]))


def test_resume_training_continues(tiny, tmp_path):
    train, val = tiny
    ck = tmp_path / "fm.pt"
    m = get_family("fm")(calo_spec(B), hidden=16, layers=1, patience=100)
    Trainer(checkpoint=ck).fit(m.set_params(epochs=2), train, val)
    m2 = get_family("fm")(calo_spec(B), hidden=16, layers=1, patience=100)
    log = Trainer(checkpoint=ck, resume=ck).fit(m2.set_params(epochs=4), train, val).history_
    assert log.epochs == [1, 2, 3, 4]


def test_cli_train_generate_evaluate(tmp_path, demo_samples):
    ref, other = demo_samples
    tr = write_showers(tmp_path / "train.h5", ref.subset(slice(0, 600)), attrs={"binning": "binning_demo"})
    te = write_showers(tmp_path / "test.h5", other.subset(slice(0, 300)), attrs={"binning": "binning_demo"})
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--data", str(tr), "--model", "library", "--out", str(tmp_path / "lib.pt"), "--quiet",
                            "--binning", "demo"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["generate", "--model", str(tmp_path / "lib.pt"), "--like", str(te), "--out", str(tmp_path / "gen.h5")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["generate", "--model", str(tmp_path / "lib.pt"), "--like", str(te), "--out", str(tmp_path / "gen.h5")])
    assert r.exit_code == 2 and "exists" in r.output
    r = runner.invoke(app, ["evaluate", "--reference", str(te), "--generated", str(tmp_path / "gen.h5"),
                            "--out", str(tmp_path / "rep"), "--epochs", "3", "--binning", "demo", "--runs", "1"])
    assert r.exit_code == 0, r.output
    assert check_report_html(tmp_path / "rep" / "report.html") >= 8   # well-formed, every figure a readable PNG
    r = runner.invoke(app, ["evaluate", "--reference", str(te), "--generated", str(tmp_path / "gen.h5"),
                            "--out", str(tmp_path / "rep"), "--binning", "demo"])
    assert r.exit_code == 2 and "already holds a report" in r.output
    assert (tmp_path / "rep" / "metrics.json").exists()


def test_cli_train_tensorboard_and_csv_logs(tmp_path, demo_samples):
    """`train --tensorboard DIR --log-csv F`: one loss/train and loss/val scalar per epoch in both logs; an
    ensemble logs each member in DIR/memberK; refused for the library, which has no training loop."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ref, _ = demo_samples
    tr = write_showers(tmp_path / "train.h5", ref.subset(slice(0, 400)), attrs={"binning": "binning_demo"})
    cfg = tmp_path / "vae.yaml"
    cfg.write_text("hidden: 32\nlayers: 2\nbatch_size: 64\n")
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--data", str(tr), "--model", "vae", "--config", str(cfg), "--epochs", "3",
                            "--out", str(tmp_path / "vae.pt"), "--quiet", "--binning", "demo",
                            "--tensorboard", str(tmp_path / "tb"), "--log-csv", str(tmp_path / "loss.csv")])
    assert r.exit_code == 0, r.output
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    val = [e.value for e in events.Scalars("loss/val")]
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3]
    rows = (tmp_path / "loss.csv").read_text().splitlines()[1:]
    np.testing.assert_allclose(val, [float(row.split(",")[2]) for row in rows], rtol=1e-6)
    ens = tmp_path / "ens.yaml"
    ens.write_text("base: vae\nmembers: 2\noptions: {hidden: 32, layers: 2, batch_size: 64}\n")
    r = runner.invoke(app, ["train", "--data", str(tr), "--model", "ensemble", "--config", str(ens), "--epochs", "2",
                            "--out", str(tmp_path / "ens.pt"), "--quiet", "--binning", "demo",
                            "--tensorboard", str(tmp_path / "tb_ens")])
    assert r.exit_code == 0, r.output
    for k in (0, 1):
        events = EventAccumulator(str(tmp_path / "tb_ens" / f"member{k}"))
        events.Reload()
        assert [e.step for e in events.Scalars("loss/val")] == [1, 2]
    r = runner.invoke(app, ["train", "--data", str(tr), "--model", "library", "--out", str(tmp_path / "lib.pt"),
                            "--quiet", "--binning", "demo", "--tensorboard", str(tmp_path / "tb2")])
    assert r.exit_code == 2 and "no training loop to log to TensorBoard" in r.output


@pytest.mark.parametrize("family", ["fm", "vae", "gan", "flow", "library"])
def test_onnx_parity(family, tiny, tmp_path):
    """onnxruntime and PyTorch agree within 1e-4 relative on the same latent inputs, for every family."""
    from hepfastsim.bench.export import OnnxSampler, export_onnx, torch_from_latent

    train, val = tiny
    m = get_family(family)(calo_spec(B), **_cfg(family)).fit(train, val)
    path = export_onnx(m, tmp_path / f"{family}.onnx")
    e = np.array([1200.0, 4000.0, 9500.0, 2500.0, 7000.0])
    z = np.random.default_rng(0).standard_normal((5, m.latent_dim())).astype(np.float32)
    ref = torch_from_latent(m, e, z)
    got = OnnxSampler(m, path).run_latent(e, z)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    assert np.all(np.isfinite(got)) and got.min() >= 0 and got.sum(1).min() > 0
    # what a C++ framework reads from the file itself: the standardisation of the conditions
    import json

    import onnxruntime

    meta = json.loads(onnxruntime.InferenceSession(str(path)).get_modelmeta().custom_metadata_map["hepfastsim"])
    assert meta["family"] == family and meta["geometry_id"] == B.geometry_id and meta["latent_dim"] == z.shape[1]
    ct = meta["condition_transform"]
    np.testing.assert_allclose((np.log(e) - ct["mean"][0]) / ct["std"][0], m.c_tf_.forward(e[:, None])[:, 0], rtol=1e-5)


def test_onnx_library_returns_scaled_library_showers(tiny, tmp_path):
    """The exported library picks stored showers of the requested energy bin and scales them to the energy."""
    from hepfastsim.bench.export import OnnxSampler, export_onnx

    m = get_family("library")(calo_spec(B), energy_bins=4, per_bin=50)
    m.fit(tiny[0])
    e = np.full(200, 5000.0)
    got = OnnxSampler(m, export_onnx(m, tmp_path / "lib.onnx")).sample(e, seed=1)
    b = m._bin(np.log(e[:1]))[0]
    members = m.x_lib_[m._bin(np.log(m.c_lib_[:, 0])) == b]
    unit = lambda a: a / a.sum(1, keepdims=True)   # compare shapes: the threshold zeroes only a few cells after scaling
    dist = np.abs(unit(got)[:, None, :] - unit(members)[None, :, :]).sum(2).min(1)
    assert np.all(dist < 0.02)                                    # every output is one of the bin's showers
    assert len(np.unique(got.sum(1).round(3))) > 20              # drawn at random, not one shower repeated
    np.testing.assert_allclose(np.median(got.sum(1)), np.median(m.sample(e, seed=2).sum(1)), rtol=0.05)


def test_onnx_export_refused_without_graph(tiny, tmp_path):
    from hepfastsim.bench.export import export_onnx

    m = get_family("library")(calo_spec(B), energy_bins=0)
    m.fit(tiny[0])
    with pytest.raises(HepFastSimError, match="k-nearest-neighbour"):
        export_onnx(m, tmp_path / "lib.onnx")
    assert not (tmp_path / "lib.onnx").exists()


def test_gan_with_sparsity_surrogate(tiny):
    """The surrogate predicts the (non-differentiable) layer sparsity of held-out showers, its penalty is zero for
    identical batches and positive for different ones, and its updates on generated showers make it accurate
    there: on a generator's early (poor) samples the error falls after a few updates on other such samples."""
    train, val = tiny
    m = get_family("gan")(calo_spec(B), hidden=32, layers=2, surrogate="sparsity", surrogate_weight=1.0)
    m.set_params(epochs=1).fit(train, val)
    s = m.surrogate
    assert s is not None and s.mse < 0.1                              # relative MSE on held-out showers
    x = torch.from_numpy(m.x_tf_.forward(train.x[:128], train.c[:128, 0]))
    c = torch.from_numpy(m.c_tf_.forward(train.c[:128]))
    assert float(s.penalty(x, x, c)) == pytest.approx(0.0, abs=1e-12)
    assert float(s.penalty(torch.zeros_like(x), x, c)) > 1e-3
    # the true flags of preprocessed showers are their physical cells above threshold
    assert torch.equal(s.hits(x, c), torch.from_numpy(train.x[:128] > m.spec.threshold))

    def error(xg: torch.Tensor, cg: torch.Tensor) -> float:
        truth = s.group_sparsity(s.hits(xg, cg))
        return float((((s.predict(xg, cg) - truth) / s.y_std) ** 2).mean())

    with torch.no_grad():
        gen = [m.generate(m.net_, c, None) for _ in range(21)]
    before = error(gen[0], c)
    for g in gen[1:]:
        s.update(g, c)
    assert error(gen[0], c) < 0.7 * before
    with pytest.raises(HepFastSimError, match="unknown surrogate observable"):
        get_family("gan")(calo_spec(B), hidden=8, layers=1, epochs=1, surrogate="nope").fit(train)


def test_shipped_configs_validate_and_wrong_types_are_refused():
    """Every shipped YAML validates against its family's typed options (and the calibration step's); an unknown
    key, a wrong type or a value out of range is a one-line error naming the option."""
    import yaml

    from hepfastsim.errors import HepFastSimError
    from hepfastsim.models.options import split_calibration

    root = Path(__file__).resolve().parents[1] / "src" / "hepfastsim" / "configs"
    for f in sorted(root.glob("*.yaml")):
        fam = f.stem.removeprefix("tpc_").removeprefix("pid_").removesuffix("_ds3")
        raw = yaml.safe_load(f.read_text()) or {}
        cfg, cal = split_calibration(raw)
        m = get_family(fam)(None, **cfg)
        assert all(m.config[k] == v for k, v in cfg.items() if k != "layer_slices")   # every value taken as written
        assert (cal is not None) == bool(raw.get("calibrate"))
    with pytest.raises(HepFastSimError, match="option 'hidden' of model 'vae': input should be a valid integer, got 'lots'"):
        get_family("vae")(None, hidden="lots")
    with pytest.raises(HepFastSimError, match="option 'epochs' of model 'fm': input should be a valid integer, got True"):
        get_family("fm")(None, epochs=True)
    with pytest.raises(HepFastSimError, match="'lr'.*finite"):
        get_family("fm")(None, lr=float("nan"))
    with pytest.raises(HepFastSimError, match="'hidden' of model 'gan': input should be greater than 0, got -5"):
        get_family("gan")(None, hidden=-5)
    with pytest.raises(HepFastSimError, match="'ema_decay'.*less than or equal to 1"):
        get_family("vae")(None, ema_decay=1.5)
    with pytest.raises(HepFastSimError, match="option 'sampler' of model 'fm': input should be 'auto', 'ode' or 'student'"):
        get_family("fm")(None, sampler="euler")
    with pytest.raises(HepFastSimError, match="unknown option 'calibrate' for model 'vae'"):
        get_family("vae")(None, calibrate=True)          # the calibration step's option, not the family's
    with pytest.raises(HepFastSimError, match="option 'calibration_bins' of the calibration"):
        split_calibration({"calibrate": True, "calibration_bins": 0})
    with pytest.raises(HepFastSimError, match="option 'members' of model 'ensemble'"):
        get_family("ensemble")(None, members=1)
