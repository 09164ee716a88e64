"""Every model family on the same demo data, scored by the same evaluation (issue: model zoo table).

For each family: train with its shipped config (src/hepfastsim/configs/FAMILY.yaml) on the demo
training set (built-in simulation, electrons 1-20 GeV, 576 voxels) for --epochs epochs (or, with
--minutes, under a wall-clock budget: not comparable between runs on a loaded machine), generate one
shower per held-out test shower at the same incident energy, evaluate against the held-out full
simulation under CaloChallenge's protocol (classifier AUCs, mean ± std of --runs trainings, FPD, KPD,
separation powers), and time generation at batch 10000 (10 GeV, CPU). Prints a markdown table and
writes JSON with this run's rows only.

    .venv/bin/python benchmarks/model_zoo.py --epochs 40 --out benchmarks/zoo_demo.json

The same on the dataset-2 readout (6480 voxels; the same 1-20 GeV electrons simulated once into
demo_output/ds2): --binning ds2 --data demo_output/ds2

Any other simulated sample: --train FILE_OR_SHARDS --test FILE_OR_SHARDS --binning BINNING; --geant4
DETECTOR:PARTICLE:ENERGY_MEV times the Geant4 engine on that detector and binning in the same run (a subprocess,
one Geant4 per process, 50 showers, process CPU time on one core) beside the families' generation times. The pion
rows of the dataset-1-like calorimeter (issue 21):

    .venv/bin/python benchmarks/model_zoo.py --train PIONS/train --test PIONS/test --binning ds1-pions \
        --geant4 atlas_barrel_ds1:pi+:10000 --out benchmarks/zoo_pions_ds1.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hepfastsim.bench.timing import time_generator
from hepfastsim.data.calo_io import ShowerDataset, read_showers
from hepfastsim.demo import demo_data, family_config
from hepfastsim.models import get_family
from hepfastsim.models.options import split_calibration
from hepfastsim.train import Trainer
from hepfastsim.tasks import calo_samples, calo_spec, train_val_split
from hepfastsim.validation.calochallenge import auc_columns
from hepfastsim.validation.evaluate import evaluate


def run_family(name: str, minutes: float | None, epochs: int | None, train, val, test, binning, seed: int = 0,
               overrides: dict | None = None, save_dir: Path | None = None, runs: int = 3,
               checkpoint: Path | None = None, cnn: bool = False) -> dict:
    if checkpoint is not None:   # a model trained elsewhere (e.g. by `hepfastsim train`): evaluated, not retrained
        from hepfastsim.models import load_generator

        gen = load_generator(checkpoint)
        return _scores(name, gen, gen.history_.seconds, len(gen.history_.epochs), test, binning, seed, runs, cnn)
    cfg = {**family_config(name), **(overrides or {})}
    if name != "library":
        if epochs:
            cfg.update(epochs=epochs, patience=epochs)
        if minutes:
            cfg["time_limit_s"] = minutes * 60
    cfg, calibration = split_calibration({**cfg, "seed": seed})
    gen = get_family(name)(calo_spec(binning), **cfg)
    t0 = time.perf_counter()
    log = Trainer(calibration=calibration).fit(gen, calo_samples(train), calo_samples(val)).history_
    t_train = time.perf_counter() - t0
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        gen.save(save_dir / f"{name}.pt")
    return _scores(name, gen, t_train, len(log.epochs), test, binning, seed, runs, cnn)


def _scores(name: str, gen, t_train: float, epochs: int, test, binning, seed: int, runs: int, cnn: bool = False) -> dict:
    """One row: gen's showers at the test energies against the test showers, and its generation time."""
    x = gen.sample(test.energies.reshape(-1, 1), seed=seed + 1)
    m = evaluate(test, ShowerDataset(test.energies, x), binning, seed=seed, fast=True, classifier_runs=runs, cnn=cnn)
    ms_all = time_generator(gen, 10_000.0, batch_sizes=(1, 100, 10_000), repeats=3)["ms_per_shower"]
    ms = ms_all[10_000]
    return {"family": name, "train_s": round(t_train, 1), "epochs": epochs, **metric_columns(m, runs),
            "ms_per_shower": {str(k): v for k, v in ms_all.items()}, "ms_per_shower_b10000": ms}


def metric_columns(m: dict, runs: int) -> dict:
    """The quality columns of a row from ``evaluate``'s result: AUCs (overall and per decade), FPD, KPD, separations."""
    lo, hi = m.get("classifier_low") or {}, m.get("classifier_high") or {}   # --runs 0: no classifier columns
    return {**auc_columns(m), "auc_low_decades": lo.get("energy_bins"),
            "auc_cnn_decades": (m.get("classifier_cnn") or {}).get("energy_bins"),
            "auc_high_decades": hi.get("energy_bins"), "protocol": lo.get("protocol"), "classifier_runs": runs,
            "fpd": m["fpd"], "fpd_err": m["fpd_err"], "kpd": m["kpd"], "kpd_err": m["kpd_err"],
            "sep_groups": m["separation_power_groups"], "e_ratio_sep": m["separation_power"]["E_tot/E_inc"]["value"]}


_GEANT4_TIMING = """
import json, sys, time
import numpy as np
from hepfastsim.fullsim import make_engine
from hepfastsim.geometry.detector import load_detector
detector, binning, particle, energy, n = sys.argv[1:]
sim = make_engine("geant4", load_detector(detector), binning)
sim.run(np.full(2, float(energy)), particle, seed=99)  # physics tables, first-event costs
t0 = time.process_time()
sim.run(np.full(int(n), float(energy)), particle, seed=100)
print(json.dumps({"ms_per_shower": 1e3 * (time.process_time() - t0) / int(n), "physics": sim.physics}))
"""


def geant4_ms(spec: str, binning: str, n: int = 50) -> dict:
    """Geant4's ms per shower (one core) for DETECTOR:PARTICLE:ENERGY_MEV on binning."""
    detector, particle, energy = spec.split(":")
    out = subprocess.run([sys.executable, "-c", _GEANT4_TIMING, detector, binning, particle, energy, str(n)],
                         capture_output=True, text=True, check=True)
    return {"spec": spec, "n": n, **json.loads(out.stdout.strip().splitlines()[-1])}


def table(rows: list[dict]) -> str:
    out = ["| family | AUC low | AUC high | AUC CNN | FPD × 1e3 | KPD × 1e3 | sep. E_tot/E_inc | train [s] (epochs) | ms/shower (batch 10000) |",
           "|---|---|---|---|---|---|---|---|---|"]
    pm = lambda v, e: "–" if v is None else f"{v:.3f} ± {e:.3f}" if e is not None else f"{v:.3f}"  # noqa: E731
    for r in rows:
        out.append(f"| {r['family']} | {pm(r['auc_low'], r['auc_low_std'])} | {pm(r['auc_high'], r['auc_high_std'])} | "
                   f"{pm(r.get('auc_cnn'), r.get('auc_cnn_std'))} | "
                   f"{1e3 * r['fpd']:.3g} ± {1e3 * r['fpd_err']:.2g} | {1e3 * r['kpd']:.3g} ± {1e3 * r['kpd_err']:.2g} | "
                   f"{r['e_ratio_sep']:.3g} | {r['train_s']:.0f} ({r['epochs']}) | {r['ms_per_shower_b10000']:.4f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="floor,library,vae,gan,flow,fm",
                    help="comma separated; 'floor' = a second full-simulation sample of the test size")
    ap.add_argument("--epochs", type=int, default=None, help="training budget per family in epochs (comparable)")
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget per family (not comparable)")
    ap.add_argument("--runs", type=int, default=3, help="classifier trainings (0: distances and separations only)")
    ap.add_argument("--n-train", type=int, default=30000)
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--data", type=Path, default=Path("demo_output"), help="folder of the (cached) demo simulation")
    ap.add_argument("--binning", default="demo", help="readout: demo or a CaloChallenge binning XML")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/zoo_demo.json"))
    ap.add_argument("--models", type=Path, default=Path("demo_output/zoo"), help="where the trained checkpoints go")
    ap.add_argument("--seed", type=int, default=0, help="training seed (sampling uses seed + 1)")
    ap.add_argument("--set", action="append", default=[], help="override an option: FAMILY.key=value (YAML value)")
    ap.add_argument("--train", type=Path, default=None, help="training sample (file or shard folder) instead of --data")
    ap.add_argument("--test", type=Path, default=None, help="held-out sample (with --train)")
    ap.add_argument("--geant4", default=None, help="DETECTOR:PARTICLE:ENERGY_MEV: time Geant4 on it in this run")
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="FAMILY=PATH: evaluate this trained checkpoint as FAMILY's row instead of training it")
    ap.add_argument("--cnn", action="store_true", help="add the CNN classifier column (regular voxel grids)")
    a = ap.parse_args()
    import yaml

    overrides: dict[str, dict] = {}
    for s in a.set:
        k, v = s.split("=", 1)
        fam, key = k.split(".", 1)
        overrides.setdefault(fam, {})[key] = yaml.safe_load(v)
    checkpoints = {k: Path(v) for k, v in (c.split("=", 1) for c in a.checkpoint)}
    if a.train is not None:
        from hepfastsim.geometry.binning import get_binning

        train_p, test_p, binning = a.train, a.test, get_binning(a.binning)
    else:
        train_p, test_p, fs = demo_data(a.data, a.n_train, a.n_test, binning=a.binning)
        binning = fs.binning
    ds = read_showers(train_p, binning=binning, max_events=a.n_train)
    test = read_showers(test_p, binning=binning, max_events=a.n_test)
    i_tr, i_va = train_val_split(len(ds), 0.1, 0)
    rows = []
    info = {"date": time.strftime("%Y-%m-%d"), "threads": torch.get_num_threads(), "minutes": a.minutes, "epochs": a.epochs,
            "binning": binning.name, "n_train": len(i_tr), "n_test": len(test), "seed": a.seed, "overrides": overrides,
            "protocol": "calochallenge", "classifier_runs": a.runs, "rows": rows,
            "train": str(train_p), "test": str(test_p)}
    if a.geant4:
        info["geant4"] = geant4_ms(a.geant4, a.binning)
        print(json.dumps(info["geant4"]), flush=True)
    for fam in a.families.split(","):
        if fam == "floor":   # the statistical floor: other full-simulation showers (training set) vs the test set
            other = ds.subset(i_tr[: len(test)])
            m = evaluate(test, other, binning, fast=True, classifier_runs=a.runs, cnn=a.cnn)
            r = {"family": "floor (full sim vs full sim)", "train_s": 0.0, "epochs": 0, **metric_columns(m, a.runs),
                 "ms_per_shower_b10000": float("nan")}
        else:
            r = run_family(fam, a.minutes, a.epochs, ds.subset(i_tr), ds.subset(i_va), test, binning, seed=a.seed,
                           overrides=overrides.get(fam), save_dir=a.models, runs=a.runs,
                           checkpoint=checkpoints.get(fam), cnn=a.cnn)
        rows.append(r)
        print(json.dumps(r, default=float), flush=True)
        a.out.write_text(json.dumps(info, indent=2, default=float))   # after every row: a long run keeps its results
    print(table(rows))
    if a.geant4:
        g4 = info["geant4"]["ms_per_shower"]
        for r in rows:
            if np.isfinite(r["ms_per_shower_b10000"]):
                print(f"{r['family']}: {g4 / r['ms_per_shower_b10000']:.3g} x faster than Geant4 ({g4:.1f} ms/shower)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
