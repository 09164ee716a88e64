"""Compiled particle-by-particle transport of e-, e+ and photons through a planar layer stack.

Class-II condensed history as in EGS4/Geant4 "standard" physics:
charged particles lose energy continuously (restricted stopping power, with Gaussian-
Gamma straggling of the sub-cut loss), scatter by Highland multiple scattering with
correlated lateral displacement, and make discrete bremsstrahlung or delta rays above
the production cuts; photons make pair production, Compton scattering or photo-
absorption. Positrons annihilate at rest into two back-to-back 511 keV photons.
Steps never cross a layer boundary, so every deposit belongs to one layer.

Energy bookkeeping per shower (``totals``): [deposited continuously, escaped,
deposited below the tracking cuts, deposited in sensitive layers]; the first three sum
to the incident kinetic energy (+2 m_e for an incident positron).
Each shower seeds numba's per-thread generator with seed + index, so results do not
depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hepfastsim.fullsim.physics import ME, bhabha_coefficients, brems_shape, pair_shape, screening_phi

ELECTRON, POSITRON, PHOTON = 0, 1, 2
STACK_SIZE = 4096
MAX_TRIALS = 1000  # bound of every rejection loop
TWOPI_RE2_MM = 2.0 * np.pi * 7.9407877e-24  # 2 pi r_e^2 in mm2
N_RADIAL_DIAG = 200  # diagnostic radial histogram: 0.5 mm bins up to 100 mm
RADIAL_DIAG_BIN = 0.5


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
    """Inverse of the range table (binary search + linear interpolation)."""
    if r <= range_tab[0]:
        return grid[0] * r / range_tab[0]
    lo, hi = 0, range_tab.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if range_tab[mid] > r:
            hi = mid
        else:
            lo = mid
    f = (r - range_tab[lo]) / (range_tab[hi] - range_tab[lo])
    return grid[lo] + f * (grid[hi] - grid[lo])


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
    """Polar angle cosine of a brems photon / pair lepton (modified Tsai distribution, Geant4)."""
    umax = 2.0 * e_total / ME
    u = 0.0
    for _trial in range(MAX_TRIALS):
        u = -np.log(np.random.random() * np.random.random())
        u = u / 1.6 if np.random.random() < 0.25 else u / 0.5333333
        if u <= umax:
            break
    return 1.0 - 2.0 * u * u / (umax * umax)


@njit(cache=True)
def _deposit(e, x, y, z, si, ro_group, n_ro, x0_entry, y0_entry, tx, ty,
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
    lay = si // ro_group
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
def simulate_one(ptype0, t0, x_entry, y_entry, ux0, uy0, uz0, seed,
                 z_front, z_back, lmat, lsens, ro_group,
                 grid, range_, mu_brems, mu_delta, mu_compton, mu_photo, mu_pair,
                 x0, n_el, samp_z, samp_fc, cuts,
                 r_edges, n_r, n_a, offs, r_max,
                 voxels, si_layer, radial, totals):
    """Transport one primary and all its secondaries; fills voxels, si_layer, radial and totals in place."""
    np.random.seed(seed)
    e_track, delta_cut, k_cut, g_track = cuts[0], cuts[1], cuts[2], cuts[3]
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
                        sens += _deposit(t, x, y, z, lsens[lay], ro_group, n_ro, x_entry, y_entry, tx, ty,
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
                    # photo-absorption: photoelectron with the photon energy (binding and fluorescence neglected)
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
                        below += lost
                    t = e_gam
                    ux, uy, uz = gx, gy, gz
                    n_lambda = -np.log(np.random.random())
                    continue
                else:
                    # pair production, Bethe-Heitler with screening
                    zz, fc = samp_z[m], samp_fc[m]
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
                        below += lost
                    t = 0.0
                    break
            if ptype == PHOTON:
                continue
        # ---------------- electron / positron ----------------
        q = 1 if ptype == POSITRON else 0
        n_lambda = -np.log(np.random.random())
        while True:
            if t <= e_track:
                below += t
                if lsens[lay] >= 0:
                    sens += _deposit(t, x, y, z, lsens[lay], ro_group, n_ro, x_entry, y_entry, tx, ty,
                                     r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial)
                break
            m = lmat[lay]
            rng = _lookup(range_[q, m], log_e0, inv_dlog, t)
            mu_b = _lookup(mu_brems[m], log_e0, inv_dlog, t) if t > k_cut else 0.0
            mu_d = _lookup(mu_delta[q, m], log_e0, inv_dlog, t)
            mu_tot = mu_b + mu_d
            s_int = n_lambda / mu_tot if mu_tot > 0 else 1e30
            s_loss = max(0.2 * rng, 0.05) if rng > 0.05 else rng
            s_geo = _distance_to_boundary(z, uz, lay, z_front, z_back)
            step = min(s_int, s_loss, s_geo, rng)
            forward = uz > 0
            kind = 0  # 0 continuous, 1 boundary, 2 discrete
            if step == s_geo:
                kind = 1
            elif step == s_int:
                kind = 2
            # continuous loss from the range table, with Gamma-distributed straggling (Bohr variance)
            if step >= rng:
                de = t
            else:
                de = t - _energy_from_range(range_[q, m], grid, rng - step)
                de = min(max(de, 0.0), t)
                gam = t / ME + 1.0
                beta2 = 1.0 - 1.0 / (gam * gam)
                tc = min(delta_cut, t)
                var = TWOPI_RE2_MM * ME * n_el[m] * step * tc * (1.0 - 0.5 * beta2) / beta2
                if de > 0.0 and var > 0.0:
                    shape = de * de / var
                    de = min(np.random.gamma(shape, var / de), t)
            # deposit at the step middle
            xm, ym, zm = x + 0.5 * step * ux, y + 0.5 * step * uy, z + 0.5 * step * uz
            dep += de
            if lsens[lay] >= 0:
                sens += _deposit(de, xm, ym, zm, lsens[lay], ro_group, n_ro, x_entry, y_entry, tx, ty,
                                 r_edges, n_r, n_a, offs, r_max, voxels, si_layer, radial)
            t_mid = max(t - 0.5 * de, 1e-6)
            t -= de
            # multiple scattering (Highland) with correlated lateral displacement
            e_tot = t_mid + ME
            pc = np.sqrt(t_mid * (t_mid + 2.0 * ME))
            beta = pc / e_tot
            xr = step / x0[m]
            corr = 1.0 + 0.038 * np.log(max(xr / (beta * beta), 1e-10))
            theta0 = 13.6 / (beta * pc) * np.sqrt(xr) * max(corr, 0.0)
            z1, z2 = np.random.normal(), np.random.normal()
            z3, z4 = np.random.normal(), np.random.normal()
            th_x, th_y = z1 * theta0, z3 * theta0
            lat_x = step * theta0 * (z1 / np.sqrt(12.0) + z2 * 0.5)
            lat_y = step * theta0 * (z3 / np.sqrt(12.0) + z4 * 0.5)
            # move along the straight line, then displace transversely (in x, y): z stays inside the layer
            x += step * ux + lat_x
            y += step * uy + lat_y
            z += step * uz
            th2 = th_x * th_x + th_y * th_y
            if th2 > 0.0:
                cost = np.cos(min(np.sqrt(th2), np.pi))
                ux, uy, uz = _rotate(ux, uy, uz, cost, np.arctan2(th_y, th_x))
            if t <= 0.0:
                break
            if kind == 1:
                n_lambda -= step * mu_tot
                z, lay = _cross(forward, lay, z_front, z_back)
                if lay < 0 or lay >= n_layers:
                    esc += t + (2.0 * ME if ptype == POSITRON else 0.0)
                    ptype = -1  # escaped: no annihilation
                    break
                continue
            if kind == 2:
                if np.random.random() * mu_tot < mu_b:
                    # bremsstrahlung photon energy from 1/k times the screened Bethe-Heitler bracket
                    zz, fc = samp_z[m], samp_fc[m]
                    e_tot = t + ME
                    p1, p2 = screening_phi(0.0)
                    c = 4.0 / 3.0 * np.log(zz) + 4.0 * fc
                    gmax = 2.0 * (p1 - c) - 2.0 / 3.0 * (p2 - c)
                    for _trial in range(MAX_TRIALS):
                        k = k_cut * (t / k_cut) ** np.random.random()
                        if brems_shape(zz, fc, e_tot, k) >= gmax * np.random.random():
                            break
                    cst = _tsai_cost(e_tot)
                    gx, gy, gz = _rotate(ux, uy, uz, cst, 2.0 * np.pi * np.random.random())
                    top, lost = _push(s_type, s_e, s_pos, s_dir, s_lay, top, PHOTON, k, x, y, z, gx, gy, gz, lay)
                    below += lost
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
                    below += lost
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
                below += lost
    totals[0] = dep
    totals[1] = esc
    totals[2] = below
    totals[3] = sens


@njit(cache=True, parallel=True)
def simulate_batch(ptypes, energies, x_entry, y_entry, ux, uy, uz, seeds,
                   z_front, z_back, lmat, lsens, ro_group,
                   grid, range_, mu_brems, mu_delta, mu_compton, mu_photo, mu_pair,
                   x0, n_el, samp_z, samp_fc, cuts,
                   r_edges, n_r, n_a, offs, r_max, n_sens):
    """Simulate N primaries in parallel; returns voxels (N, V), si_layer (N, S), radial (N, R), totals (N, 4)."""
    n = energies.shape[0]
    voxels = np.zeros((n, offs[-1]))
    si_layer = np.zeros((n, n_sens))
    radial = np.zeros((n, N_RADIAL_DIAG))
    totals = np.zeros((n, 4))
    for i in prange(n):
        simulate_one(ptypes[i], energies[i], x_entry[i], y_entry[i], ux[i], uy[i], uz[i], seeds[i],
                     z_front, z_back, lmat, lsens, ro_group,
                     grid, range_, mu_brems, mu_delta, mu_compton, mu_photo, mu_pair,
                     x0, n_el, samp_z, samp_fc, cuts,
                     r_edges, n_r, n_a, offs, r_max,
                     voxels[i], si_layer[i], radial[i], totals[i])
    return voxels, si_layer, radial, totals
