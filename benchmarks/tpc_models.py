"""MPD TPC task on the real detailed-simulation samples: study-like WGAN-GP baseline vs flow matching,
at stated, equal sample sizes.

For each digits file in ../shared/data/tpc_mpd and each FAMILY:CONFIG (src/hepfastsim/configs/tpc_gan.yaml,
tpc_fm.yaml; budgets in epochs, so that a loaded machine trains the same model): train on the fixed 'train'
split (early stopping on 'val'), generate one response per held-out 'test' event with its track parameters,
and evaluate (the study's chi2, classifier AUCs as mean ± std of 3 trainings) on the first N test events for
every N of --sizes and for all test events. The floor at each N: the first N 'train' events vs the same N test
events (two samples of the detailed simulation). A config may carry a variant (``VARIANTS``): ':before' is the
configuration before issue 22 (no track-geometry features, no dequantization or calibration), ':no-track-features'
the shipped one without the track-geometry condition features, ':track-features-only' the one before with the
features, ':uncalibrated' the shipped one without the post-training calibration (the ablations). Measures responses per second at batch 10000, writes a
report per run, the profile of the time-bin variance versus the dip angle for every model (a figure), and
prints a markdown table.

    .venv/bin/python benchmarks/tpc_models.py --out benchmarks/tpc_results.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from hepfastsim.bench.timing import time_generator
from hepfastsim.data.tpc_io import TPCDataset, read_tpc, select_split
from hepfastsim.demo import family_config
from hepfastsim.models import get_family
from hepfastsim.models.options import split_calibration
from hepfastsim.train import Trainer
from hepfastsim.tasks import tpc_samples, tpc_spec
from hepfastsim.validation.report import write_tpc_report
from hepfastsim.validation.tpc import MOMENT_NAMES, cluster_moments, evaluate_tpc, profile_variables, trend

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tpc_mpd"
# variant: (task-spec changes, config changes)
VARIANTS = {"": ({}, {}),
            "no-track-features": ({"condition_features": ""}, {}),
            "before": ({"condition_features": ""}, {"dequantize": False, "calibrate": False, "distill_epochs": 30}),
            "track-features-only": ({}, {"dequantize": False, "calibrate": False, "distill_epochs": 30}),
            "uncalibrated": ({}, {"calibrate": False})}


def first(ds: TPCDataset, n: int) -> TPCDataset:
    return ds.subset(slice(0, n))


def scores(ref: TPCDataset, gen: TPCDataset, sizes: list[int], seed: int) -> tuple[list[dict], dict]:
    """chi2 and AUCs on the first n events of both samples, for each n (ascending), and the full metrics of the
    largest n (for the report)."""
    out, m = [], {}
    for n in sizes:
        m = evaluate_tpc(first(ref, n), first(gen, n), classifier_runs=3, seed=seed)
        out.append({"n": n, "chi2": m["chi2"], "chi2_ndf": m["chi2_ndf"],
                    "auc_low": m["classifier_low"]["auc"], "auc_low_std": m["classifier_low"]["auc_std"],
                    "auc_high": m["classifier_high"]["auc"], "auc_high_std": m["classifier_high"]["auc_std"]})
    return out, m


def run(path: Path, family: str, config: str, sizes: list[int], report_dir: Path, seed: int = 0) -> tuple[dict, TPCDataset]:
    ds = read_tpc(path)
    train, val, test = (select_split(ds, s) for s in ("train", "val", "test"))
    name, _, variant = config.partition(":")
    spec_changes, cfg_changes = VARIANTS[variant]
    cfg, calibration = split_calibration({**family_config(name), **cfg_changes, "seed": seed})
    spec = tpc_spec(train)
    for key, value in spec_changes.items():
        setattr(spec, key, value)
    gen = get_family(family)(spec, **cfg)
    t0 = time.perf_counter()
    Trainer(calibration=calibration).fit(gen, tpc_samples(train), tpc_samples(val))
    t_train = time.perf_counter() - t0
    x = gen.sample(test.params, seed=seed + 1).reshape(len(test), *test.shape)
    g = TPCDataset(x, test.params, test.names, test.pad_range, test.time_range, test.centred)
    rows, m = scores(test, g, sizes, seed)   # sizes end with all test events: m is the whole test set's
    write_tpc_report(report_dir / f"{path.stem}_{config.replace(':', '_')}_seed{seed}", test, g, m,
                     title=f"{path.name}: {config} vs detailed simulation (test events)")
    ms = time_generator(gen, test.params, batch_sizes=(10_000,), repeats=5)["ms_per_shower"][10_000]
    row = {"file": path.name, "model": config, "family": family, "train_s": round(t_train, 1), "epochs": gen.epoch_,
           "n_test": len(test), "scores": rows, "responses_per_s": 1000.0 / ms}
    return row, g


def floor_row(path: Path, sizes: list[int], seed: int = 0) -> dict:
    """The floor at each n: the first n 'train' events vs the first n 'test' events of the detailed simulation."""
    ds = read_tpc(path)
    return {"file": path.name, "model": "detailed sim. (train vs test)", "family": "-", "train_s": 0, "epochs": 0,
            "n_test": len(select_split(ds, "test")),
            "scores": scores(select_split(ds, "test"), select_split(ds, "train"), sizes, seed)[0],
            "responses_per_s": float("nan")}


def profile_figure(ref: TPCDataset, gens: dict[str, TPCDataset], path: Path, moment: str = "time_var",
                   var: str = "dip_angle") -> None:
    """Mean ± std of one cluster moment versus one parameter: reference and every model."""
    k = MOMENT_NAMES.index(moment)
    x_ref = profile_variables(ref)[var]
    edges = np.linspace(x_ref.min(), x_ref.max(), 20)
    mid = 0.5 * (edges[1:] + edges[:-1])
    fig = Figure(figsize=(4.5 * (len(gens)), 3.6), layout="constrained")
    axes = fig.subplots(1, len(gens), squeeze=False)[0]
    for ax, (label, gen) in zip(axes, gens.items()):
        for d, col, lab in ((ref, "k", "detailed simulation"), (gen, "C1", label)):
            mean, mean_e, std, _ = trend(profile_variables(d)[var], cluster_moments(d.responses)[:, k], edges)
            ax.fill_between(mid, mean - mean_e, mean + mean_e, color=col, alpha=0.5, label=lab)
            ax.plot(mid, mean + std, color=col, ls="--", lw=1)
            ax.plot(mid, mean - std, color=col, ls="--", lw=1)
        ax.set_xlabel(f"{var} [deg]")
        ax.set_ylabel(f"{moment} [time bins²]")
        ax.legend(fontsize=8)
    fig.suptitle("band: mean ± error, dashed: mean ± std (test events)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def table(rows: list[dict]) -> str:
    out = ["| file | model | seed | N | chi2 / band points | AUC low | AUC high | epochs | train [s] | responses/s (batch 10000) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = "-" if r["responses_per_s"] != r["responses_per_s"] else f"{r['responses_per_s']:,.0f}"
        for s in r["scores"]:
            out.append(f"| {r['file']} | {r['model']} | {r.get('seed', '-')} | {s['n']} | {s['chi2']:.0f} / {s['chi2_ndf']} | "
                       f"{s['auc_low']:.3f} ± {s['auc_low_std']:.3f} | {s['auc_high']:.3f} ± {s['auc_high_std']:.3f} | "
                       f"{r['epochs']} | {r['train_s']:.0f} | {rate} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="digits_v4plus_shortFixedPt.dat,digits_v2.dat")
    ap.add_argument("--models", default="gan:tpc_gan,fm:tpc_fm", help="FAMILY:CONFIG[:VARIANT] entries")
    ap.add_argument("--sizes", default="800", help="sample sizes N evaluated besides all test events")
    ap.add_argument("--seeds", default="0", help="training seeds of every model (one row each)")
    ap.add_argument("--reports", type=Path, default=Path("benchmarks/tpc_reports"))
    ap.add_argument("--figure", default="docs/images/tpc_time_var_vs_dip.png",
                    help="time-variance vs dip-angle profiles (files with a dip angle that varies; '' for none)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/tpc_results.json"))
    a = ap.parse_args()
    rows = []
    for f in a.files.split(","):
        test = select_split(read_tpc(DATA / f), "test")
        sizes = sorted({int(n) for n in a.sizes.split(",") if int(n) < len(test)} | {len(test)})
        rows.append(floor_row(DATA / f, sizes))
        print(json.dumps(rows[-1]), flush=True)
        gens = {}
        for entry in a.models.split(","):
            fam, cfg = entry.split(":", 1)
            for seed in (int(v) for v in a.seeds.split(",")):
                row, gen = run(DATA / f, fam, cfg, sizes, a.reports, seed=seed)
                gens.setdefault(cfg, gen)   # the figure shows the first seed of every model
                rows.append({**row, "seed": seed})
                print(json.dumps(rows[-1]), flush=True)
        if a.figure and np.ptp(test.params[:, test.names.index("dip_angle")]) > 0:
            profile_figure(test, gens, Path(a.figure))
    a.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "threads": torch.get_num_threads(), "rows": rows},
                                indent=2, default=float))
    print(table(rows))


if __name__ == "__main__":
    main()
