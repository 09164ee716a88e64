"""Electron transport without secondaries through tungsten, silicon and a tungsten-silicon interface, both engines.

Where does the built-in engine's silicon energy part from Geant4's? With no secondaries (production cuts far above
the beam energy in both engines: continuous loss, multiple scattering and loss fluctuations only) 10 MeV e- enter
three stacks: (W) 45 sensitive 0.2 mm W layers, (Si) 45 sensitive 0.3 mm Si layers, (W|Si) 1.4 mm W then 0.3 mm
sensitive Si, followed by Si only (every second 0.3 mm Si layer sensitive). Engines: Geant4 (data-free EM list),
the built-in engine at its default step (1 lambda_1), the built-in engine with Geant4's Urban transport cross
section (``backscatter.use_urban_lambda1``) at 0.03 lambda_1 (short steps: its converged answer), and the built-in
engine with its Urban multiple-scattering model (``Cuts(msc_model="urban")``). Per stack and
engine: the deposited energy / E_inc (all sensitive layers), the energy-weighted mean depth (mm) of the W and Si
stacks, and for W|Si the energy in the first Si layer behind the tungsten and in all the silicon after it. Geant4
also runs with its three other multiple-scattering step limitations (``G4_STEP_LIMITS``): the spread of its own
answers.

    .venv/bin/python benchmarks/msc_layers.py --out benchmarks/msc_layers.json
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

ENERGY_MEV = 10.0
NO_SECONDARIES_MM = 1e5   # Geant4 range cut whose energy cuts (~9.5 GeV) forbid delta rays and brems photons
ENGINES = ("geant4", "builtin_default", "builtin_urban_0.03", "builtin_urban_msc")
# Geant4 again with the other multiple-scattering step limitations of G4EmParameters (the default is UseSafety):
# how much Geant4's own answer depends on its step-limitation choice
G4_STEP_LIMITS = ("UseSafetyPlus", "UseDistanceToBoundary", "Minimal")


def _stacks():
    from hepfastsim.geometry.detector import Detector, Layer

    return {
        "W": Detector("w_only", tuple(Layer("W", 0.2, True) for _ in range(45)), 1.0),
        "Si": Detector("si_only", tuple(Layer("Si", 0.3, True) for _ in range(45)), 1.0),
        "W|Si": Detector("w_then_si", (Layer("W", 1.4, False), Layer("Si", 0.3, True)) + tuple(
            layer for _ in range(44) for layer in (Layer("Si", 0.3, False), Layer("Si", 0.3, True))), 1.0),
    }


def _run(engine: str, stack: str, n: int) -> dict:
    """One stack through one engine (a fresh process: one Geant4 geometry per process): mean energy per sensitive
    layer / E_inc with standard errors."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    from backscatter import use_urban_lambda1   # a script beside this one
    from hepfastsim.fullsim import FullSim
    from hepfastsim.fullsim.geant4 import Geant4Sim
    from hepfastsim.fullsim.physics import Cuts

    det = _stacks()[stack]
    none = {m: (1e6, 1e6) for m in {layer.material for layer in det.layers}}
    if engine not in ("builtin_default", "builtin_urban_msc"):   # Geant4 runs, or gives its transport cross section
        g4 = Geant4Sim(det, "ds2", physics="data-free-em", production_cut_mm=NO_SECONDARIES_MM)
    if engine.startswith("geant4"):
        sim = g4
        if engine != "geant4":   # geant4_<StepLimit>: set before the first run builds the tables
            ui = g4.g4.G4UImanager.GetUIpointer()
            for cmd in (f"/process/msc/StepLimit {engine.removeprefix('geant4_')}", "/run/physicsModified"):
                ui.ApplyCommand(cmd)
    elif engine == "builtin_urban_msc":
        sim = FullSim(det, "ds2", cuts=Cuts(per_material=none, msc_model="urban"))
    else:
        short = engine == "builtin_urban_0.03"
        sim = FullSim(det, "ds2", cuts=Cuts(per_material=none, msc_max_scatter=0.03 if short else 1.0,
                                              msc_model="screened_rutherford"))
        if short:
            g4.energy_cuts()   # runs Geant4 once: its tables exist
            use_urban_lambda1(g4, sim)
    layers = sim.run(np.full(n, ENERGY_MEV), "e-", seed=9).si_layer / ENERGY_MEV
    return {"mean": layers.mean(0).tolist(), "err": (layers.std(0) / np.sqrt(n)).tolist(),
            "total_err": float(layers.sum(1).std() / np.sqrt(n)), "n": n}


def _summary(stack: str, r: dict, ref: dict) -> str:
    """One line per engine; ref: Geant4's row of the same stack (differences relative to it)."""
    m, g = np.asarray(r["mean"]), np.asarray(ref["mean"])
    if stack == "W|Si":
        return (f"first Si {m[0]:.5f} +- {r['err'][0]:.5f} ({m[0] / g[0] - 1:+.1%}), "
                f"Si after it {m[1:].sum():.5f} ({m[1:].sum() / g[1:].sum() - 1:+.1%})")
    z = (np.arange(len(m)) + 0.5) * (0.2 if stack == "W" else 0.3)
    return (f"deposited {m.sum():.4f} +- {r['total_err']:.4f} (not deposited: {1 - m.sum():.4f}), "
            f"mean depth {np.sum(m * z) / m.sum():.3f} mm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/msc_layers.json"))
    ap.add_argument("--n", type=int, default=20_000, help="electrons per stack and engine")
    args = ap.parse_args()
    t0 = time.time()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        engines = ENGINES + tuple(f"geant4_{mode}" for mode in G4_STEP_LIMITS)
        futs = {(e, st): pool.submit(_run, e, st, args.n) for e in engines for st in _stacks()}
        rows = {e: {st: futs[e, st].result() for st in _stacks()} for e in engines}
    for stack in _stacks():
        print(f"{stack} ({args.n} e- of {ENERGY_MEV:g} MeV, no secondaries):")
        for e in rows:
            print(f"  {e:28s} {_summary(stack, rows[e][stack], rows['geant4'][stack])}")
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": os.uname().nodename, "rows": rows,
           "wall_seconds": time.time() - t0}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(args.out)
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
