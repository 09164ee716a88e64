"""The built-in engine's two multiple-scattering models against Geant4 on the dataset-2 stack, at the built-in's
own fixed production cuts of before revision 2026-12-07 (0.5 MeV delta rays, 0.1 MeV photons) and at Geant4's
(its 0.7 mm range cut converted per material, the default since).

``Cuts(msc_model="screened_rutherford")`` was the built-in default before physics revision 2026-12-07;
``Cuts(msc_model="urban")``, the default since, is Geant4's Urban model as the Geant4 engine applies it (transport cross section, angular distribution, path-length conversion,
lateral displacement, UseSafety step limitation). Samples as ``msc_step_size.py``: e- of 1 and 10 GeV, photons of
1.5 MeV (Compton electrons of the tungsten reaching the silicon). Per sample and engine: mean Si energy / E_inc with
its standard error, mean depth in readout layers, CPU ms per GeV on one core (one process per engine).

    .venv/bin/python benchmarks/msc_model.py --out benchmarks/msc_model.json
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ENGINES = ("geant4", "screened_rutherford", "urban", "screened_rutherford_g4cuts", "urban_g4cuts")


def _run(which: str, scale: float) -> dict:
    """Every sample through Geant4 or one built-in configuration (one core)."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    import numpy as np
    from msc_step_size import SAMPLES, _observables   # scripts beside this one

    from hepfastsim.fullsim import FullSim
    from hepfastsim.fullsim.geant4 import Geant4Sim
    from hepfastsim.fullsim.physics import Cuts

    g4 = Geant4Sim(binning="ds2", physics="data-free-em")
    if which == "geant4":
        engine, cuts = g4, None
    else:
        model = which.removesuffix("_g4cuts")
        cuts = g4.energy_cuts() if which.endswith("_g4cuts") else {}
        # Geant4's cuts per material, or the fixed 0.5 MeV delta rays / 0.1 MeV photons (before revision 2026-12-07)
        engine = FullSim(binning="ds2", cuts=Cuts(per_material=cuts, msc_model=model, range_cut_mm=None))
        engine.run(np.full(2, 1000.0), "e-", seed=1)   # compile before timing
    rows = {key: _observables(engine, p, e, max(int(n * scale), 10)) for key, (p, e, n) in SAMPLES.items()}
    return {"cuts_MeV": cuts, **rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/msc_model.json"))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sample size (a quick check: 0.02)")
    args = ap.parse_args()
    from msc_step_size import report   # a script beside this one

    t0 = time.time()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        futs = {name: pool.submit(_run, name, args.scale) for name in ENGINES}
        rows = {name: f.result() for name, f in futs.items()}
    report(rows, args.out, t0)


if __name__ == "__main__":
    main()
