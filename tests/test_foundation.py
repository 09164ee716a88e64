"""Issue: foundation — binning XMLs, HDF5 round trip, features, error messages."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.calo_io import ShowerDataset, iter_showers, read_showers, write_showers
from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import builtin_binning, load_binning
from hepfastsim.validation.features import high_level_features

from conftest import XML_DIR


@pytest.mark.parametrize("name,voxels,layers", [
    ("binning_dataset_1_photons.xml", 368, 5),
    ("binning_dataset_1_pions.xml", 533, 7),
    ("binning_dataset_2.xml", 6480, 45),
    ("binning_dataset_3.xml", 40500, 45),
])
def test_calochallenge_voxel_counts(name, voxels, layers):
    b = load_binning(XML_DIR / name)
    assert b.n_voxels == voxels
    assert len(b.relevant_layers) == layers


def test_demo_binning_size():
    b = builtin_binning("demo")
    assert b.n_voxels == 9 * 8 * 8
    assert 300 <= b.n_voxels <= 700


def test_voxel_order_is_alpha_major():
    b = load_binning(XML_DIR / "binning_dataset_2.xml")
    assert b.voxel_index(0, 0, 0) == 0
    assert b.voxel_index(0, 1, 0) == 1          # r runs fastest
    assert b.voxel_index(0, 0, 1) == 9          # then alpha (9 r bins)
    assert b.voxel_index(1, 0, 0) == 144        # 16 x 9 voxels per layer


def _dataset(n=20, v=576, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.exponential(1.0, (n, v)).astype(np.float32)
    s[s < 0.5] = 0
    return ShowerDataset(rng.uniform(1000, 2000, n), s, {"particle": np.full(n, 11, np.int32)})


def test_roundtrip_bit_exact(tmp_path):
    d = _dataset()
    p = write_showers(tmp_path / "a.h5", d)
    r = read_showers(p)
    assert np.array_equal(r.showers, d.showers)
    assert np.array_equal(r.energies, d.energies)
    assert np.array_equal(r.extras["particle"], d.extras["particle"])
    with h5py.File(p) as f:
        assert f["incident_energies"].shape == (20, 1)
        assert f["showers"].compression == "gzip"


def test_streaming_chunks(tmp_path):
    d = _dataset(n=25)
    p = write_showers(tmp_path / "a.h5", d)
    parts = list(iter_showers(p, chunk=10))
    assert [len(x) for x in parts] == [10, 10, 5]
    assert np.array_equal(np.concatenate([x.showers for x in parts]), d.showers)


def test_single_deposit_features():
    """A single deposit at known (layer, r, alpha) gives the analytic centre, zero width and known sparsity."""
    b = load_binning(XML_DIR / "binning_dataset_2.xml")
    s = np.zeros((1, b.n_voxels))
    layer, ir, ia = 3, 4, 5
    s[0, b.voxel_index(layer, ir, ia)] = 7.0
    f = high_level_features(s, np.array([100.0]), b)
    r_mid = (4 + 0.5) * 4.65
    a_mid = -np.pi + (ia + 0.5) * 2 * np.pi / 16
    assert f["e_ratio"][0] == pytest.approx(0.07)
    assert f["e_layer"][0, layer] == pytest.approx(7.0)
    assert f["ec_x"][0, layer] == pytest.approx(r_mid * np.cos(a_mid))
    assert f["ec_y"][0, layer] == pytest.approx(r_mid * np.sin(a_mid))
    assert f["width_x"][0, layer] == pytest.approx(0.0, abs=1e-6)
    assert f["sparsity"][0, layer] == pytest.approx(1 - 1 / 144)
    assert f["sparsity"][0, layer + 1] == 1.0


def test_two_deposit_width():
    b = load_binning(XML_DIR / "binning_dataset_2.xml")
    s = np.zeros((1, b.n_voxels))
    s[0, b.voxel_index(0, 2, 0)] = 1.0
    s[0, b.voxel_index(0, 2, 8)] = 1.0   # opposite alpha bin: centres at +-x
    f = high_level_features(s, np.array([10.0]), b)
    x = 2.5 * 4.65 * np.cos(-np.pi + 0.5 * 2 * np.pi / 16)
    assert f["ec_x"][0, 0] == pytest.approx(0.0, abs=1e-9)
    assert f["width_x"][0, 0] == pytest.approx(abs(x))


def test_missing_file_error(tmp_path):
    with pytest.raises(HepFastSimError, match="file not found"):
        read_showers(tmp_path / "nope.h5")


def test_missing_key_error(tmp_path):
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f["showers"] = np.zeros((3, 4))
    with pytest.raises(HepFastSimError, match="missing dataset 'incident_energies'"):
        read_showers(p)


def test_voxel_count_mismatch(tmp_path):
    p = write_showers(tmp_path / "a.h5", _dataset(v=100))
    with pytest.raises(HepFastSimError, match="100 voxels but binning 'binning_demo' has 576"):
        read_showers(p, binning=builtin_binning("demo"))


@pytest.mark.parametrize("mutate,msg", [
    (lambda e, s: s.__setitem__((2, 3), np.nan), "NaN or inf"),
    (lambda e, s: s.__setitem__((1, 0), -1.0), "negative energies"),
    (lambda e, s: e.__setitem__(0, -5.0), "must be positive"),
])
def test_bad_values_rejected_and_existing_file_untouched(tmp_path, mutate, msg):
    good = _dataset()
    p = write_showers(tmp_path / "a.h5", good)
    before = p.read_bytes()
    e, s = good.energies.copy(), good.showers.copy()
    mutate(e, s)
    with pytest.raises(HepFastSimError, match=msg):
        write_showers(p, ShowerDataset.__new__(ShowerDataset) if False else _raw(e, s), overwrite=True)
    assert p.read_bytes() == before
    # a file holding such values is refused on reading too
    q = tmp_path / "raw.h5"
    with h5py.File(q, "w") as f:
        f["incident_energies"] = e.reshape(-1, 1)
        f["showers"] = s
    with pytest.raises(HepFastSimError, match=msg):
        read_showers(q)


def _raw(e, s):
    d = object.__new__(ShowerDataset)
    d.energies, d.showers, d.extras = e, s, {}
    return d


def test_mismatched_n(tmp_path):
    q = tmp_path / "raw.h5"
    with h5py.File(q, "w") as f:
        f["incident_energies"] = np.ones((4, 1))
        f["showers"] = np.ones((5, 3))
    with pytest.raises(HepFastSimError, match="4 incident energies but 5 showers"):
        read_showers(q)


def test_no_silent_overwrite(tmp_path):
    p = write_showers(tmp_path / "a.h5", _dataset())
    before = p.read_bytes()
    with pytest.raises(HepFastSimError, match="exists"):
        write_showers(p, _dataset(seed=1))
    assert p.read_bytes() == before


def test_cli_help_and_info(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "simulate" in r.output and "evaluate" in r.output
    d = _dataset()
    p = write_showers(tmp_path / "a.h5", d)
    r = runner.invoke(app, ["info", str(p)])
    assert r.exit_code == 0, r.output
    assert "events:    20" in r.output and "binning_demo" in r.output
    ratio = d.showers.sum(axis=1, dtype=np.float64) / d.energies   # the response and its relative spread
    assert f"E_tot/E_inc: {ratio.mean():.4f}" in r.output
    assert f"relative rms {ratio.std() / ratio.mean():.4f}" in r.output
    r = runner.invoke(app, ["info", str(tmp_path / "missing.h5")])
    assert r.exit_code == 2 and "file not found" in r.output


def test_atomic_output_has_normal_permissions(tmp_path):
    import os

    from hepfastsim.fileio import atomic_output

    with atomic_output(tmp_path / "f.txt") as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
