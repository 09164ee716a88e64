"""Built-in detailed simulation: microscopic EM shower Monte Carlo (numba)."""

from hepfastsim.fullsim.simulate import FullSim, SimResult

__all__ = ["FullSim", "SimResult"]
