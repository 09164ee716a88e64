"""`make demo`: the main job end to end on the built-in simulation, printed as a summary.

simulate (cached in the work folder) -> train the default model for a number of epochs ->
generate at the test energies -> evaluate against held-out full simulation -> time it;
then the shipped dataset-2 model (no training) against fresh dataset-2 showers of the built-in simulation.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import yaml

from hepfastsim.bench.timing import time_fullsim, time_generator
from hepfastsim.data.calo_io import ShowerDataset, file_summary, read_showers, write_showers
from hepfastsim.fullsim.simulate import run_differences, stored_attrs
from hepfastsim.fullsim import FullSim
from hepfastsim.models import get_family, load_generator
from hepfastsim.models.options import split_calibration
from hepfastsim.tasks import calo_samples, calo_spec, train_val_split
from hepfastsim.train import Trainer
from hepfastsim.validation.evaluate import classifiers, evaluate, sample_features
from hepfastsim.validation.features import high_level_vector
from hepfastsim.validation.report import write_report

DEMO_ENERGIES = "log:1000:20000"  # MeV, electrons
DS2_ENERGIES = "log:1000:100000"  # MeV, electrons: the shipped dataset-2 model's training range

CLASSIFIER_RUNS = 3  # trainings per classifier: AUC as mean +- std


def family_config(name: str) -> dict:
    """The shipped YAML options of a family (src/hepfastsim/configs/NAME.yaml)."""
    text = (resources.files("hepfastsim") / "configs" / f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def cached_simulation(fs: FullSim, p: Path, n: int, energies: str, seed: int, progress: bool = True) -> Path:
    """n electron showers of the built-in simulation in file p, simulated only where p holds fewer, or anew where
    p was made by another revision of the simulation or with other run parameters."""
    done = file_summary(p)["events"] if p.exists() else 0
    stale = p.exists() and run_differences(stored_attrs(p), fs.attrs() | {"energy_spec": energies, "seed": seed})
    if stale:
        print(f"{p}: {stale[0]}: simulating it anew")
        done = 0
    if done < n:
        print(f"simulating {n} showers -> {p} (cached for later runs)")
        stats = fs.simulate_to_file(p, n, energies, "e-", seed=seed, resume=p.exists() and not stale,
                                    overwrite=bool(stale), progress=progress)
        print(f"  {1000 * stats['seconds'] / max(stats['simulated_GeV'], 1e-9):.3f} ms per GeV on all cores")
    return p


def demo_data(out: Path, n_train: int, n_test: int, seed: int = 0, progress: bool = True,
              binning: str = "demo") -> tuple[Path, Path, FullSim]:
    """Simulate (once) the demo training and test sets: electrons 1-20 GeV log-uniform, demo readout (or another)."""
    fs = FullSim(binning=binning)
    out.mkdir(parents=True, exist_ok=True)
    train = cached_simulation(fs, out / "fullsim_train.h5", n_train, DEMO_ENERGIES, seed, progress)
    test = cached_simulation(fs, out / "fullsim_test.h5", n_test, DEMO_ENERGIES, seed + 1000, progress)
    return train, test, fs


def shipped_ds2(out: Path, n: int, seed: int = 0, classifier_epochs: int | None = None) -> dict:
    """The shipped dataset-2 model (``--model ds2``, no training) against n fresh showers of the built-in
    simulation, e- 1-100 GeV on the dataset-2 readout, generated at the same energies; CaloChallenge protocol."""
    fs = FullSim(binning="ds2")
    test = read_showers(cached_simulation(fs, out / "fullsim_ds2_test.h5", n, DS2_ENERGIES, seed + 2000),
                        binning=fs.binning, max_events=n)
    model = load_generator("ds2")
    gen = ShowerDataset(test.energies, model.sample(test.energies.reshape(-1, 1), seed=seed + 3))
    timing = time_generator(model, 10_000.0, batch_sizes=(100, 1000), repeats=2)
    full = time_fullsim(fs, (10_000.0,), n=10)
    print(f"evaluating the shipped dataset-2 model on {n} showers ({CLASSIFIER_RUNS} classifier trainings)")
    high_level = tuple(high_level_vector(f, fs.binning)[0] for f in sample_features(test, gen, fs.binning))
    low, high, _ = classifiers(test, gen, fs.binning, high_level, runs=CLASSIFIER_RUNS, epochs=classifier_epochs,
                               seed=seed)
    return {
        "ds2_showers": n,
        "ds2_auc_low": f"{low.auc:.3f} +- {low.auc_std:.3f}",
        "ds2_auc_high": f"{high.auc:.3f} +- {high.auc_std:.3f}",
        "ds2_ms_per_shower_batch1000": round(timing["ms_per_shower"][1000], 3),
        "ds2_fullsim_ms_per_shower_10GeV": round(full[10_000.0], 2),
        "ds2_speedup_10GeV_batch1000": round(full[10_000.0] / timing["ms_per_shower"][1000], 1),
    }


def run_demo(out: Path, model: str = "fm", epochs: int = 300, n_train: int = 6000, n_test: int = 2000,
             seed: int = 0, classifier_epochs: int | None = None, n_ds2: int = 300,
             minutes: float | None = None) -> dict:
    """The demo with its defaults sized for <= 15 minutes on 2 cores from a fresh clone (RESULTS: `make demo`).

    Training is budgeted in epochs (the family's early stopping may end it sooner), so that a slower machine trains
    as many steps, not fewer; minutes adds a wall-clock cap on top (a quick look, not for comparisons)."""
    t_start = time.time()
    train_p, test_p, fs = demo_data(out, n_train, n_test, seed)
    b = fs.binning
    ds = read_showers(train_p, binning=b, max_events=n_train)
    test = read_showers(test_p, binning=b, max_events=n_test)
    i_tr, i_va = train_val_split(len(ds), 0.1, seed)
    cfg, calibration = split_calibration(family_config(model))
    cfg["epochs"] = epochs
    gen = get_family(model)(calo_spec(b), **cfg, time_limit_s=60 * (minutes or 0.0), seed=seed)
    cap = f" or {minutes:.1f} min" if minutes else ""
    print(f"training {model} for at most {epochs} epochs{cap} on {len(i_tr)} showers")
    log = Trainer(progress=True, calibration=calibration).fit(gen, calo_samples(ds.subset(i_tr)), calo_samples(ds.subset(i_va))).history_
    ckpt = gen.save(out / f"model_{model}.pt")
    t0 = time.perf_counter()
    x = gen.sample(test.energies.reshape(-1, 1), seed=seed + 1)
    t_gen = time.perf_counter() - t0
    gen_ds = ShowerDataset(test.energies, x)
    write_showers(out / f"generated_{model}.h5", gen_ds, overwrite=True, attrs={"binning": b.name})
    timing = time_generator(gen, 10_000.0, batch_sizes=(1, 100, 10_000), repeats=3)
    full = time_fullsim(fs, (10_000.0,), n=20)
    print(f"evaluating against held-out full simulation (CaloChallenge protocol, {CLASSIFIER_RUNS} classifier trainings)")
    feats = sample_features(test, gen_ds, b)
    m = evaluate(test, gen_ds, b, seed=seed, classifier_runs=CLASSIFIER_RUNS, classifier_epochs=classifier_epochs, features=feats,
                 timing_ms={str(k): v for k, v in timing["ms_per_shower"].items()})
    report = write_report(out / f"report_{model}", test, gen_ds, b, m, features=feats,
                          title=f"hepfastsim demo: {model} vs built-in full simulation")
    summary = {
        "model": model,
        "checkpoint": str(ckpt),
        "train_seconds": round(log.seconds, 1),
        "epochs": len(log.epochs),
        "auc_low": round(m["classifier_low"]["auc"], 4),
        "auc_low_std": round(m["classifier_low"]["auc_std"], 4),
        "auc_high": round(m["classifier_high"]["auc"], 4),
        "auc_high_std": round(m["classifier_high"]["auc_std"], 4),
        "classifier": f"CaloChallenge protocol, {CLASSIFIER_RUNS} trainings, "
                      f"{m['classifier_low']['n_per_sample'].get('val')} val showers per sample",
        "fpd_x1e3": f"{1e3 * m['fpd']:.4g} +- {1e3 * m['fpd_err']:.2g}",
        "kpd_x1e3": f"{1e3 * m['kpd']:.3g} +- {1e3 * m['kpd_err']:.2g}",
        "ms_per_shower_batch10000": round(timing["ms_per_shower"][10000], 4),
        "ms_per_shower_batch1": round(timing["ms_per_shower"][1], 3),
        "fullsim_ms_per_shower_10GeV": round(full[10_000.0], 3),
        "speedup_10GeV_batch10000": round(full[10_000.0] / timing["ms_per_shower"][10000], 1),
        "generation_ms_per_shower_test_set": round(1000 * t_gen / len(test), 4),
        "report": str(report),
    }
    if n_ds2:
        summary.update(shipped_ds2(out, n_ds2, seed, classifier_epochs))
    summary["total_minutes"] = round((time.time() - t_start) / 60, 2)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n===== hepfastsim demo summary =====")
    for k, v in summary.items():
        print(f"{k:34s} {v}")
    return summary
