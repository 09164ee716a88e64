"""Particle-identification samples: tables of tracks with named condition and response columns.

Formats (by file suffix): HDF5 (.h5/.hdf5: one 1-d dataset per column), CSV (.csv, a header line), Parquet
(.parquet, needs pyarrow) and ROOT ntuples (.root, one TTree, through uproot: real calibration samples are ROOT
files). Default columns: conditions P (MeV), eta, nTracks, charge; responses DLLe, DLLmu, DLLK, DLLp; an
optional ``species`` column (0-4 = e, mu, pi, K, p) says which particle each track is, an optional ``hasRich``
column (0/1) whether the track crossed a radiator (calibration samples hold only such tracks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepfastsim.errors import HepFastSimError
from hepfastsim.fileio import atomic_output

PID_CONDITIONS = ("P", "eta", "nTracks", "charge")
PID_RESPONSES = ("DLLe", "DLLmu", "DLLK", "DLLp")
SPECIES_NAMES = ("e", "mu", "pi", "K", "p")
FORMATS = {".h5": "hdf5", ".hdf5": "hdf5", ".csv": "csv", ".parquet": "parquet", ".root": "root"}


@dataclass
class PIDDataset:
    """conditions (n, C) float64 and responses (n, R) float32 of n tracks; species (n,) int or None."""

    conditions: np.ndarray
    responses: np.ndarray
    condition_names: tuple[str, ...] = PID_CONDITIONS
    response_names: tuple[str, ...] = PID_RESPONSES
    species: np.ndarray | None = None
    has_rich: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.conditions)

    def subset(self, idx) -> "PIDDataset":
        return PIDDataset(self.conditions[idx], self.responses[idx], self.condition_names, self.response_names,
                          None if self.species is None else self.species[idx],
                          None if self.has_rich is None else self.has_rich[idx])

    def of_species(self, name: str) -> "PIDDataset":
        """The tracks of one species (e, mu, pi, K, p)."""
        if name not in SPECIES_NAMES:
            raise HepFastSimError(f"unknown particle {name!r}; known: {list(SPECIES_NAMES)}")
        if self.species is None:
            raise HepFastSimError("this PID sample has no 'species' column")
        return self.subset(self.species == SPECIES_NAMES.index(name))

    def with_rich(self) -> "PIDDataset":
        """The tracks with RICH information (all of them when the sample has no hasRich column)."""
        return self if self.has_rich is None else self.subset(self.has_rich.astype(bool))

    def columns(self) -> dict[str, np.ndarray]:
        cols = {n: self.conditions[:, j] for j, n in enumerate(self.condition_names)}
        cols.update({n: self.responses[:, j] for j, n in enumerate(self.response_names)})
        if self.species is not None:
            cols["species"] = self.species.astype(np.int32)
        if self.has_rich is not None:
            cols["hasRich"] = self.has_rich.astype(np.int32)
        return cols


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise HepFastSimError(f"{path}: unknown PID table format {path.suffix!r}; use {sorted(FORMATS)}")
    return fmt


def _read_columns(path: Path, tree: str | None) -> dict[str, np.ndarray]:
    """Every column of the table as a 1-d array."""
    fmt = _format(path)
    try:
        if fmt == "hdf5":
            import h5py

            with h5py.File(path, "r") as f:
                return {k: np.asarray(f[k]) for k in f if isinstance(f[k], h5py.Dataset) and f[k].ndim == 1}
        if fmt == "csv":
            data = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64, encoding="utf-8")
            return {k: np.atleast_1d(data[k]) for k in data.dtype.names}
        if fmt == "parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise HepFastSimError("reading Parquet needs pyarrow: pip install 'hepfastsim[parquet]'") from None
            table = pq.read_table(path)
            return {k: table.column(k).to_numpy() for k in table.column_names}
        import uproot

        with uproot.open(path) as f:
            trees = [k.split(";")[0] for k, c in f.classnames().items() if c.startswith(("TTree", "ROOT::RNTuple"))]
            name = tree or (trees[0] if len(trees) == 1 else None)
            if name is None:
                raise HepFastSimError(f"{path}: {len(trees)} trees {trees}; choose one with --tree")
            if name not in trees:
                raise HepFastSimError(f"{path}: no tree {name!r}; trees: {trees}")
            return {k: np.asarray(v) for k, v in f[name].arrays(library="np").items()}
    except HepFastSimError:
        raise
    except FileNotFoundError:
        raise HepFastSimError(f"PID file not found: {path}") from None
    except Exception as exc:   # the readers raise many types for damaged files
        raise HepFastSimError(f"{path} is not a readable {fmt} table ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def read_pid(path: str | Path, conditions: tuple[str, ...] = PID_CONDITIONS, responses: tuple[str, ...] = PID_RESPONSES,
             tree: str | None = None) -> PIDDataset:
    """The named condition and response columns of a PID table; a one-line error for a missing column, NaN/inf
    or an empty table. The ``species`` column is read when present."""
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"PID file not found: {path}")
    cols = _read_columns(path, tree)
    for name in (*conditions, *responses):
        if name not in cols:
            raise HepFastSimError(f"{path}: no column {name!r}; columns: {sorted(cols)}")
    n = len(cols[conditions[0]])
    if n == 0:
        raise HepFastSimError(f"{path}: the table has no rows")
    c = np.column_stack([np.asarray(cols[k], np.float64) for k in conditions])
    x = np.column_stack([np.asarray(cols[k], np.float64) for k in responses]) if responses else np.zeros((n, 0))
    for name, block, names in (("condition", c, conditions), ("response", x, responses)):
        bad = ~np.isfinite(block)
        if bad.any():
            j = int(np.flatnonzero(bad.any(0))[0])
            raise HepFastSimError(f"{path}: {name} column {names[j]!r} has {int(bad[:, j].sum())} NaN/inf values")
    species = None
    if "species" in cols:
        species = np.asarray(cols["species"]).astype(np.int64)
        if species.min() < 0 or species.max() >= len(SPECIES_NAMES):
            raise HepFastSimError(f"{path}: species column outside 0-{len(SPECIES_NAMES) - 1} ({SPECIES_NAMES})")
    has_rich = np.asarray(cols["hasRich"]).astype(bool) if "hasRich" in cols else None
    return PIDDataset(c, x.astype(np.float32), tuple(conditions), tuple(responses), species, has_rich)


def write_pid(path: str | Path, ds: PIDDataset, overwrite: bool = False, tree: str = "pid") -> Path:
    """Write the table (format by suffix) atomically; an existing file is kept unless overwrite."""
    path = Path(path)
    fmt = _format(path)
    cols = ds.columns()
    with atomic_output(path, overwrite=overwrite) as tmp:
        if fmt == "hdf5":
            import h5py

            with h5py.File(tmp, "w") as f:
                for k, v in cols.items():
                    f.create_dataset(k, data=v, compression="gzip", compression_opts=1)
                f.attrs["species_names"] = ",".join(SPECIES_NAMES)
        elif fmt == "csv":
            names = list(cols)
            np.savetxt(tmp, np.column_stack([cols[k] for k in names]), delimiter=",", header=",".join(names),
                       comments="", fmt="%.9g")
        elif fmt == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise HepFastSimError("writing Parquet needs pyarrow: pip install 'hepfastsim[parquet]'") from None
            pq.write_table(pa.table(cols), tmp)
        else:
            import uproot

            with uproot.recreate(tmp) as f:   # a TTree (what ROOT 6 and PIDCalib read), not uproot's RNTuple default
                f.mktree(tree, {k: v.dtype for k, v in cols.items()}).extend(cols)
    return path
