"""Detailed simulation: the built-in EM shower Monte Carlo (numba) and the Geant4 engine."""

from hepfastsim.fullsim.simulate import Engine, FullSim, SimResult, make_engine

__all__ = ["Engine", "FullSim", "SimResult", "make_engine"]
