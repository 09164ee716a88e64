"""Is the built-in engine's condensed history converged in its multiple-scattering step? (dataset-2 stack, e- and gamma)

A condensed-history simulation must give the same answer whatever its step length once the steps are short enough;
the built-in engine limits each e+- step to ``Cuts.msc_max_scatter`` transport mean free paths (default 1.0). This
runs the built-in engine at several such limits (one process each) against Geant4 (data-free EM list, 0.7 mm range cut) on two
samples: 1 and 10 GeV e- (showers) and 1.5 MeV photons (the soft tail of a shower: Compton electrons of W reaching the
Si). Per sample and engine: mean Si energy / E_inc with its standard error, the mean depth in readout layers
(energy-weighted mean layer, as the ground-truth benchmark computes it), and CPU ms per GeV on one core.

    .venv/bin/python benchmarks/msc_step_size.py --out benchmarks/msc_step_size.json
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

STEP_LIMITS = (1.0, 0.3, 0.1, 0.03)    # msc_max_scatter: largest step in transport mean free paths
SAMPLES = {"e-_1GeV": ("e-", 1000.0, 2000), "e-_10GeV": ("e-", 10_000.0, 1000), "gamma_1.5MeV": ("gamma", 1.5, 100_000)}


def _observables(engine, particle: str, energy: float, n: int) -> dict:
    """Si fraction, depth (readout layers) and CPU ms per GeV of n particles through one engine."""
    from fullsim_vs_geant4 import mean_depth   # the ground-truth benchmark's depth (a script beside this one)
    from hepfastsim.validation.features import layer_energies

    t0 = time.process_time()
    r = engine.run(np.full(n, energy), particle, seed=21)
    cpu = time.process_time() - t0
    frac = r.totals[:, 3] / energy
    out = {"n": n, "si_fraction": float(frac.mean()), "si_fraction_err": float(frac.std() / np.sqrt(n)),
           "ms_per_GeV": 1e3 * cpu / (n * energy / 1000.0)}
    if particle == "e-":
        depth = mean_depth(layer_energies(r.showers, engine.binning).astype(np.float64))
        out |= {"depth": float(depth.mean()), "depth_err": float(depth.std() / np.sqrt(n))}
    return out


def _run(which: str | float, scale: float) -> dict:
    """Every sample through Geant4 (which='geant4') or the built-in engine at step limit ``which`` (one core)."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    from hepfastsim.fullsim import FullSim
    from hepfastsim.fullsim.physics import Cuts

    if which == "geant4":
        from hepfastsim.fullsim.geant4 import Geant4Sim

        engines = {"geant4": Geant4Sim(binning="ds2", physics="data-free-em")}
    else:
        FullSim(binning="ds2").run(np.full(2, 1000.0), "e-", seed=1)   # compile before timing
        old_default = Cuts(msc_max_scatter=which, msc_model="screened_rutherford", range_cut_mm=None)
        engines = {f"builtin_step_{which:g}": FullSim(binning="ds2", cuts=old_default)}
    return {name: {key: _observables(eng, p, e, max(int(n * scale), 10)) for key, (p, e, n) in SAMPLES.items()}
            for name, eng in engines.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/msc_step_size.json"))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sample size (a quick check: 0.02)")
    args = ap.parse_args()
    t0 = time.time()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        futs = [pool.submit(_run, w, args.scale) for w in ("geant4", *STEP_LIMITS)]
        rows = {k: v for f in futs for k, v in f.result().items()}
    report(rows, args.out, t0)


def report(rows: dict, out: Path, t0: float) -> None:
    """Print every sample's row per engine (differences to the 'geant4' row) and write rows to out (temp file +
    rename); also used by msc_model.py."""
    g4 = rows["geant4"]
    width = max(len(name) for name in rows)
    for key in SAMPLES:
        print(f"{key} ({g4[key]['n']} per engine):")
        for name, r in rows.items():
            line = (f"  {name:{width}s} Si/E_inc {r[key]['si_fraction']:.5f} +- {r[key]['si_fraction_err']:.5f}"
                    f" ({r[key]['si_fraction'] / g4[key]['si_fraction'] - 1:+.1%} vs Geant4)")
            if "depth" in r[key]:
                line += (f" depth {r[key]['depth']:.3f} +- {r[key]['depth_err']:.3f}"
                         f" ({r[key]['depth'] - g4[key]['depth']:+.3f})")
            print(line + f" {r[key]['ms_per_GeV']:.2f} CPU ms/GeV")
    doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename, "rows": rows,
           "wall_seconds": time.time() - t0}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
    print(f"wrote {out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
