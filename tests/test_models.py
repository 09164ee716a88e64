"""Issue: model zoo — every family fits, samples, saves and loads through one interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.calo_io import write_showers
from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import builtin_binning, load_binning
from hepfastsim.models import get_family, load_generator
from hepfastsim.tasks import calo_samples, calo_spec, layer_slices

from conftest import XML_DIR

FAMILIES = ["library", "vae", "gan", "flow", "fm"]
B = builtin_binning("demo")


def _cfg(family):
    cfg = {"hidden": 32, "batch_size": 64, "layers": 2}
    if family == "flow":
        cfg = {"hidden": 32, "batch_size": 64, "transforms": 2, "layer_slices": layer_slices(B)}
    if family == "library":
        cfg = {}
    return cfg


@pytest.fixture(scope="module")
def tiny(demo_samples):
    ref, _ = demo_samples
    return calo_samples(ref.subset(slice(0, 400))), calo_samples(ref.subset(slice(400, 500)))


@pytest.mark.parametrize("family", FAMILIES)
def test_fit_sample_save_load(family, tiny, tmp_path):
    torch.set_num_threads(1)
    train, val = tiny
    m = get_family(family)(calo_spec(B), **_cfg(family))
    m.fit(train, val, epochs=2, seed=0, progress=False)
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


def test_library_energy_scaling(tiny):
    train, _ = tiny
    order = np.argsort(train.c[:, 0])
    pick = order[[0, len(order) // 2, -1]]          # three showers of very different energy
    from hepfastsim.models.base import Samples

    lib = get_family("library")(calo_spec(B), k=1)
    lib.fit(Samples(train.x[pick], train.c[pick]))
    x = lib.sample(train.c[pick, 0] * 1.05, seed=0)
    kept = train.x[pick] > 0
    np.testing.assert_allclose(x[kept] / train.x[pick][kept], 1.05, rtol=1e-5)


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
    m.fit(train, epochs=1, progress=False)
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
    m.fit(train, val, epochs=2, progress=False, checkpoint=ck)
    m2 = get_family("fm")(calo_spec(B), hidden=16, layers=1, patience=100)
    log = m2.fit(train, val, epochs=4, progress=False, resume=ck, checkpoint=ck)
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
                            "--out", str(tmp_path / "rep"), "--epochs", "3", "--binning", "demo"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5
    assert (tmp_path / "rep" / "metrics.json").exists()


@pytest.mark.parametrize("family", ["fm", "vae", "gan"])
def test_onnx_parity(family, tiny, tmp_path):
    """onnxruntime and PyTorch agree within 1e-4 relative on the same latent inputs."""
    from hepfastsim.bench.export import OnnxSampler, export_onnx, torch_from_latent

    train, val = tiny
    m = get_family(family)(calo_spec(B), hidden=32, layers=2, **({"steps": 4} if family == "fm" else {}))
    m.fit(train, val, epochs=1, progress=False)
    path = export_onnx(m, tmp_path / f"{family}.onnx")
    e = np.array([1200.0, 4000.0, 9500.0])
    z = np.random.default_rng(0).standard_normal((3, m.latent_dim())).astype(np.float32)
    ref = torch_from_latent(m, e, z)
    got = OnnxSampler(m, path).run_latent(e, z)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


def test_onnx_export_refused_without_decoder(tiny, tmp_path):
    from hepfastsim.bench.export import export_onnx

    m = get_family("library")(calo_spec(B))
    m.fit(tiny[0])
    with pytest.raises(HepFastSimError, match="latent decoder"):
        export_onnx(m, tmp_path / "lib.onnx")
