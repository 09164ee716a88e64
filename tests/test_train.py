"""Issue: architecture — the training engine's pieces, each tested alone: EMA update, early stopping, time
budget, CSV log, exact resume of an interrupted fit, gradient averaging across two processes."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from golden_cases import B, synthetic_samples

from hepfastsim.models import get_family
from hepfastsim.tasks import calo_spec
from hepfastsim.train import Trainer
from hepfastsim.train.budget import TimeBudget
from hepfastsim.train.distributed import average_gradients
from hepfastsim.train.early_stopping import EarlyStopping
from hepfastsim.train.ema import ema_of
from hepfastsim.train.logs import CsvLog


def test_ema_update():
    """The first update copies the weights; later ones move decay * old + (1 - decay) * new."""
    net = torch.nn.Linear(3, 1)
    ema = ema_of(net, 0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, torch.ones(1, 3))
    with torch.no_grad():
        net.weight.fill_(11.0)
    ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, torch.full((1, 3), 0.9 * 1.0 + 0.1 * 11.0))


def test_early_stopping_keeps_the_best_epoch():
    calls = []
    stop = EarlyStopping(patience=2)
    for epoch, value in enumerate([3.0, 2.0, 2.5, 2.4, 1.0], start=1):
        stop.update(value, epoch, lambda e=epoch: calls.append(e) or {"epoch": e})
        if stop.should_stop:
            break
    assert epoch == 4 and stop.best == 2.0 and stop.best_epoch == 2
    assert stop.best_state == {"epoch": 2} and calls == [1, 2]     # state taken only on an improvement
    tight = EarlyStopping(patience=5, best=10.0, min_delta=0.5)
    assert not tight.update(9.8, 1, dict) and tight.update(9.4, 2, dict)   # improvements below min_delta do not count


def test_time_budget_and_csv_log(tmp_path):
    assert not TimeBudget(0.0).spent()                   # 0: no limit
    b = TimeBudget(0.01)
    time.sleep(0.03)
    assert b.spent() and b.elapsed() >= 0.03
    log = CsvLog(tmp_path / "loss.csv")
    log.write(1, 0.5, 0.6, 1.0)
    log.close()
    log = CsvLog(tmp_path / "loss.csv", append=True)    # a resumed fit continues the file
    log.write(2, 0.4, 0.5, 2.0)
    log.close()
    assert (tmp_path / "loss.csv").read_text().splitlines() == ["epoch,train_loss,val_loss,seconds", "1,0.5,0.6,1.0",
                                                                "2,0.4,0.5,2.0"]


def test_resume_of_an_interrupted_fit_is_exact(tmp_path):
    """A GAN (random draws from the global generator, n_critic counting steps, dequantisation noise) interrupted
    in its third epoch and resumed from the per-epoch checkpoint ends with the weights and losses of an
    uninterrupted fit."""
    torch.set_num_threads(1)
    train, val = synthetic_samples(200, 1), synthetic_samples(50, 2)
    opts = {"hidden": 16, "layers": 1, "batch_size": 64, "latent": 4, "n_critic": 2, "dequantize": True, "epochs": 4,
            "patience": 100}
    whole = get_family("gan")(calo_spec(B), **opts).fit(train, val)

    ck = tmp_path / "gan.pt"
    broken = get_family("gan")(calo_spec(B), **opts)
    real_step, calls = broken.train_step, []

    def interrupted(x, c, step):
        calls.append(step)
        if len(calls) == 7:          # 3 batches an epoch: the first batch of epoch 3
            raise KeyboardInterrupt
        return real_step(x, c, step)

    broken.train_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        Trainer(checkpoint=ck).fit(broken, train, val)
    resumed = Trainer(checkpoint=ck, resume=ck).fit(get_family("gan")(calo_spec(B), **opts), train, val)
    assert resumed.history_.epochs == [1, 2, 3, 4]
    assert resumed.history_.val_loss == whole.history_.val_loss
    for a, b in zip(whole.net_.state_dict().values(), resumed.net_.state_dict().values()):
        assert torch.equal(a, b)
    e = np.geomspace(1000.0, 10000.0, 20)
    assert np.array_equal(resumed.sample(e, seed=1), whole.sample(e, seed=1))


def _average_on_rank(rank: int, store: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    p = torch.nn.Parameter(torch.zeros(3))
    q = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.full((3,), float(rank + 1))          # rank 0: 1, rank 1: 2
    q.grad = torch.tensor([10.0 * rank, -1.0])
    average_gradients([p, q], 2)
    torch.save({"p": p.grad, "q": q.grad}, f"{out}/grad{rank}.pt")
    torch.distributed.destroy_process_group()


def test_gradient_averaging_two_processes(tmp_path):
    """Two gloo processes with different gradients hold their mean afterwards, identically."""
    torch.multiprocessing.spawn(_average_on_rank, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    g0, g1 = (torch.load(tmp_path / f"grad{r}.pt") for r in (0, 1))
    assert torch.equal(g0["p"], torch.full((3,), 1.5)) and torch.equal(g0["q"], torch.tensor([5.0, -1.0]))
    assert all(torch.equal(g0[k], g1[k]) for k in g0)


def _shard_folder(tmp_path, n: int, seed: int):
    """Synthetic demo-readout showers written as two shards (as ``simulate --shards 2`` writes them)."""
    from hepfastsim.data.calo_io import ShowerDataset, write_showers

    s = synthetic_samples(n, seed)
    folder = tmp_path / "data"
    half = n // 2 + 7   # unequal shards: the event numbering must carry over from one to the next
    for k, part in enumerate((slice(0, half), slice(half, n))):
        write_showers(folder / f"shard_{k:04d}.h5", ShowerDataset(s.c[part, 0], s.x[part]), attrs={"binning": "demo"})
    return folder, s


def test_streamed_showers_read_the_chosen_events_from_the_shards(tmp_path):
    """StreamedShowers gives the rows read_showers gives, for slices, any index order, repeats and np.asarray,
    across unequal shards; a NaN in the second shard is a one-line error naming that file and its events."""
    import h5py

    from hepfastsim.data.calo_io import StreamedShowers, read_energies
    from hepfastsim.errors import HepFastSimError

    folder, s = _shard_folder(tmp_path, 3000, 1)
    events = np.sort(np.random.default_rng(0).choice(3000, 2200, replace=False))
    lazy = StreamedShowers(folder, events)
    lazy.BLOCK = 256   # several reads per shard
    assert len(lazy) == 2200 and lazy.shape == (2200, B.n_voxels)
    np.testing.assert_array_equal(lazy[:], s.x[events])
    np.testing.assert_array_equal(lazy[1000:1900], s.x[events[1000:1900]])
    idx = np.random.default_rng(1).integers(0, 2200, 900)
    np.testing.assert_array_equal(lazy[idx], s.x[events[idx]])
    np.testing.assert_array_equal(np.asarray(lazy, np.float64), s.x[events].astype(np.float64))
    np.testing.assert_array_equal(read_energies(folder), s.c[:, 0])
    with h5py.File(folder / "shard_0001.h5", "a") as f:
        f["showers"][10, 3] = np.nan
    with pytest.raises(HepFastSimError, match=r"shard_0001.h5: showers contain NaN or inf .*\[events 0-"):
        StreamedShowers(folder)[:]


def test_training_streams_the_showers_from_disk(tmp_path, monkeypatch):
    """`hepfastsim train` (calo) reads the showers chunk by chunk: the model is the one trained on the same
    showers in memory (identical weights), and the numpy memory at its peak stays below 1.6 x the raw float32
    showers (reading them whole, then the train/validation copies and the preprocessed set: ~3x)."""
    import tracemalloc

    from typer.testing import CliRunner

    from hepfastsim.cli import app
    from hepfastsim.data import calo_io, preprocessing
    from hepfastsim.data.samples import Samples
    from hepfastsim.models import load_generator
    from hepfastsim.tasks import train_val_split

    folder, s = _shard_folder(tmp_path, 12_000, 2)
    raw = s.x.nbytes
    monkeypatch.setattr(preprocessing, "CHUNK", 500)   # chunks small against the data set, as for real data sets
    monkeypatch.setattr(calo_io.StreamedShowers, "BLOCK", 500)
    options = {"hidden": 32, "layers": 2, "epochs": 1, "batch_size": 1000, "distill_epochs": 0}
    (tmp_path / "fm.yaml").write_text("".join(f"{k}: {v}\n" for k, v in options.items()))
    args = ["train", "--data", str(folder), "--model", "fm", "--binning", "demo", "--config", str(tmp_path / "fm.yaml"),
            "--out", str(tmp_path / "fm.pt"), "--quiet", "--overwrite"]
    assert CliRunner().invoke(app, args).exit_code == 0   # once untraced: the modules it imports are loaded
    tracemalloc.start()
    r = CliRunner().invoke(app, args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.exit_code == 0, r.output
    assert peak < 1.6 * raw, (peak / raw, raw)
    i_tr, i_va = train_val_split(len(s), 0.15, 0)
    ref = get_family("fm")(calo_spec(B), **options, seed=0)
    Trainer().fit(ref, Samples(s.x[i_tr], s.c[i_tr]), Samples(s.x[i_va], s.c[i_va]))
    streamed = load_generator(tmp_path / "fm.pt")
    for (k, a), b in zip(ref.ema_.module.state_dict().items(), streamed.ema_.module.state_dict().values()):
        assert torch.equal(a, b), k
