"""MPD TPC pad-row responses: the digits text format of the TPC fast-simulation study
(Eur. Phys. J. C 81, 599 (2021)) and an HDF5 form for generated samples.

Digits format, one event per line pair::

    params: <crossing_angle> <dip_angle> [<drift_length> <pad_coordinate> <row> <pT>]
     <ipad> <itime> <amplitude>  <ipad> <itime> <amplitude> ...

Angles in degrees, drift length in time bins, pad coordinate in pads, pT in GeV. Each event
becomes a dense (pads, time bins) window: with 6 parameters (``digits_v4plus``) the window is
centred as in the study, pads -3..4 relative to int(pad_coordinate) and time bins -7..8
relative to int(drift_length) (8 x 16); with 2 parameters (``digits_v2``) it is the fixed
window pads 40..49, time bins 265..279 (10 x 15). Signal outside the window is dropped and
its fraction reported.

The fixed split (``split_indices``): one permutation of the event indices with seed 0;
the first 70 % train, the next 10 % validation (early stopping), the last 20 % test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from hepfastsim.errors import HepFastSimError
from hepfastsim.fileio import atomic_output

PARAM_NAMES = {
    2: ("crossing_angle", "dip_angle"),
    6: ("crossing_angle", "dip_angle", "drift_length", "pad_coordinate", "row", "pT"),
}
# (pad range, time range, centred on int(pad_coordinate), int(drift_length)?) per parameter count
WINDOWS = {
    2: ((40, 50), (265, 280), False),
    6: ((-3, 5), (-7, 9), True),
}
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
SPLIT_SEED = 0


@dataclass
class TPCDataset:
    """Dense pad-row responses (N, pads, time) in ADC counts with their track parameters (N, K)."""

    responses: np.ndarray
    params: np.ndarray
    names: tuple[str, ...]
    pad_range: tuple[int, int]
    time_range: tuple[int, int]
    centred: bool
    outside_fraction: float = 0.0
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.responses)

    @property
    def shape(self) -> tuple[int, int]:
        return self.responses.shape[1], self.responses.shape[2]

    @property
    def geometry_id(self) -> str:
        """Identifies the window and conditioning, so a model refuses data of another layout."""
        return f"tpc-{len(self.names)}p-pad{self.pad_range[0]}:{self.pad_range[1]}-time{self.time_range[0]}:{self.time_range[1]}"

    def subset(self, idx) -> "TPCDataset":
        return TPCDataset(self.responses[idx], self.params[idx], self.names, self.pad_range, self.time_range,
                          self.centred, self.outside_fraction, dict(self.attrs))


F32_MAX = float(np.finfo(np.float32).max)  # responses and parameters are stored as float32


def _parse_floats(text: str, where: str) -> np.ndarray:
    try:
        return np.array(text.split(), dtype=np.float64)
    except ValueError:
        bad = next(t for t in text.split() if not _is_float(t))
        raise HepFastSimError(f"{where}: {bad!r} is not a number") from None


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def read_digits(path: str | Path, max_events: int | None = None) -> TPCDataset:
    """Parse a digits .dat file into a dense, centred TPCDataset (clear errors on malformed lines)."""
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"TPC digits file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise HepFastSimError(f"{path} is not a text digits file (byte {exc.start} is not UTF-8)") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise HepFastSimError(f"{path} is empty")
    params, digits = [], []
    i = 0
    while i < len(lines) and (max_events is None or len(params) < max_events):
        head = lines[i]
        if not head.startswith("params:"):
            raise HepFastSimError(f"{path}:{i + 1}: expected a 'params:' line, got {head[:40]!r}")
        p = _parse_floats(head[len("params:"):], f"{path}:{i + 1}")
        if len(p) not in PARAM_NAMES:
            raise HepFastSimError(f"{path}:{i + 1}: {len(p)} parameters; expected 2 (v2) or 6 (v4plus)")
        if params and len(p) != len(params[0]):
            raise HepFastSimError(f"{path}:{i + 1}: {len(p)} parameters but earlier events have {len(params[0])}")
        if i + 1 >= len(lines) or lines[i + 1].startswith("params:"):
            raise HepFastSimError(f"{path}:{i + 2}: missing the digits line of the event at line {i + 1}")
        d = _parse_floats(lines[i + 1], f"{path}:{i + 2}")
        if len(d) % 3:
            raise HepFastSimError(f"{path}:{i + 2}: {len(d)} numbers, not ipad itime amplitude triplets")
        d = d.reshape(-1, 3)
        if not np.all(np.isfinite(d)) or np.any(d[:, 2] < 0):
            raise HepFastSimError(f"{path}:{i + 2}: NaN, inf or negative amplitude")
        if np.any(np.abs(d) > F32_MAX) or not np.all(np.isfinite(p)) or np.any(np.abs(p) > F32_MAX):
            raise HepFastSimError(f"{path}:{i + 1}-{i + 2}: a value is NaN, inf or beyond float32 range (3.4e38)")
        params.append(p)
        digits.append(d)
        i += 2
    return densify(np.array(params), digits, attrs={"source": str(path)})


def densify(params: np.ndarray, digits: list[np.ndarray], attrs: dict | None = None) -> TPCDataset:
    """(ipad, itime, amplitude) lists -> dense windows, centred as the study for 6-parameter events."""
    k = params.shape[1]
    (p0, p1), (t0, t1), centred = WINDOWS[k]
    out = np.zeros((len(params), p1 - p0, t1 - t0), np.float32)
    total = outside = 0.0
    for n, (p, d) in enumerate(zip(params, digits)):
        ipad, itime = d[:, 0].astype(np.int64), d[:, 1].astype(np.int64)
        if centred:
            ipad = ipad - int(p[3])
            itime = itime - int(p[2])
        inside = (ipad >= p0) & (ipad < p1) & (itime >= t0) & (itime < t1)
        np.add.at(out[n], (ipad[inside] - p0, itime[inside] - t0), d[inside, 2])
        total += d[:, 2].sum()
        outside += d[~inside, 2].sum()
    return TPCDataset(out, params.astype(np.float64), PARAM_NAMES[k], (p0, p1), (t0, t1), centred,
                      float(outside / total) if total > 0 else 0.0, attrs or {})


def write_digits(path: str | Path, ds: TPCDataset, threshold: float = 1.0, overwrite: bool = False) -> Path:
    """Write responses back in the study's digits format (amplitudes below threshold dropped; atomic)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise HepFastSimError(f"{path} exists; pass overwrite=True to replace it")
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        for p, r in zip(ds.params, ds.responses):
            f.write("params: " + " ".join(f"{v:.6g}" for v in p) + "\n")
            dp = int(p[3]) if ds.centred else 0
            dt = int(p[2]) if ds.centred else 0
            ip, it = np.nonzero(r >= threshold)
            f.write("".join(f" {a + ds.pad_range[0] + dp} {b + ds.time_range[0] + dt} {r[a, b]:.4e} " for a, b in zip(ip, it)) + "\n")
    return path


def write_tpc_h5(path: str | Path, ds: TPCDataset, overwrite: bool = False, attrs: dict | None = None) -> Path:
    """HDF5 with 'responses' (N, pads, time) and 'params' (N, K) plus the window as attributes (atomic)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise HepFastSimError(f"{path} exists; pass --overwrite to replace it")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("responses", data=ds.responses.astype(np.float32), compression="gzip")
        f.create_dataset("params", data=ds.params)
        f.attrs.update({"task": "tpc", "names": ",".join(ds.names), "pad_range": ds.pad_range,
                        "time_range": ds.time_range, "centred": ds.centred, **(attrs or {})})
    return path


def read_tpc(path: str | Path, max_events: int | None = None) -> TPCDataset:
    """A TPC sample from a digits .dat file or a hepfastsim TPC HDF5 file."""
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"TPC file not found: {path}")
    if path.suffix in (".dat", ".txt"):
        return read_digits(path, max_events)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("task") != "tpc" or "responses" not in f:
                raise HepFastSimError(f"{path} is not a hepfastsim TPC file (no 'responses' / task=tpc)")
            sl = slice(None, max_events)
            a = f.attrs
            return TPCDataset(f["responses"][sl].astype(np.float32), f["params"][sl].astype(np.float64),
                              tuple(str(a["names"]).split(",")), tuple(int(v) for v in a["pad_range"]),
                              tuple(int(v) for v in a["time_range"]), bool(a["centred"]), 0.0,
                              {k: v for k, v in a.items() if k not in ("names", "pad_range", "time_range", "centred")})
    except OSError as exc:
        raise HepFastSimError(f"{path} is not a readable HDF5 file ({exc})") from None


def split_indices(n: int, seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, np.ndarray]:
    """The documented fixed train / val / test split by event index (sorted indices per part)."""
    perm = np.random.default_rng(seed).permutation(n)
    a = int(round(fractions[0] * n))
    b = a + int(round(fractions[1] * n))
    return {"train": np.sort(perm[:a]), "val": np.sort(perm[a:b]), "test": np.sort(perm[b:])}


def select_split(ds: TPCDataset, split: str | None) -> TPCDataset:
    """ds restricted to one part of the fixed split ('train', 'val', 'test'); None or 'all' keeps everything."""
    if split in (None, "all"):
        return ds
    parts = split_indices(len(ds))
    if split not in parts:
        raise HepFastSimError(f"unknown split {split!r}: train, val, test or all")
    return ds.subset(parts[split])
