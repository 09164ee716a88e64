"""Readout binning of a calorimeter in the CaloChallenge convention.

A binning XML lists, per readout layer, the radial bin edges (mm) and the number of
angular (alpha) bins. Voxels of one shower are a flat vector, layer after layer; inside a
layer the alpha index runs slowest and the radial index fastest (``alpha * n_r + r``),
exactly as the CaloChallenge ``XMLHandler``. Alpha bins split [-pi, pi) evenly.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from hepfastsim.errors import HepFastSimError

BUILTIN = {
    "demo": "binning_demo.xml",
    "ds1-photons": "binning_dataset_1_photons.xml",
    "ds1-pions": "binning_dataset_1_pions.xml",
    "ds2": "binning_dataset_2.xml",
    "ds3": "binning_dataset_3.xml",
}
# Cell thresholds in stored units (CaloChallenge evaluate.py): datasets 2/3 store the Si deposit / 0.033 and cut
# at 0.5 keV of Si = 15.15 keV stored; dataset 1 cuts at 1 MeV.
CELL_THRESHOLD_MEV = 0.5e-3 / 0.033
DS1_THRESHOLD_MEV = 1.0


def threshold_for(name: str) -> float:
    """Cell threshold (MeV, stored units) of a binning by its name: 1 MeV for dataset 1, else 15.15 keV."""
    return DS1_THRESHOLD_MEV if "dataset_1" in name else CELL_THRESHOLD_MEV


@dataclass(frozen=True)
class Binning:
    """Layers x alpha x r readout of one particle type (CaloChallenge binning).

    r_edges[l]: radial edges of layer l in mm (a single edge "0" means the layer has no voxels).
    n_alpha[l]: number of alpha bins of layer l.
    """

    name: str
    particle: str
    r_edges: tuple[tuple[float, ...], ...]
    n_alpha: tuple[int, ...]
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def threshold(self) -> float:
        """Cell threshold in stored units (MeV) of the dataset this binning reads out."""
        return threshold_for(self.name)

    @property
    def n_layers(self) -> int:
        return len(self.r_edges)

    def n_r(self, layer: int) -> int:
        return max(len(self.r_edges[layer]) - 1, 0)

    @cached_property
    def voxels_per_layer(self) -> np.ndarray:
        return np.array([self.n_r(l) * self.n_alpha[l] for l in range(self.n_layers)], dtype=np.int64)

    @cached_property
    def layer_offsets(self) -> np.ndarray:
        """Index of the first voxel of each layer; the last entry is the total voxel count."""
        return np.concatenate([[0], np.cumsum(self.voxels_per_layer)]).astype(np.int64)

    @property
    def n_voxels(self) -> int:
        return int(self.layer_offsets[-1])

    @cached_property
    def relevant_layers(self) -> list[int]:
        """Layers that carry voxels (CaloChallenge 'relevantLayers')."""
        return [l for l in range(self.n_layers) if self.voxels_per_layer[l] > 0]

    @cached_property
    def alpha_binned_layers(self) -> list[int]:
        return [l for l in range(self.n_layers) if self.n_alpha[l] > 1 and self.n_r(l) > 0]

    @cached_property
    def geometry_id(self) -> str:
        """Short hash of the binning: a checkpoint refuses data of another geometry."""
        text = repr((self.r_edges, self.n_alpha))
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def layer_slice(self, layer: int) -> slice:
        return slice(int(self.layer_offsets[layer]), int(self.layer_offsets[layer + 1]))

    @cached_property
    def voxel_centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(r_mid, x, y) of every voxel in mm: r at the radial bin middle, x = r cos(alpha), y = r sin(alpha)."""
        r_all, x_all, y_all = [], [], []
        for l in range(self.n_layers):
            nr, na = self.n_r(l), self.n_alpha[l]
            if nr == 0:
                continue
            edges = np.asarray(self.r_edges[l])
            r_mid = 0.5 * (edges[:-1] + edges[1:])
            a_edges = np.linspace(-np.pi, np.pi, na + 1)
            a_mid = 0.5 * (a_edges[:-1] + a_edges[1:])
            a_grid, r_grid = np.meshgrid(a_mid, r_mid, indexing="ij")  # alpha slow, r fast
            r_all.append(r_grid.ravel())
            x_all.append((r_grid * np.cos(a_grid)).ravel())
            y_all.append((r_grid * np.sin(a_grid)).ravel())
        return np.concatenate(r_all), np.concatenate(x_all), np.concatenate(y_all)

    def voxel_index(self, layer: int, r_bin: int, alpha_bin: int) -> int:
        """Flat voxel index of (layer, radial bin, alpha bin)."""
        if not (0 <= r_bin < self.n_r(layer) and 0 <= alpha_bin < self.n_alpha[layer]):
            raise HepFastSimError(f"bin (layer={layer}, r={r_bin}, alpha={alpha_bin}) outside the binning")
        return int(self.layer_offsets[layer]) + alpha_bin * self.n_r(layer) + r_bin

    def flat_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Padded arrays for compiled code: r edges (L, max_edges), n_r, n_alpha, layer offsets, r_max."""
        max_e = max(len(e) for e in self.r_edges)
        edges = np.full((self.n_layers, max_e), np.inf)
        for l, e in enumerate(self.r_edges):
            edges[l, : len(e)] = e
        n_r = np.array([self.n_r(l) for l in range(self.n_layers)], dtype=np.int64)
        n_a = np.array(self.n_alpha, dtype=np.int64)
        r_max = np.array([e[-1] if len(e) > 1 else 0.0 for e in self.r_edges])
        return edges, n_r, n_a, self.layer_offsets.copy(), r_max


def load_binning(path: str | Path) -> Binning:
    """Read a CaloChallenge binning XML (``<Bins><Bin name=...><Layer r_edges=... n_bin_alpha=.../>``)."""
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"binning file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise HepFastSimError(f"binning file {path} is not valid XML: {exc}") from None
    bins = root.findall("Bin")
    if not bins:
        raise HepFastSimError(f"binning file {path} has no <Bin> element")
    particle_bin = bins[0]
    r_edges, n_alpha = [], []
    for layer in particle_bin.findall("Layer"):
        try:
            edges = tuple(float(s) for s in layer.attrib["r_edges"].split(","))
            na = int(layer.attrib["n_bin_alpha"])
        except (KeyError, ValueError) as exc:
            raise HepFastSimError(f"binning file {path}: bad Layer element {layer.attrib}: {exc}") from None
        if any(b <= a for a, b in zip(edges[:-1], edges[1:])):
            raise HepFastSimError(f"binning file {path}: r_edges of layer {layer.attrib.get('id')} not increasing")
        r_edges.append(edges)
        n_alpha.append(na)
    return Binning(
        name=path.stem,
        particle=particle_bin.attrib.get("name", "unknown"),
        r_edges=tuple(r_edges),
        n_alpha=tuple(n_alpha),
    )


def builtin_name(name: str) -> str | None:
    """The key of a shipped binning given its key ('ds2') or its XML stem ('binning_dataset_2'), else None."""
    if name in BUILTIN:
        return name
    return next((k for k, f in BUILTIN.items() if Path(f).stem == name), None)


def get_binning(binning: "str | Path | Binning") -> Binning:
    """A Binning as given, a shipped one by name ('demo', 'ds1-photons', 'ds1-pions', 'ds2', 'ds3'), or one read
    from a CaloChallenge XML path."""
    if isinstance(binning, Binning):
        return binning
    key = builtin_name(str(binning))
    if key is None and not Path(binning).exists() and not str(binning).endswith(".xml"):
        raise HepFastSimError(f"unknown binning {str(binning)!r}: one of {', '.join(BUILTIN)} or a CaloChallenge XML path")
    return builtin_binning(key) if key else load_binning(binning)


def builtin_binning(name: str) -> Binning:
    """A binning shipped with the package: 'demo' (coarse readout of the dataset-2 detector), 'ds1-photons',
    'ds1-pions', 'ds2', 'ds3' (the public CaloChallenge XMLs)."""
    if name not in BUILTIN:
        raise HepFastSimError(f"unknown built-in binning {name!r}; known: {sorted(BUILTIN)}")
    with resources.as_file(resources.files("hepfastsim.geometry") / "data" / BUILTIN[name]) as p:
        return load_binning(p)


def builtin_binning_path(name: str) -> Path:
    """Filesystem path of a shipped binning XML."""
    return DATA_DIR / BUILTIN[name]


DATA_DIR = Path(str(resources.files("hepfastsim.geometry") / "data"))
