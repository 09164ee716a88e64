"""Tabulate Geant4's photo-absorption cross sections per atom for the built-in engine's elements.

The built-in engine's photo-effect uses these numbers (``fullsim/data/photo_per_atom.json``): Geant4's
G4PEEffectFluoModel, i.e. the Sandia parametrisation of measured photo-absorption data, evaluated per atom on a
log grid of photon energy. Regenerate (Geant4 through geant4_pybind, no data sets needed) with

    .venv/bin/python -m hepfastsim.fullsim.geant4.tabulate
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hepfastsim.fileio import atomic_output
from hepfastsim.geometry.materials import ELEMENTS

OUT = Path(__file__).resolve().parents[1] / "data" / "photo_per_atom.json"
GRID_MEV = np.logspace(-3, 6, 9 * 20 + 1)  # 1 keV - 1 TeV, 20 points per decade


def main() -> None:
    from hepfastsim.fullsim.geant4 import Geant4Sim

    sim = Geant4Sim(binning="demo", physics="data-free-em")
    sim.run(np.full(1, 10.0), "gamma", seed=1)  # builds the physics tables
    calc = sim.g4.G4EmCalculator()
    gamma = sim.g4.G4Gamma.Gamma()
    table = {}
    for name, (z, a) in ELEMENTS.items():
        # Geant4 internal units: mm2 -> cm2
        table[str(z)] = [calc.ComputeCrossSectionPerAtom(float(e), gamma, "phot", float(z), float(a), 0.0) * 1e-2
                         for e in GRID_MEV]
    doc = {"source": f"Geant4 {sim.attrs()['geant4_version']} G4PEEffectFluoModel (Sandia), per atom, cm2",
           "command": "python -m hepfastsim.fullsim.geant4.tabulate", "energies_MeV": GRID_MEV.tolist(), "Z": table}
    with atomic_output(OUT) as tmp:
        tmp.write_text(json.dumps(doc))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
