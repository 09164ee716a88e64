"""Compiled particle-by-particle transport of e-, e+ and photons through a planar layer stack.

Class-II condensed history as in EGS4/Geant4 "standard" physics:
charged particles lose energy continuously (restricted stopping power, dE/dx x step on steps
shorter than 1 % of the range as in Geant4; the sub-cut loss fluctuates as in Geant4's Urban
model, which gives thin layers their Landau shape), scatter by multiple scattering (below) and
make discrete bremsstrahlung (Geant4's relativistic model with LPM and dielectric suppression) or delta
rays above the production cuts; photons make pair production, Compton scattering or
photo-absorption (binding energy deposited locally, Sauter-Gavrila photoelectron angle).
Positrons annihilate at rest into two back-to-back 511 keV photons.
Steps never cross a layer boundary, so every deposit belongs to one layer. An e+- whose
residual range cannot take it out of its layer deposits its energy there (range
rejection); the tracking cut is only a floor.

Multiple scattering, by default Geant4's Urban model (below); ``Cuts(msc_model="screened_rutherford")``, the
engine's model before revision 2026-12-07: a mixed scheme on screened Rutherford scattering (``physics.py``):
elastic collisions above an angle mu_c (mu = (1 - cos theta)/2) are hard and drawn one by
one from the screened Rutherford distribution (mean free path ``msc_hard_fraction`` x
lambda_1, so a few per step); the soft ones below mu_c are lumped into one deflection with
<cos theta> = exp(-D_soft), 1 - cos theta exponential truncated to [0, 2] (a 2-d Gaussian at
small D, isotropic at large D). The mean deflection over a path s is exp(-s / lambda_1)
whatever the steps; the angular distribution has the narrow core and the single-scattering
tail of the real one. The true path s is longer than the
geometric advance g = lambda (1 - exp(-s / lambda)) (path-length correction); the lateral
displacement is perpendicular to the direction and correlated with the deflection as in
the PDG formulae (correlation sqrt(3)/2).

Multiple scattering, ``Cuts(msc_model="urban")`` (the default): Geant4's Urban model (G4UrbanMscModel, as Geant4 11
applies it with its default UseSafety step limitation): Geant4's transport cross section per element for e- and
e+ (``data/urban_msc_per_atom.json``); the step limited at the first step of a track in a layer to
0.04 x max(range, lambda_1) (or 0.6 x the distance to the nearest face, if larger), randomised by 10 %; Urban's
true-to-geometric path conversion; Urban's angular distribution (a central part whose width follows a
Highland-like formula corrected with e- scattering data, a power-law tail, and the isotropic share that makes
<cos theta> = exp(-tau)); Urban's lateral displacement (0.73 of its maximum, azimuth correlated with the
deflection), cut to the distance to the nearest face. At a W|Si interface this reproduces Geant4 where the
screened-Rutherford scheme does not (RESULTS.md). Simplifications: e+ take the e- width and smallest step (Geant4
corrects both for e+), and the lower step bound ignores Geant4's reduction below 5 keV.

Energy bookkeeping per shower (``totals``): [deposited continuously, escaped,
deposited below the tracking cuts, deposited in sensitive layers, energy of particles
lost to a full particle stack]; the first three sum to the incident kinetic energy
(+2 m_e for an incident positron); the last (a full stack, or a track stuck for MAX_STEPS steps)
must be zero: the driver refuses the run.
Each shower seeds numba's per-thread generator with seed + index, so results do not
depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hepfastsim.fullsim.physics import (ME, bhabha_coefficients, brems_dxsec, brems_dxsec_max, brems_lpm_energy,
                                        pair_shape, screening_phi)

ELECTRON, POSITRON, PHOTON = 0, 1, 2
STACK_SIZE = 4096
MAX_TRIALS = 1000  # bound of every rejection loop
MAX_STEPS = 1_000_000  # bound of the steps of one charged track (a real one takes at most a few thousand)
TWOPI_RE2_MM = 2.0 * np.pi * 7.9407877e-24  # 2 pi r_e^2 in mm2
N_RADIAL_DIAG = 200  # diagnostic radial histogram: 0.5 mm bins up to 100 mm
RADIAL_DIAG_BIN = 0.5
LIN_LOSS_LIMIT = 0.01  # Geant4's linLossLimit: shorter steps lose dE/dx x step


@njit(cache=True, inline="always")
def _lookup(table: np.ndarray, log_e0: float, inv_dlog: float, t: float) -> float:
    """Linear interpolation of a table on the log energy grid."""
    u = (np.log(t) - log_e0) * inv_dlog
    if u <= 0.0:
        return table[0]
    i = int(u)
    n = table.shape[0]
    if i >= n - 1:
        return table[n - 1]
    f = u - i
    return table[i] * (1.0 - f) + table[i + 1] * f


@njit(cache=True)
def _energy_from_range(range_tab: np.ndarray, grid: np.ndarray, r: float) -> float:
    """Inverse of the range table as ``_lookup`` reads it (range linear in log E between grid points), so that
    _energy_from_range(_lookup(range, t)) = t; binary search, then geometric interpolation of the energy."""
    if r <= range_tab[0]:
        return grid[0] * r / range_tab[0]
    lo, hi = 0, range_tab.shape[0] - 1
    if r >= range_tab[hi]:
        return grid[hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if range_tab[mid] > r:
            hi = mid
        else:
            lo = mid
    f = (r - range_tab[lo]) / (range_tab[hi] - range_tab[lo])
    return grid[lo] * (grid[hi] / grid[lo]) ** f


@njit(cache=True)
def mean_continuous_loss(range_tab: np.ndarray, dedx_tab: np.ndarray, grid: np.ndarray, log_e0: float, inv_dlog: float,
                         t: float, rng: float, step: float) -> float:
    """Mean restricted energy loss (MeV) of an e+- of kinetic energy t (MeV) and range rng (mm, the caller's lookup)
    over a true path of `step` mm.

    As Geant4's G4VEnergyLossProcess::AlongStepDoIt: dE/dx(t) x step for a step shorter than LIN_LOSS_LIMIT of the
    range, else the energy difference through the range table. (A range difference alone cannot resolve the
    0.1 MeV that a GeV electron loses in 0.3 mm of Si: the table's interpolation error at 10 GeV is ~2 MeV.)"""
    if step >= rng:
        return t
    if step < LIN_LOSS_LIMIT * rng:
        return min(step * _lookup(dedx_tab, log_e0, inv_dlog, t), t)
    return min(max(t - _energy_from_range(range_tab, grid, rng - step), 0.0), t)


@njit(cache=True, inline="always")
def _rotate(ux: float, uy: float, uz: float, cost: float, phi: float) -> tuple:
    """Direction at polar angle acos(cost), azimuth phi, relative to (ux, uy, uz)."""
    sint = np.sqrt(max(0.0, 1.0 - cost * cost))
    cp, sp = np.cos(phi), np.sin(phi)
    if abs(uz) > 0.99999999:
        s = 1.0 if uz > 0 else -1.0
        return sint * cp, sint * sp * s, cost * s
    d = np.sqrt(1.0 - uz * uz)
    nx = ux * cost + sint * (ux * uz * cp - uy * sp) / d
    ny = uy * cost + sint * (uy * uz * cp + ux * sp) / d
    nz = uz * cost - sint * cp * d
    n = np.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / n, ny / n, nz / n


@njit(cache=True)
def _distance_to_boundary(z: float, uz: float, lay: int, z_front: np.ndarray, z_back: np.ndarray) -> float:
    """Path length (mm) along the direction to the front or back face of the current layer."""
    if uz > 0:
        return (z_back[lay] - z) / uz
    if uz < 0:
        return (z_front[lay] - z) / uz
    return 1e30


@njit(cache=True)
def _cross(forward: bool, lay: int, z_front: np.ndarray, z_back: np.ndarray) -> tuple:
    """(z on the crossed face, index of the next layer) for a particle leaving layer lay."""
    if forward:
        return z_back[lay], lay + 1
    return z_front[lay], lay - 1


@njit(cache=True)
def _push(s_type, s_e, s_pos, s_dir, s_lay, top, ptype, e, x, y, z, ux, uy, uz, lay) -> tuple:
    """Put a particle on the stack. Returns (new height, energy lost): when the stack is full the
    particle is not stored and its energy (+2 m_e for a positron) is returned to be booked below cut."""
    if top >= STACK_SIZE:
        return top, e + (2.0 * ME if ptype == POSITRON else 0.0)
    s_type[top] = ptype
    s_e[top] = e
    s_pos[top, 0], s_pos[top, 1], s_pos[top, 2] = x, y, z
    s_dir[top, 0], s_dir[top, 1], s_dir[top, 2] = ux, uy, uz
    s_lay[top] = lay
    return top + 1, 0.0


@njit(cache=True, inline="always")
def _tsai_cost(e_total: float) -> float:
    """Polar angle cosine of a brems photon / pair lepton (G4ModifiedTsai: u = -ln(r1 r2) times 1.6 with
    probability 0.25, else 1.6 / 3; u < 2 E / m; theta ~ u m / E)."""
    umax = 2.0 * e_total / ME
    u = 0.0
    for _trial in range(MAX_TRIALS):
        u = -np.log(np.random.random() * np.random.random())
        u = u * 1.6 if np.random.random() < 0.25 else u * (1.6 / 3.0)  # G4ModifiedTsai: a1 = 1.6, a2 = a1 / 3
        if u <= umax:
            break
    return 1.0 - 2.0 * u * u / (umax * umax)


@njit(cache=True)
def sample_brems_k(z: float, fc: float, t: float, k_cut: float, lpm_energy: float, density_factor: float) -> float:
    """Energy (MeV) of a bremsstrahlung photon above k_cut from an e+- of kinetic energy t, as Geant4's
    G4eBremsstrahlungRelModel samples it: uniform in ln(k^2 + k_p^2) (1/k with the dielectric suppression),
    accepted by the (LPM-suppressed) spectrum ``physics.brems_dxsec``."""
    e_tot = t + ME
    kp2 = density_factor * e_tot * e_tot
    lpm = brems_lpm_energy(e_tot, lpm_energy, density_factor)
    u0 = np.log(k_cut * k_cut + kp2)
    du = np.log(t * t + kp2) - u0
    fmax = brems_dxsec_max(z, fc)
    k = k_cut
    for _trial in range(MAX_TRIALS):
        k = np.sqrt(max(np.exp(u0 + du * np.random.random()) - kp2, k_cut * k_cut))
        if brems_dxsec(z, fc, e_tot, k, lpm, kp2) >= fmax * np.random.random():
            break
    return k


@njit(cache=True)
def brems_spectrum_sample(z: float, fc: float, t: float, k_cut: float, lpm_energy: float, density_factor: float,
                          n: int, seed: int) -> np.ndarray:
    """n photon energies (MeV) from ``sample_brems_k`` (for tests)."""
    np.random.seed(seed)
    out = np.empty(n)
    for i in range(n):
        out[i] = sample_brems_k(z, fc, t, k_cut, lpm_energy, density_factor)
    return out


@njit(cache=True, inline="always")
def _binding_energy(z: float, k: float) -> float:
    """Binding energy (MeV) of the shell a photon of energy k is absorbed in: Moseley's K (13.6 eV (Z-1)^2)
    when k is above it, else his L estimate (13.6 eV (Z-7.4)^2 / 4), never more than k."""
    e_k = 13.6e-6 * (z - 1.0) ** 2
    if k > e_k:
        return e_k
    return min(13.6e-6 * max(z - 7.4, 1.0) ** 2 / 4.0, k)


@njit(cache=True, inline="always")
def _sauter_gavrila_cost(t: float) -> float:
    """cos theta of a K-shell photoelectron of kinetic energy t (MeV) relative to the photon (Sauter-Gavrila,
    sampled as in EGS4 / Geant4's G4SauterGavrilaAngularDistribution; forward above 50 m_e)."""
    tau = t / ME
    if tau > 50.0:
        return 1.0
    invgamma = 1.0 / (tau + 1.0)
    beta = np.sqrt(tau * (tau + 2.0)) * invgamma
    b = 0.5 * tau * (tau * tau - 1.0)
    invgamma2 = invgamma * invgamma
    grejsup = (1.0 + b - beta * b) / invgamma2 if tau < 1.0 else (1.0 + b + beta * b) / invgamma2
    cost = 1.0
    for _trial in range(MAX_TRIALS):
        rndm = 1.0 - 2.0 * np.random.random()
        cost = (rndm + beta) / (rndm * beta + 1.0)
        term = invgamma2 / (1.0 + beta * rndm)
        sint2 = (1.0 - cost) * (1.0 + cost)
        if sint2 * (1.0 + b * term) / (term * term) >= np.random.random() * grejsup:
            break
    return cost


@njit(cache=True)
def tsai_angles(e_total: float, n: int, seed: int) -> np.ndarray:
    """n polar angles (rad) of brems photons / pair leptons of total energy e_total (MeV), for checks."""
    np.random.seed(seed)
    out = np.empty(n)
    for i in range(n):
        out[i] = np.arccos(_tsai_cost(e_total))
    return out


@njit(cache=True, inline="always")
def _exp_scale_for_mean(m: float) -> float:
    """Scale a of an exponential truncated to [0, 2] whose mean is m (0 < m < 1): m = a - 2 / (exp(2 / a) - 1)."""
    if m < 0.1:
        return m
    a = m / (1.0 - m)
    for _ in range(30):
        if a > 50.0:
            break
        q = np.exp(min(2.0 / a, 700.0))
        f = a - 2.0 / (q - 1.0) - m
        df = 1.0 - 4.0 / (a * a) / (q - 2.0 + 1.0 / q)
        step = f / df
        a -= step
        if a <= 1e-6:
            a = 1e-6
        if abs(step) < 1e-7 * a:
            break
    return a


@njit(cache=True, inline="always")
def sample_msc_cost(d: float) -> float:
    """cos theta of one step with scattering variance D: <cos theta> = exp(-D)."""
    m = -np.expm1(-d)
    if m < 1e-12:  # no measurable deflection (and a = m = 0 would divide by zero below)
        return 1.0
    if m > 0.999:
        return 2.0 * np.random.random() - 1.0
    a = _exp_scale_for_mean(m)
    u = -a * np.log(1.0 - np.random.random() * (1.0 - np.exp(-2.0 / a)))
    return 1.0 - min(u, 2.0)


@njit(cache=True, inline="always")
def _perp_frame(ux: float, uy: float, uz: float) -> tuple:
    """Unit vectors e1, e2 perpendicular to u, the frame in which _rotate measures the azimuth."""
    if abs(uz) > 0.99999999:
        s = 1.0 if uz > 0 else -1.0
        return 1.0, 0.0, 0.0, 0.0, s, 0.0
    d = np.sqrt(1.0 - uz * uz)
    return ux * uz / d, uy * uz / d, -d, -uy / d, ux / d, 0.0


@njit(cache=True)
def msc_deflect(ux: float, uy: float, uz: float, step: float, lam: float, screen: float, hard: float) -> tuple:
    """New direction after a true path `step` (mm) with transport mean free path lam (mm) and screening
    parameter `screen` (A), hard collisions with mean free path hard * lam."""
    a = screen
    lg = np.log((1.0 + a) / a)
    g1 = 2.0 * a * ((1.0 + a) * lg - 1.0)  # lambda_elastic / lambda_1
    r = g1 / hard
    if r >= 1.0:  # so few collisions that all are hard
        mu_c, rate, f_hard = 0.0, 1.0 / (lam * g1), 1.0
    else:
        mu_c = a * (1.0 - r) / (a + r)
        rate = 1.0 / (hard * lam)
        f_hard = (np.log((1.0 + a) / (mu_c + a)) + a / (1.0 + a) - a / (mu_c + a)) / (lg - 1.0 / (1.0 + a))
    d_soft = step / lam * (1.0 - f_hard)
    if d_soft > 0.0:
        ux, uy, uz = _rotate(ux, uy, uz, sample_msc_cost(d_soft), 2.0 * np.pi * np.random.random())
    f_c = (1.0 + a) * mu_c / (mu_c + a)
    for _k in range(np.random.poisson(step * rate)):
        u = f_c + np.random.random() * (1.0 - f_c)
        mu = a * u / (1.0 + a - u)
        ux, uy, uz = _rotate(ux, uy, uz, 1.0 - 2.0 * mu, 2.0 * np.pi * np.random.random())
    return ux, uy, uz


@njit(cache=True)
def msc_through(lam: float, screen: float, hard: float, thickness: float, n_steps: int, seed: int,
                n: int) -> np.ndarray:
    """Final directions (n, 3) of e+- of fixed energy (transport mean free path lam mm, screening A) after
    `thickness` mm cut into n_steps equal steps of multiple scattering only (a check of step independence)."""
    return _directions_through(False, lam, screen, hard, 0.0, 0.0, 0.0, 0.0, thickness, n_steps, seed, n)


@njit(cache=True)
def _directions_through(urban, lam, screen, hard, kinetic, x0, z_eff, tmin, thickness, n_steps, seed, n):
    """Directions after n_steps equal steps of the screened-Rutherford (urban False) or Urban deflection only."""
    np.random.seed(seed)
    out = np.empty((n, 3))
    ds = thickness / n_steps
    for i in range(n):
        ux, uy, uz = 0.0, 0.0, 1.0
        for _k in range(n_steps):
            if urban:
                cost = min(max(urban_cos_theta(ds, lam, kinetic, kinetic, x0, z_eff, tmin), -1.0), 1.0)
                ux, uy, uz = _rotate(ux, uy, uz, cost, 2.0 * np.pi * np.random.random())
            else:
                ux, uy, uz = msc_deflect(ux, uy, uz, ds, lam, screen, hard)
        out[i, 0], out[i, 1], out[i, 2] = ux, uy, uz
    return out


@njit(cache=True)
def urban_through(lam: float, kinetic: float, x0: float, z_eff: float, tmin: float, thickness: float, n_steps: int,
                  seed: int, n: int) -> np.ndarray:
    """Final directions (n, 3) of e+- of fixed kinetic energy (MeV; transport mean free path lam mm) after
    `thickness` mm cut into n_steps equal steps of Urban's angular distribution only (a check of step
    independence)."""
    return _directions_through(True, lam, 0.0, 0.0, kinetic, x0, z_eff, tmin, thickness, n_steps, seed, n)


URBAN_RANGE_FACTOR = 0.04  # Geant4's msc RangeFactor: the first step in a volume <= 0.04 x max(range, lambda_1)
URBAN_SAFETY_FACTOR = 0.6  # ... or 0.6 x the distance to the nearest face, if that is larger
URBAN_DTRL = 0.05          # steps shorter than this share of the range convert true -> geometric at fixed lambda_1
URBAN_TAU_BIG = 8.0        # above this many lambda_1 the direction is isotropic


@njit(cache=True)
def urban_step_limit(t: float, rng: float, lam: float, z_eff: float) -> tuple:
    """(step limit, smallest step) in mm that Geant4's UseSafety algorithm fixes at the first step of an e+-
    (kinetic energy t MeV, range and lambda_1 in mm) in a volume; the limit holds until the next volume."""
    fr = URBAN_RANGE_FACTOR * (0.75 + 0.25 * lam) if lam > 1.0 else URBAN_RANGE_FACTOR
    stepmin = lam * 1e-3 / (2e-3 + t * (27.725 / (1.0 + 0.203 * z_eff) + 6.152 / (1.0 + 0.111 * z_eff) * t))
    return fr * max(rng, lam), max(0.87 * z_eff ** (2.0 / 3.0) * stepmin, 1e-8)


@njit(cache=True)
def urban_msc_step(limit: float, tmin: float, safety: float, other: float) -> float:
    """The multiple-scattering step (mm): the fixed limit or URBAN_SAFETY_FACTOR x the distance to the nearest face,
    randomised (Gaussian, 10 % of its distance to tmin) when it is shorter than the other limits."""
    tl = max(max(limit, URBAN_SAFETY_FACTOR * safety), tmin)
    if tl >= other:
        return tl
    return max(tl + 0.1 * (tl - tmin) * np.random.normal(), tmin)


@njit(cache=True)
def urban_geom_length(step: float, rng: float, lam0: float, lam1: float) -> tuple:
    """(mean geometric advance, par1, par3) of a true path `step` (mm) with range rng, lambda_1 lam0 at the start
    and lam1 at the end of the step (mm): lam0 (1 - exp(-step / lam0)) for short steps, else lambda_1 varying
    linearly along the step (par1 < 0 marks the short-step form)."""
    tau = step / lam0
    if step < URBAN_DTRL * rng or abs(lam0 - lam1) < 1e-9 * lam0:
        g = lam0 * -np.expm1(-tau) if tau > 1e-6 else step * (1.0 - 0.5 * tau)
        return min(g, lam0), -1.0, 0.0
    if step >= rng:
        par1, par3 = 1.0 / rng, 1.0 + rng / lam0
        return min(1.0 / (par1 * par3), lam0), par1, par3
    par1 = (lam0 - lam1) / (lam0 * step)
    par3 = 1.0 + 1.0 / (par1 * lam0)
    return min((1.0 - (lam1 / lam0) ** par3) / (par1 * par3), lam0), par1, par3


@njit(cache=True)
def urban_true_length(d: float, step: float, rng: float, lam0: float, par1: float, par3: float) -> float:
    """True path (mm) whose mean geometric advance is d (the inverse of urban_geom_length), within [d, step]."""
    if par1 < 0.0:
        t = -lam0 * np.log1p(-d / lam0) if d < lam0 else step
    else:
        p4 = par1 * par3
        t = (1.0 - (1.0 - p4 * d) ** (1.0 / par3)) / par1 if p4 * d < 1.0 else rng
    return min(max(t, d), step)


@njit(cache=True)
def _urban_large_angle(xm: float, x2m: float) -> float:
    """cos theta from Urban's two-function model with the given <cos theta> and <cos^2 theta> (large deflections)."""
    a = (2.0 * xm + 9.0 * x2m - 3.0) / (2.0 * xm - 3.0 * x2m + 1.0)
    prob = (a + 2.0) * xm / a
    u = np.random.random()
    return -1.0 + 2.0 * u ** (1.0 / (a + 1.0)) if np.random.random() < prob else -1.0 + 2.0 * u


@njit(cache=True)
def urban_theta0(step: float, e0: float, e1: float, x0: float, z_eff: float) -> float:
    """Width (rad) of the central part of Urban's angular distribution after a true path `step` (mm) from
    kinetic energy e0 to e1 (MeV) in a material of radiation length x0 (mm): Highland's formula with
    Urban's correction from e- scattering data."""
    w = z_eff ** (1.0 / 6.0)
    facz = 0.990395 + w * (-0.168386 + w * 0.093286)
    y = step / x0
    inv_beta_cp = np.sqrt((e1 + ME) / (e1 * (e1 + 2 * ME)) * (e0 + ME) / (e0 * (e0 + 2 * ME)))
    return 13.6 * np.sqrt(y) * inv_beta_cp * facz * ((1.0 - 8.7780e-2 / z_eff) + (4.0780e-2 + 1.7315e-4 * z_eff) * np.log(y))


@njit(cache=True)
def urban_cos_theta(step: float, lam: float, e0: float, e1: float, x0: float, z_eff: float, tmin: float) -> float:
    """cos theta of an e+- after a true path `step` (mm), lam the mean lambda_1 over the step (mm), kinetic energy
    e0 -> e1 (MeV), in a material of radiation length x0 (mm) and mean Z z_eff; tmin: Urban's smallest step
    (below it the width scales as sqrt(step)). Urban's distribution: with probability qprob a central
    exponential part (width theta0) or a power-law tail, else isotropic, so that <cos theta> = exp(-step/lam)."""
    tau = step / lam
    if tau >= URBAN_TAU_BIG:
        return 2.0 * np.random.random() - 1.0
    if tau < 1e-16:
        return 1.0
    if tau < 0.01:
        xm, x2m = 1.0 - tau * (1.0 - 0.5 * tau), 1.0 - tau * (5.0 - 6.25 * tau) / 3.0
    else:
        xm, x2m = np.exp(-tau), (1.0 + 2.0 * np.exp(-2.5 * tau)) / 3.0
    if e1 < 0.5 * e0:   # a step that loses more than half its energy
        return _urban_large_angle(xm, x2m)
    tsmall = min(tmin, 1.0)
    if step > tsmall:
        theta0 = urban_theta0(step, e0, e1, x0, z_eff)
        u = tau ** (1.0 / 6.0)
    else:
        theta0 = np.sqrt(step / tsmall) * urban_theta0(tsmall, e0, e1, x0, z_eff)
        u = (tsmall / lam) ** (1.0 / 6.0)
    th2 = theta0 * theta0
    if th2 < 1e-16:
        return 1.0
    if theta0 > np.pi / 6.0:
        return _urban_large_angle(xm, x2m)
    x = 4.0 * np.sin(0.5 * theta0) ** 2 if th2 > 0.01 else th2 * (1.0 - th2 / 12.0)
    # tail exponent from Urban's fit in Z^(1/3), tau^(1/6) and lambda_1 / X0
    z13 = z_eff ** (1.0 / 3.0)
    xsi = (2.3785 - z13 * (4.1981e-1 - z13 * 6.3100e-2)
           + u * ((4.7526e-1 + z13 * (1.7694 - z13 * 3.3885e-1)) + (2.3683e-1 - z13 * (1.8111 - z13 * 3.2774e-1)) * u)
           + (1.7888e-2 + z13 * (1.9659e-2 - z13 * 2.6664e-3)) * np.log(lam / x0))
    xsi = max(xsi, 1.9)
    c = xsi
    if abs(c - 3.0) < 0.001:
        c = 3.001
    elif abs(c - 2.0) < 0.001:
        c = 2.001
    ea = np.exp(-xsi)
    eaa = 1.0 - ea
    xmean1 = 1.0 - (1.0 - (1.0 + xsi) * ea) * x / eaa
    if xmean1 <= 0.999 * xm:
        return _urban_large_angle(xm, x2m)
    b1 = 2.0 + (c - xsi) * x
    bx = c * x
    d = (bx / b1) ** (c - 1.0)
    xmean2 = (1.0 - xsi * x + d - (bx - b1 * d) / (c - 2.0)) / (1.0 - d)
    f1 = ea / eaa
    f2 = (c - 1.0) / (c * (1.0 - d))
    prob = f2 / (f1 + f2)
    qprob = xm / (prob * xmean1 + (1.0 - prob) * xmean2)
    if np.random.random() >= qprob:
        return 2.0 * np.random.random() - 1.0
    if np.random.random() < prob:
        return 1.0 + np.log(ea + np.random.random() * eaa) * x
    var = (1.0 - d) * np.random.random()
    if var < 0.01 * d:
        var /= d * (c - 1.0)
        return -1.0 + var * (1.0 - 0.5 * var * c) * (2.0 + (c - xsi) * x)
    return 1.0 + x * (c - xsi - c * (var + d) ** (-1.0 / (c - 1.0)))


@njit(cache=True)
def urban_displacement(step: float, g: float, phi: float) -> tuple:
    """(r, azimuth) of the lateral displacement (mm, rad) after a true path `step` with geometric advance g, the
    deflection's azimuth phi: r = 0.73 of its largest value, the azimuth phi +- psi, psi ~ exp(-2.16 psi)."""
    rmax = np.sqrt(max((step - g) * (step + g), 0.0))
    if rmax <= 0.0:
        return 0.0, phi
    psi = -np.log(1.0 - np.random.random() * (1.0 - np.exp(-2.16 * np.pi))) / 2.16
    return 0.73 * rmax, (phi + psi if np.random.random() < 0.5 else phi - psi)


URBAN_E0 = 1e-5       # MeV: lowest ionisation level (10 eV, Geant4's Energy0fluct of every material)
URBAN_RATE = 0.56     # share of the mean loss carried by ionisation (the rest by excitation)
URBAN_FW = 4.0        # excitation level = FW x mean excitation energy ...
URBAN_A0 = 42.0       # ... reached from 0.1 x when the mean number of excitations grows to A0
URBAN_NMAX = 8.0      # above this mean number, a group of collisions is summed as a Gaussian


@njit(cache=True)
def _positive_gauss(mean: float, var: float) -> float:
    """A sum of many collisions: Gaussian truncated to [0, 2 mean] (uniform there when it is wider than 4 x mean)."""
    sig = np.sqrt(var)
    if mean < 0.25 * sig:
        return 2.0 * mean * np.random.random()
    for _ in range(MAX_TRIALS):
        x = mean + sig * np.random.normal()
        if 0.0 <= x <= 2.0 * mean:
            return x
    return mean


@njit(cache=True)
def sample_subcut_loss(mean: float, i_exc: float, tcut: float) -> float:
    """Fluctuating energy loss (MeV) of a step whose mean restricted loss is `mean` (MeV), for a material of mean
    excitation energy i_exc and the delta-ray cut tcut (MeV): the Urban model as Geant4 11 samples it
    (G4UniversalFluctuation; L. Urban, Geant4 Physics Reference Manual). Excitations: a Poisson number of losses at one
    level near the mean excitation energy; ionisations: a 1/E^2 spectrum from 10 eV to tcut, its many soft collisions
    summed as a Gaussian, the hard ones (the Landau tail) drawn one by one. Its mean is `mean`."""
    if mean < URBAN_E0 or tcut <= URBAN_E0:
        return mean
    scaling = min(1.0 + 0.5e-3 / tcut, 1.5)  # Geant4's width correction for small cuts
    m = mean / scaling
    loss = 0.0
    a1, e1 = 0.0, i_exc
    if tcut > e1:
        a1 = m * (1.0 - URBAN_RATE) / e1
        fw = 0.1 + (URBAN_FW - 0.1) * np.sqrt(a1 / URBAN_A0) if a1 < URBAN_A0 else URBAN_FW
        a1 /= fw
        e1 *= fw
    w1 = tcut / URBAN_E0
    a3 = URBAN_RATE * m * (tcut - URBAN_E0) / (URBAN_E0 * tcut * np.log(w1))
    if a1 <= 0.0:
        a3 /= URBAN_RATE
    if a1 > URBAN_NMAX:
        loss += _positive_gauss(a1 * e1, a1 * e1 * e1)
    elif a1 > 0.0:
        p = np.random.poisson(a1)
        if p > 0:
            loss += ((p + 1) - 2.0 * np.random.random()) * e1
    if a3 > 0.0:
        p3, alfa, soft_mean, soft_var = a3, 1.0, 0.0, 0.0
        if a3 > URBAN_NMAX:  # the soft collisions [e0, alfa e0] as one Gaussian
            alfa = w1 * (URBAN_NMAX + a3) / (w1 * URBAN_NMAX + a3)
            alfa1 = alfa * np.log(alfa) / (alfa - 1.0)
            n_soft = a3 * w1 * (alfa - 1.0) / ((w1 - 1.0) * alfa)
            soft_mean = n_soft * URBAN_E0 * alfa1
            soft_var = URBAN_E0 * URBAN_E0 * n_soft * (alfa - alfa1 * alfa1)
            p3 = a3 - n_soft
        w3 = alfa * URBAN_E0
        if tcut > w3:  # the hard ones one by one, inverse CDF of 1/E^2 on [w3, tcut]
            w = (tcut - w3) / tcut
            for _ in range(np.random.poisson(p3)):
                loss += w3 / (1.0 - w * np.random.random())
        if soft_var > 0.0:
            loss += _positive_gauss(soft_mean, soft_var)
    return loss * scaling


@njit(cache=True)
def _deposit(e, x, y, z, si, ro_map, n_ro, x0_entry, y0_entry, tx, ty,
             r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial) -> float:
    """Score a deposit of e MeV at (x, y, z) in sensitive layer si >= 0 into the readout voxels and
    diagnostics; returns e for the sensitive-energy total. Callers skip absorber layers (si = -1)
    themselves: a call per absorber step costs about 5 % of the simulation time."""
    si_layer[si] += e
    dx = x - (x0_entry + z * tx)
    dy = y - (y0_entry + z * ty)
    r = np.sqrt(dx * dx + dy * dy)
    ib = int(r / RADIAL_DIAG_BIN)
    if ib < N_RADIAL_DIAG:
        radial[ib] += e
    lay = ro_map[si]
    if lay >= n_ro or r >= r_max[lay] or n_r[lay] == 0:
        return e
    ir = 0
    while ir < n_r[lay] - 1 and r >= r_edges[lay, ir + 1]:
        ir += 1
    na = n_a[lay]
    ia = int((np.arctan2(dy, dx) + np.pi) / (2.0 * np.pi) * na)
    if ia >= na:
        ia = na - 1
    voxels[offs[lay] + ia * n_r[lay] + ir] += e
    return e


@njit(cache=True)
def deposit_hits(e, x, y, z, k, ro_map, x_entry, y_entry, tx, ty, r_edges, n_r, n_a, offs, r_max,
                 voxels, si_layer, radial) -> float:
    """Score a list of deposits (MeV at x, y mm and depth z mm, sensitive layer k) exactly as the built-in transport
    does (``_deposit``): used by the Geant4 engine, so both engines bin identically. Returns the summed energy."""
    total = 0.0
    for i in range(e.shape[0]):
        total += _deposit(e[i], x[i], y[i], z[i], k[i], ro_map, n_r.shape[0], x_entry, y_entry, tx, ty,
                          r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial)
    return total


@njit(cache=True)
def _screened_move(x, y, z, ux, uy, uz, step, g, dvar, lam, screen, hard, at_face, zf, zb) -> tuple:
    """Direction and end point of a step with the screened-Rutherford mixed scheme: deflection, and a lateral
    displacement perpendicular to the direction, correlated with the deflection, at most sqrt(step^2 - g^2)."""
    nx, ny, nz = msc_deflect(ux, uy, uz, step, lam, screen, hard)
    cost = nx * ux + ny * uy + nz * uz
    e1x, e1y, e1z, e2x, e2y, e2z = _perp_frame(ux, uy, uz)
    th0 = np.sqrt(min(dvar, 1.0)) / np.sqrt(12.0)
    z1, z2 = th0 * np.random.normal(), th0 * np.random.normal()
    lx = step * (0.5 * (nx - cost * ux) + z1 * e1x + z2 * e2x)
    ly = step * (0.5 * (ny - cost * uy) + z1 * e1y + z2 * e2y)
    lz = step * (0.5 * (nz - cost * uz) + z1 * e1z + z2 * e2z)
    lat = np.sqrt(lx * lx + ly * ly + lz * lz)
    lat_max = np.sqrt(max(step * step - g * g, 0.0))
    if lat > lat_max:
        lx, ly, lz = lx * lat_max / lat, ly * lat_max / lat, lz * lat_max / lat
    xe, ye, ze = x + g * ux + lx, y + g * uy + ly, z + g * uz + lz
    if at_face:
        ze = zb if uz > 0 else zf
    else:
        ze = min(max(ze, zf + 1e-9), zb - 1e-9)
    return nx, ny, nz, xe, ye, ze


@njit(cache=True)
def _urban_move(x, y, z, ux, uy, uz, step, g, lam, e0, e1, x0, z_eff, tmin, at_face, zf, zb) -> tuple:
    """Direction and end point of a step with Urban's model: the deflection, then (unless the step ends on a face)
    the lateral displacement, shortened to 0.99 of the end point's distance to the nearest face as Geant4 does."""
    phi = 2.0 * np.pi * np.random.random()
    nx, ny, nz = _rotate(ux, uy, uz, min(max(urban_cos_theta(step, lam, e0, e1, x0, z_eff, tmin), -1.0), 1.0), phi)
    xe, ye, ze = x + g * ux, y + g * uy, z + g * uz
    if at_face:
        return nx, ny, nz, xe, ye, (zb if uz > 0 else zf)
    ze = min(max(ze, zf + 1e-9), zb - 1e-9)
    r, big_phi = urban_displacement(step, g, phi)
    room = 0.99 * min(ze - zf, zb - ze)
    if r > 0.0 and room > 1e-9:
        f = r if r < room else room
        e1x, e1y, e1z, e2x, e2y, e2z = _perp_frame(ux, uy, uz)
        c, s_ = np.cos(big_phi), np.sin(big_phi)
        xe += f * (c * e1x + s_ * e2x)
        ye += f * (c * e1y + s_ * e2y)
        ze += f * (c * e1z + s_ * e2z)
    return nx, ny, nz, xe, ye, ze


@njit(cache=True)
def simulate_one(ptype0, t0, x_entry, y_entry, ux0, uy0, uz0, seed,
                 z_front, z_back, lmat, lsens, ro_map,
                 grid, range_, dedx, mu_brems, mu_delta, mu_compton, mu_photo, mu_pair, mu_tr, screen,
                 x0, n_el, samp_z, samp_fc, z_eff, mean_exc, prod_cuts, lpm_energy, density_factor, cuts,
                 r_edges, n_r, n_a, offs, r_max,
                 voxels, si_layer, radial, totals):
    """Transport one primary and all its secondaries; fills voxels, si_layer, radial and totals in place."""
    np.random.seed(seed)
    e_track, g_track, max_dvar, min_step, hard = cuts[0], cuts[1], cuts[2], cuts[3], cuts[4]
    urban = cuts[5] > 0.5   # Cuts.msc_model == "urban"
    log_e0 = np.log(grid[0])
    inv_dlog = 1.0 / (np.log(grid[1]) - log_e0)
    n_layers = z_front.shape[0]
    n_ro = n_r.shape[0]
    tx, ty = ux0 / uz0, uy0 / uz0
    # particle stack
    s_type = np.empty(STACK_SIZE, np.int64)
    s_e = np.empty(STACK_SIZE)
    s_pos = np.empty((STACK_SIZE, 3))
    s_dir = np.empty((STACK_SIZE, 3))
    s_lay = np.empty(STACK_SIZE, np.int64)
    top, _ = _push(s_type, s_e, s_pos, s_dir, s_lay, 0, ptype0, t0, x_entry, y_entry, 0.0, ux0, uy0, uz0, 0)
    dep = 0.0
    esc = 0.0
    below = 0.0
    sens = 0.0
    overflow = 0.0
    while top > 0:
        top -= 1
        ptype = s_type[top]
        t = s_e[top]
        x, y, z = s_pos[top, 0], s_pos[top, 1], s_pos[top, 2]
        ux, uy, uz = s_dir[top, 0], s_dir[top, 1], s_dir[top, 2]
        lay = s_lay[top]
        if ptype == PHOTON:
            # ---------------- photon ----------------
            n_lambda = -np.log(np.random.random())
            while True:
                if t <= g_track:
                    below += t
                    if lsens[lay] >= 0:
                        sens += _deposit(t, x, y, z, lsens[lay], ro_map, n_ro, x_entry, y_entry, tx, ty,
                                         r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial)
                    break
                m = lmat[lay]
                mu_c = _lookup(mu_compton[m], log_e0, inv_dlog, t)
                mu_ph = _lookup(mu_photo[m], log_e0, inv_dlog, t)
                mu_pp = _lookup(mu_pair[m], log_e0, inv_dlog, t) if t > 2.0 * ME else 0.0
                mu_tot = mu_c + mu_ph + mu_pp
                s_int = n_lambda / mu_tot
                s_geo = _distance_to_boundary(z, uz, lay, z_front, z_back)
                if s_geo < s_int:
                    x += s_geo * ux
                    y += s_geo * uy
                    n_lambda -= s_geo * mu_tot
                    z, lay = _cross(uz > 0, lay, z_front, z_back)
                    if lay < 0 or lay >= n_layers:
                        esc += t
                        break
                    continue
                x += s_int * ux
                y += s_int * uy
                z += s_int * uz
                r = np.random.random() * mu_tot
                if r < mu_ph:
                    # photo-absorption: the shell's binding energy is deposited on the spot (no fluorescence, as
                    # Geant4 without atomic de-excitation), the photoelectron leaves at a Sauter-Gavrila angle
                    e_bind = _binding_energy(samp_z[m], t)
                    below += e_bind
                    if lsens[lay] >= 0:
                        sens += _deposit(e_bind, x, y, z, lsens[lay], ro_map, n_ro, x_entry, y_entry, tx, ty,
                                         r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial)
                    t -= e_bind
                    ux, uy, uz = _rotate(ux, uy, uz, _sauter_gavrila_cost(t), 2.0 * np.pi * np.random.random())
                    ptype = ELECTRON
                    break
                elif r < mu_ph + mu_c:
                    # Compton scattering, Klein-Nishina sampling (Butcher-Messel / Geant4)
                    kappa = t / ME
                    eps0 = 1.0 / (1.0 + 2.0 * kappa)
                    eps0sq = eps0 * eps0
                    a1 = -np.log(eps0)
                    a2 = a1 + 0.5 * (1.0 - eps0sq)
                    for _trial in range(MAX_TRIALS):
                        if a1 > a2 * np.random.random():
                            eps = np.exp(-a1 * np.random.random())
                            epssq = eps * eps
                        else:
                            epssq = eps0sq + (1.0 - eps0sq) * np.random.random()
                            eps = np.sqrt(epssq)
                        onecost = (1.0 - eps) / (eps * kappa)
                        sint2 = onecost * (2.0 - onecost)
                        g = 1.0 - eps * sint2 / (1.0 + epssq)
                        if g >= np.random.random():
                            break
                    cost = 1.0 - onecost
                    phi = 2.0 * np.pi * np.random.random()
                    e_gam = eps * t
                    t_el = t - e_gam
                    gx, gy, gz = _rotate(ux, uy, uz, cost, phi)
                    # electron direction from momentum conservation
                    px = t * ux - e_gam * gx
                    py = t * uy - e_gam * gy
                    pz = t * uz - e_gam * gz
                    pn = np.sqrt(px * px + py * py + pz * pz)
                    if t_el > 0.0:
                        top, lost = _push(s_type, s_e, s_pos, s_dir, s_lay, top, ELECTRON, t_el, x, y, z,
                                          px / pn, py / pn, pz / pn, lay)
                        overflow += lost
                    t = e_gam
                    ux, uy, uz = gx, gy, gz
                    n_lambda = -np.log(np.random.random())
                    continue
                else:
                    # pair production, Bethe-Heitler with screening
                    zz, fc = samp_z[m], (samp_fc[m] if t > 50.0 else 0.0)  # Coulomb correction above 50 MeV
                    e0 = ME / t
                    p1, p2 = screening_phi(0.0)
                    c = 4.0 / 3.0 * np.log(zz) + 4.0 * fc
                    gmax = (p1 - c) + (p2 - c) / 6.0
                    for _trial in range(MAX_TRIALS):  # bounded: near threshold the bracket can vanish
                        eps = e0 + (0.5 - e0) * np.random.random()
                        if pair_shape(zz, fc, t, eps) >= gmax * np.random.random():
                            break
                    if np.random.random() < 0.5:
                        eps = 1.0 - eps
                    e_plus = eps * t - ME
                    e_minus = (1.0 - eps) * t - ME
                    for q in range(2):
                        kin = e_plus if q == 0 else e_minus
                        cst = _tsai_cost(kin + ME)
                        phi = 2.0 * np.pi * np.random.random()
                        if q == 1:
                            phi += np.pi
                        dx_, dy_, dz_ = _rotate(ux, uy, uz, cst, phi)
                        top, lost = _push(s_type, s_e, s_pos, s_dir, s_lay, top, POSITRON if q == 0 else ELECTRON,
                                          max(kin, 0.0), x, y, z, dx_, dy_, dz_, lay)
                        overflow += lost
                    t = 0.0
                    break
            if ptype == PHOTON:
                continue
        # ---------------- electron / positron ----------------
        q = 1 if ptype == POSITRON else 0
        n_lambda = -np.log(np.random.random())
        n_steps = 0
        msc_limit, msc_tmin = -1.0, 0.0   # Urban step limit, fixed at the track's first step in each layer
        while True:
            n_steps += 1
            if n_steps > MAX_STEPS:  # a bounded loop: a track that makes no progress is booked as a failure
                overflow += t + (2.0 * ME if ptype == POSITRON else 0.0)
                ptype = -1
                break
            m = lmat[lay]
            delta_cut, k_cut = prod_cuts[m, 0], prod_cuts[m, 1]   # production cuts of this layer's material
            rng = _lookup(range_[q, m], log_e0, inv_dlog, t)
            if t <= e_track or rng < min(z - z_front[lay], z_back[lay] - z):
                # below the tracking floor, or range rejection: the residual range cannot leave the layer
                below += t
                if lsens[lay] >= 0:
                    sens += _deposit(t, x, y, z, lsens[lay], ro_map, n_ro, x_entry, y_entry, tx, ty,
                                     r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial)
                break
            mu_b = _lookup(mu_brems[m], log_e0, inv_dlog, t) if t > k_cut else 0.0
            mu_d = _lookup(mu_delta[q, m], log_e0, inv_dlog, t)
            mu_tot = mu_b + mu_d
            s_int = n_lambda / mu_tot if mu_tot > 0 else 1e30
            s_loss = max(0.2 * rng, 0.05) if rng > 0.05 else rng
            lam = 1.0 / max(_lookup(mu_tr[q, m], log_e0, inv_dlog, t), 1e-12)
            d_geo = _distance_to_boundary(z, uz, lay, z_front, z_back)
            if urban:
                if msc_limit < 0.0:
                    msc_limit, msc_tmin = urban_step_limit(t, rng, lam, z_eff[m])
                other = min(s_int, s_loss, rng)
                step = min(other, urban_msc_step(msc_limit, msc_tmin, min(z - z_front[lay], z_back[lay] - z), other))
                kind = 2 if step == s_int else 0  # 0 continuous, 1 boundary, 2 discrete
                lam_end = lam
                if URBAN_DTRL * rng <= step < rng:
                    t_end = _energy_from_range(range_[q, m], grid, max(rng - step, 0.01 * rng))
                    lam_end = 1.0 / max(_lookup(mu_tr[q, m], log_e0, inv_dlog, t_end), 1e-12)
                g, par1, par3 = urban_geom_length(step, rng, lam, lam_end)
                if d_geo < g:
                    kind = 1
                    step = urban_true_length(d_geo, step, rng, lam, par1, par3)
                    g = d_geo
            else:
                s_msc = max(max_dvar * lam, min_step)  # keeps the scattering of one step near the small-angle regime
                step = min(s_int, s_loss, rng, s_msc)  # true path length of the physics-limited step
                kind = 2 if step == s_int else 0  # 0 continuous, 1 boundary, 2 discrete
                # multiple scattering over the step: transport mean free path at the step's middle energy
                t_mid0 = max(t - 0.5 * step * t / max(rng, 1e-12), 1e-6)
                lam = 1.0 / max(_lookup(mu_tr[q, m], log_e0, inv_dlog, t_mid0), 1e-12)
                dvar = max(step / lam, 1e-12)
                g = lam * (1.0 - np.exp(-dvar)) if dvar > 1e-6 else step * (1.0 - 0.5 * dvar)
                if d_geo < g:
                    # the face comes first: the true path whose mean geometric advance reaches it
                    kind = 1
                    ratio = d_geo / lam
                    step = -lam * np.log(1.0 - ratio) if ratio < 1.0 - 1e-12 else step
                    step = min(step, rng)
                    dvar = max(step / lam, 1e-12)
                    g = d_geo
            forward = uz > 0
            # continuous loss from the range table, fluctuating as Rutherford collisions below the delta cut
            de = mean_continuous_loss(range_[q, m], dedx[q, m], grid, log_e0, inv_dlog, t, rng, step)
            de_mean = de
            if de < t:
                de = min(sample_subcut_loss(de, mean_exc[m], min(delta_cut, t if q == 1 else 0.5 * t)), t)
            if urban:
                # Urban deflection at the step's mean lambda_1, displacement within the distance to the faces
                t_end = t if step < 0.01 * rng else max(t - de_mean, 1e-6)
                lam_end = 1.0 / max(_lookup(mu_tr[q, m], log_e0, inv_dlog, t_end), 1e-12)
                lam_mean = (lam - lam_end) / np.log(lam / lam_end) if abs(lam_end - lam) > 0.01 * lam else lam
                nx, ny, nz, xe, ye, ze = _urban_move(x, y, z, ux, uy, uz, step, g, lam_mean, t, t_end, x0[m], z_eff[m],
                                                     msc_tmin, kind == 1, z_front[lay], z_back[lay])
            else:
                nx, ny, nz, xe, ye, ze = _screened_move(x, y, z, ux, uy, uz, step, g, dvar, lam,
                                                        _lookup(screen[m], log_e0, inv_dlog, t_mid0), hard,
                                                        kind == 1, z_front[lay], z_back[lay])
            # deposit at the step middle
            xm, ym, zm = 0.5 * (x + xe), 0.5 * (y + ye), 0.5 * (z + ze)
            dep += de
            if lsens[lay] >= 0:
                sens += _deposit(de, xm, ym, zm, lsens[lay], ro_map, n_ro, x_entry, y_entry, tx, ty,
                                 r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial)
            t -= de
            x, y, z = xe, ye, ze
            ux, uy, uz = nx, ny, nz
            if kind == 1 and (uz > 0) != forward:
                # turned back at the face: it stays in this layer (z on the face, moving inwards)
                kind = 0
                msc_limit = -1.0
            if t <= 0.0:
                break
            if kind == 1:
                n_lambda -= step * mu_tot
                z, lay = _cross(forward, lay, z_front, z_back)
                msc_limit = -1.0   # a new volume: Urban's step limit is fixed anew
                if lay < 0 or lay >= n_layers:
                    esc += t + (2.0 * ME if ptype == POSITRON else 0.0)
                    ptype = -1  # escaped: no annihilation
                    break
                continue
            if kind == 2:
                if np.random.random() * mu_tot < mu_b:
                    e_tot = t + ME
                    k = sample_brems_k(samp_z[m], samp_fc[m], t, k_cut, lpm_energy[m], density_factor[m])
                    cst = _tsai_cost(e_tot)
                    gx, gy, gz = _rotate(ux, uy, uz, cst, 2.0 * np.pi * np.random.random())
                    top, lost = _push(s_type, s_e, s_pos, s_dir, s_lay, top, PHOTON, k, x, y, z, gx, gy, gz, lay)
                    overflow += lost
                    t -= k
                elif delta_cut < (0.5 * t if q == 0 else t):
                    # Moller / Bhabha delta ray (Geant4 G4MollerBhabhaModel sampling)
                    gam = t / ME + 1.0
                    g2 = gam * gam
                    beta2 = 1.0 - 1.0 / g2
                    xmin = delta_cut / t
                    if q == 0:
                        xmax = 0.5
                        gg = (2.0 * gam - 1.0) / g2
                        yy = 1.0 - xmax
                        grej = 1.0 - gg * xmax + xmax * xmax * (1.0 - gg + (1.0 - gg * yy) / (yy * yy))
                        for _trial in range(MAX_TRIALS):
                            rr = np.random.random()
                            xx = xmin * xmax / (xmin * (1.0 - rr) + xmax * rr)
                            yy = 1.0 - xx
                            zf = 1.0 - gg * xx + xx * xx * (1.0 - gg + (1.0 - gg * yy) / (yy * yy))
                            if grej * np.random.random() <= zf:
                                break
                    else:
                        xmax = 1.0
                        b1, b2, b3, b4 = bhabha_coefficients(gam)
                        yy = xmax * xmax
                        grej = 1.0 + (yy * yy * b4 - xmin * xmin * xmin * b3 + yy * b2 - xmin * b1) * beta2
                        for _trial in range(MAX_TRIALS):
                            rr = np.random.random()
                            xx = xmin * xmax / (xmin * (1.0 - rr) + xmax * rr)
                            yy = xx * xx
                            zf = 1.0 + (yy * yy * b4 - xx * yy * b3 + yy * b2 - xx * b1) * beta2
                            if grej * np.random.random() <= zf:
                                break
                    t_d = xx * t
                    cost = np.sqrt(t_d * (t + 2.0 * ME) / (t * (t_d + 2.0 * ME)))
                    cost = min(cost, 1.0)
                    dx_, dy_, dz_ = _rotate(ux, uy, uz, cost, 2.0 * np.pi * np.random.random())
                    p0 = np.sqrt(t * (t + 2.0 * ME))
                    pd = np.sqrt(t_d * (t_d + 2.0 * ME))
                    px, py, pz = p0 * ux - pd * dx_, p0 * uy - pd * dy_, p0 * uz - pd * dz_
                    pn = np.sqrt(px * px + py * py + pz * pz)
                    top, lost = _push(s_type, s_e, s_pos, s_dir, s_lay, top, ELECTRON, t_d, x, y, z, dx_, dy_, dz_, lay)
                    overflow += lost
                    t -= t_d
                    if pn > 0:
                        ux, uy, uz = px / pn, py / pn, pz / pn
                n_lambda = -np.log(np.random.random())
            else:
                n_lambda -= step * mu_tot
        if ptype == POSITRON:
            # annihilation at rest: two back-to-back 511 keV photons, isotropic
            cost = 2.0 * np.random.random() - 1.0
            sint = np.sqrt(1.0 - cost * cost)
            phi = 2.0 * np.pi * np.random.random()
            for sgn in (1.0, -1.0):
                top, lost = _push(s_type, s_e, s_pos, s_dir, s_lay, top, PHOTON, ME, x, y, z,
                                  sgn * sint * np.cos(phi), sgn * sint * np.sin(phi), sgn * cost, lay)
                overflow += lost
    totals[0] = dep
    totals[1] = esc
    totals[2] = below + overflow
    totals[3] = sens
    totals[4] = overflow


@njit(cache=True, parallel=True)
def simulate_batch(ptypes, energies, x_entry, y_entry, ux, uy, uz, seeds,
                   z_front, z_back, lmat, lsens, ro_map,
                   grid, range_, dedx, mu_brems, mu_delta, mu_compton, mu_photo, mu_pair, mu_tr, screen,
                   x0, n_el, samp_z, samp_fc, z_eff, mean_exc, prod_cuts, lpm_energy, density_factor, cuts,
                   r_edges, n_r, n_a, offs, r_max, n_sens):
    """Simulate N primaries in parallel; returns voxels (N, V), si_layer (N, S), radial (N, R), totals (N, 5)."""
    n = energies.shape[0]
    voxels = np.zeros((n, offs[-1]))
    si_layer = np.zeros((n, n_sens))
    radial = np.zeros((n, N_RADIAL_DIAG))
    totals = np.zeros((n, 5))
    for i in prange(n):
        simulate_one(ptypes[i], energies[i], x_entry[i], y_entry[i], ux[i], uy[i], uz[i], seeds[i],
                     z_front, z_back, lmat, lsens, ro_map,
                     grid, range_, dedx, mu_brems, mu_delta, mu_compton, mu_photo, mu_pair, mu_tr, screen,
                     x0, n_el, samp_z, samp_fc, z_eff, mean_exc, prod_cuts, lpm_energy, density_factor, cuts,
                     r_edges, n_r, n_a, offs, r_max,
                     voxels[i], si_layer[i], radial[i], totals[i])
    return voxels, si_layer, radial, totals
