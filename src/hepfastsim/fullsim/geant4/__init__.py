"""Geant4 engine (through the ``geant4_pybind`` wheel): the field's reference detailed simulation.

With the user's Geant4 data sets installed (``GEANT4_DATA_DIR`` or the ``G4*DATA`` variables pointing at real
data) the reference physics list FTFP_BERT (EM option 0) is used. Without them, a data-free electromagnetic list
built from Geant4's own models that read no data file (``physics.DataFreeEm``).
"""

from hepfastsim.fullsim.geant4.engine import Geant4Sim

__all__ = ["Geant4Sim"]
