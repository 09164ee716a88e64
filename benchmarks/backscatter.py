"""Electrons scattered back out of the absorber: energy in a thin Si layer in front of thick W (or Si), both engines.

An e- enters a 0.3 mm Si layer followed by 5 mm of W (or, as a control, 5 mm of Si: little comes back from low Z).
The Si deposit is the crossing itself plus what comes back from the absorber behind it. Geant4 (data-free EM list,
0.7 mm range cut) against the built-in engine with Geant4's converted cuts per material, and the built-in engine
with the transport cross section (1 / lambda_1, e- and e+) of Geant4's Urban model in place of its own screened
Rutherford one, tabulated here through G4EmCalculator. Mean Si energy (keV) with its standard error.

    .venv/bin/python benchmarks/backscatter.py --out benchmarks/backscatter.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ENERGIES_MEV = (1.0, 3.0, 10.0, 30.0)
ABSORBERS = {"W": 5.0, "Si": 5.0}   # material behind the Si layer: thickness (mm) of each repeat


def use_urban_lambda1(g4, builtin) -> None:
    """Replace the built-in engine's transport cross section (1 / lambda_1, 1/mm, e+-) by Geant4's Urban model's,
    read through G4EmCalculator for e- on the built-in's energy grid (Geant4 must have run once: energy_cuts())."""
    calc, lib = g4.g4.G4EmCalculator(), g4.g4
    for i, m in enumerate(builtin.detector.materials):
        mat = lib.G4Material.GetMaterial(f"G4_{m.name}")
        builtin.tables.mu_tr[:, i] = [calc.ComputeCrossSectionPerVolume(float(e), lib.G4Electron.Electron(), "msc", mat, 0.0)
                                   for e in builtin.tables.grid]


def _run(absorber: str, n: int) -> dict:
    """One geometry (one Geant4 per process): Si 0.3 mm + absorber, repeated to fill the 45-layer readout."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    from hepfastsim.fullsim import FullSim
    from hepfastsim.fullsim.geant4 import Geant4Sim
    from hepfastsim.fullsim.physics import Cuts
    from hepfastsim.geometry.detector import Detector, Layer

    det = Detector(f"si_then_{absorber}", tuple(layer for _ in range(90) for layer in (
        Layer("Si", 0.3, True), Layer(absorber, ABSORBERS[absorber], False))), 0.033)
    g4 = Geant4Sim(det, "ds2", physics="data-free-em")
    cuts = g4.energy_cuts()
    same_cuts = FullSim(det, "ds2", cuts=Cuts(per_material=cuts, msc_model="screened_rutherford"))
    urban = FullSim(det, "ds2", cuts=Cuts(per_material=cuts, msc_model="screened_rutherford"))
    use_urban_lambda1(g4, urban)
    grid = urban.tables.grid
    ratio = {m.name: {f"{e:g} MeV": float(np.interp(np.log(e), np.log(grid), urban.tables.mu_tr[0, i])
                                          / np.interp(np.log(e), np.log(grid), same_cuts.tables.mu_tr[0, i]))
                      for e in (0.1, 1.0, 10.0)} for i, m in enumerate(urban.detector.materials)}
    out = {"cuts_MeV": cuts, "urban_over_builtin_inverse_lambda1": ratio}
    for e in ENERGIES_MEV:
        row = {}
        for name, eng in (("geant4", g4), ("builtin_same_cuts", same_cuts), ("builtin_urban_lambda1", urban)):
            si = eng.run(np.full(n, e), "e-", seed=5).si_layer[:, 0] * 1000.0
            row[name] = {"si_keV": float(si.mean()), "si_keV_err": float(si.std() / np.sqrt(n))}
        out[f"{e:g} MeV"] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/backscatter.json"))
    ap.add_argument("--n", type=int, default=20_000, help="electrons per energy and engine")
    args = ap.parse_args()
    t0 = time.time()
    with ProcessPoolExecutor(len(ABSORBERS), mp_context=get_context("spawn")) as pool:
        futs = {a: pool.submit(_run, a, args.n) for a in ABSORBERS}
        rows = {f"Si 0.3 mm + {a} {ABSORBERS[a]} mm": f.result() for a, f in futs.items()}
    for geo, r in rows.items():
        print(f"{geo} (Geant4 cuts {r['cuts_MeV']}; Urban / built-in 1/lambda_1: "
              f"{ {m: {e: round(v, 3) for e, v in d.items()} for m, d in r['urban_over_builtin_inverse_lambda1'].items()} })")
        for e in ENERGIES_MEV:
            v = r[f"{e:g} MeV"]
            g = v["geant4"]["si_keV"]
            print(f"  e- {e:5g} MeV: Si keV geant4 {g:7.2f} +- {v['geant4']['si_keV_err']:.2f}" + "".join(
                f" | {k} {v[k]['si_keV']:7.2f} +- {v[k]['si_keV_err']:.2f} ({v[k]['si_keV'] / g - 1:+.1%})"
                for k in ("builtin_same_cuts", "builtin_urban_lambda1")))
    w, si = rows["Si 0.3 mm + W 5.0 mm"], rows["Si 0.3 mm + Si 5.0 mm"]
    print("returned from the W (Si deposit in front of W minus in front of Si), keV:")
    for e in ENERGIES_MEV:
        back = {k: w[f"{e:g} MeV"][k]["si_keV"] - si[f"{e:g} MeV"][k]["si_keV"]
                for k in ("geant4", "builtin_same_cuts", "builtin_urban_lambda1")}
        print(f"  e- {e:5g} MeV: " + " | ".join(f"{k} {v:6.1f} ({v / back['geant4'] - 1:+.0%})" for k, v in back.items()))
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "n": args.n, "rows": rows, "wall_seconds": time.time() - t0}
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
