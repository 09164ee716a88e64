"""Planar sampling calorimeter: a stack of layers along z, transversely infinite.

The default is the CaloChallenge dataset-2 calorimeter: 90 x (1.4 mm W + 0.3 mm Si),
energy scored in Si only. A YAML file can describe any other stack, from the front face::

    name: my_calo
    sampling_fraction: 0.05      # stored energy = active deposit / sampling_fraction (default 1: raw deposit)
    layers:
      - {material: Pb, thickness_mm: 10.0}                 # one passive layer
      - repeat: 40                                         # a group of layers, repeated
        layers:
          - {material: Pb, thickness_mm: 2.0}
          - {material: Scintillator, thickness_mm: 4.0, sensitive: true}
      - {material: Fe, thickness_mm: 20.0, repeat: 3}      # one layer, repeated

The file is checked against a schema: an unknown key, a wrong type or a non-positive thickness is a
one-line error naming it.
Readout layers group consecutive sensitive layers: with 90 Si layers and a 45-layer
binning each readout layer sums 2 Si layers, with a 9-layer binning 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class _LayerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    material: str
    thickness_mm: float = Field(gt=0)
    sensitive: bool = False
    repeat: int = Field(1, ge=1)


class _GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repeat: int = Field(ge=1)
    layers: list[Union[_LayerSpec, "_GroupSpec"]] = Field(min_length=1)


class _DetectorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    sampling_fraction: float = Field(1.0, gt=0, le=1)
    layers: list[Union[_LayerSpec, _GroupSpec]] = Field(min_length=1)


def _expand(entries: list) -> list[Layer]:
    out: list[Layer] = []
    for e in entries:
        if isinstance(e, _LayerSpec):
            out += [Layer(get_material(e.material).name, e.thickness_mm, e.sensitive)] * e.repeat
        else:
            out += _expand(e.layers) * e.repeat
    return out


def load_detector(path: str | Path | None) -> Detector:
    """Detector from YAML (schema-checked), or the dataset-2 calorimeter when path is None or 'calochallenge_ds2'."""
    if path is None or str(path) == "calochallenge_ds2":
        return calochallenge_ds2()
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"detector file not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HepFastSimError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    try:
        spec = _DetectorSpec.model_validate(cfg)
    except ValidationError as exc:
        raise HepFastSimError(f"{path}: {one_line(exc)}") from None
    return Detector(spec.name or path.stem, tuple(_expand(spec.layers)), spec.sampling_fraction)


def one_line(exc: ValidationError) -> str:
    """The first problem of a pydantic validation error as 'key.path: message' (union member names dropped)."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("_LayerSpec", "_GroupSpec")))
    return f"{where or 'file'}: {err['msg']}"
