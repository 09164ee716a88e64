"""hepfastsim: fast detector simulation with deep generative models.

Pipeline: simulate (built-in EM shower Monte Carlo) -> train a conditional generator
-> generate -> validate against the full simulation -> benchmark.
Units everywhere: energies in MeV, lengths in mm, angles in radians.
"""

__version__ = "0.1.0"

from hepfastsim.errors import HepFastSimError

__all__ = ["HepFastSimError", "__version__"]
