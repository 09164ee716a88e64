"""Tabulate Geant4 cross sections per atom for the built-in engine's elements.

* ``fullsim/data/photo_per_atom.json``: the built-in photo-effect, Geant4's G4PEEffectFluoModel (the Sandia
  parametrisation of measured photo-absorption data) per atom on a log grid of photon energy;
* ``fullsim/data/urban_msc_per_atom.json``: the transport cross section (1 / lambda_1 per atom) of Geant4's
  G4UrbanMscModel for e- and e+, which the built-in engine's Urban multiple scattering
  (``Cuts(msc_model="urban")``) uses;
* ``fullsim/data/production_cuts.json``: Geant4's conversion of range cuts (mm) into production thresholds (MeV)
  for electrons (delta rays) and photons (bremsstrahlung) in every material of ``geometry.materials``, from which
  the built-in engine takes its production cuts (``Cuts(range_cut_mm=0.7)``, Geant4's default range cut).

Regenerate both (Geant4 through geant4_pybind, no data sets needed) with

    .venv/bin/python -m hepfastsim.fullsim.geant4.tabulate
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hepfastsim.fileio import atomic_output
from hepfastsim.geometry.materials import ELEMENTS

DATA = Path(__file__).resolve().parents[1] / "data"
OUT = DATA / "photo_per_atom.json"
MSC_OUT = DATA / "urban_msc_per_atom.json"
CUTS_OUT = DATA / "production_cuts.json"
RANGE_CUTS_MM = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.7, 1.0, 2.0, 5.0, 10.0]
GRID_MEV = np.logspace(-3, 6, 9 * 20 + 1)  # 1 keV - 1 TeV, 20 points per decade


def _per_atom(calc, particle, process: str) -> dict[str, list[float]]:
    """Cross section per atom (cm2) of a process for every element of ELEMENTS on GRID_MEV (Geant4 works in mm2)."""
    return {str(z): [calc.ComputeCrossSectionPerAtom(float(e), particle, process, float(z), float(a), 0.0) * 1e-2
                     for e in GRID_MEV] for _, (z, a) in ELEMENTS.items()}


def _energy_cuts(calc, g4) -> dict[str, dict[str, list[float]]]:
    """{material: {"e-": [MeV per range cut], "gamma": [...]}} from G4EmCalculator.ComputeEnergyCutFromRangeCut."""
    from hepfastsim.fullsim.geant4.engine import NIST

    nist = g4.G4NistManager.Instance()
    out = {}
    for name, g4_name in NIST.items():
        mat = nist.FindOrBuildMaterial(g4_name)
        out[name] = {key: [float(calc.ComputeEnergyCutFromRangeCut(r, particle, mat)) for r in RANGE_CUTS_MM]
                     for key, particle in (("e-", g4.G4Electron.Electron()), ("gamma", g4.G4Gamma.Gamma()))}
    return out


def _write(path: Path, doc: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(doc))
    print(f"wrote {path}")


def main() -> None:
    from hepfastsim.fullsim.geant4 import Geant4Sim

    sim = Geant4Sim(binning="demo", physics="data-free-em")
    sim.run(np.full(1, 10.0), "gamma", seed=1)  # builds the physics tables
    calc, g4 = sim.g4.G4EmCalculator(), sim.g4
    version = sim.attrs()["geant4_version"]
    command = "python -m hepfastsim.fullsim.geant4.tabulate"
    _write(OUT, {"source": f"Geant4 {version} G4PEEffectFluoModel (Sandia), per atom, cm2", "command": command,
                 "energies_MeV": GRID_MEV.tolist(), "Z": _per_atom(calc, g4.G4Gamma.Gamma(), "phot")})
    _write(MSC_OUT, {"source": f"Geant4 {version} G4UrbanMscModel transport cross section (1/lambda_1) per atom, cm2",
                     "command": command, "energies_MeV": GRID_MEV.tolist(),
                     "e-": _per_atom(calc, g4.G4Electron.Electron(), "msc"),
                     "e+": _per_atom(calc, g4.G4Positron.Positron(), "msc")})
    _write(CUTS_OUT, {"source": f"Geant4 {version} G4EmCalculator::ComputeEnergyCutFromRangeCut, MeV",
                      "command": command, "range_cuts_mm": RANGE_CUTS_MM, "materials": _energy_cuts(calc, g4)})


if __name__ == "__main__":
    main()
