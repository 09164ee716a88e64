"""What CaloChallenge's classifier sees: a 5 % energy scale at 10 GeV on the demo readout.

Two built-in samples of --n electrons at 10 GeV (seeds 11 and 22), the second scaled by 1.05 in every voxel.
Prints the best single high-level feature's univariate AUC, and the CaloChallenge-protocol classifier (1 training)
on the low-level input, on the raw high-level vector (as the reference) and on the standardised one.

    .venv/bin/python benchmarks/classifier_sensitivity.py --n 3000
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import roc_auc_score

from hepfastsim.fullsim import FullSim
from hepfastsim.validation.classifier import classifier_auc, low_level_inputs
from hepfastsim.validation.features import feature_matrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    n = ap.parse_args().n
    fs = FullSim(binning="demo")
    b = fs.binning
    a = fs.run(np.full(n, 10_000.0), "e-", seed=11).dataset()
    o = fs.run(np.full(n, 10_000.0), "e-", seed=22).dataset()
    scaled = o.showers * 1.05
    xa, names = feature_matrix(a.showers, a.energies, b)
    xb, _ = feature_matrix(scaled, o.energies, b)
    y = np.r_[np.zeros(n), np.ones(n)]
    single = [abs(roc_auc_score(y, np.r_[xa[:, j], xb[:, j]]) - 0.5) + 0.5 for j in range(xa.shape[1])]
    j = int(np.argmax(single))
    print(f"{n} showers per sample; best single feature {names[j]}: AUC {single[j]:.3f}")
    low = classifier_auc(low_level_inputs(a.showers, a.energies, b.threshold),
                         low_level_inputs(scaled, o.energies, b.threshold), runs=1)
    print(f"CaloChallenge low level: {low.auc:.3f}")
    for std in (False, True):
        r = classifier_auc(xa, xb, runs=1, standardise=std)
        print(f"CaloChallenge high level, {'standardised' if std else 'raw (as the reference)'} inputs: {r.auc:.3f}")


if __name__ == "__main__":
    main()
