"""Driver of the built-in shower Monte Carlo: conditions in, CaloChallenge showers out.

``FullSim`` holds the detector, the readout binning and the physics tables; ``run``
simulates primaries in parallel over all cores (numba threads) and returns voxels plus
diagnostics; ``simulate_to_file`` appends chunk by chunk to an HDF5 file so that an
interrupted run keeps what it simulated and ``resume=True`` continues it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hepfastsim.data.calo_io import ShowerDataset, ShowerWriter, particle_pdg
from hepfastsim.errors import HepFastSimError
from hepfastsim.fullsim.physics import Cuts, build_tables
from hepfastsim.fullsim.transport import ELECTRON, PHOTON, POSITRON, simulate_batch
from hepfastsim.geometry.binning import CELL_THRESHOLD_MEV, Binning, get_binning
from hepfastsim.geometry.detector import Detector, calochallenge_ds2

PTYPE_OF_PDG = {11: ELECTRON, -11: POSITRON, 22: PHOTON}


@dataclass
class SimResult:
    """Showers in MeV (after the cell threshold) and per-shower diagnostics."""

    energies: np.ndarray      # (N,) incident kinetic energy, MeV
    showers: np.ndarray       # (N, V) readout voxels, MeV
    si_layer: np.ndarray      # (N, S) energy per sensitive layer, MeV (no threshold, any radius)
    radial: np.ndarray        # (N, 200) sensitive energy in 0.5 mm radial bins around the axis
    totals: np.ndarray        # (N, 4) deposited, escaped, below cut, sensitive (MeV)
    particle: np.ndarray      # (N,) PDG id
    theta: np.ndarray
    phi: np.ndarray

    def dataset(self) -> ShowerDataset:
        return ShowerDataset(
            self.energies, self.showers.astype(np.float32),
            {"particle": self.particle.astype(np.int32), "theta": self.theta, "phi": self.phi},
        )


def sample_energies(spec: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Incident energies (MeV) from a spec: '1000' fixed, '1000,10000' list (cycled),
    'uniform:1000:100000' or 'log:1000:100000' (log-uniform range)."""
    try:
        if spec.startswith(("uniform:", "log:")):
            kind, lo, hi = spec.split(":")
            lo, hi = float(lo), float(hi)
            if not 0 < lo < hi:
                raise ValueError
            if kind == "uniform":
                return rng.uniform(lo, hi, n)
            return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        values = np.array([float(v) for v in spec.split(",")])
    except ValueError:
        raise HepFastSimError(f"bad energy spec {spec!r}: use 'E', 'E1,E2,...', 'uniform:LO:HI' or 'log:LO:HI' in MeV") from None
    if np.any(values <= 0) or not np.all(np.isfinite(values)):
        raise HepFastSimError(f"incident energies must be positive and finite (MeV), got {spec!r}")
    return np.resize(values, n)


class FullSim:
    """The built-in detailed simulation of a planar calorimeter with a CaloChallenge readout."""

    def __init__(self, detector: Detector | None = None, binning: Binning | str | Path = "demo", cuts: Cuts | None = None):
        self.detector = detector or calochallenge_ds2()
        self.binning = get_binning(binning)
        self.ro_group = self.detector.readout_group(self.binning.n_layers)
        self.cuts = cuts or Cuts()
        self.tables = build_tables(self.detector.materials, self.cuts)
        self._geo = self.detector.layer_arrays()
        self._ro = self.binning.flat_tables()

    def run(
        self,
        energies: np.ndarray,
        particle: str | int = "e-",
        *,
        theta: float | np.ndarray = 0.0,
        phi: float | np.ndarray = 0.0,
        entry_xy: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
        threshold: float = CELL_THRESHOLD_MEV,
    ) -> SimResult:
        """Simulate one primary per energy (MeV); theta/phi (rad) give the incident direction."""
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(energies)) or np.any(energies <= 0):
            raise HepFastSimError("incident energies must be positive and finite (MeV)")
        pdg = particle_pdg(particle)
        if pdg not in PTYPE_OF_PDG:
            raise HepFastSimError(f"the built-in simulation transports e-, e+ and gamma, not PDG {pdg}")
        n = len(energies)
        theta = np.broadcast_to(np.asarray(theta, dtype=np.float64), (n,)).copy()
        phi = np.broadcast_to(np.asarray(phi, dtype=np.float64), (n,)).copy()
        if np.any(np.abs(theta) >= np.pi / 2 - 1e-3):
            raise HepFastSimError("incident angle theta must be below 90 degrees (particles enter the front face)")
        ux, uy, uz = np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)
        t = self.tables
        c = self.cuts
        cuts = np.array([c.electron_tracking, c.delta_production, c.photon_production, c.photon_tracking])
        zf, zb, lmat, lsens = self._geo
        r_edges, n_r, n_a, offs, r_max = self._ro
        seeds = (np.uint64(seed) * np.uint64(1_000_003) + np.arange(n, dtype=np.uint64)) % np.uint64(2**32 - 1)
        vox, si, rad, tot = simulate_batch(
            np.full(n, PTYPE_OF_PDG[pdg], dtype=np.int64), energies,
            np.full(n, entry_xy[0]), np.full(n, entry_xy[1]), ux, uy, uz, seeds.astype(np.int64),
            zf, zb, lmat, lsens, self.ro_group,
            t.grid, t.range_, t.mu_brems, t.mu_delta, t.mu_compton, t.mu_photo, t.mu_pair,
            t.x0, t.n_el, t.samp_z, t.samp_fc, cuts, r_edges, n_r, n_a, offs, r_max, self.detector.n_sensitive,
        )
        vox[vox < threshold] = 0.0
        return SimResult(energies, vox, si, rad, tot, np.full(n, pdg), theta, phi)

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
        if path.exists() and not (resume or overwrite):
            raise HepFastSimError(f"{path} exists; pass --resume to continue it or --overwrite to replace it")
        if path.exists() and overwrite and not resume:
            path.unlink()
        attrs = {"generator": "hepfastsim.fullsim", "binning": self.binning.name, "geometry_id": self.binning.geometry_id,
                 "detector": self.detector.name, "particle": particle, "energy_spec": energy_spec, "seed": seed}
        writer = ShowerWriter(path, self.binning.n_voxels, append=resume, attrs=attrs, extras=("particle", "theta", "phi"))
        done = len(writer)
        all_chunks = range((n_events + chunk - 1) // chunk)
        chunks = all_chunks if chunks is None else chunks
        if done % chunk:
            raise HepFastSimError(f"{path} holds {done} events, not a whole number of chunks of {chunk}; resume with the same --chunk")
        todo = [ci for ci in chunks if ci in all_chunks][done // chunk:]
        total = sum(min(chunk, n_events - ci * chunk) for ci in chunks if ci in all_chunks)
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
        return {"events": total, "seconds": t_sim, "simulated_GeV": e_sum / 1000.0}
