"""How much of the built-in engine's shallower 100 GeV showers is Geant4's LPM suppression of bremsstrahlung?

The built-in engine has no Landau-Pomeranchuk-Migdal suppression; Geant4's G4eBremsstrahlungRelModel has it (on by
default). This runs Geant4 (data-free EM list, 0.7 mm cut, dataset-2 stack and binning) with LPM switched off
(``/process/eLoss/LPM false``) for 100 GeV e-, in two processes of 500 showers (seeds 11 and 12, chunks of 50), and
prints the mean depth in readout layers and E_tot/E_inc as ``fullsim_vs_geant4.py`` computes them; compare with that
benchmark's 100 GeV rows (Geant4 with LPM, built-in).

    .venv/bin/python benchmarks/lpm_depth.py --out benchmarks/lpm_depth.json

Since physics revision 2026-12-07 the built-in engine has Geant4's LPM suppression (``Cuts(lpm=True)``, its
default). ``--builtin`` runs the built-in engine instead, with and without it (``Cuts(lpm=False)``), on the same
seeds (2 x N showers each, all cores), and writes both rows into --out (default ``benchmarks/lpm_depth_builtin.json``):

    .venv/bin/python benchmarks/lpm_depth.py --builtin --out benchmarks/lpm_depth_builtin.json
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


def _builtin(n: int) -> dict:
    """The built-in engine with and without LPM: per row the mean depth and E_tot/E_inc of 2 n showers."""
    import numpy as np
    from fullsim_vs_geant4 import mean_depth   # a script beside this one

    from hepfastsim.fullsim import FullSim
    from hepfastsim.fullsim.physics import Cuts
    from hepfastsim.validation.features import layer_energies

    out = {}
    for lpm in (True, False):
        sim = FullSim(binning="ds2", cuts=Cuts(lpm=lpm))
        t0 = time.time()
        runs = [sim.run(np.full(n, ENERGY_MEV), "e-", seed=seed) for seed in SEEDS]
        depth = np.concatenate([mean_depth(layer_energies(r.showers, sim.binning).astype(np.float64)) for r in runs])
        ratio = np.concatenate([r.showers.sum(1) / ENERGY_MEV for r in runs])
        out["lpm_on" if lpm else "lpm_off"] = row = {
            "n": len(depth), "depth_mean": float(depth.mean()), "depth_err": float(depth.std() / np.sqrt(len(depth))),
            "e_ratio_mean": float(ratio.mean()), "e_ratio_err": float(ratio.std() / np.sqrt(len(ratio))),
            "physics": sim.attrs()["physics"], "seconds": time.time() - t0}
        print(f"built-in, LPM {'on' if lpm else 'off'}, e- {ENERGY_MEV / 1000:g} GeV, {row['n']} showers: mean depth "
              f"{row['depth_mean']:.3f} +- {row['depth_err']:.3f} readout layers, E_tot/E_inc {row['e_ratio_mean']:.4f} "
              f"+- {row['e_ratio_err']:.4f} ({row['seconds']:.0f} s)", flush=True)
    return out


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="default benchmarks/lpm_depth.json (--builtin: "
                    "benchmarks/lpm_depth_builtin.json)")
    ap.add_argument("--n", type=int, default=500, help="showers per process (two processes)")
    ap.add_argument("--builtin", action="store_true", help="the built-in engine with and without its LPM suppression")
    args = ap.parse_args()
    args.out = args.out or Path("benchmarks/lpm_depth_builtin.json" if args.builtin else "benchmarks/lpm_depth.json")
    t0 = time.time()
    if args.builtin:
        _write(args.out, {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename, **_builtin(args.n),
                          "wall_seconds": time.time() - t0}, t0)
        return
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
    _write(args.out, doc, t0)


def _write(path: Path, doc: dict, t0: float) -> None:
    """The JSON written through a temporary file (the old one stays if anything fails)."""
    from hepfastsim.fileio import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    print(f"wrote {path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
