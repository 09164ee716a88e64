"""Importing geant4_pybind safely: the right version, and an environment that needs no Geant4 data sets.

geant4_pybind asks on stdin for its data sets at import (and with CI=true tries to download them) unless
GEANT4_DATA_DIR names an existing folder; G4NuclideTable reads ENSDFSTATE.dat at start (used only for ions) and
the photon-evaporation code wants G4LEVELGAMMADATA to exist. Without real data sets we point these at an empty
cache folder holding an empty ENSDFSTATE.dat. Nothing is downloaded.
"""

from __future__ import annotations

import os
import tempfile
from importlib import metadata
from pathlib import Path
from types import ModuleType

from hepfastsim.errors import HepFastSimError

PYBIND_VERSION = "0.1.3"
DATA_VARIABLES = ("G4LEDATA", "G4PARTICLEXSDATA", "G4ENSDFSTATEDATA", "G4LEVELGAMMADATA")


def have_datasets() -> bool:
    """True when the user's Geant4 data sets are installed: G4LEDATA (EM low-energy data) names a real folder,
    or GEANT4_DATA_DIR holds a G4EMLOW* folder."""
    le = os.environ.get("G4LEDATA")
    if le and Path(le).is_dir() and any(Path(le).iterdir()):
        return True
    top = os.environ.get("GEANT4_DATA_DIR")
    return bool(top) and Path(top).is_dir() and any(Path(top).glob("G4EMLOW*"))


def _empty_data_dir() -> Path:
    """A per-user folder standing in for the data sets: an empty ENSDFSTATE.dat and an empty level folder."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hepfastsim" / "geant4-no-data"
    try:
        (root / "ENSDFSTATE").mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.mkdtemp(prefix="hepfastsim-g4-"))
        (root / "ENSDFSTATE").mkdir()
    (root / "ENSDFSTATE" / "ENSDFSTATE.dat").touch()
    (root / "PhotonEvaporation").mkdir(exist_ok=True)
    return root


def import_geant4() -> ModuleType:
    """geant4_pybind, checked to be the pinned version, imported with a data-free environment when no data sets
    are installed. A one-line error when it is missing or another version."""
    try:
        version = metadata.version("geant4_pybind")
    except metadata.PackageNotFoundError:
        raise HepFastSimError(f"the Geant4 engine needs geant4_pybind: pip install geant4_pybind=={PYBIND_VERSION}") from None
    if version != PYBIND_VERSION:
        raise HepFastSimError(f"the Geant4 engine is built for geant4_pybind {PYBIND_VERSION}, found {version}: "
                              f"pip install geant4_pybind=={PYBIND_VERSION}")
    if not have_datasets():
        root = _empty_data_dir()
        if not Path(os.environ.get("GEANT4_DATA_DIR", "/nonexistent")).is_dir():
            os.environ["GEANT4_DATA_DIR"] = str(root)
        os.environ["G4ENSDFSTATEDATA"] = str(root / "ENSDFSTATE")
        os.environ["G4LEVELGAMMADATA"] = str(root / "PhotonEvaporation")
    import geant4_pybind

    return geant4_pybind
