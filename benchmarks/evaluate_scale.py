"""Memory and wall time of `hepfastsim evaluate` at CaloChallenge size: 50 000 vs 50 000 showers.

Dataset 3 (40 500 voxels): the two float32 samples alone take 2 x 8.1 GB, so everything else has to stream:
features are computed once per sample in chunks, the low-level classifier forms its batches from the showers,
PRDC reads a subsample. The showers are synthetic (sparse exponential voxels with a per-shower scale; the
simulation of 100 000 dataset-3 showers would take days here), the same code path as the CLI after
`read_showers`: `evaluate` (CaloChallenge protocol) and `write_report`. The classifier trains for --epochs
epochs (default 1: one epoch of the dataset-3 low-level DNN takes minutes on 2 cores); the time of the full
protocol (50 epochs, 3 trainings) is extrapolated from it and labelled so.

    .venv/bin/python benchmarks/evaluate_scale.py --binning ds3 --n 50000 --out benchmarks/evaluate_scale_ds3.json
    .venv/bin/python benchmarks/evaluate_scale.py --binning ds2 --n 50000 --out benchmarks/evaluate_scale_ds2.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic(n: int, n_voxels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n showers (float32, MeV): 30 % of voxels hit, exponential energies scaled per shower; E_inc 1-1000 GeV."""
    rng = np.random.default_rng(seed)
    energies = np.exp(rng.uniform(np.log(1e3), np.log(1e6), n))
    showers = np.empty((n, n_voxels), dtype=np.float32)
    for i in range(0, n, 1000):
        m = min(1000, n - i)
        x = rng.exponential(1.0, size=(m, n_voxels)).astype(np.float32)
        x *= rng.random((m, n_voxels), dtype=np.float32) < 0.3
        x *= (energies[i:i + m] / (0.3 * n_voxels)).astype(np.float32)[:, None]
        showers[i:i + m] = x
    return energies, showers


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binning", default="ds3")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from hepfastsim.data.calo_io import ShowerDataset
    from hepfastsim.geometry.binning import get_binning
    from hepfastsim.validation.evaluate import evaluate, sample_features
    from hepfastsim.validation.report import write_report

    b = get_binning(args.binning)
    t0 = time.time()
    ref = ShowerDataset(*synthetic(args.n, b.n_voxels, 1))
    gen = ShowerDataset(*synthetic(args.n, b.n_voxels, 2))
    t_data, gb_data = time.time() - t0, peak_gb()
    print(f"data: 2 x {args.n} x {b.n_voxels} float32 = {2 * ref.showers.nbytes / 1e9:.1f} GB, peak RSS {gb_data:.1f} GB",
          flush=True)
    t1 = time.time()
    feats = sample_features(ref, gen, b)
    t_feat = time.time() - t1
    t2 = time.time()
    m = evaluate(ref, gen, b, classifier_runs=args.runs, classifier_epochs=args.epochs, features=feats)
    t_eval = time.time() - t2
    with tempfile.TemporaryDirectory() as tmp:
        t3 = time.time()
        write_report(tmp, ref, gen, b, m, features=feats)
        t_report = time.time() - t3
    cls_s = m.get("classifier_seconds")
    result = {
        "machine": f"{os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"), "binning": b.name,
        "n_per_sample": args.n, "voxels": b.n_voxels, "input_GB": 2 * ref.showers.nbytes / 1e9,
        "peak_rss_GB_after_data": gb_data, "peak_rss_GB": peak_gb(),
        "seconds": {"synthetic_data": t_data, "features_both_samples": t_feat, "evaluate": t_eval, "report": t_report},
        "classifier_epochs": args.epochs, "classifier_runs": args.runs,
        "classifier_seconds": cls_s,
    }
    if cls_s:
        result["extrapolated_full_protocol_classifier_hours"] = cls_s["total"] * 50 * 3 / (args.epochs * args.runs) / 3600
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
