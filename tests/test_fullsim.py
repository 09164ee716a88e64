"""Issue: built-in detailed simulation — physics against PDG expectations, conservation, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from scipy.optimize import curve_fit

from hepfastsim.data.calo_io import read_showers
from hepfastsim.errors import HepFastSimError
from hepfastsim.fullsim import FullSim
from hepfastsim.fullsim.physics import Cuts
from hepfastsim.fullsim.transport import urban_cos_theta
from hepfastsim.geometry.detector import Detector, Layer, calochallenge_ds2

N_PER_ENERGY = {1000.0: 400, 10000.0: 200, 100000.0: 60}


def _t_max(depth, profile):
    """Depth of the maximum of a Gamma-function fit dE/dt ~ t^(a-1) exp(-b t) (PDG Eq. 34.36)."""
    f = lambda t, A, a, b: A * b * (b * t) ** (a - 1) * np.exp(-b * t)
    p, _ = curve_fit(f, depth, profile, p0=[profile.sum() * 0.8, 4.0, 0.5], maxfev=20000)
    return (p[1] - 1) / p[2]


@pytest.fixture(scope="module")
def runs(fullsim_demo):
    out = {}
    for particle in ("e-", "gamma"):
        for e, n in N_PER_ENERGY.items():
            out[(particle, e)] = fullsim_demo.run(np.full(n, e), particle, seed=11)
    return out


def test_stack_constants():
    d = calochallenge_ds2()
    assert d.depth_mm == pytest.approx(153.0)
    assert d.x0_mm == pytest.approx(4.22, rel=0.01)   # W X0 = 3.504 mm (PDG) diluted by Si
    assert 10.0 < d.moliere_radius_mm < 12.0


def test_energy_conservation(runs):
    for (particle, e), r in runs.items():
        total = r.totals[:, 0] + r.totals[:, 1] + r.totals[:, 2]
        np.testing.assert_allclose(total, e, rtol=1e-6)


def test_longitudinal_maximum_scaling(runs, fullsim_demo):
    depth = fullsim_demo.detector.depth_of_sensitive_x0()
    tmax = {k: _t_max(depth, r.si_layer.mean(0)) for k, r in runs.items()}
    for particle in ("e-", "gamma"):
        es = sorted(N_PER_ENERGY)
        slope = np.polyfit(np.log(es), [tmax[(particle, e)] for e in es], 1)[0]
        assert slope == pytest.approx(1.0, abs=0.15), (particle, slope)
    for e in N_PER_ENERGY:
        assert tmax[("gamma", e)] - tmax[("e-", e)] == pytest.approx(1.0, abs=0.4)


def test_lateral_containment_in_moliere_radius(runs, fullsim_demo):
    rm = fullsim_demo.detector.moliere_radius_mm
    r = runs[("e-", 10000.0)]
    cum = np.cumsum(r.radial.sum(0))
    radii = np.arange(1, len(cum) + 1) * 0.5
    frac = np.interp(rm, radii, cum) / r.totals[:, 3].sum()
    assert frac == pytest.approx(0.90, abs=0.05)


def test_sampling_fraction_and_resolution(runs):
    es = sorted(N_PER_ENERGY)
    sf = {e: runs[("e-", e)].totals[:, 3] / e for e in es}
    means = np.array([sf[e].mean() for e in es])
    assert np.all(np.abs(means / means.mean() - 1) < 0.03), means
    rel = np.array([sf[e].std() / sf[e].mean() for e in es])
    # fit sigma/E = a/sqrt(E/GeV) (+) b
    e_gev = np.array(es) / 1000
    (a2, b2), *_ = np.linalg.lstsq(np.stack([1 / e_gev, np.ones_like(e_gev)], 1), rel**2, rcond=None)
    a = np.sqrt(max(a2, 0))
    assert 0.10 <= a <= 0.30, (a, rel)


def test_readout_sums_sensitive_energy(runs, fullsim_demo):
    r = runs[("e-", 10000.0)]
    # stored voxel sum x sampling fraction = sensitive energy inside the readout radius above threshold:
    # a few % below the total
    ratio = r.showers.sum(1) * fullsim_demo.detector.sampling_fraction / r.totals[:, 3]
    assert np.all(ratio <= 1.0 + 1e-9)
    assert ratio.mean() > 0.95


def test_same_seed_same_output(fullsim_demo):
    a = fullsim_demo.run(np.full(5, 2000.0), "gamma", seed=3)
    b = fullsim_demo.run(np.full(5, 2000.0), "gamma", seed=3)
    c = fullsim_demo.run(np.full(5, 2000.0), "gamma", seed=4)
    assert np.array_equal(a.showers, b.showers)
    assert not np.array_equal(a.showers, c.showers)


def test_angled_incidence_shifts_nothing_on_axis(fullsim_demo):
    r = fullsim_demo.run(np.full(50, 5000.0), "e-", theta=0.3, seed=5)
    assert np.all(np.isfinite(r.showers))
    np.testing.assert_allclose(r.totals[:, :3].sum(1), 5000.0, rtol=1e-6)


def test_bad_inputs(fullsim_demo):
    with pytest.raises(HepFastSimError, match="unknown particle"):
        fullsim_demo.run(np.array([1000.0]), "muon+")
    with pytest.raises(HepFastSimError, match="positive"):
        fullsim_demo.run(np.array([-5.0]), "e-")
    with pytest.raises(HepFastSimError, match="e-, e\\+, gamma, not pi\\+; hadrons need --engine geant4"):
        fullsim_demo.run(np.array([1000.0]), "pi+")
    with pytest.raises(HepFastSimError, match="1 TeV"):
        fullsim_demo.run(np.array([2e6]), "e-")
    with pytest.raises(HepFastSimError, match="angles must be finite"):
        fullsim_demo.run(np.array([1000.0]), "e-", theta=np.nan)


def test_file_output_and_resume(fullsim_demo, tmp_path):
    p = tmp_path / "sim.h5"
    fullsim_demo.simulate_to_file(p, 40, "log:1000:3000", "e-", seed=9, chunk=20, progress=False)
    whole = read_showers(p)
    q = tmp_path / "sim2.h5"
    fullsim_demo.simulate_to_file(q, 20, "log:1000:3000", "e-", seed=9, chunk=20, progress=False)   # "interrupted"
    with pytest.raises(HepFastSimError, match="--resume"):
        fullsim_demo.simulate_to_file(q, 40, "log:1000:3000", "e-", seed=9, chunk=20, progress=False)
    fullsim_demo.simulate_to_file(q, 40, "log:1000:3000", "e-", seed=9, chunk=20, resume=True, progress=False)
    resumed = read_showers(q)
    assert np.array_equal(whole.showers, resumed.showers)
    assert np.array_equal(whole.energies, resumed.energies)
    assert set(whole.extras) == {"particle", "theta", "phi"}
    # a complete run whose last chunk is partial resumes to nothing: neither refused nor extended
    r = tmp_path / "sim3.h5"
    fullsim_demo.simulate_to_file(r, 30, "log:1000:3000", "e-", seed=9, chunk=20, progress=False)
    st = fullsim_demo.simulate_to_file(r, 30, "log:1000:3000", "e-", seed=9, chunk=20, resume=True, progress=False)
    assert len(read_showers(r)) == 30 and st["events"] == 30
    with pytest.raises(HepFastSimError, match="whole number of chunks"):   # its partial chunk cannot grow
        fullsim_demo.simulate_to_file(r, 40, "log:1000:3000", "e-", seed=9, chunk=20, resume=True, progress=False)


def test_resume_refuses_a_shard_of_another_chunk_range(fullsim_demo, tmp_path):
    """A shard resumed under another --n starts at another chunk: its showers would carry other chunks' seeds."""
    p = tmp_path / "shard_0001.h5"   # shard 1 of 8 showers in chunks of 2 on 2 shards holds chunks 2-3; stopped after 2
    fullsim_demo.simulate_to_file(p, 8, "2000", "e-", seed=1, chunk=2, chunks=range(2, 3), progress=False)
    with pytest.raises(HepFastSimError, match="first_chunk"):   # 12 showers: shard 1 holds chunks 3-5
        fullsim_demo.simulate_to_file(p, 12, "2000", "e-", seed=1, chunk=2, chunks=range(3, 6), resume=True,
                                      progress=False)
    fullsim_demo.simulate_to_file(p, 8, "2000", "e-", seed=1, chunk=2, chunks=range(2, 4), resume=True, progress=False)
    whole = tmp_path / "whole.h5"
    fullsim_demo.simulate_to_file(whole, 8, "2000", "e-", seed=1, chunk=2, progress=False)
    assert np.array_equal(read_showers(p).showers, read_showers(whole).showers[4:])


def test_tsai_mean_angle_matches_geant4():
    """G4ModifiedTsai: theta E/m = u, u = -ln(r1 r2) x 1.6 (p = 0.25) or x 1.6/3, so <u> = 2 (0.25 + 0.75/3) 1.6 = 1.6
    (the old constants u/1.6, u/0.5333 give 3.1)."""
    from hepfastsim.fullsim.physics import ME
    from hepfastsim.fullsim.transport import tsai_angles

    e_total = 1000.0
    u = tsai_angles(e_total, 200_000, 3) * e_total / ME
    assert u.mean() == pytest.approx(1.6, rel=0.01)


@pytest.mark.parametrize("kinetic", [1000.0, 10.0])
def test_multiple_scattering_does_not_depend_on_the_steps(fullsim_demo, kinetic):
    """1 mm of W in 10 or 200 steps: the same width of the central 98 % and the same <cos theta> = exp(-s/lambda_1)
    (a per-step Highland log term gives 0.7x the width over 0.05 mm steps)."""
    from hepfastsim.fullsim.transport import msc_through

    t = fullsim_demo.tables
    lam = 1.0 / np.interp(np.log(kinetic), np.log(t.grid), t.mu_tr[0, 0])
    screen = np.interp(np.log(kinetic), np.log(t.grid), t.screen[0])
    widths, means = [], []
    for n_steps in (10, 200):
        d = msc_through(lam, screen, fullsim_demo.cuts.msc_hard_fraction, 1.0, n_steps, 1, 60_000)
        tx = np.arctan2(d[:, 0], d[:, 2])
        core = np.abs(tx) < np.quantile(np.abs(tx), 0.98)
        widths.append(tx[core].std())
        means.append(1.0 - d[:, 2].mean())
    assert widths[0] == pytest.approx(widths[1], rel=0.03)
    if kinetic < 100:  # at 1 GeV <1 - cos> is carried by rare single scatters: too noisy for 60 000 tracks
        assert means[0] == pytest.approx(1.0 - np.exp(-1.0 / lam), rel=0.05)
        assert means[1] == pytest.approx(1.0 - np.exp(-1.0 / lam), rel=0.05)


def test_urban_scattering_of_a_10_mev_electron_does_not_depend_on_the_steps(fullsim_demo):
    """The default (Urban) model, 10 MeV e- through 1 mm of W in 10 or 200 steps: the same width of the central 98 %
    within 3 % and <1 - cos theta> = 1 - exp(-s/lambda_1) within 5 % (60 000 tracks; a 3x stronger log term in the
    width fails it). At 1 GeV Urban's width carries Highland's log term per step, as Geant4's does, and depends on
    the step; both engines take the same steps there (Urban's step limitation), so it is not tested here."""
    from hepfastsim.fullsim.transport import urban_step_limit, urban_through

    t, kinetic = fullsim_demo.tables, 10.0
    lam = 1.0 / np.interp(np.log(kinetic), np.log(t.grid), t.mu_tr[0, 0])
    rng = np.exp(np.interp(np.log(kinetic), np.log(t.grid), np.log(t.range_[0, 0])))
    tmin = urban_step_limit(kinetic, rng, lam, t.z_eff[0])[1]
    widths, means = [], []
    for n_steps in (10, 200):
        d = urban_through(lam, kinetic, t.x0[0], t.z_eff[0], tmin, 1.0, n_steps, 1, 60_000)
        tx = np.arctan2(d[:, 0], d[:, 2])
        widths.append(tx[np.abs(tx) < np.quantile(np.abs(tx), 0.98)].std())
        means.append(1.0 - d[:, 2].mean())
    assert widths[0] == pytest.approx(widths[1], rel=0.03)
    for m in means:
        assert m == pytest.approx(1.0 - np.exp(-1.0 / lam), rel=0.05)


def test_calochallenge_energy_convention():
    """Dataset-2 files store Si / 0.033: E_tot/E_inc near 1 (Geant4 here: 0.0323 / 0.033 = 0.98), cut at 15.15 keV
    in stored units; dataset-1 binnings cut at 1 MeV."""
    from hepfastsim.fullsim import FullSim
    from hepfastsim.geometry.binning import builtin_binning

    fs = FullSim(binning="ds2")
    r = fs.run(np.full(60, 10_000.0), "e-", seed=2)
    assert 0.95 <= (r.showers.sum(1) / r.energies).mean() <= 1.05
    nz = r.showers[r.showers > 0]
    assert nz.min() >= 0.5e-3 / 0.033
    assert builtin_binning("ds1-photons").threshold == 1.0
    assert builtin_binning("ds3").threshold == pytest.approx(15.15e-3, rel=1e-3)
    attrs = fs.attrs()
    assert attrs["sampling_fraction"] == 0.033 and attrs["engine"] == "builtin"


def test_named_binnings_are_shipped():
    from hepfastsim.geometry.binning import get_binning

    assert get_binning("ds2").n_voxels == 6480
    assert get_binning("ds3").n_voxels == 40500
    assert get_binning("ds1-photons").n_voxels == 368
    assert get_binning("ds1-pions").n_voxels == 533
    with pytest.raises(HepFastSimError, match="unknown binning 'dataset-2'"):
        get_binning("dataset-2")


def test_tables_match_geant4(fullsim_demo):
    """The built-in tables against Geant4 11.4 (values read with G4EmCalculator on this stack, 1/mm and MeV/mm):
    pair production, Compton and photo-absorption per volume, restricted collision loss (0.5 MeV delta cut)."""
    t = fullsim_demo.tables
    at = lambda tab, e: float(np.exp(np.interp(np.log(e), np.log(t.grid), np.log(np.maximum(tab, 1e-300)))))
    w, si = 0, 1
    geant4 = [  # (table, material, energy MeV, Geant4 value)
        (t.mu_pair, w, 3.0, 0.02043), (t.mu_pair, w, 10.0, 0.06777), (t.mu_pair, si, 10.0, 0.002169),
        (t.mu_compton, w, 0.02, 0.1375), (t.mu_compton, w, 1.0, 0.09961), (t.mu_compton, si, 0.1, 0.03331),
        (t.mu_photo, w, 0.1, 8.011), (t.mu_photo, w, 1.0, 0.02449), (t.mu_photo, si, 0.02, 0.9407),
    ]
    for tab, m, e, ref in geant4:
        assert at(tab[m], e) == pytest.approx(ref, rel=0.02), (m, e)
    from hepfastsim.fullsim.physics import restricted_collision_dedx
    from hepfastsim.geometry.materials import get_material

    for name, e, ref in (("W", 1.0, 1.9621), ("W", 10.0, 2.0036), ("Si", 1.0, 0.3524), ("Si", 10.0, 0.3478)):
        assert restricted_collision_dedx(get_material(name), np.array([e]), 0.5, False)[0] == pytest.approx(ref, rel=0.005)


def test_continuous_loss_of_a_fast_electron_resolves_a_thin_layer(fullsim_demo):
    """A 10 GeV electron loses ~0.1 MeV in 0.3 mm of Si, far below the ~2 MeV interpolation error of a range table at
    10 GeV: short steps lose dE/dx x step (Geant4's linLossLimit); long steps go through a range table whose inverse
    matches its forward interpolation, so range(t) - range(t - loss) is the step."""
    from hepfastsim.fullsim.transport import _lookup, mean_continuous_loss

    t = fullsim_demo.tables
    si, w = 1, 0
    log_e0, inv_dlog = np.log(t.grid[0]), 1.0 / np.log(t.grid[1] / t.grid[0])
    i = np.searchsorted(t.grid, 10_000.0)
    for e in np.geomspace(t.grid[i], t.grid[i + 1], 25):  # across one bin of the tables
        dedx = _lookup(t.dedx[0, si], log_e0, inv_dlog, e)
        r = _lookup(t.range_[0, si], log_e0, inv_dlog, e)
        loss = mean_continuous_loss(t.range_[0, si], t.dedx[0, si], t.grid, log_e0, inv_dlog, e, r, 0.3)
        assert loss == pytest.approx(0.3 * dedx, rel=1e-6)
    for e in np.geomspace(0.2, 20.0, 25):  # steps of 30 % of the range
        r = _lookup(t.range_[0, w], log_e0, inv_dlog, e)
        loss = mean_continuous_loss(t.range_[0, w], t.dedx[0, w], t.grid, log_e0, inv_dlog, e, r, 0.3 * r)
        assert _lookup(t.range_[0, w], log_e0, inv_dlog, e - loss) == pytest.approx(0.7 * r, rel=1e-6)


def test_a_fast_primary_ionises_the_first_si_layer():
    """Every 10 GeV electron crosses the first 0.3 mm Si layer of the dataset-2 stack as a MIP (Geant4 here: > 0.07
    MeV in 200 of 200 showers, median 0.24 MeV). A range-table loss once gave 0 in a third of them."""
    from hepfastsim.fullsim import FullSim

    si0 = FullSim(binning="ds2").run(np.full(40, 10_000.0), "e-", seed=4).si_layer[:, 0]
    assert (si0 > 0.03).all(), np.sort(si0)[:5]


def test_per_material_production_cuts_replace_the_global_ones():
    """Cuts.per_material sets one material's delta-ray and photon cuts (MeV): the default cuts given per material,
    with other global values, give bit-identical showers; without delta rays from the tungsten (cut 50 MeV there)
    ~6 % less energy reaches the silicon at 1 GeV (400 showers: 0.9 % standard error): delta rays of W cross into Si."""
    from hepfastsim.fullsim import FullSim
    from hepfastsim.fullsim.physics import Cuts

    e = np.full(400, 1000.0)
    ref = FullSim(binning="ds2").run(e, "e-", seed=3)
    w, si = Cuts().production("W"), Cuts().production("Si")
    same = FullSim(binning="ds2", cuts=Cuts(range_cut_mm=None, delta_production=2.0, photon_production=0.5,
                                            per_material={"W": w, "Si": si})).run(e, "e-", seed=3)
    np.testing.assert_array_equal(ref.showers, same.showers)
    no_w_delta = FullSim(binning="ds2", cuts=Cuts(per_material={"W": (50.0, w[1])})).run(e, "e-", seed=3)
    assert no_w_delta.totals[:, 3].mean() / ref.totals[:, 3].mean() < 0.975
    with pytest.raises(HepFastSimError, match="'Pb', a material detector"):
        FullSim(binning="ds2", cuts=Cuts(per_material={"Pb": (0.5, 0.1)}))
    with pytest.raises(HepFastSimError, match="two positive energies"):
        FullSim(binning="ds2", cuts=Cuts(per_material={"W": (0.0, 0.1)}))


def test_mip_loss_in_300_um_si_has_the_landau_peak(fullsim_demo):
    """The sub-cut loss of a 10 GeV electron crossing 0.3 mm of Si: most probable ~84-90 keV (PDG review, passage of
    particles through matter: Bichsel's straggling functions, ~0.28 keV/um on the plateau) and the mean kept. A sum
    of Rutherford collisions from the mean excitation energy (the model before Geant4's Urban one) peaked at 63 keV."""
    from numba import njit

    from hepfastsim.fullsim.transport import _lookup, sample_subcut_loss

    t = fullsim_demo.tables
    si = 1
    mean = 0.3 * _lookup(t.dedx[0, si], np.log(t.grid[0]), 1.0 / np.log(t.grid[1] / t.grid[0]), 10_000.0)

    @njit
    def draw(n: int, mean: float, i_exc: float) -> np.ndarray:
        np.random.seed(3)
        return np.array([sample_subcut_loss(mean, i_exc, 0.5) for _ in range(n)])

    x = draw(200_000, mean, t.mean_exc[si])
    counts, edges = np.histogram(x, bins=np.arange(0.0, 0.3, 0.002))
    mode = edges[np.argmax(counts)] + 0.001
    assert 0.078 <= mode <= 0.095
    assert x.mean() == pytest.approx(mean, rel=0.01)


def test_a_file_of_another_physics_revision_is_not_resumed_nor_reused(fullsim_demo, tmp_path, capsys):
    """Showers of two revisions of the built-in physics must not end up in one file (--resume) or stand in for the
    current simulation (the demo's cached samples): the file records the revision, resume refuses a different or
    missing one in one line, the cache simulates anew."""
    import h5py

    from hepfastsim.demo import cached_simulation

    p = tmp_path / "old.h5"
    fullsim_demo.simulate_to_file(p, 20, "log:1000:3000", "e-", seed=9, chunk=20, progress=False)
    with h5py.File(p, "a") as f:
        assert f.attrs["physics_revision"] == fullsim_demo.attrs()["physics_revision"]
        del f.attrs["physics_revision"]      # as a file of a version before revisions were recorded
    with pytest.raises(HepFastSimError, match="physics_revision 'none' in the file"):
        fullsim_demo.simulate_to_file(p, 40, "log:1000:3000", "e-", seed=9, chunk=20, resume=True, progress=False)
    cached_simulation(fullsim_demo, p, 20, "log:1000:3000", 9, progress=False)
    assert "simulating it anew" in capsys.readouterr().out
    with h5py.File(p, "r") as f:
        assert f.attrs["physics_revision"] == fullsim_demo.attrs()["physics_revision"]
    cached_simulation(fullsim_demo, p, 20, "log:1000:3000", 9, progress=False)   # current: reused as it is
    assert "simulating" not in capsys.readouterr().out


@njit(cache=False)
def _urban_mean_cos(seed, n, step, lam, e0, e1, x0, z_eff):
    np.random.seed(seed)
    total = 0.0
    for _ in range(n):
        total += urban_cos_theta(step, lam, e0, e1, x0, z_eff, 1e-6)
    return total / n


@pytest.mark.parametrize("tau", [0.02, 0.3, 2.0])
@pytest.mark.parametrize("material, e_mev", [("W", 2.0), ("Si", 30.0)])
def test_urban_angular_distribution_has_the_transport_mean(material, e_mev, tau):
    """Urban's angular distribution keeps <cos theta> = exp(-step / lambda_1), what the transport cross section
    means, at small steps (its central width and tail; a 1.5x wider theta0 fails) and large ones (its two-function
    large-angle model). Not everywhere: for steps of several X0 at 100 MeV Urban's own mean falls below exp(-tau)."""
    from hepfastsim.geometry.materials import get_material

    mat = get_material(material)
    t = FullSim(Detector("one", (Layer(material, 1.0, True),) * 45, 1.0), "ds2", cuts=Cuts(msc_model="urban")).tables
    lam = 1.0 / np.interp(np.log(e_mev), np.log(t.grid), t.mu_tr[0, 0])
    n = 200_000
    mean = _urban_mean_cos(7, n, tau * lam, lam, e_mev, 0.97 * e_mev, mat.x0_mm, float(t.z_eff[0]))
    assert abs(mean - np.exp(-tau)) < 4.0 / np.sqrt(n), (mean, np.exp(-tau))


def test_urban_transport_cross_section_is_geant4s():
    """The shipped per-element table reproduces Geant4's Urban 1/lambda_1 of W and Si (printed by G4EmCalculator
    on 2026-12-07, Geant4 11.4.1: e- 1 MeV in W 25.16 /mm, e+ 16.97 /mm) and tells e+ from e-."""
    from hepfastsim.fullsim.physics import urban_transport
    from hepfastsim.geometry.materials import get_material

    w = get_material("W")
    e_minus, e_plus = (urban_transport(w, np.array([1.0]), positron)[0] for positron in (False, True))
    assert e_minus == pytest.approx(25.16, rel=0.01) and e_plus == pytest.approx(16.97, rel=0.01)


def test_the_msc_model_is_checked_and_recorded_in_the_file_attributes():
    """An unknown model is a one-line error; a file made with a non-default option says so in its physics attribute
    (a run with other options is then not resumed into it), and the production cuts applied are recorded."""
    with pytest.raises(HepFastSimError, match="unknown multiple-scattering model 'molière'"):
        Cuts(msc_model="molière")
    assert FullSim(binning="ds2").attrs()["physics"] == "hepfastsim built-in EM Monte Carlo"
    other = FullSim(binning="ds2", cuts=Cuts(msc_model="screened_rutherford", lpm=False)).attrs()["physics"]
    assert other.endswith("(screened-Rutherford multiple scattering) (no LPM)")
    assert "W: delta 1.649, photon 0.09772; Si: delta 0.4233, photon 0.005854" in FullSim(binning="ds2").attrs()["cuts_MeV"]


# Geant4 11.4.1's G4eBremsstrahlungRelModel (data-free list), printed by G4EmCalculator on 2026-12-07 at the 0.7 mm
# range cut (photons: W 0.09772 MeV, Si 0.005854 MeV): (material, e- kinetic MeV, 1/mm above the cut, MeV/mm below)
GEANT4_BREMS = [("W", 1e3, 3.0986, 0.0040055), ("W", 1e5, 2.2186, 4.9043e-07), ("W", 1e6, 1.4289, 4.9044e-09),
                ("Si", 1e3, 0.13127, 2.6094e-07), ("Si", 1e5, 0.12066, 2.6265e-11), ("Si", 1e6, 0.095681, 2.6266e-13)]


def test_bremsstrahlung_is_geant4s_with_lpm_and_dielectric_suppression():
    """The built-in bremsstrahlung tables against Geant4's relativistic model at its cuts: the number of photons
    above the cut within 2.5 % (1 GeV: 0.01 %, 1 TeV in W: 1.9 %) and the radiative loss below it within 1 %. Without
    the dielectric suppression (k_p ~ 160 keV at 1 GeV in W) the 1 GeV rows are 8 % (W) and 26 % (Si) high, without the
    LPM suppression the 100 GeV W row is 2.3x: the test tells both apart."""
    from hepfastsim.fullsim.physics import restricted_collision_dedx
    from hepfastsim.geometry.materials import get_material

    det = Detector("w_si", (Layer("W", 1.4, False), Layer("Si", 0.3, True)) * 45, 0.033)
    t = FullSim(det, "ds2").tables
    for name, e, above, below in GEANT4_BREMS:
        m, j = ["W", "Si"].index(name), int(np.argmin(np.abs(np.log(t.grid / e))))   # e is a grid point
        assert t.mu_brems[m, j] == pytest.approx(above, rel=0.025), (name, e)
        collision = restricted_collision_dedx(get_material(name), t.grid[j:j + 1], t.prod_cuts[m, 0], False)[0]
        assert t.dedx[0, m, j] - collision == pytest.approx(below, rel=0.01), (name, e)


def test_sampled_bremsstrahlung_spectrum_follows_the_tables():
    """Photon energies drawn by the transport's sampler (100 000 at 1 and 100 GeV in W, LPM and dielectric
    suppression on) fall below 1 % and 10 % of E as often as the integrated spectrum says (within 4 sigma):
    sampling and tables describe one spectrum."""
    from hepfastsim.fullsim.physics import _brems_integrals, build_tables
    from hepfastsim.fullsim.transport import brems_spectrum_sample
    from hepfastsim.geometry.materials import coulomb_correction, get_material

    w = get_material("W")
    t_w = build_tables([w], Cuts())
    lpm_energy, density_factor = t_w.lpm_energy[0], t_w.density_factor[0]
    fc, k_cut, n = coulomb_correction(74.0), 0.0977, 100_000
    for t in (1e3, 1e5):
        k = brems_spectrum_sample(74.0, fc, t, k_cut, lpm_energy, density_factor, n, 5)
        total = _brems_integrals(74.0, fc, t, k_cut, lpm_energy, density_factor)[0]
        for frac in (0.01, 0.1):
            expected = 1.0 - _brems_integrals(74.0, fc, t, frac * t, lpm_energy, density_factor)[0] / total
            got = float(np.mean(k < frac * t))
            assert abs(got - expected) < 4 * np.sqrt(expected * (1 - expected) / n), (t, frac, got, expected)


def test_range_cuts_convert_as_in_geant4():
    """The default production cuts are Geant4's conversion of its 0.7 mm range cut (G4EmCalculator: e- in W
    1.649 MeV, photons in Si 5.854 keV); a range cut between the tabulated ones interpolates between them; a range
    cut outside the table or a material without a conversion is a one-line error; range_cut_mm=None takes the fixed
    cuts."""
    assert Cuts().production("W") == pytest.approx((1.6490, 0.097719), rel=1e-4)
    assert Cuts().production("Si") == pytest.approx((0.42334, 0.0058542), rel=1e-4)
    lo, mid, hi = (Cuts(range_cut_mm=r).production("Pb") for r in (0.5, 0.6, 0.7))
    assert all(a < b < c for a, b, c in zip(lo, mid, hi))
    assert Cuts(range_cut_mm=None, delta_production=0.3).production("W") == (0.3, 0.1)
    with pytest.raises(HepFastSimError, match="range cut 50.0 mm outside the tabulated 0.01-10 mm"):
        Cuts(range_cut_mm=50.0)
    with pytest.raises(HepFastSimError, match="no range-cut conversion for material 'Kryptonite'"):
        Cuts().production("Kryptonite")
