"""Separation power of one observable for several checkpoints on the demo test set (metric-prioritised training).

    .venv/bin/python benchmarks/compare_observable.py demo_output/zoo/gan.pt demo_output/zoo_surrogate/gan.pt --observable sparsity [--uncalibrated | --calibration-bins 16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset, read_showers
from hepfastsim.geometry.binning import builtin_binning
from hepfastsim.models import load_generator
from hepfastsim.models.calibration import calibrate
from hepfastsim.models.options import CalibrationOptions
from hepfastsim.tasks import calo_samples
from hepfastsim.validation import metrics as M
from hepfastsim.validation.evaluate import feature_histograms, sample_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--observable", default="sparsity", help="histogram name prefix, e.g. sparsity, width_x, e_layer")
    ap.add_argument("--test", type=Path, default=Path("demo_output/fullsim_test.h5"))
    ap.add_argument("--uncalibrated", action="store_true", help="sample without the models' quantile calibration")
    ap.add_argument("--calibration-bins", type=int, default=None,
                    help="refit the calibration with this many energy bins on --train first")
    ap.add_argument("--train", type=Path, default=Path("demo_output/fullsim_train.h5"))
    a = ap.parse_args()
    b = builtin_binning("demo")
    test = read_showers(a.test, binning=b)
    print(f"| model | {a.observable}: separation power per layer (± bootstrap error) | mean | floor |")
    print("|---|---|---|---|")
    for path in a.models:
        gen = load_generator(path)
        if a.uncalibrated:
            gen.calibration_ = None   # what the training itself reached
        elif a.calibration_bins:
            calibrate(gen, calo_samples(read_showers(a.train, binning=b)), CalibrationOptions(calibration_bins=a.calibration_bins))
        x = gen.sample(test.energies.reshape(-1, 1), seed=1)
        fr, fg = sample_features(test, ShowerDataset(test.energies, x), b)
        hists = feature_histograms(fr, fg, b)
        rows = [(k, *M.separation_power_error(r, g, e)) for k, (r, g, e) in hists.items() if k.startswith(a.observable)]
        cells = ", ".join(f"{v:.3f}±{e:.3f}" for _, v, e, _ in rows)
        print(f"| {path} | {cells} | {np.mean([v for _, v, _, _ in rows]):.3f} | {np.mean([f for *_, f in rows]):.4f} |")


if __name__ == "__main__":
    main()
