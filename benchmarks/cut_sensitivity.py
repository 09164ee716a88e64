"""How the silicon energy of both engines depends on the production cuts (dataset-2 stack and binning, e-).

A condensed-history simulation should give nearly the same energy in the sensitive layers whatever its production
cuts (the cuts move energy between "continuous" and "explicit secondaries", not in or out of the silicon). Per
Geant4 range cut (0.1, 0.7, 2.0 mm) this runs the Geant4 engine (data-free EM list) and the built-in engine with
Geant4's conversion of that range cut into energies per material (``Geant4Sim.energy_cuts``: e- cut as the delta-ray
cut, gamma cut as the brems-photon cut), and the built-in engine with its own default cuts (0.5 MeV delta rays, 0.1
MeV photons in every material). Per sample: the mean Si energy over E_inc (E_tot/E_inc x 0.033 is what the files
store), the mean depth in readout layers (energy-weighted mean layer), both with standard errors.

    .venv/bin/python benchmarks/cut_sensitivity.py --out benchmarks/cut_sensitivity.json
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

RANGE_CUTS_MM = (0.1, 0.7, 2.0)
SAMPLES = {"e-_100MeV": (100.0, 3000), "e-_1GeV": (1000.0, 1000), "e-_10GeV": (10_000.0, 600)}


def _geant4(cut_mm: float, energy: float, n: int, seed: int) -> dict:
    """n showers of Geant4 with a range cut (one Geant4 per process) and its energy cuts per material."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    from hepfastsim.fullsim.geant4 import Geant4Sim

    sim = Geant4Sim(binning="ds2", physics="data-free-em", production_cut_mm=cut_mm)
    r = sim.run(np.full(n, energy), "e-", seed=seed)
    return {"showers": r.showers, "si": r.totals[:, 3], "cuts": sim.energy_cuts()}


def _observables(showers: np.ndarray, si: np.ndarray, energy: float, binning) -> dict:
    from fullsim_vs_geant4 import mean_depth   # the ground-truth benchmark's depth (a script beside this one)
    from hepfastsim.validation.features import layer_energies

    n = len(si)
    depth = mean_depth(layer_energies(showers, binning).astype(np.float64))
    frac = si / energy
    return {"si_fraction": float(frac.mean()), "si_fraction_err": float(frac.std() / np.sqrt(n)),
            "depth": float(depth.mean()), "depth_err": float(depth.std() / np.sqrt(n)), "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/cut_sensitivity.json"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sample size (a quick check: 0.05)")
    args = ap.parse_args()
    from hepfastsim.fullsim import FullSim
    from hepfastsim.fullsim.physics import Cuts
    from hepfastsim.geometry.binning import get_binning

    binning = get_binning("ds2")
    t_start = time.time()
    rows: dict = {}
    ctx = get_context("spawn")
    for cut in RANGE_CUTS_MM:
        for key, (energy, n) in SAMPLES.items():
            n = max(int(n * args.scale), 10)
            sizes = [len(p) for p in np.array_split(np.arange(n), args.workers)]
            # a fresh process per task: Geant4 keeps one production cut per process
            with ProcessPoolExecutor(args.workers, mp_context=ctx, max_tasks_per_child=1) as pool:
                parts = [f.result() for f in [pool.submit(_geant4, cut, energy, m, 100 + i) for i, m in enumerate(sizes)]]
            cuts = parts[0]["cuts"]
            g = _observables(np.concatenate([p["showers"] for p in parts]), np.concatenate([p["si"] for p in parts]),
                             energy, binning)
            r = FullSim(binning="ds2", cuts=Cuts(per_material=cuts, msc_model="screened_rutherford")).run(np.full(n, energy), "e-", seed=200)
            b = _observables(r.showers, r.totals[:, 3], energy, binning)
            rows.setdefault(key, {})[f"{cut} mm"] = {"energy_cuts_MeV": cuts, "geant4": g, "builtin_same_cuts": b}
            print(f"{key} range cut {cut} mm {cuts}: Si/E geant4 {g['si_fraction']:.5f} +- {g['si_fraction_err']:.5f}, "
                  f"built-in {b['si_fraction']:.5f} +- {b['si_fraction_err']:.5f} ({b['si_fraction'] / g['si_fraction'] - 1:+.1%}); "
                  f"depth {g['depth']:.3f} / {b['depth']:.3f} ({time.time() - t_start:.0f} s)", flush=True)
    for key, (energy, n) in SAMPLES.items():
        n = max(int(n * args.scale), 10)
        r = FullSim(binning="ds2").run(np.full(n, energy), "e-", seed=200)
        b = _observables(r.showers, r.totals[:, 3], energy, binning)
        rows[key]["builtin_default_cuts"] = b
        print(f"{key} built-in default cuts (0.5 / 0.1 MeV): Si/E {b['si_fraction']:.5f} +- {b['si_fraction_err']:.5f}, "
              f"depth {b['depth']:.3f}", flush=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores", "samples": rows,
              "wall_seconds": time.time() - t_start}
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} ({time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
