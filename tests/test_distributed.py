"""Distributed data-parallel training: torchrun with 2 CPU processes (gloo) matches single-process training."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hepfastsim.data.calo_io import write_showers

TINY = "hidden: 64\nlayers: 2\nlatent: 8\nbatch_size: 128\nlr: 0.002\nepochs: 12\npatience: 100\nema_decay: 0.9\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _best_val(path: Path) -> float:
    with open(path) as f:
        return min(float(r["val_loss"]) for r in csv.DictReader(f))


def test_torchrun_two_processes_match_single(tmp_path, demo_samples):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    ref, _ = demo_samples
    data = write_showers(tmp_path / "train.h5", ref.subset(slice(0, 1500)), attrs={"binning": "binning_demo"})
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    common = ["train", "--data", str(data), "--model", "vae", "--config", str(cfg), "--binning", "demo", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "hepfastsim.cli", *common, "--out", str(tmp_path / "one.pt"),
                             "--log-csv", str(tmp_path / "one.csv")], capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([torchrun, "--nproc_per_node=2", f"--master_port={_free_port()}", "-m", "hepfastsim.cli", *common,
                          "--out", str(tmp_path / "two.pt"), "--log-csv", str(tmp_path / "two.csv")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert (tmp_path / "two.pt").exists()
    one, two = _best_val(tmp_path / "one.csv"), _best_val(tmp_path / "two.csv")
    print(f"best validation loss: 1 process {one:.5f}, torchrun 2 processes {two:.5f}, {100 * (two - one) / one:+.2f} %")
    assert abs(two - one) / one < 0.05, (one, two)
    with open(tmp_path / "two.csv") as f:
        assert len(list(csv.DictReader(f))) == 12          # one log (process 0), every epoch


def test_dask_shards_equal_single_process_file(tmp_path, fullsim_demo):
    pytest.importorskip("dask.distributed")
    from typer.testing import CliRunner

    from hepfastsim.cli import app
    from hepfastsim.data.calo_io import file_summary, read_showers

    fullsim_demo.simulate_to_file(tmp_path / "one.h5", 250, "log:1000:5000", seed=7, chunk=50, progress=False)
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "shards"), "--n", "250", "--energies", "log:1000:5000",
                                 "--seed", "7", "--chunk", "50", "--shards", "2", "--quiet"])
    assert r.exit_code == 0 and "note:" not in r.output, r.output
    assert len(list((tmp_path / "shards").glob("shard_*.h5"))) == 2
    one, many = read_showers(tmp_path / "one.h5"), read_showers(tmp_path / "shards")
    np.testing.assert_array_equal(many.energies, one.energies)
    np.testing.assert_array_equal(many.showers, one.showers)
    s = file_summary(tmp_path / "shards")
    assert s["events"] == 250 and s["shards"] == 2
    r = CliRunner().invoke(app, ["info", str(tmp_path / "shards")])
    assert r.exit_code == 0 and "events:    250" in r.output
    # fewer chunks than shards: the run says so and how to use them all (40 showers are one chunk of 50)
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "few"), "--n", "40", "--energies", "2000",
                                 "--seed", "7", "--chunk", "50", "--shards", "2", "--quiet"])
    assert r.exit_code == 0 and "run in 1 shard(s); --chunk 20 uses all 2" in r.output, r.output
    assert len(list((tmp_path / "few").glob("shard_*.h5"))) == 1
    # resuming that run: the shard there fixes the chunk size, so the cure is to start anew, not --chunk alone
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "few"), "--n", "40", "--energies", "2000",
                                 "--seed", "7", "--chunk", "50", "--shards", "2", "--quiet", "--resume"])
    assert r.exit_code == 0 and "--overwrite --chunk 20 starts anew on all 2" in r.output, r.output


def test_torchrun_ranks_hold_identical_weights_and_learn(tmp_path):
    """Gradient averaging: after data-parallel training both ranks hold bit-identical weights (without the
    all-reduce each rank steps on its own half of the data and they differ), and the model has learned
    (validation loss well below the same network untrained)."""
    import json

    import torch

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([torchrun, "--nproc_per_node=2", f"--master_port={_free_port()}",
                          str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    losses = json.loads((tmp_path / "losses.json").read_text())
    assert losses["best_val"] < 0.7 * losses["untrained_val"], losses
