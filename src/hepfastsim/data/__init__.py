"""Data layer: CaloChallenge HDF5 showers, MPD TPC digits, preprocessing, splits."""

from hepfastsim.data.calo_io import ShowerDataset, read_showers, iter_showers, write_showers, ShowerWriter

__all__ = ["ShowerDataset", "read_showers", "iter_showers", "write_showers", "ShowerWriter"]
