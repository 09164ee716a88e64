"""Production features on the demo data: a fast/full routing policy and an ensemble's uncertainty band.

Routing: full simulation below 5 GeV, a trained demo-readout model (--routing-model, default the shipped
``demo_fm.pt``) above, for the incident energies of the held-out test set; the mixed sample and the fast model alone (test
showers >= 5 GeV) are evaluated against the held-out full simulation, and the time saved is
measured in the same run.

Ensemble: K members of one family (its shipped config, --epochs each, seeds 0..K-1)
sampled as a mixture at the test energies; the band (the members' 68 % prediction interval, see
``validation/ensemble.py``) is compared with the held-out reference on every high-level histogram;
the coverage of the plain mean +- std band is recorded alongside.

    .venv/bin/python benchmarks/production.py --model fm --members 3 --epochs 15

The demo data (electrons 1-20 GeV, demo readout: demo_output/fullsim_train.h5 with seed 0, fullsim_test.h5
with seed 1000) are simulated on the first run and reused after.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset, read_showers
from hepfastsim.demo import demo_data, family_config
from hepfastsim.fullsim import FullSim
from hepfastsim.models import get_family, load_generator
from hepfastsim.models.options import split_calibration
from hepfastsim.train import Trainer
from hepfastsim.routing import Policy, run_policy
from hepfastsim.tasks import calo_samples, calo_spec, train_val_split
from hepfastsim.validation.calochallenge import auc_columns
from hepfastsim.validation.ensemble import band_coverage, ensemble_bands, ensemble_summary
from hepfastsim.validation.evaluate import evaluate, sample_features


def scores(m: dict) -> dict:
    return {**auc_columns(m), "fpd": m["fpd"], "fpd_err": m["fpd_err"], "kpd": m["kpd"],
            "kpd_err": m["kpd_err"], "sep_E_tot": m["separation_power"]["E_tot/E_inc"]["value"]}


def bands_of(ref: ShowerDataset, gen: ShowerDataset, binning) -> dict:
    fr, fg = sample_features(ref, gen, binning)
    return ensemble_bands(fr, fg, gen.extras["member"], binning)


def routing(model: Path, test: ShowerDataset, fs: FullSim, threshold_mev: float = 5000.0,
            workdir: Path = Path("demo_output")) -> dict:
    pol_path = workdir / "policy_demo.yaml"
    pol_path.write_text(f"default: full\nrules:\n  - {{particle: e-, energy_MeV: [{threshold_mev}, 1.0e9], engine: fast, "
                        f"model: {model.resolve()}}}\n")
    mixed, st = run_policy(Policy.load(pol_path), fs, test.energies, "e-", seed=77)
    hi = test.energies >= threshold_mev
    return {"policy": pol_path.read_text(), "timing": st,
            "mixed_vs_full": scores(evaluate(test, mixed, fs.binning, fast=True)),
            "fast_alone_in_its_range": scores(evaluate(test.subset(hi), mixed.subset(hi), fs.binning, fast=True))}


def ensemble(family: str, k: int, epochs: int, train, val, test, binning, extra: dict | None = None,
             bootstrap: bool = False, save: Path | None = None, classifier_runs: int = 3) -> dict:
    if save is not None and save.exists():   # evaluate an ensemble this script trained and saved before
        ens = load_generator(save)
    else:
        opts, calibration = split_calibration({**family_config(family), "epochs": epochs, "patience": epochs})
        ens = get_family("ensemble")(calo_spec(binning), base=family, members=k, options=opts, bootstrap=bootstrap,
                                     **(extra or {}))
        Trainer(calibration=calibration).fit(ens, calo_samples(train), calo_samples(val))
        if save is not None:
            ens.save(save)
    x = ens.sample(test.energies.reshape(-1, 1), seed=3)
    gen = ShowerDataset(test.energies, x, {"member": ens.last_members})
    bands = bands_of(test, gen, binning)
    summ = ensemble_summary(bands)
    return {"family": family, "members": len(ens.members_), "epochs": epochs, "bootstrap": bootstrap, "options": extra or {},
            "train_s": ens.history_.seconds,
            "coverage_high_level": summ["band_coverage_high_level"],
            # the plain mean +- std band (no small-K correction), for comparison
            "coverage_high_level_std_band": float(np.nanmean([band_coverage(b, b["std"]) for b in bands.values()])),
            "coverage_E_tot": bands["E_tot/E_inc"]["coverage"],
            "coverage_per_observable_group": {g: float(np.mean([v for n, v in summ["coverage"].items() if n.startswith(g)]))
                                              for g in ("E_tot", "e_layer", "ec_x", "ec_y", "width_x", "width_y", "ec_r", "width_r", "sparsity")},
            "mixture": scores(evaluate(test, gen, binning, fast=True, classifier_runs=classifier_runs))}


def band_ceiling(train: ShowerDataset, test: ShowerDataset, binning, k: int, n: int = 10_000) -> dict:
    """What the band can reach: K "members" that are disjoint parts of n full-simulation showers."""
    sim = train.subset(slice(0, n))
    sim.extras["member"] = np.arange(len(sim)) % k
    summ = ensemble_summary(bands_of(test, sim, binning))
    return {"members": k, "showers": len(sim), "coverage_high_level": summ["band_coverage_high_level"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fm", help="the ensemble's family")
    ap.add_argument("--routing-model", type=Path, default=None,
                    help="checkpoint of the fast engine (default: the shipped demo-readout model)")
    ap.add_argument("--n-train", type=int, default=24000, help="demo training showers (simulated once)")
    ap.add_argument("--n-test", type=int, default=4000, help="held-out demo showers (simulated once)")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15, help="training budget per ensemble member (epochs)")
    ap.add_argument("--fixed-dropout", type=float, default=0.0, help="members' fixed dropout fraction")
    ap.add_argument("--repulsion", type=float, default=0.0, help="initial repulsion strength (annealed to 0)")
    ap.add_argument("--repulsion-epochs", type=int, default=50)
    ap.add_argument("--bootstrap", action="store_true", help="each member trained on a bootstrap resample")
    ap.add_argument("--save", type=Path, default=None, help="write the trained ensemble to this checkpoint; if it exists, evaluate it instead of training")
    ap.add_argument("--parts", default="routing,ensemble", help="which studies to run: routing, ensemble, ceiling (the others keep their results)")
    ap.add_argument("--classifier-runs", type=int, default=3,
                    help="classifier trainings for the ensemble's mixture (0: FPD/KPD and separations only)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/production.json"))
    a = ap.parse_args()
    train_p, test_p, fs = demo_data(Path("demo_output"), a.n_train, a.n_test)
    test = read_showers(test_p, binning=fs.binning, max_events=a.n_test)
    res = json.loads(a.out.read_text()) if a.out.exists() else {}
    res["date"] = time.strftime("%Y-%m-%d")
    if "routing" in a.parts:
        from hepfastsim.models.pretrained import resolve_model

        res["routing"] = routing(a.routing_model or resolve_model("demo"), test, fs)
        print(json.dumps(res["routing"], default=float), flush=True)
        a.out.write_text(json.dumps(res, indent=2, default=float))   # each part kept as soon as it is done
    ds = read_showers(train_p, binning=fs.binning, max_events=a.n_train)
    if "ceiling" in a.parts:
        res["band_ceiling"] = [band_ceiling(ds, test, fs.binning, k) for k in (3, 5)]
        print(json.dumps(res["band_ceiling"]), flush=True)
    if "ensemble" in a.parts:
        i_tr, i_va = train_val_split(len(ds), 0.1, 0)
        extra = {"fixed_dropout": a.fixed_dropout, "repulsion": a.repulsion, "repulsion_epochs": a.repulsion_epochs}
        extra = {k: v for k, v in extra.items() if v and (k != "repulsion_epochs" or a.repulsion)}
        key = (f"ensemble_{a.members}x{a.epochs}ep" + "_bootstrap" * a.bootstrap
               + "".join(f"_{k}{v:g}" for k, v in extra.items() if k != "repulsion_epochs"))
        res[key] = ensemble(a.model, a.members, a.epochs, ds.subset(i_tr), ds.subset(i_va), test, fs.binning, extra,
                            a.bootstrap, a.save, a.classifier_runs)
        print(key, json.dumps(res[key], default=float), flush=True)
    a.out.write_text(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
