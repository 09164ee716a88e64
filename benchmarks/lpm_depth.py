"""How much of the built-in engine's shallower 100 GeV showers is Geant4's LPM suppression of bremsstrahlung?

The built-in engine has no Landau-Pomeranchuk-Migdal suppression; Geant4's G4eBremsstrahlungRelModel has it (on by
default). This runs Geant4 (data-free EM list, 0.7 mm cut, dataset-2 stack and binning) with LPM switched off
(``/process/eLoss/LPM false``) for 100 GeV e-, in two processes of 500 showers (seeds 11 and 12, chunks of 50), and
prints the mean depth in readout layers and E_tot/E_inc as ``fullsim_vs_geant4.py`` computes them; compare with that
benchmark's 100 GeV rows (Geant4 with LPM, built-in).

    .venv/bin/python benchmarks/lpm_depth.py --out benchmarks/lpm_depth.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ENERGY_MEV = 100_000.0
SEEDS = (11, 12)
CHUNK = 50


def _run(seed: int, n: int) -> dict:
    """n showers of Geant4 without LPM (one Geant4 per process): per-shower depth and E_tot/E_inc."""
    import numpy as np
    from fullsim_vs_geant4 import mean_depth   # a script beside this one

    from hepfastsim.fullsim.geant4 import Geant4Sim
    from hepfastsim.validation.features import layer_energies

    g4 = Geant4Sim(binning="ds2", physics="data-free-em")
    ui = g4.g4.G4UImanager.GetUIpointer()
    for cmd in ("/process/eLoss/LPM false", "/run/physicsModified"):
        ui.ApplyCommand(cmd)
    if g4.g4.G4EmParameters.Instance().LPM():
        raise RuntimeError("Geant4 kept LPM on")
    depth, ratio = [], []
    for k in range(n // CHUNK):
        r = g4.run(np.full(CHUNK, ENERGY_MEV), "e-", seed=seed + 1000 * k)
        depth.append(mean_depth(layer_energies(r.showers, g4.binning).astype(np.float64)))
        ratio.append(r.showers.sum(1) / ENERGY_MEV)
    return {"depth": np.concatenate(depth).tolist(), "e_ratio": np.concatenate(ratio).tolist()}


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/lpm_depth.json"))
    ap.add_argument("--n", type=int, default=500, help="showers per process (two processes)")
    args = ap.parse_args()
    t0 = time.time()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_run, SEEDS, [args.n] * len(SEEDS)))
    depth = np.concatenate([p["depth"] for p in parts])
    ratio = np.concatenate([p["e_ratio"] for p in parts])
    print(f"Geant4 without LPM, e- {ENERGY_MEV / 1000:g} GeV, {len(depth)} showers: mean depth {depth.mean():.3f} +- "
          f"{depth.std() / np.sqrt(len(depth)):.3f} readout layers, E_tot/E_inc {ratio.mean():.4f} +- "
          f"{ratio.std() / np.sqrt(len(ratio)):.4f}")
    doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename, "n": len(depth),
           "depth_mean": float(depth.mean()), "depth_err": float(depth.std() / np.sqrt(len(depth))),
           "e_ratio_mean": float(ratio.mean()), "wall_seconds": time.time() - t0}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(args.out)
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
