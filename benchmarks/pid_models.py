"""PID fast simulation (track -> DLLs) on the built-in RICH simulation: model zoo against binned resampling.

    .venv/bin/python benchmarks/pid_models.py [--train 200000] [--test 40000] [--species K,pi] [--runs 3]

Per species: simulates --train + 10 % (validation) + --test tracks with RICH information (the shipped kinematics),
trains binned resampling (the analysts' histogram method), the conditional WGAN-GP and flow matching with a
distilled one-pass student (configs/pid_*.yaml; budgets in epochs), generates one response per held-out track,
and scores each against the held-out simulation: efficiency-curve chi2 of the usual cuts versus P, eta, nTracks,
and the classifier AUC (--runs trainings); the floor is a second simulated sample of the same size. Generation
speed: tracks per second with batches of 100 000 on all cores. Writes --out as rows come.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hepfastsim.data.pid_io import PIDDataset
from hepfastsim.demo import family_config
from hepfastsim.fullsim.rich import in_acceptance, sample_tracks, simulate_rich
from hepfastsim.models import get_family
from hepfastsim.models.options import split_calibration
from hepfastsim.tasks import pid_samples, pid_spec
from hepfastsim.train import Trainer
from hepfastsim.validation.pid import evaluate_pid


def rich_tracks(species: str, n: int, seed: int) -> PIDDataset:
    """n simulated tracks of one species, all with RICH information."""
    s, c = sample_tracks(int(n * 1.6) + 100, seed, species=(species,))
    keep = in_acceptance(c[:, 1]).any(1)
    s, c = s[keep][:n], c[keep][:n]
    return PIDDataset(c, simulate_rich(s, c, seed + 1), species=s, has_rich=np.ones(len(s), bool))


def speed(model, c: np.ndarray) -> float:
    model.sample(c[:1000], seed=0)
    big = np.repeat(c, max(1, 1_000_000 // len(c)), axis=0)[:1_000_000]
    t0 = time.perf_counter()
    model.sample(big, batch_size=100_000, seed=1)
    return len(big) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=200_000)
    ap.add_argument("--test", type=int, default=40_000)
    ap.add_argument("--species", default="K,pi")
    ap.add_argument("--families", default="binned,gan,fm")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--classifier-epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/pid_models.json"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    res = {"date": time.strftime("%Y-%m-%d"), "train": a.train, "test": a.test, "runs": a.runs, "rows": []}
    names = ("P", "eta", "nTracks", "charge")
    for k, species in enumerate(a.species.split(",")):
        n_val = a.train // 10
        data = rich_tracks(species, a.train + n_val, seed=100 + k)
        test, floor = rich_tracks(species, a.test, seed=200 + k), rich_tracks(species, a.test, seed=300 + k)
        train, val = data.subset(slice(0, a.train)), data.subset(slice(a.train, None))
        score = lambda g: evaluate_pid(test.conditions, test.responses, test.conditions, g, names, runs=a.runs,
                                       epochs=a.classifier_epochs, seed=1)
        m = evaluate_pid(test.conditions, test.responses, floor.conditions, floor.responses, names, runs=a.runs,
                         epochs=a.classifier_epochs, seed=1)
        rows = [{"species": species, "family": "floor (simulation vs simulation)", "chi2": m["efficiency_chi2"],
                 "bins": m["efficiency_bins"], "auc": m["classifier"]["auc"], "auc_std": m["classifier"]["auc_std"]}]
        print(json.dumps(rows[-1]), flush=True)
        for fam in a.families.split(","):
            cfg, cal = split_calibration(family_config(f"pid_{fam}") if fam != "binned" else {})
            model = get_family(fam)(pid_spec(data, species), **cfg)
            t0 = time.perf_counter()
            Trainer(calibration=cal).fit(model, pid_samples(train), pid_samples(val))
            t_train = time.perf_counter() - t0
            m = score(model.sample(test.conditions, seed=5))
            rows.append({"species": species, "family": fam, "train_s": t_train,
                         "epochs": len(model.history_.epochs), "chi2": m["efficiency_chi2"], "bins": m["efficiency_bins"],
                         "chi2_per_cut": m["efficiency_chi2_per_cut"], "auc": m["classifier"]["auc"],
                         "auc_std": m["classifier"]["auc_std"], "tracks_per_s": speed(model, test.conditions)})
            print(json.dumps(rows[-1], default=float), flush=True)
        res["rows"] += rows
        a.out.write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
