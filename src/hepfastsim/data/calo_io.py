"""CaloChallenge HDF5 format.

``incident_energies``: (N, 1) float, MeV.  ``showers``: (N, n_voxels) float, MeV per voxel.
Optional extra datasets (ignored by CaloChallenge tools): ``particle`` (N,) PDG id,
``theta``/``phi`` (N,) rad, ``engine`` (N,) 0 = full simulation, 1 = fast model, ``member`` (N,)
the ensemble member that generated the shower.
Files are gzip-compressed and chunked by event so large files stream.
Writes go to a temporary file in the same folder that is renamed at the end, so an
existing file is never left half-written; appending (``ShowerWriter(append=True)``)
resizes in place and is how an interrupted simulation resumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from hepfastsim.errors import HepFastSimError
from hepfastsim.fileio import atomic_output
from hepfastsim.geometry.binning import Binning

EXTRA_KEYS = ("particle", "theta", "phi", "engine", "member")
PARTICLES = {"e-": 11, "e+": -11, "gamma": 22, "photon": 22, "electron": 11, "positron": -11, "pi+": 211, "pi-": -211,
             "proton": 2212, "neutron": 2112, "kaon+": 321, "kaon-": -321, "mu-": 13, "mu+": -13}


def energy_range(spec: str) -> tuple[str, float, float] | None:
    """('log' | 'uniform', LO, HI) in MeV of a range spec 'log:LO:HI' / 'uniform:LO:HI' (simulate's --energies, a
    file's energy_spec attribute); None for fixed energies. ValueError for a malformed range (LO <= 0, LO >= HI)."""
    if not spec.startswith(("uniform:", "log:")):
        return None
    kind, lo, hi = spec.split(":")
    lo, hi = float(lo), float(hi)
    if not 0 < lo < hi:
        raise ValueError(spec)
    return kind, lo, hi


def particle_pdg(name: str | int) -> int:
    """PDG id of a particle name ('e-', 'gamma', ...); an unknown name is an error."""
    if isinstance(name, (int, np.integer)):
        return int(name)
    if name not in PARTICLES:
        raise HepFastSimError(f"unknown particle {name!r}; known: {sorted(PARTICLES)}")
    return PARTICLES[name]


@dataclass
class ShowerDataset:
    """Showers (N, V) in MeV with their incident energies (N,) in MeV and optional conditions."""

    energies: np.ndarray
    showers: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.energies = np.asarray(self.energies, dtype=np.float64).reshape(-1)
        self.showers = np.asarray(self.showers)
        validate_arrays(self.energies, self.showers, source="dataset")

    def __len__(self) -> int:
        return len(self.energies)

    @property
    def n_voxels(self) -> int:
        return self.showers.shape[1]

    def subset(self, index: np.ndarray | slice) -> "ShowerDataset":
        return ShowerDataset(self.energies[index], self.showers[index], {k: v[index] for k, v in self.extras.items()})

    def check_binning(self, binning: Binning) -> None:
        if self.n_voxels != binning.n_voxels:
            raise HepFastSimError(
                f"showers have {self.n_voxels} voxels but binning {binning.name!r} has {binning.n_voxels}"
            )


def validate_arrays(energies: np.ndarray, showers: np.ndarray, source: str) -> None:
    """One-line errors for the ways a shower file goes wrong."""
    if showers.ndim != 2:
        raise HepFastSimError(f"{source}: showers must be 2-D (N, voxels), got shape {showers.shape}")
    if len(energies) != len(showers):
        raise HepFastSimError(
            f"{source}: {len(energies)} incident energies but {len(showers)} showers (N must match)"
        )
    if not np.all(np.isfinite(energies)):
        raise HepFastSimError(f"{source}: incident_energies contain NaN or inf")
    if np.any(energies <= 0):
        raise HepFastSimError(f"{source}: incident_energies must be positive (MeV), min is {energies.min():g}")
    if showers.size and not np.all(np.isfinite(showers)):
        bad = int(np.argwhere(~np.isfinite(showers))[0, 0])
        raise HepFastSimError(f"{source}: showers contain NaN or inf (first at event {bad})")
    if showers.size and showers.min() < 0:
        bad = int(np.argwhere(showers < 0)[0, 0])
        raise HepFastSimError(f"{source}: showers contain negative energies (first at event {bad})")


def _open(path: str | Path) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise HepFastSimError(f"{path} is not a readable HDF5 file ({exc})") from None


def _check_keys(f: h5py.File, path: str | Path, binning: Binning | None = None) -> None:
    """The CaloChallenge structure, before any data is read: two numeric datasets, showers (N, voxels) and
    incident_energies (N,) or (N, 1) with the same N; with a binning, its number of voxels."""
    for key in ("incident_energies", "showers"):
        if key not in f:
            raise HepFastSimError(f"{path}: missing dataset {key!r} (CaloChallenge format needs incident_energies and showers)")
        if not isinstance(f[key], h5py.Dataset):
            raise HepFastSimError(f"{path}: {key!r} is a {type(f[key]).__name__}, not a dataset")
        if f[key].dtype.kind not in "fiu":
            raise HepFastSimError(f"{path}: {key!r} holds {f[key].dtype} values, not numbers")
    s, e = f["showers"].shape, f["incident_energies"].shape
    if len(s) != 2:
        raise HepFastSimError(f"{path}: showers must be 2-D (N, voxels), got shape {s}")
    if len(e) not in (1, 2) or (len(e) == 2 and e[1] != 1):
        raise HepFastSimError(f"{path}: incident_energies must have shape (N,) or (N, 1), got {e}")
    if e[0] != s[0]:
        raise HepFastSimError(f"{path}: {e[0]} incident energies but {s[0]} showers (N must match)")
    if binning is not None and s[1] != binning.n_voxels:
        raise HepFastSimError(f"{path}: showers have {s[1]} voxels but binning {binning.name!r} has {binning.n_voxels}")


def _validate_block(energies: np.ndarray, showers: np.ndarray, path: str | Path, events: str) -> None:
    """validate_arrays on a block read from a file; the error names the file and the block's events."""
    try:
        validate_arrays(energies, showers, source=str(path))
    except HepFastSimError as exc:
        raise HepFastSimError(f"{exc} [events {events}]") from None


SHARD_GLOB = "shard_*.h5"


def shard_files(path: str | Path) -> list[Path]:
    """The files behind a dataset path: the file itself, or the shard_*.h5 files of a folder in name order
    (how distributed simulation writes a dataset), which are read as one dataset."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob(SHARD_GLOB))
        if not files:
            raise HepFastSimError(f"{path} is a folder without {SHARD_GLOB} files")
        return files
    return [path]


def file_summary(path: str | Path) -> dict:
    """Events, voxels, incident energies and their range, extras and attributes of a shower file (or a folder
    of shards, summed), read without loading the showers."""
    files = shard_files(path)
    if len(files) > 1:
        parts = [file_summary(f) for f in files]
        if len({p["voxels"] for p in parts}) > 1:
            raise HepFastSimError(f"{path}: shards with different voxel counts {sorted({p['voxels'] for p in parts})}")
        e = np.concatenate([p["energies_MeV"] for p in parts])
        return {**parts[0], "events": int(len(e)), "energies_MeV": e, "shards": len(files),
                "energy_min_MeV": float(e.min()) if len(e) else float("nan"),
                "energy_max_MeV": float(e.max()) if len(e) else float("nan")}
    path = files[0]
    with _open(path) as f:
        _check_keys(f, path)
        e = f["incident_energies"][:].reshape(-1)
        n, v = f["showers"].shape
        return {
            "events": int(n),
            "voxels": int(v),
            "energies_MeV": e,
            "energy_min_MeV": float(e.min()) if len(e) else float("nan"),
            "energy_max_MeV": float(e.max()) if len(e) else float("nan"),
            "extras": [k for k in EXTRA_KEYS if k in f],
            "attrs": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
        }


def iter_showers(
    path: str | Path, chunk: int = 10_000, binning: Binning | None = None
) -> Iterator[ShowerDataset]:
    """Stream a shower file (or a folder of shards, in order) chunk by chunk, for data larger than memory;
    each chunk is validated."""
    files = shard_files(path)
    if len(files) > 1:
        for f in files:
            yield from iter_showers(f, chunk, binning)
        return
    path = files[0]
    with _open(path) as f:
        _check_keys(f, path, binning)
        n_s = len(f["showers"])
        extras = [k for k in EXTRA_KEYS if k in f]
        for start in range(0, n_s, chunk):
            stop = min(start + chunk, n_s)
            e = f["incident_energies"][start:stop].reshape(-1)
            s = f["showers"][start:stop]
            _validate_block(e, s, path, f"{start}-{stop}")
            yield ShowerDataset(e, s, {k: f[k][start:stop] for k in extras})


def read_showers(
    path: str | Path, binning: Binning | None = None, max_events: int | None = None, dtype=np.float32
) -> ShowerDataset:
    """Read a whole CaloChallenge file (or its first max_events) into memory, validated."""
    parts = []
    got = 0
    for part in iter_showers(path, binning=binning):
        if max_events is not None and got + len(part) > max_events:
            part = part.subset(slice(0, max_events - got))
        parts.append(part)
        got += len(part)
        if max_events is not None and got >= max_events:
            break
    if not parts:
        with _open(shard_files(path)[0]) as f:
            _check_keys(f, path)
            v = f["showers"].shape[1]
        return ShowerDataset(np.zeros(0), np.zeros((0, v), dtype=dtype))
    extras = {k: np.concatenate([p.extras[k] for p in parts]) for k in parts[0].extras}
    return ShowerDataset(
        np.concatenate([p.energies for p in parts]),
        np.concatenate([p.showers for p in parts]).astype(dtype, copy=False),
        extras,
    )


def read_energies(path: str | Path) -> np.ndarray:
    """The incident energies (N,) in MeV of a file or shard folder, without its showers; validated."""
    parts = []
    for p in shard_files(path):
        with _open(p) as f:
            _check_keys(f, p)
            e = np.asarray(f["incident_energies"][:], np.float64).reshape(-1)
        validate_arrays(e, np.zeros((len(e), 0)), source=str(p))
        parts.append(e)
    return np.concatenate(parts)


def write_showers(
    path: str | Path,
    data: ShowerDataset,
    *,
    overwrite: bool = False,
    attrs: dict | None = None,
    dtype=np.float32,
) -> Path:
    """Write a dataset in CaloChallenge format atomically (temp file + rename)."""
    path = Path(path)
    validate_arrays(data.energies, data.showers, source=str(path))
    with atomic_output(path, overwrite) as tmp:
        with ShowerWriter(tmp, n_voxels=data.n_voxels, attrs=attrs, extras=tuple(data.extras), dtype=dtype) as w:
            w.append(data)
    return path


class ShowerWriter:
    """Appends chunks to a CaloChallenge file (resizable datasets); used for streaming output.

    With append=True an existing file is extended (resume); otherwise the file must not exist.
    Every ``append`` flushes, so an interrupted run keeps everything appended so far.
    """

    def __init__(
        self,
        path: str | Path,
        n_voxels: int,
        *,
        append: bool = False,
        attrs: dict | None = None,
        extras: tuple[str, ...] = (),
        dtype=np.float32,
    ) -> None:
        self.path = Path(path)
        self.extras = tuple(extras)
        if append and self.path.exists() and self.path.stat().st_size > 0:
            self.f = h5py.File(self.path, "a")
            _check_keys(self.f, self.path)
            if self.f["showers"].shape[1] != n_voxels:
                raise HepFastSimError(
                    f"{self.path}: existing file has {self.f['showers'].shape[1]} voxels, cannot append {n_voxels}"
                )
            return
        self.f = h5py.File(self.path, "w")
        chunk_rows = max(1, min(1024, 2_000_000 // max(n_voxels, 1)))
        self.f.create_dataset(
            "incident_energies", shape=(0, 1), maxshape=(None, 1), dtype=np.float64, chunks=(chunk_rows, 1), compression="gzip"
        )
        self.f.create_dataset(
            "showers", shape=(0, n_voxels), maxshape=(None, n_voxels), dtype=dtype, chunks=(chunk_rows, n_voxels), compression="gzip"
        )
        for key in self.extras:
            kind = np.int32 if key in ("particle", "engine", "member") else np.float64
            self.f.create_dataset(key, shape=(0,), maxshape=(None,), dtype=kind, chunks=(chunk_rows,), compression="gzip")
        for k, v in (attrs or {}).items():
            self.f.attrs[k] = v

    def __len__(self) -> int:
        return len(self.f["showers"])

    def append(self, data: ShowerDataset) -> None:
        """Write one chunk; if that fails (disk full, Ctrl-C), every dataset is cut back to the chunks before, so
        the file stays consistent and ``--resume`` continues it."""
        n0, n = len(self), len(data)
        keys = ["incident_energies", "showers", *[k for k in self.extras if k in self.f]]
        try:
            self.f["incident_energies"].resize((n0 + n, 1))
            self.f["incident_energies"][n0:] = data.energies.reshape(-1, 1)
            self.f["showers"].resize((n0 + n, self.f["showers"].shape[1]))
            self.f["showers"][n0:] = data.showers
            for key in keys[2:]:
                self.f[key].resize((n0 + n,))
                self.f[key][n0:] = data.extras[key]
            self.f.flush()
        except BaseException:
            try:
                for key in keys:
                    self.f[key].resize((n0, *self.f[key].shape[1:]))
                self.f.flush()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            raise

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> "ShowerWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StreamedShowers:
    """The showers (MeV, float32) of chosen events of a file or shard folder, read from disk when indexed.

    Training takes its responses from one of these instead of an array in memory: the preprocessing reads it
    ``CHUNK`` events at a time (``x[i:j]``), the calibration and the layer-wise family's energy fit read random
    subsets (``x[idx]``), so the raw showers are never all in memory (dataset 3: 162 kB per shower). Every block
    read is validated like ``read_showers`` (NaN, negative energies: a one-line error naming the file and event).
    ``events``: event numbers counted over the shards in order (default: all); ``len`` is their number.
    """

    BLOCK = 1024  # events per HDF5 read (dataset 3: 166 MB)

    def __init__(self, path: str | Path, events: np.ndarray | None = None, binning: Binning | None = None) -> None:
        self.files = shard_files(path)
        sizes = []
        for p in self.files:
            with _open(p) as f:
                _check_keys(f, p, binning)
                sizes.append(len(f["showers"]))
                n_voxels = f["showers"].shape[1]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.starts[-1])
        self.events = np.arange(total) if events is None else np.asarray(events, np.int64)
        if len(self.events) and (self.events.min() < 0 or self.events.max() >= total):
            raise HepFastSimError(f"{path}: event numbers outside 0..{total - 1}")
        self.shape = (len(self.events), n_voxels)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.events)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """All chosen showers in memory (what families that store their training set, e.g. the library, need)."""
        return self[:] if dtype is None else self[:].astype(dtype, copy=False)

    def __getitem__(self, index) -> np.ndarray:
        """Rows of the chosen events: a slice or integer array (any order, repeats allowed), float32 (n, V)."""
        rows = self.events[index] if isinstance(index, slice) else self.events[np.asarray(index, np.int64)]
        wanted, back = np.unique(rows, return_inverse=True)
        out = np.empty((len(wanted), self.shape[1]), np.float32)
        done = 0
        for k, path in enumerate(self.files):
            lo, hi = np.searchsorted(wanted, self.starts[k:k + 2])
            if lo == hi:
                continue
            local = wanted[lo:hi] - self.starts[k]
            with _open(path) as f:
                window = local // self.BLOCK   # one read per BLOCK-event window of the file that holds wanted events
                for w in np.unique(window):
                    part = local[window == w]
                    first, last = int(part[0]), int(part[-1])
                    block = f["showers"][first:last + 1][part - first].astype(np.float32, copy=False)
                    energies = f["incident_energies"][first:last + 1].reshape(-1)[part - first]
                    _validate_block(energies, block, path, f"{first}-{last}")
                    out[done:done + len(part)] = block
                    done += len(part)
        if len(back) == len(wanted) and np.array_equal(back, np.arange(len(back))):
            return out   # already in file order (a slice): no copy
        return out[back]
