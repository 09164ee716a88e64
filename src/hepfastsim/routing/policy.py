"""Routing policy: which engine simulates each particle (AtlFast3-style fast/full mixing).

A YAML policy lists rules, first match wins, with a default engine::

    default: full
    rules:
      - {particle: [e-, gamma], energy_MeV: [5000, 20000], engine: fast, model: fm.pt}
      - {particle: e-, energy_MeV: [0, 5000], theta_deg: [0, 30], engine: full}

``particle`` (name or list), ``energy_MeV`` and ``theta_deg`` ([low, high), omitted = any) select
events; ``engine`` is ``full`` (the detailed simulation of the run: the built-in engine, or Geant4 with
``--engine geant4``, which also takes hadrons) or ``fast`` (a trained calorimeter model, ``model`` =
checkpoint path relative to the policy file). Routing by particle, e.g. e/gamma and pions to their own fast
models and anything else to Geant4::

    default: full
    rules:
      - {particle: [e-, e+, gamma], engine: fast, model: em.pt}
      - {particle: [pi+, pi-], engine: fast, model: pions.pt}

``run_policy`` simulates a sample with both engines, records the engine of every event (the ``engine`` dataset: 0 full, 1 fast) and
measures the time saved against simulating the fast-routed events in full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from hepfastsim.data.calo_io import ShowerDataset, particle_pdg
from hepfastsim.errors import HepFastSimError

ENGINES = ("full", "fast")


@dataclass
class Rule:
    engine: str
    model: Path | None = None
    particles: tuple[int, ...] | None = None
    energy_MeV: tuple[float, float] | None = None
    theta_deg: tuple[float, float] | None = None

    def matches(self, energies: np.ndarray, pdg: np.ndarray, theta: np.ndarray) -> np.ndarray:
        m = np.ones(len(energies), bool)
        if self.particles is not None:
            m &= np.isin(pdg, self.particles)
        if self.energy_MeV is not None:
            m &= (energies >= self.energy_MeV[0]) & (energies < self.energy_MeV[1])
        if self.theta_deg is not None:
            t = np.degrees(theta)
            m &= (t >= self.theta_deg[0]) & (t < self.theta_deg[1])
        return m


def _range(v, key: str, i: int) -> tuple[float, float] | None:
    if v is None:
        return None
    if not (isinstance(v, (list, tuple)) and len(v) == 2) or not float(v[0]) < float(v[1]):
        raise HepFastSimError(f"policy rule {i}: {key} must be [low, high] with low < high, got {v!r}")
    return float(v[0]), float(v[1])


@dataclass
class Policy:
    rules: list[Rule]
    default: str = "full"

    @classmethod
    def load(cls, path: str | Path) -> "Policy":
        """Read and check a policy YAML (engines, ranges, particles, model files)."""
        path = Path(path)
        if not path.exists():
            raise HepFastSimError(f"policy not found: {path}")
        d = yaml.safe_load(path.read_text()) or {}
        if not isinstance(d, dict) or not isinstance(d.get("rules", []), list):
            raise HepFastSimError(f"{path}: a policy is a mapping with 'rules' (a list) and 'default'")
        default = d.get("default", "full")
        if default != "full":
            raise HepFastSimError(f"{path}: default must be 'full' (a fast default needs a model per particle)")
        rules = []
        for i, r in enumerate(d.get("rules", [])):
            eng = r.get("engine")
            if eng not in ENGINES:
                raise HepFastSimError(f"{path}: rule {i} engine must be one of {ENGINES}, got {eng!r}")
            model = None
            if eng == "fast":
                if not r.get("model"):
                    raise HepFastSimError(f"{path}: rule {i} routes to 'fast' but names no model")
                model = (path.parent / r["model"]).resolve()
                if not model.exists():
                    raise HepFastSimError(f"{path}: rule {i} model not found: {model}")
            parts = r.get("particle")
            pdg = None if parts is None else tuple(particle_pdg(p) for p in (parts if isinstance(parts, list) else [parts]))
            rules.append(Rule(eng, model, pdg, _range(r.get("energy_MeV"), "energy_MeV", i), _range(r.get("theta_deg"), "theta_deg", i)))
        return cls(rules, default)

    def route(self, energies: np.ndarray, pdg: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Index of the first matching rule per event, -1 for the default (full simulation)."""
        which = np.full(len(energies), -1)
        for i, r in enumerate(self.rules):
            which[(which == -1) & r.matches(energies, pdg, theta)] = i
        return which


def event_particles(particle: str | int | np.ndarray, n: int, seed: int) -> np.ndarray:
    """PDG id per event: one particle, an array of ids, or 'e-,pi+,proton' (each event drawn uniformly from the
    list with the run's seed)."""
    if isinstance(particle, np.ndarray):
        return particle.astype(np.int64)
    names = str(particle).split(",") if isinstance(particle, str) else [particle]
    ids = np.array([particle_pdg(p.strip() if isinstance(p, str) else p) for p in names], np.int64)
    return ids[np.random.default_rng([seed, 7]).integers(0, len(ids), n)] if len(ids) > 1 else np.full(n, ids[0])


def run_policy(policy: Policy, fullsim, energies: np.ndarray, particle: str | int | np.ndarray, theta: float = 0.0,
               phi: float = 0.0, seed: int = 0, calibration_events: int = 50) -> tuple[ShowerDataset, dict]:
    """Simulate every event with the engine the policy picks; returns the mixed sample and timing stats.

    particle: one name, 'e-,pi+,proton' (drawn per event) or PDG ids per event; the full simulation (the engine
    passed, e.g. Geant4) runs each particle species of its events separately, each fast rule its model.
    Time saved = (full-simulation cost of the fast-routed events, measured on up to calibration_events
    of them per species and scaled by their total energy, since the cascade cost is linear in energy) - fast time.
    """
    from hepfastsim.models import load_generator

    e = np.asarray(energies, np.float64)
    pdg = event_particles(particle, len(e), seed)
    which = policy.route(e, pdg, np.full(len(e), theta))
    showers = np.zeros((len(e), fullsim.binning.n_voxels), np.float32)
    engine = np.zeros(len(e), np.int32)
    full_rules = [i for i, r in enumerate(policy.rules) if r.engine == "full"]
    full_idx = np.flatnonzero((which < 0) | np.isin(which, full_rules))
    t0 = time.perf_counter()
    for k, species in enumerate(np.unique(pdg[full_idx])):  # one run per species, seeds seed, seed + 1, ...
        idx = full_idx[pdg[full_idx] == species]
        showers[idx] = fullsim.run(e[idx], int(species), theta=theta, phi=phi, seed=seed + k).showers
    t_full = time.perf_counter() - t0
    t_fast = 0.0
    fast_idx_all = []
    for i, r in enumerate(policy.rules):
        idx = np.flatnonzero(which == i)
        if r.engine != "fast" or not len(idx):
            continue
        model = load_generator(r.model)
        model.check_geometry(fullsim.binning.geometry_id, fullsim.binning.name)
        model.check_particle(np.unique(pdg[idx]).tolist())  # a pion model never simulates an electron
        t1 = time.perf_counter()
        showers[idx] = model.sample(e[idx].reshape(-1, 1), seed=seed + 1 + i)
        t_fast += time.perf_counter() - t1
        engine[idx] = 1
        fast_idx_all.append(idx)
    fast_idx = np.concatenate(fast_idx_all) if fast_idx_all else np.array([], int)
    est_full_for_fast = 0.0
    rng = np.random.default_rng(seed)
    for species in np.unique(pdg[fast_idx]):
        idx = fast_idx[pdg[fast_idx] == species]
        cal = rng.choice(idx, min(calibration_events, len(idx)), replace=False)
        t1 = time.perf_counter()
        fullsim.run(e[cal], int(species), theta=theta, phi=phi, seed=seed + 999)
        est_full_for_fast += (time.perf_counter() - t1) * e[idx].sum() / e[cal].sum()
    species_count = {int(k): int(v) for k, v in zip(*np.unique(pdg, return_counts=True))}
    stats = {"events": len(e), "full_events": int(len(full_idx)), "fast_events": int(len(fast_idx)),
             "full_seconds": t_full, "fast_seconds": t_fast, "full_seconds_estimate_for_fast_events": est_full_for_fast,
             "seconds_saved": est_full_for_fast - t_fast, "events_per_particle": species_count,
             "time_fraction_of_pure_full": (t_full + t_fast) / max(t_full + est_full_for_fast, 1e-12)}
    ds = ShowerDataset(e, showers, {"particle": pdg.astype(np.int32), "theta": np.full(len(e), theta),
                                     "phi": np.full(len(e), phi), "engine": engine})
    return ds, stats
