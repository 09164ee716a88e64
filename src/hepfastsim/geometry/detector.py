"""Planar sampling calorimeter: a stack of layers along z, transversely infinite.

The default is the CaloChallenge dataset-2 calorimeter: 90 x (1.4 mm W + 0.3 mm Si),
energy scored in Si only. A YAML file can describe any other stack::

    name: my_calo
    sampling_fraction: 0.05      # stored energy = active deposit / sampling_fraction (default 1: raw deposit)
    layers:
      - {material: Pb, thickness_mm: 2.0, repeat: 40, sensitive: false}
      - {material: Scintillator, thickness_mm: 4.0, sensitive: true}

(``repeat`` on consecutive entries repeats the whole group of entries given in ``period``).
Readout layers group consecutive sensitive layers: with 90 Si layers and a 45-layer
binning each readout layer sums 2 Si layers, with a 9-layer binning 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.materials import E_S, Material, get_material


@dataclass(frozen=True)
class Layer:
    material: str
    thickness_mm: float
    sensitive: bool


@dataclass(frozen=True)
class Detector:
    """Ordered layers from the front face (z = 0) to the back.

    sampling_fraction: the constant the active-layer deposit is divided by before it is stored (CaloChallenge
    convention: dataset 2/3 files hold the Si deposit / 0.033, so that the stored total is about the incident
    energy).
    """

    name: str
    layers: tuple[Layer, ...]
    sampling_fraction: float = 1.0

    @property
    def materials(self) -> list[Material]:
        """Distinct materials in order of first appearance (index used by the transport tables)."""
        seen: list[str] = []
        for layer in self.layers:
            if layer.material not in seen:
                seen.append(layer.material)
        return [get_material(m) for m in seen]

    @property
    def depth_mm(self) -> float:
        return float(sum(l.thickness_mm for l in self.layers))

    @property
    def n_sensitive(self) -> int:
        return sum(l.sensitive for l in self.layers)

    def layer_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(z_front mm, z_back mm, material index, sensitive index or -1) per layer, for compiled transport."""
        names = [m.name for m in self.materials]
        z = np.concatenate([[0.0], np.cumsum([l.thickness_mm for l in self.layers])])
        mat = np.array([names.index(l.material) for l in self.layers], dtype=np.int64)
        sens = np.full(len(self.layers), -1, dtype=np.int64)
        k = 0
        for i, l in enumerate(self.layers):
            if l.sensitive:
                sens[i] = k
                k += 1
        return z[:-1].copy(), z[1:].copy(), mat, sens

    @property
    def x0_mm(self) -> float:
        """Effective radiation length of the stack: depth / sum(t_i / X0_i)."""
        return self.depth_mm / sum(l.thickness_mm / get_material(l.material).x0_mm for l in self.layers)

    @property
    def moliere_radius_mm(self) -> float:
        """Effective Moliere radius (PDG Eq. 34.37): 1/R_M = (1/E_s) sum_j w_j E_cj / X_j, w_j mass fractions."""
        masses = [(get_material(l.material), l.thickness_mm * get_material(l.material).density) for l in self.layers]
        total_mass = sum(m for _, m in masses)
        rho_avg = total_mass / self.depth_mm
        inv = sum((w / total_mass) * mat.critical_energy / (mat.x0_mm * mat.density) for mat, w in masses) / E_S
        return 1.0 / inv / rho_avg

    @property
    def critical_energy(self) -> float:
        """Effective critical energy (MeV) consistent with X0 and R_M of the stack."""
        return E_S * self.x0_mm / self.moliere_radius_mm

    def depth_of_sensitive_x0(self) -> np.ndarray:
        """Depth (in X0 of the stack) of the middle of each sensitive layer."""
        z0, z1, _, sens = self.layer_arrays()
        t = []
        acc = 0.0
        for i, l in enumerate(self.layers):
            x0 = get_material(l.material).x0_mm
            if sens[i] >= 0:
                t.append(acc + 0.5 * l.thickness_mm / x0)
            acc += l.thickness_mm / x0
        return np.array(t)

    def readout_group(self, n_readout_layers: int) -> int:
        """Number of consecutive sensitive layers summed into one readout layer."""
        if n_readout_layers <= 0 or self.n_sensitive % n_readout_layers:
            raise HepFastSimError(
                f"detector {self.name!r} has {self.n_sensitive} sensitive layers, not divisible into {n_readout_layers} readout layers"
            )
        return self.n_sensitive // n_readout_layers


DS2_SAMPLING_FRACTION = 0.033  # the constant of CaloChallenge's dataset creation notebook


def calochallenge_ds2() -> Detector:
    """CaloChallenge dataset-2 calorimeter: 90 x (1.4 mm W + 0.3 mm Si), stored energy = Si deposit / 0.033."""
    return Detector("calochallenge_ds2", tuple(
        layer for _ in range(90) for layer in (Layer("W", 1.4, False), Layer("Si", 0.3, True))
    ), DS2_SAMPLING_FRACTION)


def load_detector(path: str | Path | None) -> Detector:
    """Detector from YAML, or the dataset-2 calorimeter when path is None or 'calochallenge_ds2'."""
    if path is None or str(path) == "calochallenge_ds2":
        return calochallenge_ds2()
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"detector file not found: {path}")
    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict) or "layers" not in cfg:
        raise HepFastSimError(f"{path}: detector YAML needs a 'layers' list")
    period = int(cfg.get("period", len(cfg["layers"])))
    repeat = int(cfg.get("repeat", 1))
    group = []
    for entry in cfg["layers"]:
        try:
            mat = get_material(entry["material"]).name
            t = float(entry["thickness_mm"])
        except KeyError as exc:
            raise HepFastSimError(f"{path}: layer entry {entry} misses {exc}") from None
        if t <= 0:
            raise HepFastSimError(f"{path}: layer thickness must be positive, got {t}")
        group.append(Layer(mat, t, bool(entry.get("sensitive", False))))
    if period != len(group):
        raise HepFastSimError(f"{path}: period {period} must equal the number of layer entries {len(group)}")
    sf = float(cfg.get("sampling_fraction", 1.0))
    if not 0 < sf <= 1:
        raise HepFastSimError(f"{path}: sampling_fraction must be in (0, 1], got {sf}")
    return Detector(str(cfg.get("name", path.stem)), tuple(group * repeat), sf)
