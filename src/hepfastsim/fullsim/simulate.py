"""Detailed-simulation engines: conditions in, CaloChallenge showers out.

``Engine`` is what every engine shares: the detector, the readout binning, the energy
convention (stored voxel energy = active deposit / the detector's sampling fraction, cut at
the binning's threshold in stored units) and ``simulate_to_file``, which appends chunk by
chunk to an HDF5 file so that an interrupted run keeps what it simulated and
``resume=True`` continues it. ``FullSim`` is the built-in Monte Carlo (numba threads over
all cores); ``hepfastsim.fullsim.geant4.Geant4Sim`` runs Geant4.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hepfastsim.data.calo_io import PARTICLES, ShowerDataset, ShowerWriter, energy_range, particle_pdg
from hepfastsim.errors import HepFastSimError
from hepfastsim.fullsim.physics import Cuts, build_tables
from hepfastsim.fullsim.transport import ELECTRON, PHOTON, POSITRON, simulate_batch
from hepfastsim.geometry.binning import Binning, get_binning
from hepfastsim.geometry.detector import Detector, calochallenge_ds2

PTYPE_OF_PDG = {11: ELECTRON, -11: POSITRON, 22: PHOTON}


@dataclass
class SimResult:
    """Showers in stored units (MeV of active deposit / sampling fraction, after the cell threshold) and
    per-shower diagnostics in MeV of deposit."""

    energies: np.ndarray      # (N,) incident kinetic energy, MeV
    showers: np.ndarray       # (N, V) readout voxels, stored units (MeV)
    si_layer: np.ndarray      # (N, S) energy per sensitive layer, MeV (no threshold, any radius)
    radial: np.ndarray        # (N, 200) sensitive energy in 0.5 mm radial bins around the axis
    totals: np.ndarray        # (N, 5) deposited, escaped, below cut, sensitive, not transported (MeV); Geant4: NaN, NaN,
                              # NaN, sensitive, 0
    particle: np.ndarray      # (N,) PDG id
    theta: np.ndarray
    phi: np.ndarray
    first_interaction_mm: np.ndarray | None = None  # Geant4: depth of the primary's inelastic interaction, NaN: none

    def dataset(self) -> ShowerDataset:
        return ShowerDataset(
            self.energies, self.showers.astype(np.float32),
            {"particle": self.particle.astype(np.int32), "theta": self.theta, "phi": self.phi},
        )


def sample_energies(spec: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Incident energies (MeV) from a spec: '1000' fixed, '1000,10000' list (cycled),
    'uniform:1000:100000' or 'log:1000:100000' (log-uniform range)."""
    try:
        if (limits := energy_range(spec)) is not None:
            kind, lo, hi = limits
            if kind == "uniform":
                return rng.uniform(lo, hi, n)
            return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        values = np.array([float(v) for v in spec.split(",")])
    except ValueError:
        raise HepFastSimError(f"bad energy spec {spec!r}: use 'E', 'E1,E2,...', 'uniform:LO:HI' or 'log:LO:HI' in MeV") from None
    if np.any(values <= 0) or not np.all(np.isfinite(values)):
        raise HepFastSimError(f"incident energies must be positive and finite (MeV), got {spec!r}")
    return np.resize(values, n)


MAX_ENERGY_MEV = 1e6  # the physics tables end at 1 TeV
# the built-in engine's physics revision, written into every file it makes: raise it whenever a change to fullsim/
# changes the showers, so that a file of an older revision is neither resumed nor reused as a cache
BUILTIN_PHYSICS_REVISION = "2026-12-07"
RUN_KEYS = ("binning", "geometry_id", "detector", "particle", "energy_spec", "seed", "theta", "phi", "chunk", "first_chunk",
            "engine", "physics", "sampling_fraction", "threshold_MeV")
VERSION_KEYS = ("physics_revision", "geant4_version")  # a file without them was made by an older version


def stored_attrs(path: Path) -> dict:
    """A shower file's attributes as plain Python values."""
    import h5py

    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                for k, v in f.attrs.items()}


def run_differences(stored: dict, attrs: dict) -> list[str]:
    """The run parameters and engine versions in which a file's attributes differ from a run's."""
    diff = [f"{k} {stored[k]!r} in the file, {attrs[k]!r} now" for k in RUN_KEYS
            if k in stored and k in attrs and str(stored[k]) != str(attrs[k])]
    return diff + [f"{k} {stored.get(k, 'none')!r} in the file, {attrs[k]!r} now" for k in VERSION_KEYS
                   if k in attrs and str(stored.get(k)) != str(attrs[k])]


def _check_same_run(path: Path, attrs: dict) -> None:
    """--resume continues the run stored in the file: any parameter or engine version that differs is a one-line
    error (showers of two physics revisions in one file could not be told apart)."""
    diff = run_differences(stored_attrs(path), attrs)
    if diff:
        raise HepFastSimError(f"{path}: --resume with other run parameters ({'; '.join(diff)}); use the file's or "
                              "write a new file")


def check_conditions(energies: np.ndarray, particle: str | int, theta: float | np.ndarray, phi: float | np.ndarray,
                     allowed: dict[int, object], engine: str) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Validated (energies MeV, PDG id, theta, phi per event) of a run, or a one-line error."""
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(energies)) or np.any(energies <= 0):
        raise HepFastSimError("incident energies must be positive and finite (MeV)")
    if np.any(energies > MAX_ENERGY_MEV):
        raise HepFastSimError(f"incident energies above {MAX_ENERGY_MEV:.0f} MeV (1 TeV) are outside the physics tables")
    pdg = particle_pdg(particle)
    if pdg not in allowed:
        names = {v: k for k, v in reversed(PARTICLES.items())}
        known = ", ".join(names.get(p, str(p)) for p in allowed)
        raise HepFastSimError(f"the {engine} engine transports {known}, not {names.get(pdg, f'PDG {pdg}')}"
                              + ("; hadrons need --engine geant4" if abs(pdg) > 100 else ""))
    n = len(energies)
    theta = np.broadcast_to(np.asarray(theta, dtype=np.float64), (n,)).copy()
    phi = np.broadcast_to(np.asarray(phi, dtype=np.float64), (n,)).copy()
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(phi))):
        raise HepFastSimError("incident angles must be finite")
    if np.any(np.abs(theta) >= np.pi / 2 - 1e-3):
        raise HepFastSimError("incident angle theta must be below 90 degrees (particles enter the front face)")
    return energies, pdg, theta, phi


class Engine(ABC):
    """What every detailed-simulation engine shares: detector, binning, energy convention, file output.

    A subclass sets ``name`` and ``particles`` (the PDG ids it transports) and implements ``_simulate``."""

    name = "engine"
    particles: dict[int, object] = {}
    first_interaction_mm: np.ndarray | None = None  # of the last run, where an engine records it (Geant4)

    def __init__(self, detector: Detector | None = None, binning: Binning | str | Path = "demo"):
        self.detector = detector or calochallenge_ds2()
        self.binning = get_binning(binning)
        self.ro_map = self.detector.readout_map(self.binning.n_layers)
        # stored units: each voxel's deposit / the sampling fraction of its readout layer
        self.readout_sampling_fraction = self.detector.readout_sampling_fractions(self.binning.n_layers)
        self.voxel_sampling_fraction = np.repeat(self.readout_sampling_fraction, self.binning.voxels_per_layer)

    def attrs(self) -> dict:
        """File attributes that say how the showers were made (engine, convention, threshold)."""
        d = self.detector
        sf = self.readout_sampling_fraction
        sf = d.sampling_fraction if np.all(sf == d.sampling_fraction) else sf  # one constant, or one per readout layer
        out = {"engine": self.name, "energy_convention": "active deposit / sampling_fraction",
               "sampling_fraction": sf, "threshold_MeV": self.binning.threshold}
        if d.birks_mm_per_mev:
            out["birks_mm_per_MeV"] = d.birks_mm_per_mev
        if d.time_cut_ns is not None:
            out["time_cut_ns"] = d.time_cut_ns
        return out

    @abstractmethod
    def _simulate(self, energies: np.ndarray, pdg: int, theta: np.ndarray, phi: np.ndarray,
                  entry_xy: tuple[float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(raw voxel deposits (N, V), deposit per sensitive layer (N, S), radial profile (N, 200), totals (N, 5)),
        all MeV of deposit."""

    def run(
        self,
        energies: np.ndarray,
        particle: str | int = "e-",
        *,
        theta: float | np.ndarray = 0.0,
        phi: float | np.ndarray = 0.0,
        entry_xy: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
        threshold: float | None = None,
    ) -> SimResult:
        """Simulate one primary per energy (MeV); theta/phi (rad) give the incident direction. Voxels are stored
        as deposit / sampling fraction and cut at threshold (stored units; default: the binning's)."""
        energies, pdg, theta, phi = check_conditions(energies, particle, theta, phi, self.particles, self.name)
        vox, si, rad, tot = self._simulate(energies, pdg, theta, phi, entry_xy, seed)
        vox = vox / self.voxel_sampling_fraction
        vox[vox < (self.binning.threshold if threshold is None else threshold)] = 0.0
        return SimResult(energies, vox, si, rad, tot, np.full(len(energies), pdg), theta, phi,
                         self.first_interaction_mm)

    def simulate_to_file(
        self,
        path: str | Path,
        n_events: int,
        energy_spec: str,
        particle: str = "e-",
        *,
        theta: float = 0.0,
        phi: float = 0.0,
        seed: int = 0,
        chunk: int = 1000,
        resume: bool = False,
        overwrite: bool = False,
        progress: bool = True,
        chunks: range | None = None,
    ) -> dict:
        """Simulate n_events into a CaloChallenge HDF5 file chunk by chunk; returns timing statistics.

        Chunk i uses seed (seed, i) for energies and showers, so a resumed run produces
        exactly the file an uninterrupted one would have. chunks: only these chunks of the
        n_events (a shard of a distributed run; the shards in order make the single-process file).
        """
        path = Path(path)
        # every argument is checked before any file is touched: a bad call neither deletes nor creates one
        if chunk < 1 or n_events < 1 or seed < 0:
            raise HepFastSimError(f"need n_events >= 1, chunk >= 1 and seed >= 0 (got {n_events}, {chunk}, {seed})")
        check_conditions(sample_energies(energy_spec, 1, np.random.default_rng(0)), particle, theta, phi,
                         self.particles, self.name)
        if path.exists() and not (resume or overwrite):
            raise HepFastSimError(f"{path} exists; pass --resume to continue it or --overwrite to replace it")
        attrs = {"generator": "hepfastsim.fullsim", "binning": self.binning.name, "geometry_id": self.binning.geometry_id,
                 "detector": self.detector.name, "particle": particle, "energy_spec": energy_spec, "seed": seed,
                 "theta": float(theta), "phi": float(phi), "chunk": chunk,
                 "first_chunk": chunks.start if chunks is not None else 0, **self.attrs()}  # a shard's seeds start there
        if resume and path.exists() and path.stat().st_size > 0:
            _check_same_run(path, attrs)
        target = path
        if path.exists() and overwrite and not resume:  # the old file stays until the new one is complete
            path = path.with_name(f".{path.name}.overwrite.tmp")
            path.unlink(missing_ok=True)
        writer = ShowerWriter(path, self.binning.n_voxels, append=resume, attrs=attrs, extras=("particle", "theta", "phi"))
        done = len(writer)
        all_chunks = range((n_events + chunk - 1) // chunk)
        chunks = all_chunks if chunks is None else chunks
        mine = [ci for ci in chunks if ci in all_chunks]
        total = sum(min(chunk, n_events - ci * chunk) for ci in mine)
        if done != total and (done % chunk or done > total):  # a complete file may end in a partial chunk
            raise HepFastSimError(f"{path} holds {done} events, not a whole number of chunks of {chunk} below "
                                  f"{total}; resume with the same --chunk and --n")
        todo = mine[-(-done // chunk):]   # the chunks not yet written (none once the partial last one is)
        t_sim = 0.0
        e_sum = 0.0
        try:
            bar = tqdm(total=total, initial=min(done, total), unit="shower", disable=not progress)
            for ci in todo:
                m = min(chunk, n_events - ci * chunk)
                rng = np.random.default_rng([seed, ci])
                energies = sample_energies(energy_spec, m, rng)
                t0 = time.perf_counter()
                res = self.run(energies, particle, theta=theta, phi=phi, seed=seed * 7919 + ci)
                t_sim += time.perf_counter() - t0
                e_sum += energies.sum()
                writer.append(res.dataset())
                bar.update(m)
            bar.close()
        finally:
            writer.close()
        if target != path:
            os.replace(path, target)
        return {"events": total, "seconds": t_sim, "simulated_GeV": e_sum / 1000.0}


class FullSim(Engine):
    """The built-in detailed simulation of a planar calorimeter with a CaloChallenge readout."""

    name = "builtin"
    particles = PTYPE_OF_PDG

    def __init__(self, detector: Detector | None = None, binning: Binning | str | Path = "demo", cuts: Cuts | None = None):
        super().__init__(detector, binning)
        if self.detector.birks_mm_per_mev or self.detector.time_cut_ns is not None:
            raise HepFastSimError(f"detector {self.detector.name!r}: Birks quenching and the hit time cut are applied by "
                                  "the Geant4 engine only (--engine geant4)")
        self.cuts = cuts or Cuts()
        names = {m.name for m in self.detector.materials}
        for name, values in self.cuts.per_material.items():
            if name not in names:
                raise HepFastSimError(f"production cuts for {name!r}, a material detector {self.detector.name!r} does "
                                      f"not have (it has {', '.join(sorted(names))})")
            if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
                raise HepFastSimError(f"production cuts for {name!r} must be two positive energies (delta rays, "
                                      f"photons) in MeV, got {values!r}")
        self.tables = build_tables(self.detector.materials, self.cuts)
        self._geo = self.detector.layer_arrays()
        self._ro = self.binning.flat_tables()

    def attrs(self) -> dict:
        c = self.cuts
        options = (([] if c.msc_model == "urban" else ["screened-Rutherford multiple scattering"])
                   + ([] if c.lpm else ["no LPM"]))
        source = f"range cut {c.range_cut_mm} mm (Geant4 conversion)" if c.range_cut_mm is not None else "fixed"
        per_material = "; ".join(f"{m.name}: delta {d:.4g}, photon {k:.4g}"
                                 for m, (d, k) in zip(self.detector.materials, self.tables.prod_cuts))
        return super().attrs() | {"physics": "hepfastsim built-in EM Monte Carlo" + "".join(f" ({o})" for o in options),
                                  "physics_revision": BUILTIN_PHYSICS_REVISION,
                                  "cuts_MeV": f"e-track {c.electron_tracking}, photon-track {c.photon_tracking}; "
                                              f"production cuts, {source}: {per_material}"}

    def _simulate(self, energies, pdg, theta, phi, entry_xy, seed):
        n = len(energies)
        ux, uy, uz = np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)
        t = self.tables
        c = self.cuts
        # tracking floors and step limits; the production cuts travel per material in t.prod_cuts
        cuts = np.array([c.electron_tracking, c.photon_tracking, c.msc_max_scatter, c.msc_min_step_mm, c.msc_hard_fraction,
                         1.0 if c.msc_model == "urban" else 0.0])
        zf, zb, lmat, lsens = self._geo
        r_edges, n_r, n_a, offs, r_max = self._ro
        seeds = (np.uint64(seed) * np.uint64(1_000_003) + np.arange(n, dtype=np.uint64)) % np.uint64(2**32 - 1)
        out = simulate_batch(
            np.full(n, PTYPE_OF_PDG[pdg], dtype=np.int64), energies,
            np.full(n, entry_xy[0]), np.full(n, entry_xy[1]), ux, uy, uz, seeds.astype(np.int64),
            zf, zb, lmat, lsens, self.ro_map,
            t.grid, t.range_, t.dedx, t.mu_brems, t.mu_delta, t.mu_compton, t.mu_photo, t.mu_pair, t.mu_tr, t.screen,
            t.x0, t.n_el, t.samp_z, t.samp_fc, t.z_eff, t.mean_exc, t.prod_cuts, t.lpm_energy, t.density_factor, cuts,
            r_edges, n_r, n_a, offs, r_max, self.detector.n_sensitive,
        )
        lost = out[3][:, 4]
        if np.any(lost > 0):
            raise HepFastSimError(f"transport failure (full particle stack or a stuck track) in {int((lost > 0).sum())} "
                                  f"showers ({lost.max():.3g} MeV not transported): report this with the run's parameters")
        return out


ENGINES = ("builtin", "geant4")


def make_engine(engine: str = "builtin", detector: Detector | None = None, binning: Binning | str | Path = "demo",
                physics: str = "auto") -> Engine:
    """The named engine ('builtin' or 'geant4') on a detector and readout binning."""
    if engine == "builtin":
        if physics not in ("auto", "builtin"):
            raise HepFastSimError(f"--physics {physics} is a Geant4 option; the built-in engine has its own physics")
        return FullSim(detector, binning)
    if engine == "geant4":
        from hepfastsim.fullsim.geant4 import Geant4Sim

        return Geant4Sim(detector, binning, physics=physics)
    raise HepFastSimError(f"unknown engine {engine!r}: {' or '.join(ENGINES)}")
