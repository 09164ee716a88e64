"""Built-in RICH detailed simulation: two gas radiators like LHCb's and a likelihood reconstruction of the
particle-identification variables DLLe, DLLmu, DLLK, DLLp (each ln L(h) - ln L(pi)) of single tracks.

Per track and radiator within the radiator's polar-angle acceptance:

* Cherenkov angle cos(theta) = 1 / (n beta) above threshold (p > m / sqrt(n^2 - 1)), no light below;
* a Poisson number of detected signal photons with mean N_sat sin^2(theta) / sin^2(theta_sat) (the yield is
  proportional to sin^2 theta; theta_sat is the beta = 1 angle);
* each photon's reconstructed angle: theta + a radiator-wide offset (``bias_mrad``, the residual of the
  refractive-index calibration) + Gaussian single-photon resolution ``sigma_mrad``, plus the error of the
  ring centre (the track direction: ``track_mrad`` and multiple scattering ``ms_mrad_gev`` / P[GeV] per axis),
  which moves each photon by the projection of the centre offset on its azimuth;
* with probability ``partial_ring`` part of the ring falls outside the photodetector planes (or on dead
  pixels): a fraction uniform in (0, 1) of its photons is detected, which the reconstruction does not know;
* background hits from the other tracks of the event in the reconstruction window [0, W]: Poisson with mean
  ``bkg_per_track`` x (nTracks - 1) + ``bkg_const``, uniform over the ring plane (density of angles 2 theta / W^2).

The reconstruction is the extended likelihood of the hits under each hypothesis h (e, mu, pi, K, p):
ln L_h = -(S_h + B) + sum_i ln(S_h G(theta_i; theta_h, s) + B 2 theta_i / W^2), S_h the expected signal of h,
B the expected background, s the single-photon and nominal track resolutions in quadrature (the reconstruction
does not know the multiple scattering of the track); summed over radiators.

Kinematics (``sample_tracks``): species in equal parts; P log-uniform in 2-150 GeV; eta uniform in 1.8-5.5;
nTracks ~ Gamma(shape 2.5, mean 150) rounded and clipped to 1-600 (an LHCb-like 2018 multiplicity); charge +-1
with equal probability. Units: MeV for momenta and masses, mrad for angles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from hepfastsim.data.pid_io import PID_CONDITIONS, SPECIES_NAMES
from hepfastsim.errors import HepFastSimError

SPECIES = SPECIES_NAMES   # the data layer's species order: index 0-4 in a PID table's species column
MASS_MEV = {"e": 0.51099895, "mu": 105.6583755, "pi": 139.57039, "K": 493.677, "p": 938.27208816}
CTAU_M = {"pi": 7.8045, "K": 3.7112}   # mean decay length c tau (m); both decay to mu nu (~100 % / 64 %)
MUON = 1   # species index of the muon; pi, K, p (2, 3, 4) are the hadrons


@dataclass(frozen=True)
class Radiator:
    """One gas radiator: refractive index n - 1, polar-angle acceptance of the track (mrad), detected photons of
    a beta = 1 track, resolutions and background (mrad), reconstruction window W (mrad)."""

    name: str
    n_minus_1: float
    accept_mrad: tuple[float, float]
    n_sat: float
    sigma_mrad: float
    track_mrad: float
    bias_mrad: float
    bkg_per_track: float
    bkg_const: float
    window_mrad: float
    partial_ring: float
    ms_mrad_gev: float


# LHCb-like (RICH1: C4F10, 25-300 mrad; RICH2: CF4, 15-120 mrad), single-photon resolutions as measured in Run 2
# (1.6 / 0.7 mrad); yields, ring-centre errors, calibration offsets, background and ring losses tuned to LHCb's 2018
# efficiencies (benchmarks/rich_tuning.py; RESULTS.md). Fields: name, n - 1, acceptance, N_sat, sigma, track,
# offset, background per other track, constant background, window, partial-ring probability, multiple scattering.
RICH1 = Radiator("RICH1", 1.4e-3, (25.0, 300.0), 41.0, 1.6, 0.0, 0.095, 0.067, 1.0, 70.0, 0.25, 2.4)
RICH2 = Radiator("RICH2", 5.0e-4, (15.0, 120.0), 17.0, 0.7, 0.46, -0.146, 0.012, 1.0, 45.0, 0.105, 0.0)


@dataclass(frozen=True)
class RichDetector:
    """The radiators and the track-level effects: decays in flight within ``decay_length_m`` of the vertex (pi, K ->
    mu nu: the RICH sees a muon of the track's momentum), and the probability ``hadron_loss`` that a hadron's
    photons are lost in both radiators (a hadronic interaction in the material in front of them)."""

    radiators: tuple[Radiator, ...] = field(default=(RICH1, RICH2))
    decay_length_m: float = 1.7
    hadron_loss: float = 0.032

    def table(self) -> np.ndarray:
        """The radiators' numbers as one (R, 12) float64 array for the numba kernel."""
        return np.array([[r.n_minus_1, r.accept_mrad[0], r.accept_mrad[1], r.n_sat, r.sigma_mrad, r.track_mrad,
                          r.bias_mrad, r.bkg_per_track, r.bkg_const, r.window_mrad, r.partial_ring, r.ms_mrad_gev]
                         for r in self.radiators])


def sample_tracks(n: int, seed: int, species: tuple[str, ...] = SPECIES) -> tuple[np.ndarray, np.ndarray]:
    """n tracks: species index (into SPECIES) and conditions (n, 4) = P (MeV), eta, nTracks, charge."""
    for s in species:
        if s not in SPECIES:
            raise HepFastSimError(f"unknown particle {s!r}; known: {list(SPECIES)}")
    rng = np.random.default_rng(seed)
    which = np.array([SPECIES.index(s) for s in species])[rng.integers(0, len(species), n)]
    p = np.exp(rng.uniform(np.log(2000.0), np.log(150_000.0), n))
    eta = rng.uniform(1.8, 5.5, n)
    ntracks = np.clip(np.round(rng.gamma(2.5, 150.0 / 2.5, n)), 1, 600)
    charge = rng.choice([-1.0, 1.0], n)
    return which.astype(np.int64), np.column_stack([p, eta, ntracks, charge])


def in_acceptance(eta: np.ndarray, detector: RichDetector = RichDetector()) -> np.ndarray:
    """(n, R) bool: the track's polar angle is inside radiator r's acceptance."""
    theta = 2000.0 * np.arctan(np.exp(-np.asarray(eta, np.float64)))
    return np.column_stack([(theta >= r.accept_mrad[0]) & (theta <= r.accept_mrad[1]) for r in detector.radiators])


def cherenkov(p_mev: float, particle: str, radiator: Radiator) -> tuple[float, float]:
    """Cherenkov angle (mrad) and expected detected signal photons of a particle of momentum p (MeV) in a
    radiator (before ring losses); (0, 0) below threshold."""
    return _expected(float(p_mev), MASS_MEV[particle], radiator.n_minus_1, radiator.n_sat)


def simulate_rich(species: np.ndarray, conditions: np.ndarray, seed: int,
                  detector: RichDetector = RichDetector()) -> np.ndarray:
    """DLLe, DLLmu, DLLK, DLLp (n, 4) float32 for tracks of the given species index and conditions (P MeV, eta,
    nTracks, charge). Tracks outside both acceptances give 0 for every DLL (no RICH information)."""
    species = np.asarray(species, np.int64)
    c = np.asarray(conditions, np.float64)
    if c.ndim != 2 or c.shape[1] != 4 or len(c) != len(species):
        raise HepFastSimError(f"RICH conditions must be (n, 4) = {PID_CONDITIONS} for n tracks, got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise HepFastSimError("RICH conditions contain NaN or inf")
    if np.any(c[:, 0] <= 0) or np.any(c[:, 2] < 1):
        raise HepFastSimError("RICH conditions need P > 0 MeV and nTracks >= 1")
    if np.any((species < 0) | (species >= len(SPECIES))):
        raise HepFastSimError(f"species index out of range 0-{len(SPECIES) - 1}")
    masses = np.array([MASS_MEV[s] for s in SPECIES])
    ctau_m = np.array([CTAU_M.get(s, 0.0) for s in SPECIES])
    return _simulate(species, c, masses, ctau_m, detector.table(), float(detector.decay_length_m),
                     float(detector.hadron_loss), int(seed)).astype(np.float32)


@numba.njit(cache=True)
def _expected(p: float, m: float, n_minus_1: float, n_sat: float) -> tuple[float, float]:
    """Cherenkov angle (mrad) and expected detected photons for momentum p and mass m (MeV); (0, 0) below threshold."""
    n = 1.0 + n_minus_1
    beta = p / math.sqrt(p * p + m * m)
    if n * beta <= 1.0:
        return 0.0, 0.0
    cos_t = 1.0 / (n * beta)
    sin2_sat = 1.0 - 1.0 / (n * n)
    return 1000.0 * math.acos(cos_t), n_sat * (1.0 - cos_t * cos_t) / sin2_sat


@numba.njit(cache=True)
def _simulate(species, c, masses, ctau, rad, decay_length, hadron_loss, seed):
    np.random.seed(seed)
    n, n_h = len(species), len(masses)
    out = np.zeros((n, 4))
    hits = np.empty(2000)
    lnl = np.zeros(n_h)
    for i in range(n):
        p, eta, ntr = c[i, 0], c[i, 1], c[i, 2]
        theta_track = 1000.0 * 2.0 * math.atan(math.exp(-eta))
        lnl[:] = 0.0
        seen = species[i]   # what radiates: the particle, or the muon of its decay in flight
        m = masses[seen]
        if ctau[seen] > 0 and np.random.random() < 1.0 - math.exp(-decay_length * m / (p * ctau[seen])):
            seen = MUON
        lost = species[i] >= 2 and np.random.random() < hadron_loss
        for r in range(rad.shape[0]):
            n1, lo, hi, n_sat, sig, trk, bias, b_trk, b0, w = rad[r, 0], rad[r, 1], rad[r, 2], rad[r, 3], rad[r, 4], rad[r, 5], rad[r, 6], rad[r, 7], rad[r, 8], rad[r, 9]
            if theta_track < lo or theta_track > hi:
                continue
            th, mu = _expected(p, masses[seen], n1, n_sat)
            if lost:
                mu = 0.0
            k = 0
            if np.random.random() < rad[r, 10]:   # part of the ring misses the photodetectors
                mu *= np.random.random()
            n_sig = np.random.poisson(mu) if mu > 0 else 0
            # ring centre off the track direction: per-axis sigma = track error (+) multiple scattering / p
            spread = math.sqrt(trk * trk + (rad[r, 11] * 1000.0 / p) ** 2)
            dx, dy = spread * np.random.standard_normal(), spread * np.random.standard_normal()
            for _ in range(n_sig):
                phi = 2.0 * math.pi * np.random.random()
                t = th + bias + dx * math.cos(phi) + dy * math.sin(phi) + sig * np.random.standard_normal()
                if 0.0 < t < w and k < hits.size:
                    hits[k] = t
                    k += 1
            bkg = b_trk * (ntr - 1.0) + b0
            for _ in range(np.random.poisson(bkg)):
                if k < hits.size:
                    hits[k] = w * math.sqrt(np.random.random())
                    k += 1
            s = math.sqrt(sig * sig + trk * trk)
            for h in range(n_h):
                th_h, mu_h = _expected(p, masses[h], n1, n_sat)
                acc = lnl[h] - (mu_h + bkg)
                for j in range(k):
                    d = (hits[j] - th_h) / s
                    g = math.exp(-0.5 * d * d) / (s * 2.5066282746310002) if mu_h > 0 else 0.0
                    acc += math.log(mu_h * g + bkg * 2.0 * hits[j] / (w * w) + 1e-300)
                lnl[h] = acc
        out[i, 0] = lnl[0] - lnl[2]
        out[i, 1] = lnl[1] - lnl[2]
        out[i, 2] = lnl[3] - lnl[2]
        out[i, 3] = lnl[4] - lnl[2]
    return out


def simulate_to_table(out, n: int, species: tuple[str, ...], seed: int, overwrite: bool = False,
                      detector: RichDetector = RichDetector()) -> dict:
    """Simulate n tracks (``sample_tracks`` kinematics, the given species in equal parts) and write them as a PID
    table (columns P, eta, nTracks, charge, DLLe, DLLmu, DLLK, DLLp, species, hasRich); returns the timing."""
    import time

    from hepfastsim.data.pid_io import PIDDataset, write_pid

    s, c = sample_tracks(n, seed, species)
    t0 = time.perf_counter()
    d = simulate_rich(s, c, seed + 1, detector)
    seconds = time.perf_counter() - t0
    write_pid(out, PIDDataset(c, d, species=s, has_rich=in_acceptance(c[:, 1], detector).any(1)), overwrite=overwrite)
    return {"tracks": n, "seconds": seconds}
