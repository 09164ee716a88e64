"""Detector descriptions: CaloChallenge readout binning and the layered absorber/sensor stack."""

from hepfastsim.geometry.binning import Binning, builtin_binning, get_binning, load_binning

__all__ = ["Binning", "builtin_binning", "get_binning", "load_binning"]
