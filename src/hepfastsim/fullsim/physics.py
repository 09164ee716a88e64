"""Cross sections and stopping powers of the built-in EM shower Monte Carlo.

Everything here is textbook physics, tabulated once per material on a log grid of
kinetic energy (1 keV - 1 TeV) for the compiled transport in ``transport.py``:

* bremsstrahlung: Geant4's relativistic model (G4eBremsstrahlungRelModel, the model of Geant4's data-free list):
  Tsai's screening functions with the Coulomb correction, the dielectric (Ter-Mikaelian) suppression of photons
  below k_p = gamma hbar omega_p, and above Geant4's threshold (~0.4 GeV in W) Migdal's Landau-Pomeranchuk-Migdal
  suppression in Stanev's approximations; the production cuts by default Geant4's conversion of a 0.7 mm range cut;
* pair production (sampling): Bethe-Heitler with Thomas-Fermi screening (Butcher-Messel screening functions,
  Coulomb correction, Z(Z+xi) for atomic electrons);
* Moller (e-e-) and Bhabha (e+e-) delta-ray production above the production cut;
* restricted collision stopping power (Berger-Seltzer, ICRU 37) with the Sternheimer
  density effect, plus the radiative loss below the photon production cut;
* multiple scattering: Geant4's Urban-model transport cross section per element (``data/urban_msc_per_atom.json``),
  or for the screened-Rutherford option 1 / lambda_1 = 2 pi n Z(Z+1) r_e^2 (m/(p beta))^2 [ln(1 + 1/A) - 1/(1 + A)]
  (Moliere screening);
* pair production below 80 GeV and Compton scattering: the empirical per-atom fits of
  GEANT3/Geant4 (Storm-Israel type polynomials in ln(k/m) for pairs, with the (k - 2m)^2
  fall-off below 1.5 MeV; Klein-Nishina with the low-energy binding suppression below 15 keV
  for Compton), which reproduce Geant4's G4BetheHeitler / G4KleinNishinaCompton cross
  sections;
* photo-absorption: Geant4's Sandia parametrisation tabulated per element
  (``data/photo_per_atom.json``, made by ``python -m hepfastsim.fullsim.geant4.tabulate``).

Units: energies MeV, lengths mm, cross sections as inverse mean free paths (1/mm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
from numba import njit

from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.materials import ALPHA, L_RAD_LIGHT, R_E_CM, Material, coulomb_correction, l_rad

ME = 0.51099895  # MeV
TWOPI_MC2_RCL2 = 2 * np.pi * ME * R_E_CM**2  # MeV cm2
E_MIN, E_MAX, PER_DECADE = 1e-3, 1e6, 60


def energy_grid() -> np.ndarray:
    """Kinetic energies (MeV) of the tables: log spaced."""
    n = int(round(np.log10(E_MAX / E_MIN) * PER_DECADE)) + 1
    return np.logspace(np.log10(E_MIN), np.log10(E_MAX), n)


@njit(cache=True)
def screening_phi(delta: float) -> tuple:
    """Butcher-Messel screening functions (phi1, phi2) of the screening variable delta."""
    if delta <= 1.0:
        return 20.867 - 3.242 * delta + 0.625 * delta * delta, 20.029 - 1.930 * delta - 0.086 * delta * delta
    v = 21.12 - 4.184 * np.log(delta + 0.952)
    return v, v


# Landau-Pomeranchuk-Migdal and dielectric (Ter-Mikaelian) suppression of bremsstrahlung, in Geant4's units:
# E_LPM = X0 * LPM_MEV_PER_MM (Migdal's characteristic energy, 7.7 TeV per cm of radiation length), and the
# dielectric photon energy k_p = E * sqrt(n_el * MIGDAL_MM3) (k_p = gamma * hbar omega_p; ~80 eV * gamma in W)
HBARC_FM = 197.3269804  # MeV fm
HBARC_MEV_MM = HBARC_FM / 1e12
R_E_MM = 2.8179403262e-12  # R_E_CM in mm, written out (R_E_CM * 10 differs in the last bit)
LPM_MEV_PER_MM = ALPHA * ME**2 / (4.0 * np.pi * HBARC_MEV_MM)
MIGDAL_MM3 = 4.0 * np.pi * R_E_MM * (HBARC_MEV_MM / ME) ** 2


@njit(cache=True)
def _lpm_phi_g(s: float) -> tuple:
    """Migdal's suppression functions (phi(s), G(s)) in Stanev et al.'s approximations (Phys. Rev. D 25 (1982)
    1291), as Geant4 evaluates them: phi for the (1 - y + y^2/2) part of the spectrum, G for the y^2/4 part."""
    if s < 0.01:
        phi = 6.0 * s * (1.0 - np.pi * s)
        return phi, 12.0 * s - 2.0 * phi
    s2, s3, s4 = s * s, s * s * s, s * s * s * s
    if s < 1.55:
        phi = 1.0 - np.exp(-6.0 * s * (1.0 + (3.0 - np.pi) * s) + s3 / (0.623 + 0.796 * s + 0.658 * s2))
    else:
        phi = 1.0 - 0.01190476 / s4
    if s < 0.415827:
        psi = 1.0 - np.exp(-4.0 * s - 8.0 * s2 / (1.0 + 3.936 * s + 4.97 * s2 - 0.05 * s3 + 7.5 * s4))
        g = 3.0 * psi - 2.0 * phi
    elif s < 1.9156:
        g = np.tanh(-0.160723 + 3.755030 * s - 1.798138 * s2 + 0.672827 * s3 - 0.120772 * s4)
    else:
        g = 1.0 - 0.0230655 / s4
    return phi, g


@njit(cache=True)
def _brems_factors(z: float, fc: float) -> tuple:
    """(F1, F2) of the complete-screening spectrum d(sigma)/dk = 16/3 alpha r_e^2 Z^2 / k [(1 - y + 3/4 y^2) F1 +
    (1 - y) F2]: F1 = L_el - f_c + L_inel / Z, F2 = (1 + 1/Z) / 12 (Tsai's L_rad, L'_rad as
    ``materials.l_rad``, in numba)."""
    if z < 4.5:
        l_el, l_inel = L_RAD_LIGHT[int(z + 0.5) - 1]
    else:
        l_el = np.log(184.15) - np.log(z) / 3.0
        l_inel = np.log(1194.0) - 2.0 * np.log(z) / 3.0
    return l_el - fc + l_inel / z, (1.0 + 1.0 / z) / 12.0


@njit(cache=True)
def brems_dxsec(z: float, fc: float, e_total: float, k: float, lpm_energy: float, kp2: float) -> float:
    """Bremsstrahlung spectrum of an e+- of total energy E (MeV) emitting a photon of energy k (MeV) on an atom of
    charge z: d(sigma)/dk = 16/3 alpha r_e^2 Z^2 / k * this * k^2 / (k^2 + k_p^2), as Geant4's
    G4eBremsstrahlungRelModel (the model of its data-free list at all energies). Tsai's screening functions
    (Rev. Mod. Phys. 46 (1974) 815) with the Coulomb correction fc; with lpm_energy > 0 (E above Geant4's LPM
    threshold) Migdal's LPM-suppressed complete-screening form instead, the dielectric suppression entering its
    variable s. kp2 = k_p^2 (MeV^2), the dielectric suppression's scale; the factor k^2 / (k^2 + k_p^2) is not
    included here (the callers integrate and sample in ln(k^2 + k_p^2), which contains it)."""
    y = k / e_total
    onemy = 1.0 - y
    f1, f2 = _brems_factors(z, fc)
    if lpm_energy > 0.0:
        # Migdal's variable s' and xi(s'), then s with the dielectric suppression, xi(s), phi(s), G(s)
        s1 = z ** (2.0 / 3.0) / (184.15 * 184.15)
        sp = np.sqrt(lpm_energy * k / (8.0 * e_total * (e_total - k)))
        xi = 2.0
        if sp > 1.0:
            xi = 1.0
        elif sp > np.sqrt(2.0) * s1:
            inv_log = 1.0 / np.log(np.sqrt(2.0) * s1)
            h = np.log(sp) * inv_log
            xi = 1.0 + h - 0.08 * (1.0 - h) * h * (2.0 - h) * inv_log
        s = sp / np.sqrt(xi) * (1.0 + kp2 / (k * k))
        xi = 2.0
        if s > 1.0:
            xi = 1.0
        elif s > s1:
            xi = 1.0 + np.log(s) / np.log(s1)
        phi, g = _lpm_phi_g(s)
        if xi * phi > 1.0 or s > 0.57:
            xi = 1.0 / phi
        d = xi * (0.25 * y * y * g + (onemy + 0.5 * y * y) * phi) * f1 + onemy * f2
        return max(d, 0.0)
    term0 = onemy + 0.75 * y * y
    if z < 4.5:
        return max(term0 * f1 + onemy * f2, 0.0)
    x = 100.0 * ME * k / (e_total * (e_total - k))
    gam = x * z ** (-1.0 / 3.0)
    eps = x * z ** (-2.0 / 3.0)
    phi1 = 16.863 - 2.0 * np.log(1.0 + 0.311877 * gam * gam) + 2.4 * np.exp(-0.9 * gam) + 1.6 * np.exp(-1.5 * gam)
    phi2 = 2.0 / (3.0 + 19.5 * gam + 18.0 * gam * gam)
    psi1 = 24.34 - 2.0 * np.log(1.0 + 13.111641 * eps * eps) + 2.8 * np.exp(-8.0 * eps) + 1.2 * np.exp(-29.2 * eps)
    psi2 = 2.0 / (3.0 + 120.0 * eps + 1200.0 * eps * eps)
    lz = np.log(z)
    d = (term0 * ((0.25 * phi1 - lz / 3.0 - fc) + (0.25 * psi1 - 2.0 * lz / 3.0) / z)
         + 0.125 * onemy * (phi2 + psi2 / z))
    return max(d, 0.0)


@njit(cache=True)
def brems_dxsec_max(z: float, fc: float) -> float:
    """An upper bound of ``brems_dxsec`` over k (its value at k -> 0 without suppression), for rejection sampling."""
    f1, f2 = _brems_factors(z, fc)
    return f1 + f2


@njit(cache=True)
def brems_lpm_energy(e_total: float, lpm_energy: float, density_factor: float) -> float:
    """Migdal's energy of the material if the LPM suppression applies at total energy E (Geant4: above
    E_LPM * k_p / E, a few hundred MeV in W), else 0."""
    return lpm_energy if e_total > lpm_energy * np.sqrt(density_factor) else 0.0


@njit(cache=True)
def pair_shape(z: float, fc: float, k: float, eps: float) -> float:
    """Bracket of d(sigma)/d(eps) = alpha r_e^2 Z(Z+xi) G, eps = E+ / k."""
    delta = 136.0 * ME * z ** (-1.0 / 3.0) / (k * eps * (1.0 - eps))
    p1, p2 = screening_phi(delta)
    c = 4.0 / 3.0 * np.log(z) + 4.0 * fc
    g = (eps * eps + (1 - eps) * (1 - eps)) * (p1 - c) + 2.0 / 3.0 * eps * (1 - eps) * (p2 - c)
    return max(g, 0.0)


@njit(cache=True)
def _brems_integrals(z: float, fc: float, t: float, kcut: float, lpm_energy: float, density_factor: float) -> tuple:
    """(int_{kcut}^{T} dxsec dk / k k^2/(k^2 + k_p^2), int_0^{min(kcut, T)} (same) k dk) for an e+- of kinetic
    energy T, by Simpson's rule in u = ln(k^2 + k_p^2), where the integrand of the first is dxsec / 2 (as Geant4
    integrates); lpm_energy 0 switches the LPM suppression off."""
    e = t + ME
    kp2 = density_factor * e * e
    lpm = brems_lpm_energy(e, lpm_energy, density_factor)
    n = 128
    above = 0.0
    if t > kcut:
        a, b = np.log(kcut * kcut + kp2), np.log(t * t + kp2)
        h = (b - a) / n
        for i in range(n + 1):
            w = 1.0 if (i == 0 or i == n) else (4.0 if i % 2 else 2.0)
            k = np.sqrt(np.exp(a + i * h) - kp2)
            above += w * 0.5 * brems_dxsec(z, fc, e, k, lpm, kp2)
        above *= h / 3.0
    below = 0.0
    kmax = min(kcut, t)
    a, b = np.log(kp2), np.log(kmax * kmax + kp2)
    h = (b - a) / n
    for i in range(1, n + 1):   # the integrand vanishes at k = 0
        w = 1.0 if i == n else (4.0 if i % 2 else 2.0)
        k = np.sqrt(max(np.exp(a + i * h) - kp2, 0.0))
        if k > 0.0:
            below += w * 0.5 * k * brems_dxsec(z, fc, e, k, lpm, kp2)
    below *= h / 3.0
    return above, below


@njit(cache=True)
def _pair_integral(z: float, fc: float, k: float) -> float:
    if k <= 2.0 * ME:
        return 0.0
    e0 = ME / k
    n = 64
    h = (1.0 - 2.0 * e0) / n
    s = 0.0
    for i in range(n + 1):
        w = 1.0 if (i == 0 or i == n) else (4.0 if i % 2 else 2.0)
        eps = min(max(e0 + i * h, e0 + 1e-9), 1 - e0 - 1e-9)
        s += w * pair_shape(z, fc, k, eps)
    return s * h / 3.0


@njit(cache=True)
def bhabha_coefficients(gam):
    """Coefficients b1..b4 of the Bhabha cross section in the Lorentz factor gam (scalar or array)."""
    y = 1.0 / (1.0 + gam)
    y2 = y * y
    y12 = 1.0 - 2.0 * y
    b1 = 2.0 - y2
    b2 = y12 * (3.0 + y2)
    y122 = y12 * y12
    b4 = y122 * y12
    b3 = b4 + y122
    return b1, b2, b3, b4


_PAIR_A = (8.7842e2, -1.9625e3, 1.2949e3, -2.0028e2, 1.2575e1, -2.8333e-1)  # microbarn
_PAIR_B = (-1.0342e1, 1.7692e1, -8.2381, 1.3063, -9.0815e-2, 2.3586e-3)
_PAIR_C = (-4.5263e2, 1.1161e3, -8.6749e2, 2.1773e2, -2.0467e1, 6.5372e-1)
PAIR_FIT_MAX = 80e3  # MeV: above, the screened Bethe-Heitler integral (scaled to join the fit)


def pair_per_atom_fit(z: float, k: np.ndarray) -> np.ndarray:
    """Pair-production cross section per atom (cm2): (Z+1)(F1 Z + F2 Z^2 + F3), F_i polynomials of ln(k/m),
    valid 1.5 MeV - 100 GeV, times ((k - 2m)/(1.5 MeV - 2m))^2 below 1.5 MeV."""
    k = np.asarray(k, dtype=float)
    x = np.log(np.maximum(k, 1.5) / ME)
    f1, f2, f3 = (sum(c * x**i for i, c in enumerate(cs)) for cs in (_PAIR_A, _PAIR_B, _PAIR_C))
    sigma = (z + 1.0) * (f1 * z + f2 * z * z + f3) * 1e-30
    low = np.clip((k - 2 * ME) / (1.5 - 2 * ME), 0.0, 1.0) ** 2
    return np.where(k < 1.5, sigma * low, sigma) * (k > 2 * ME)


def compton_per_atom(z: float, k: np.ndarray) -> np.ndarray:
    """Compton cross section per atom (cm2): the empirical Klein-Nishina fit with Z-dependent coefficients,
    suppressed below T0 = 15 keV (40 keV for hydrogen) for the binding of the atomic electrons."""
    k = np.asarray(k, dtype=float)

    def fit(x):
        p = [z * (d + e * z + f * z * z) for d, e, f in ((2.7965e-1, 1.9756e-5, -3.9178e-7), (-1.8300e-1, -1.0205e-2, 6.8241e-5),
                                                         (6.7527, -7.3913e-2, 6.0480e-5), (-1.9798e1, 2.7079e-2, 3.0274e-4))]
        return p[0] * np.log1p(2 * x) / x + (p[1] + p[2] * x + p[3] * x * x) / (1 + 20.0 * x + 230.0 * x * x + 440.0 * x**3)

    t0 = 40e-3 if z < 1.5 else 15e-3
    sigma = fit(np.maximum(k, t0) / ME)
    s1 = fit((t0 + 1e-3) / ME)
    c1 = -t0 * (s1 - sigma) / (sigma * 1e-3)
    c2 = 0.150 if z < 1.5 else 0.375 - 0.0556 * np.log(z)
    y = np.log(np.minimum(k, t0) / t0)
    return np.where(k < t0, sigma * np.exp(-y * (c1 + c2 * y)), sigma) * 1e-24


@lru_cache(maxsize=None)
def _tabulated(file: str, key: str) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """A per-atom table of ``data/FILE`` (written by ``fullsim.geant4.tabulate``): log energies, and log sigma per Z
    of the entry ``key``."""
    doc = json.loads((resources.files("hepfastsim.fullsim") / "data" / file).read_text())
    return np.log(doc["energies_MeV"]), {int(z): np.log(np.maximum(v, 1e-300)) for z, v in doc[key].items()}


def _per_atom(file: str, key: str, what: str, z: float, e: np.ndarray) -> np.ndarray:
    """Cross section per atom (cm2) of element z at energies e (MeV) from a tabulated file (log-log interpolation)."""
    log_e, table = _tabulated(file, key)
    if int(z) not in table:
        raise HepFastSimError(f"no {what} table for Z = {z}: rerun python -m hepfastsim.fullsim.geant4.tabulate")
    return np.exp(np.interp(np.log(e), log_e, table[int(z)]))


def photo_per_atom(z: float, k: np.ndarray) -> np.ndarray:
    """Photo-absorption cross section per atom (cm2) at photon energy k (MeV): Geant4's Sandia parametrisation
    tabulated for every element of ``geometry.materials.ELEMENTS`` (``data/photo_per_atom.json``)."""
    return _per_atom("photo_per_atom.json", "Z", "photo-absorption", z, k)


def urban_transport(material: Material, t: np.ndarray, positron: bool) -> np.ndarray:
    """Inverse first transport mean free path 1 / lambda_1 (1/mm) of e- or e+ of kinetic energy t (MeV) in a
    material: Geant4's G4UrbanMscModel cross section per atom (``data/urban_msc_per_atom.json``), summed over the
    elements."""
    key = "e+" if positron else "e-"
    return sum(n * _per_atom("urban_msc_per_atom.json", key, "Urban msc", z, t) / 10.0 for z, _, n in material.elements)


def moller_bhabha_per_electron(t: np.ndarray, cut: float, positron: bool) -> np.ndarray:
    """Cross section per target electron (cm2) for delta rays above cut (Geant4 G4MollerBhabhaModel formulae)."""
    out = np.zeros_like(t)
    tmax = t if positron else 0.5 * t
    ok = tmax > cut
    tk = t[ok]
    xmin, xmax = cut / tk, (tmax[ok] / tk)
    gam = tk / ME + 1.0
    g2 = gam * gam
    beta2 = 1.0 - 1.0 / g2
    if not positron:
        gg = (2.0 * gam - 1.0) / g2
        cross = ((xmax - xmin) * (1.0 - gg + 1.0 / (xmin * xmax) + 1.0 / ((1.0 - xmin) * (1.0 - xmax)))
                 - gg * np.log(xmax * (1.0 - xmin) / (xmin * (1.0 - xmax)))) / beta2
    else:
        b1, b2, b3, b4 = bhabha_coefficients(gam)
        cross = ((xmax - xmin) * (1.0 / (beta2 * xmin * xmax) + b2 - 0.5 * b3 * (xmin + xmax)
                 + b4 * (xmin * xmin + xmin * xmax + xmax * xmax) / 3.0) - b1 * np.log(xmax / xmin))
    out[ok] = cross * TWOPI_MC2_RCL2 / tk
    return out


def density_effect(material: Material, bg: np.ndarray) -> np.ndarray:
    """Density-effect correction delta(beta*gamma): Sternheimer-Berger-Seltzer's tabulated parameters where the
    material has them (as Geant4 for NIST materials), else the general Sternheimer-Peierls formulae."""
    x = np.log10(np.maximum(bg, 1e-12))
    if material.sternheimer is not None:
        c_bar, x0, x1, a, m, delta0 = material.sternheimer
        return np.where(x >= x1, 4.6052 * x - c_bar,
                        np.where(x >= x0, 4.6052 * x - c_bar + a * np.maximum(x1 - x, 0.0) ** m,
                                 delta0 * 10.0 ** (2.0 * np.minimum(x - x0, 0.0))))
    hw_p = 28.816e-6 * np.sqrt(material.electron_density / N_AV_PER_CM3)  # MeV; uses rho Z/A via n_e
    c_bar = 2.0 * np.log(material.mean_excitation_eV * 1e-6 / hw_p) + 1.0
    if material.mean_excitation_eV < 100:
        x1, x0 = 2.0, (0.2 if c_bar < 3.681 else 0.326 * c_bar - 1.0)
    else:
        x1, x0 = 3.0, (0.2 if c_bar < 5.215 else 0.326 * c_bar - 1.5)
    m = 3.0
    a = (c_bar - 4.6052 * x0) / (x1 - x0) ** m
    return np.where(x >= x1, 4.6052 * x - c_bar, np.where(x > x0, 4.6052 * x - c_bar + a * (x1 - x) ** m, 0.0))


N_AV_PER_CM3 = 6.02214076e23  # n_e / N_A = rho Z / A
BOHR_FM = 52917.72109


def screened_rutherford(material: Material, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1/lambda_1 in 1/mm, screening parameter A) of e+- of kinetic energy t (MeV) in a material.

    Screened Rutherford scattering on nuclei and atomic electrons (Z(Z+1)), d(sigma)/d(mu) ~ 1/(mu + A)^2 with
    mu = (1 - cos theta)/2 and Moliere's screening parameter A; lambda_1 is the first transport mean free path
    (<cos theta> after a path s at fixed energy is exp(-s / lambda_1)). For compounds A is the average of ln A
    weighted by each element's share of 1/lambda_1."""
    pc = np.sqrt(t * (t + 2.0 * ME))
    beta = pc / (t + ME)
    inv_l1 = np.zeros_like(t)
    log_a = np.zeros_like(t)
    for z, _, n in material.elements:
        a_tf = 0.885 * BOHR_FM * z ** (-1.0 / 3.0)
        screen = (HBARC_FM / (2.0 * pc * a_tf)) ** 2 * (1.13 + 3.76 * (ALPHA * z / beta) ** 2)
        k = z * (z + 1.0) * R_E_CM**2 * (ME / (pc * beta)) ** 2
        part = n * 2.0 * np.pi * k * (np.log1p(1.0 / screen) - 1.0 / (1.0 + screen)) / 10.0
        inv_l1 += part
        log_a += part * np.log(screen)
    return inv_l1, np.exp(log_a / inv_l1)


def restricted_collision_dedx(material: Material, t: np.ndarray, cut: float, positron: bool) -> np.ndarray:
    """Restricted collision stopping power (MeV/mm), Berger-Seltzer formula with density effect."""
    tau = t / ME
    gam = tau + 1.0
    g2 = gam * gam
    bg2 = tau * (tau + 2.0)
    beta2 = bg2 / g2
    eexc = material.mean_excitation_eV * 1e-6 / ME
    tmax = t if positron else 0.5 * t
    d = np.minimum(cut, tmax) / ME
    if not positron:
        dedx = (np.log(2.0 * (tau + 2.0) / eexc**2) - 1.0 - beta2 + np.log((tau - d) * d) + tau / (tau - d)
                + (0.5 * d * d + (2.0 * tau + 1.0) * np.log(1.0 - d / tau)) / g2)
    else:
        d2 = d * d * 0.5
        d3 = d2 * d / 1.5
        d4 = d3 * d * 0.75
        y = 1.0 / (1.0 + gam)
        dedx = np.log(2.0 * (tau + 2.0) / eexc**2) + np.log(tau * d) - beta2 * (
            tau + 2.0 * d - y * (3.0 * d2 + y * (d - d3 + y * (d2 - tau * d3 + d4)))) / tau
    dedx -= density_effect(material, np.sqrt(bg2))
    dedx *= TWOPI_MC2_RCL2 * material.electron_density / beta2
    return np.maximum(dedx, 0.0) / 10.0


MSC_MODELS = ("urban", "screened_rutherford")


@dataclass
class Cuts:
    """Production and tracking cuts (MeV kinetic, mm) and the physics options of the built-in engine.

    Production cuts: by default Geant4's conversion of a range cut (``range_cut_mm``, Geant4's default 0.7 mm)
    into thresholds for delta rays and brems photons in each material, as Geant4 applies it
    (``data/production_cuts.json``); ``range_cut_mm=None`` takes ``delta_production`` and ``photon_production``
    in every material; ``per_material`` overrides single materials."""

    electron_tracking: float = 0.01  # a floor only: e+- are range-rejected where they cannot leave their layer
    delta_production: float = 0.5    # used with range_cut_mm=None
    photon_production: float = 0.1   # used with range_cut_mm=None
    photon_tracking: float = 0.01
    range_cut_mm: float | None = 0.7
    msc_max_scatter: float = 1.0  # largest s / lambda_1 of one e+- step (screened-Rutherford scheme only)
    msc_min_step_mm: float = 0.001  # ... but no step shorter than this
    msc_hard_fraction: float = 0.2  # hard (single) elastic collisions: mean free path this times lambda_1
    # production cuts of single materials, {name: (delta rays, brems photons)} in MeV, instead of the above
    per_material: dict[str, tuple[float, float]] = field(default_factory=dict)
    # e+- multiple scattering: "urban" (Geant4's Urban model: its transport cross section, angular distribution,
    # path-length conversion, lateral displacement and UseSafety step limitation) or "screened_rutherford" (a
    # mixed scheme with steps of msc_max_scatter lambda_1, the engine's model before 2026-12-07)
    msc_model: str = "urban"
    lpm: bool = True  # Landau-Pomeranchuk-Migdal suppression of bremsstrahlung (Geant4's default)

    def __post_init__(self) -> None:
        if self.msc_model not in MSC_MODELS:
            raise HepFastSimError(f"unknown multiple-scattering model {self.msc_model!r}: {' or '.join(MSC_MODELS)}")
        if self.range_cut_mm is not None:
            lo, hi = _range_cut_table()[0][[0, -1]]
            if not (np.isfinite(self.range_cut_mm) and lo <= self.range_cut_mm <= hi):
                raise HepFastSimError(f"range cut {self.range_cut_mm!r} mm outside the tabulated {lo:g}-{hi:g} mm")

    def production(self, material: str) -> tuple[float, float]:
        """(delta-ray, brems-photon) production cuts (MeV) in a material."""
        if material in self.per_material:
            return self.per_material[material]
        if self.range_cut_mm is None:
            return self.delta_production, self.photon_production
        ranges, table = _range_cut_table()
        if material not in table:
            raise HepFastSimError(f"no range-cut conversion for material {material!r}: give Cuts(per_material=...)")
        # log-log interpolation in the range cut; never below the tables' 1 keV
        return tuple(max(float(np.exp(np.interp(np.log(self.range_cut_mm), np.log(ranges), np.log(table[material][p])))),
                         E_MIN) for p in ("e-", "gamma"))


@lru_cache(maxsize=None)
def _range_cut_table() -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Geant4's range-cut to energy conversion per material (``data/production_cuts.json``)."""
    doc = json.loads((resources.files("hepfastsim.fullsim") / "data" / "production_cuts.json").read_text())
    return np.array(doc["range_cuts_mm"]), {m: {p: np.array(v) for p, v in d.items()} for m, d in doc["materials"].items()}


@dataclass
class PhysicsTables:
    """Per-material tables on ``grid`` (kinetic energy, MeV); all rates in 1/mm, losses MeV/mm, ranges mm."""

    grid: np.ndarray
    dedx: np.ndarray        # (2, M, E): [e-, e+] restricted total loss
    range_: np.ndarray      # (2, M, E) CSDA range with the restricted loss
    mu_brems: np.ndarray    # (M, E) brems above photon cut (same for e- and e+; LPM and dielectric suppression)
    mu_delta: np.ndarray    # (2, M, E) Moller / Bhabha above delta cut
    mu_compton: np.ndarray  # (M, E)
    mu_photo: np.ndarray    # (M, E)
    mu_pair: np.ndarray     # (M, E)
    mu_tr: np.ndarray       # (2, M, E) [e-, e+] inverse first transport mean free path (multiple scattering)
    screen: np.ndarray      # (M, E) screening parameter A of the screened Rutherford angular distribution
    x0: np.ndarray          # (M,) radiation lengths, mm
    n_el: np.ndarray        # (M,) electrons per mm3
    samp_z: np.ndarray      # (M,) Z of the element used for sampling screening
    samp_fc: np.ndarray     # (M,) its Coulomb correction
    z_eff: np.ndarray       # (M,) mean Z per atom (the Urban model's material parameters)
    mean_exc: np.ndarray    # (M,) mean excitation energy, MeV (lower end of the collision spectrum)
    prod_cuts: np.ndarray   # (M, 2) production cuts, MeV: [delta rays, brems photons]
    lpm_energy: np.ndarray  # (M,) Migdal's LPM energy, MeV (0: no LPM suppression)
    density_factor: np.ndarray  # (M,) dielectric suppression: k_p^2 / E^2
    cuts: Cuts


def _transport_tables(materials: list[Material], grid: np.ndarray, msc_model: str, screened: np.ndarray) -> np.ndarray:
    """(2, M, E) inverse transport mean free paths of e- and e+ for the chosen multiple-scattering model
    (screened: the (M, E) screened-Rutherford ones, the same for e- and e+)."""
    if msc_model == "urban":
        return np.array([[urban_transport(mat, grid, positron) for mat in materials] for positron in (False, True)])
    return np.array([screened, screened])


def build_tables(materials: list[Material], cuts: Cuts) -> PhysicsTables:
    """Tabulate every cross section and stopping power for the given materials."""
    grid = energy_grid()
    m, ne = len(materials), len(grid)
    dedx = np.zeros((2, m, ne))
    rng = np.zeros((2, m, ne))
    mu_b = np.zeros((m, ne))
    mu_d = np.zeros((2, m, ne))
    mu_c = np.zeros((m, ne))
    mu_p = np.zeros((m, ne))
    mu_pair = np.zeros((m, ne))
    prod_cuts = np.array([cuts.production(mat.name) for mat in materials])
    x0 = np.array([mat.x0_mm for mat in materials])
    n_el = np.array([mat.electron_density / 1000.0 for mat in materials])  # per mm3
    # Migdal's LPM energy (0: no LPM suppression) and the dielectric factor k_p^2 / E^2 of each material
    lpm_energy = x0 * LPM_MEV_PER_MM if cuts.lpm else np.zeros(m)
    density_factor = n_el * MIGDAL_MM3
    for i, mat in enumerate(materials):
        delta_cut, k_cut = prod_cuts[i]
        rad_loss = np.zeros(ne)
        for z, _, n in mat.elements:
            lr, lp = l_rad(z)
            fc = coulomb_correction(z)
            xi = lp / (lr - fc)
            pref = ALPHA * R_E_CM**2 * z * (z + xi) * n  # 1/cm
            brems_pref = 16.0 / 3.0 * ALPHA * R_E_CM**2 * z * z * n  # 1/cm
            pair_bh = np.zeros(ne)
            for j, t in enumerate(grid):
                above, below = _brems_integrals(float(z), fc, float(t), k_cut, lpm_energy[i], density_factor[i])
                mu_b[i, j] += brems_pref * above / 10.0
                rad_loss[j] += brems_pref * below / 10.0
                pair_bh[j] = pref * _pair_integral(float(z), fc, float(t)) / 10.0
            fit = n * pair_per_atom_fit(z, grid) / 10.0
            join = np.searchsorted(grid, PAIR_FIT_MAX)
            scale = fit[join] / pair_bh[join] if pair_bh[join] > 0 else 1.0
            mu_pair[i] += np.where(grid <= grid[join], fit, pair_bh * scale)
            mu_p[i] += n * photo_per_atom(z, grid) / 10.0
            mu_c[i] += n * compton_per_atom(z, grid) / 10.0
        for q, positron in enumerate((False, True)):
            dedx[q, i] = restricted_collision_dedx(mat, grid, delta_cut, positron) + rad_loss
            mu_d[q, i] = mat.electron_density * moller_bhabha_per_electron(grid, delta_cut, positron) / 10.0
            inv = 1.0 / np.maximum(dedx[q, i], 1e-12)
            # range from the grid start: R(T0) = T0 / dEdx(T0), then trapezoid in T
            r0 = grid[0] / max(dedx[q, i, 0], 1e-12)
            rng[q, i] = r0 + np.concatenate([[0.0], np.cumsum(0.5 * (inv[1:] + inv[:-1]) * np.diff(grid))])
    samp = [mat.sampling_element for mat in materials]
    inv_l1, screen = np.array([screened_rutherford(mat, grid) for mat in materials]).transpose(1, 0, 2)
    return PhysicsTables(
        grid=grid, dedx=dedx, range_=rng, mu_brems=mu_b, mu_delta=mu_d, mu_compton=mu_c, mu_photo=mu_p,
        mu_pair=mu_pair, mu_tr=_transport_tables(materials, grid, cuts.msc_model, inv_l1),
        screen=screen, x0=x0, n_el=n_el,
        samp_z=np.array([float(z) for z, _ in samp]), samp_fc=np.array([coulomb_correction(z) for z, _ in samp]),
        z_eff=np.array([sum(z * n for z, _, n in mat.elements) / sum(n for *_, n in mat.elements) for mat in materials]),
        mean_exc=np.array([mat.mean_excitation_eV * 1e-6 for mat in materials]), prod_cuts=prod_cuts,
        lpm_energy=lpm_energy, density_factor=density_factor, cuts=cuts,
    )
