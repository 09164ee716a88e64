"""Issue 18: defects found in review and under bad input, each with a test that fails before its fix."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.errors import HepFastSimError
from hepfastsim.train import Trainer

runner = CliRunner()


def test_calibration_with_a_few_discrete_energies():
    """--energies 1000,10000,100000: equal-population energy bins coincide; every calibration bin must hold
    events (an empty one raised IndexError after the whole training)."""
    from hepfastsim.models.calibration import QuantileCalibration, occupied_edges

    rng = np.random.default_rng(0)
    key = np.repeat([0.0, 1.0, 2.0], 300)
    u = rng.normal(size=(900, 4))
    cal = QuantileCalibration.fit(u, u + 0.1, key[:, None], n_bins=8)
    edges = occupied_edges(key, 8)
    assert len(edges) == 2 and cal.table.shape[0] == 3
    which = np.searchsorted(edges, key, side="right")
    assert np.all(np.bincount(which, minlength=3) > 0)
    out = cal(torch.from_numpy(u).float(), torch.from_numpy(key[:, None]).float())
    assert torch.isfinite(out).all()


def test_checkpoint_cannot_run_code(tmp_path):
    """A crafted .pt whose unpickling calls os.system is refused with a one-line error and runs nothing."""
    from hepfastsim.models.base import read_checkpoint

    import os

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "bad.pt"
    torch.save({"format": "hepfastsim-checkpoint-1", "x": Payload()}, bad)
    with pytest.raises(HepFastSimError, match="must not be able to run code"):
        read_checkpoint(bad)
    assert not marker.exists()
    result = runner.invoke(app, ["generate", "--model", str(bad), "--energies", "1000", "--n", "2",
                                 "--out", str(tmp_path / "g.h5")])
    assert result.exit_code == 2 and not marker.exists()


def test_report_import_and_figures_leave_matplotlib_alone():
    """Importing the report (and drawing) changes neither the backend nor the user's rcParams (notebooks)."""
    code = (
        "import matplotlib; matplotlib.use('svg'); rc = dict(matplotlib.rcParams); "
        "import hepfastsim.validation.report as r, numpy as np; "
        "from hepfastsim.data.calo_io import ShowerDataset; from hepfastsim.geometry.binning import get_binning; "
        "b = get_binning('demo'); rng = np.random.default_rng(0); "
        "d = ShowerDataset(np.full(40, 1000.0), rng.exponential(1.0, (40, b.n_voxels)).astype('float32')); "
        "r.make_figures(d, d, b, {}); "
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend(); "
        "changed = [k for k in rc if str(rc[k]) != str(matplotlib.rcParams[k])]; assert not changed, changed"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_library_code_leaves_torch_global_rng_alone():
    from hepfastsim.validation.classifier import classifier_auc

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(120, 3)), rng.normal(size=(120, 3))
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    classifier_auc(a, b, protocol="quick", runs=1, epochs=1, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_info_streams_the_file_and_refuses_a_mismatch(tmp_path, fullsim_demo):
    good = tmp_path / "good.h5"
    fullsim_demo.simulate_to_file(good, 4, "2000", "e-", chunk=4, progress=False)
    result = runner.invoke(app, ["info", str(good)])
    assert result.exit_code == 0 and "E_tot/E_inc:" in result.output
    assert "attr engine: builtin" in result.output and "attr sampling_fraction: 0.033" in result.output
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["incident_energies"] = np.full((4, 1), 1000.0)
        f["showers"] = np.zeros((5, 576))
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 2 and "4 incident energies but 5 showers" in result.output


def test_named_binning_on_the_command_line(tmp_path):
    out = tmp_path / "ds2.h5"
    result = runner.invoke(app, ["simulate", "--out", str(out), "--n", "3", "--energies", "1000", "--binning", "ds2",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["info", str(out)])
    assert "6480" in result.output and "binning_dataset_2" in result.output
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x.h5"), "--n", "3", "--binning", "dataset2"])
    assert result.exit_code == 2 and "unknown binning" in result.output


def test_overwrite_keeps_the_old_file_until_the_new_one_is_complete(tmp_path, fullsim_demo):
    p = tmp_path / "sim.h5"
    fullsim_demo.simulate_to_file(p, 4, "2000", "e-", seed=1, chunk=4, progress=False)
    before = p.read_bytes()
    for bad in ({"particle": "muon+"}, {"chunk": 0}, {"seed": -1}, {"energy_spec": "log:5:1"}):
        kw = {"particle": "e-", "chunk": 4, "seed": 1, "energy_spec": "2000"} | bad
        with pytest.raises(HepFastSimError):
            fullsim_demo.simulate_to_file(p, 4, kw.pop("energy_spec"), kw.pop("particle"), overwrite=True,
                                          progress=False, **kw)
        assert p.read_bytes() == before
        with pytest.raises(HepFastSimError):  # and a failed check creates no file that would block the rerun
            kw2 = {"particle": "e-", "chunk": 4, "seed": 1, "energy_spec": "2000"} | bad
            fullsim_demo.simulate_to_file(tmp_path / "new.h5", 4, kw2.pop("energy_spec"), kw2.pop("particle"),
                                          progress=False, **kw2)
        assert not (tmp_path / "new.h5").exists()
    fullsim_demo.simulate_to_file(p, 4, "3000", "gamma", seed=2, chunk=4, overwrite=True, progress=False)
    from hepfastsim.data.calo_io import read_showers

    assert np.all(read_showers(p).energies == 3000.0)
    assert not list(tmp_path.glob(".*tmp"))


def test_resume_refuses_other_run_parameters(tmp_path, fullsim_demo):
    p = tmp_path / "sim.h5"
    fullsim_demo.simulate_to_file(p, 8, "2000", "e-", seed=1, chunk=4, chunks=range(1), progress=False)
    with pytest.raises(HepFastSimError, match="seed 1 in the file, 2 now"):
        fullsim_demo.simulate_to_file(p, 8, "2000", "e-", seed=2, chunk=4, resume=True, progress=False)
    with pytest.raises(HepFastSimError, match="particle 'e-' in the file, 'gamma' now"):
        fullsim_demo.simulate_to_file(p, 8, "2000", "gamma", seed=1, chunk=4, resume=True, progress=False)
    fullsim_demo.simulate_to_file(p, 8, "2000", "e-", seed=1, chunk=4, resume=True, progress=False)


def test_detector_yaml_is_schema_checked(tmp_path):
    """The docstring's example builds 84 layers (it built 2 before); unknown keys and bad values are errors."""
    from hepfastsim.geometry.detector import load_detector

    good = tmp_path / "calo.yaml"
    good.write_text("name: my_calo\nsampling_fraction: 0.05\nlayers:\n  - {material: Pb, thickness_mm: 10.0}\n"
                    "  - repeat: 40\n    layers:\n      - {material: Pb, thickness_mm: 2.0}\n"
                    "      - {material: Scintillator, thickness_mm: 4.0, sensitive: true}\n"
                    "  - {material: Fe, thickness_mm: 20.0, repeat: 3}\n")
    d = load_detector(good)
    assert (len(d.layers), d.n_sensitive, d.depth_mm, d.sampling_fraction) == (84, 40, 310.0, 0.05)
    for text, message in (("layers:\n  - {material: Pb, thickness_mm: 2.0, sensitve: true}\n", "layers.0.sensitve"),
                          ("layers:\n  - {material: Pb, thickness_mm: -2.0}\n", "layers.0.thickness_mm"),
                          ("period: 2\nlayers:\n  - {material: Pb, thickness_mm: 2.0}\n", "period"),
                          ("layers:\n  - {material: Kryptonite, thickness_mm: 2.0}\n", "Kryptonite"),
                          ("sampling_fraction: 2\nlayers:\n  - {material: Pb, thickness_mm: 2.0}\n", "sampling_fraction"),
                          ("layers: [\n", "not valid YAML")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(HepFastSimError, match=message):
            load_detector(bad)


def test_resume_keeps_the_best_epoch_of_the_interrupted_run(tiny, tmp_path, monkeypatch):
    """A checkpoint written during training carries the best EMA weights so far: resuming it (here with no epoch
    left) ends with the best epoch's weights, not with the EMA of the last epoch written."""
    from hepfastsim.geometry.binning import builtin_binning
    from hepfastsim.models import get_family
    from hepfastsim.models.neural import TorchGenerator
    from hepfastsim.tasks import calo_spec

    train, val = tiny
    losses = iter([1.0, 0.5, 0.9])                          # the best epoch is the second of three
    monkeypatch.setattr(TorchGenerator, "val_loss", lambda self, net, x, c: next(losses))
    ck = tmp_path / "fm.pt"
    first = get_family("fm")(calo_spec(builtin_binning("demo")), hidden=16, layers=1, patience=100)
    Trainer(checkpoint=ck).fit(first.set_params(epochs=3), train, val)
    assert first.history_.best_epoch == 2
    resumed = get_family("fm")(calo_spec(builtin_binning("demo")), hidden=16, layers=1, patience=100)
    Trainer(resume=ck).fit(resumed.set_params(epochs=3), train, val)
    for a, b in zip(first.ema_.state_dict().values(), resumed.ema_.state_dict().values()):
        assert torch.equal(a, b)


def test_ensemble_refuses_resume(tiny, tmp_path):
    from hepfastsim.geometry.binning import builtin_binning
    from hepfastsim.models import get_family
    from hepfastsim.tasks import calo_spec

    train, val = tiny
    ens = get_family("ensemble")(calo_spec(builtin_binning("demo")), base="library", members=2)
    with pytest.raises(HepFastSimError, match="cannot resume"):
        Trainer(resume=tmp_path / "ens.pt").fit(ens, train, val)


def test_tpc_value_beyond_float32_is_refused(tmp_path):
    """An amplitude of 1e300 is finite in float64 but inf in the float32 arrays: refused with its line number."""
    from hepfastsim.data.tpc_io import read_tpc

    f = tmp_path / "digits.dat"
    f.write_text("params: 0.1 0.2\n1 2 3.0 2 2 1e300\n")
    with pytest.raises(HepFastSimError, match="float32 range"):
        read_tpc(f)


@pytest.mark.parametrize("binning, n, voxels", [("demo", 90, 576), ("ds2", 30, 6480)])
def test_cli_train_with_discrete_energies_and_calibration(tmp_path, binning, n, voxels):
    """The README's --energies 1000,10000,100000 spec, simulated and trained through the CLI with calibration on,
    on the demo readout and on dataset 2 by name."""
    cfg = tmp_path / "fm.yaml"
    cfg.write_text("hidden: 32\nlayers: 2\nbatch_size: 64\ncalibrate: true\ncalibration_bins: 8\n")
    data = tmp_path / "train.h5"
    r = runner.invoke(app, ["simulate", "--out", str(data), "--n", str(n), "--energies", "1000,10000,100000",
                            "--binning", binning, "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "--data", str(data), "--model", "fm", "--config", str(cfg), "--epochs", "2",
                            "--out", str(tmp_path / "fm.pt"), "--binning", binning, "--quiet"])
    assert r.exit_code == 0, r.output
    from hepfastsim.models import load_generator

    gen = load_generator(tmp_path / "fm.pt")
    assert gen.calibration_ is not None
    x = gen.sample(np.array([[1000.0], [10000.0], [100000.0]]), seed=0)
    assert np.isfinite(x).all() and x.shape == (3, voxels)


def test_concurrent_writer_loses_nothing(tmp_path):
    """Two writers to one new path: the second to finish neither replaces the first one's file nor loses its own."""
    from hepfastsim.fileio import atomic_output

    target = tmp_path / "out.h5"
    with pytest.raises(HepFastSimError, match="another writer"):
        with atomic_output(target, overwrite=False) as tmp:
            tmp.write_text("mine")
            target.write_text("theirs")             # the other writer publishes first
    assert target.read_text() == "theirs"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.") and p != target]
    assert len(kept) == 1 and kept[0].read_text() == "mine"


def test_disk_full_while_simulating_leaves_a_consistent_file(tmp_path, monkeypatch):
    """No space left while writing the second chunk: one-line error, exit 2; the file keeps the first chunk
    with as many energies as showers, and --resume completes it."""
    import errno

    out = tmp_path / "sim.h5"
    real = h5py.Dataset.__setitem__
    calls = {"showers": 0}

    def full_disk(self, key, value):
        if self.name == "/showers":
            calls["showers"] += 1
            if calls["showers"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full_disk)
    r = runner.invoke(app, ["simulate", "--out", str(out), "--n", "20", "--chunk", "10", "--energies", "1000",
                            "--binning", "demo", "--quiet"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "No space left" in r.output
    with h5py.File(out) as f:
        assert len(f["incident_energies"]) == len(f["showers"]) == len(f["particle"]) == 10
    monkeypatch.setattr(h5py.Dataset, "__setitem__", real)
    r = runner.invoke(app, ["simulate", "--out", str(out), "--n", "20", "--chunk", "10", "--energies", "1000",
                            "--binning", "demo", "--quiet", "--resume"])
    assert r.exit_code == 0, r.output
    with h5py.File(out) as f:
        assert len(f["showers"]) == 20


def test_ctrl_c_inside_compiled_code_is_one_line(tmp_path, monkeypatch):
    """Ctrl-C while numba code runs reaches Python as a SystemError chained to the KeyboardInterrupt (seen with a
    real SIGINT during `simulate`: reported as a bug with exit code 2); it must read 'interrupted', exit 130."""
    from hepfastsim.fullsim import FullSim

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher(<function simulate_batch>) returned a result with an exception set") from exc

    monkeypatch.setattr(FullSim, "run", interrupted)
    r = runner.invoke(app, ["simulate", "--out", str(tmp_path / "sim.h5"), "--n", "20", "--chunk", "10",
                            "--energies", "1000", "--binning", "demo", "--quiet"])
    assert r.exit_code == 130 and r.output.strip() == "interrupted"
