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
binning each readout layer sums 2 Si layers, with a 9-layer binning 10. A sensitive layer may instead name its
readout layer (``readout: 12``, then every sensitive layer must) and its own sampling fraction
(``sampling_fraction: 0.03``, e.g. a hadronic section of other materials); a readout layer holds one sampling
fraction. Detector-wide options for the Geant4 engine: ``birks_mm_per_MeV`` (Birks' constant of the organic
scintillator layers, e.g. 0.126) and ``time_cut_ns`` (deposits later than this after the primary are dropped).
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
    readout: int = -1                # readout layer of a sensitive layer; -1: consecutive grouping
    sampling_fraction: float = 0.0   # of a sensitive layer; 0: the detector's


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
    birks_mm_per_mev: float = 0.0        # Birks' constant of organic scintillator (Geant4 engine)
    time_cut_ns: float | None = None     # hit time cut (Geant4 engine)

    @property
    def sensitive_layers(self) -> list[Layer]:
        return [l for l in self.layers if l.sensitive]

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

    def readout_map(self, n_readout_layers: int) -> np.ndarray:
        """Readout layer of each sensitive layer: the layers' own ``readout`` indices, or consecutive groups of
        n_sensitive / n_readout_layers."""
        sens = self.sensitive_layers
        named = [l.readout for l in sens]
        if any(r >= 0 for r in named):
            if min(named) < 0:
                raise HepFastSimError(f"detector {self.name!r}: either every sensitive layer names its readout layer "
                                      "or none does")
            if max(named) >= n_readout_layers:
                raise HepFastSimError(f"detector {self.name!r}: readout layer {max(named)} beyond the binning's "
                                      f"{n_readout_layers} layers")
            return np.array(named, dtype=np.int64)
        if n_readout_layers <= 0 or self.n_sensitive % n_readout_layers:
            raise HepFastSimError(
                f"detector {self.name!r} has {self.n_sensitive} sensitive layers, not divisible into {n_readout_layers} readout layers"
            )
        return np.arange(self.n_sensitive, dtype=np.int64) // (self.n_sensitive // n_readout_layers)

    def readout_sampling_fractions(self, n_readout_layers: int) -> np.ndarray:
        """Sampling fraction of each readout layer (the detector's where a layer names none); a readout layer
        that mixes two fractions is a one-line error."""
        out = np.full(n_readout_layers, self.sampling_fraction)
        seen: dict[int, float] = {}
        for layer, ro in zip(self.sensitive_layers, self.readout_map(n_readout_layers)):
            sf = layer.sampling_fraction or self.sampling_fraction
            if seen.setdefault(int(ro), sf) != sf:
                raise HepFastSimError(f"detector {self.name!r}: readout layer {ro} mixes sampling fractions "
                                      f"{seen[int(ro)]} and {sf}")
            out[ro] = sf
        return out


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
    readout: int | None = Field(None, ge=0)
    sampling_fraction: float | None = Field(None, gt=0, le=1)


class _GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repeat: int = Field(ge=1)
    layers: list[Union[_LayerSpec, "_GroupSpec"]] = Field(min_length=1)


class _DetectorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    sampling_fraction: float = Field(1.0, gt=0, le=1)
    birks_mm_per_MeV: float = Field(0.0, ge=0)
    time_cut_ns: float | None = Field(None, gt=0)
    layers: list[Union[_LayerSpec, _GroupSpec]] = Field(min_length=1)


def _expand(entries: list) -> list[Layer]:
    out: list[Layer] = []
    for e in entries:
        if isinstance(e, _LayerSpec):
            out += [Layer(get_material(e.material).name, e.thickness_mm, e.sensitive,
                          -1 if e.readout is None else e.readout, e.sampling_fraction or 0.0)] * e.repeat
        else:
            out += _expand(e.layers) * e.repeat
    return out


SHIPPED = ("calochallenge_ds2", "atlas_barrel_ds1")


def load_detector(path: str | Path | None) -> Detector:
    """Detector from YAML (schema-checked), the dataset-2 calorimeter when path is None or 'calochallenge_ds2',
    or another shipped detector by name ('atlas_barrel_ds1': geometry/data/detector_atlas_barrel_ds1.yaml)."""
    if path is None or str(path) == "calochallenge_ds2":
        return calochallenge_ds2()
    if str(path) in SHIPPED:
        from hepfastsim.geometry.binning import DATA_DIR

        path = DATA_DIR / f"detector_{path}.yaml"
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
    layers = tuple(_expand(spec.layers))
    if any((l.readout >= 0 or l.sampling_fraction > 0) and not l.sensitive for l in layers):
        raise HepFastSimError(f"{path}: readout and sampling_fraction are options of sensitive layers")
    return Detector(spec.name or path.stem, layers, spec.sampling_fraction, spec.birks_mm_per_MeV, spec.time_cut_ns)


def one_line(exc: ValidationError) -> str:
    """The first problem of a pydantic validation error as 'key.path: message' (union member names dropped)."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("_LayerSpec", "_GroupSpec")))
    return f"{where or 'file'}: {err['msg']}"
