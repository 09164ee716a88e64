"""MPD TPC task on the real detailed-simulation samples: study-like WGAN-GP baseline vs flow matching.

For each digits file in ../shared/data/tpc_mpd and each family config
(src/hepfastsim/configs/tpc_gan.yaml, tpc_fm.yaml; same wall-clock budget, time_limit_s):
train on the fixed 'train' split (early stopping on 'val'), generate one response per
held-out 'test' event with its track parameters, evaluate (chi2 of the study, classifier
AUCs, mean of 3 classifier trainings) and measure responses per second at batch 10000 on
this machine's CPU threads. Writes a report per run and prints a markdown table.

    .venv/bin/python benchmarks/tpc_models.py --out benchmarks/tpc_results.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hepfastsim.bench.timing import time_generator
from hepfastsim.data.tpc_io import TPCDataset, read_tpc, select_split
from hepfastsim.demo import family_config
from hepfastsim.models import get_family
from hepfastsim.models.options import split_calibration
from hepfastsim.train import Trainer
from hepfastsim.tasks import tpc_samples, tpc_spec
from hepfastsim.validation.report import write_tpc_report
from hepfastsim.validation.tpc import evaluate_tpc

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tpc_mpd"


def run(path: Path, family: str, config: str, budget_s: float | None, report_dir: Path, seed: int = 0) -> dict:
    ds = read_tpc(path)
    train, val, test = (select_split(ds, s) for s in ("train", "val", "test"))
    cfg = family_config(config)
    if budget_s:
        scale = budget_s / cfg["time_limit_s"]
        cfg["time_limit_s"] = budget_s if not cfg.get("distill_epochs") else cfg["time_limit_s"] * scale
        if cfg.get("distill_time_s"):
            cfg["distill_time_s"] = cfg["distill_time_s"] * scale
    cfg, calibration = split_calibration({**cfg, "seed": seed})
    gen = get_family(family)(tpc_spec(train), **cfg)
    t0 = time.perf_counter()
    log = Trainer(calibration=calibration).fit(gen, tpc_samples(train), tpc_samples(val)).history_
    t_train = time.perf_counter() - t0
    x = gen.sample(test.params, seed=seed + 1).reshape(len(test), *test.shape)
    g = TPCDataset(x, test.params, test.names, test.pad_range, test.time_range, test.centred)
    m = evaluate_tpc(test, g, classifier_runs=3, seed=seed)
    write_tpc_report(report_dir / f"{path.stem}_{config}", test, g, m, title=f"{path.name}: {config} vs detailed simulation (test events)")
    ms = time_generator(gen, test.params, batch_sizes=(10_000,), repeats=5)["ms_per_shower"][10_000]
    return {"file": path.name, "model": config, "family": family, "train_s": round(t_train, 1), "epochs": len(log.epochs),
            "n_test": len(test), "chi2": m["chi2"], "chi2_ndf": m["chi2_ndf"],
            "auc_low": m["classifier_low"]["auc"], "auc_low_std": m["classifier_low"]["auc_std"],
            "auc_high": m["classifier_high"]["auc"], "auc_high_std": m["classifier_high"]["auc_std"],
            "responses_per_s": 1000.0 / ms}


def reference_row(path: Path, seed: int = 0) -> dict:
    """The floor: the 'val' events of the same detailed simulation scored against 'test' events."""
    ds = read_tpc(path)
    m = evaluate_tpc(select_split(ds, "test"), select_split(ds, "val"), classifier_runs=3, seed=seed)
    return {"file": path.name, "model": "detailed sim. (val vs test)", "family": "-", "train_s": 0, "epochs": 0,
            "n_test": m["n_reference"], "chi2": m["chi2"], "chi2_ndf": m["chi2_ndf"], "auc_low": m["classifier_low"]["auc"],
            "auc_low_std": m["classifier_low"]["auc_std"], "auc_high": m["classifier_high"]["auc"],
            "auc_high_std": m["classifier_high"]["auc_std"], "responses_per_s": float("nan")}


def table(rows: list[dict]) -> str:
    out = ["| file | model | chi2 / band points | AUC low | AUC high | train [s] | responses/s (batch 10000) |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = "-" if r["responses_per_s"] != r["responses_per_s"] else f"{r['responses_per_s']:,.0f}"
        out.append(f"| {r['file']} | {r['model']} | {r['chi2']:.0f} / {r['chi2_ndf']} | {r['auc_low']:.3f} ± {r['auc_low_std']:.3f} | "
                   f"{r['auc_high']:.3f} ± {r['auc_high_std']:.3f} | {r['train_s']:.0f} | {rate} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", default="digits_v4plus_shortFixedPt.dat,digits_v2.dat")
    ap.add_argument("--models", default="gan:tpc_gan,fm:tpc_fm", help="FAMILY:CONFIG pairs")
    ap.add_argument("--budget-s", type=float, default=None, help="override every config's total training time")
    ap.add_argument("--reports", type=Path, default=Path("benchmarks/tpc_reports"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/tpc_results.json"))
    a = ap.parse_args()
    rows = []
    for f in a.files.split(","):
        rows.append(reference_row(DATA / f))
        print(json.dumps(rows[-1]), flush=True)
        for pair in a.models.split(","):
            fam, cfg = pair.split(":")
            rows.append(run(DATA / f, fam, cfg, a.budget_s, a.reports))
            print(json.dumps(rows[-1]), flush=True)
    a.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "threads": torch.get_num_threads(), "rows": rows},
                                indent=2, default=float))
    print(table(rows))


if __name__ == "__main__":
    main()
