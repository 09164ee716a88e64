"""Fast/full routing by a YAML policy."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.calo_io import read_showers
from hepfastsim.errors import HepFastSimError
from hepfastsim.models import get_family
from hepfastsim.routing import Policy, run_policy
from hepfastsim.tasks import calo_samples, calo_spec


@pytest.fixture(scope="module")
def lib_model(tmp_path_factory, demo_samples, fullsim_demo):
    ref, _ = demo_samples
    m = get_family("library")(calo_spec(fullsim_demo.binning))
    m.fit(calo_samples(ref))
    d = tmp_path_factory.mktemp("routing")
    m.save(d / "lib.pt")
    (d / "policy.yaml").write_text("default: full\nrules:\n"
                                   "  - {particle: e-, energy_MeV: [3000, 1.0e6], engine: fast, model: lib.pt}\n")
    return d


def test_policy_routes_by_energy_and_records_engine(lib_model, fullsim_demo):
    pol = Policy.load(lib_model / "policy.yaml")
    e = np.exp(np.random.default_rng(0).uniform(np.log(1000), np.log(9000), 300))
    ds, st = run_policy(pol, fullsim_demo, e, "e-", seed=3, calibration_events=20)
    np.testing.assert_array_equal(ds.extras["engine"], (e >= 3000).astype(np.int32))
    full = e < 3000
    # the full-simulation events are exactly what the detailed simulation gives for them with the same seed
    np.testing.assert_array_equal(ds.showers[full], fullsim_demo.run(e[full], "e-", seed=3).showers.astype(np.float32))
    assert st["fast_events"] == int((~full).sum()) and st["seconds_saved"] > 0
    assert 0 < st["time_fraction_of_pure_full"] < 1


def test_simulate_policy_cli(lib_model, tmp_path):
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "mix.h5"), "--n", "100", "--energies", "log:1000:9000",
                                 "--policy", str(lib_model / "policy.yaml"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "saved" in r.output
    ds = read_showers(tmp_path / "mix.h5")
    assert set(np.unique(ds.extras["engine"])) == {0, 1}


@pytest.mark.parametrize("text, msg", [
    ("rules:\n  - {engine: warp}\n", "engine must be one of"),
    ("rules:\n  - {engine: fast}\n", "names no model"),
    ("rules:\n  - {engine: fast, model: nope.pt}\n", "model not found"),
    ("rules:\n  - {engine: full, energy_MeV: [5, 1]}\n", "low < high"),
    ("rules:\n  - {engine: full, particle: muon}\n", "unknown particle"),
])
def test_bad_policies(tmp_path, text, msg):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(HepFastSimError, match=msg):
        Policy.load(p)


def test_policy_routes_by_particle(lib_model, fullsim_demo, tmp_path):
    """e- to the fast model, gamma to the detailed simulation, drawn per event from 'e-,gamma'; a hadron in the mix
    with no fast rule goes to the detailed simulation, which for the built-in engine is a one-line error."""
    (tmp_path / "lib.pt").write_bytes((lib_model / "lib.pt").read_bytes())
    (tmp_path / "p.yaml").write_text("default: full\nrules:\n  - {particle: [e-], engine: fast, model: lib.pt}\n")
    pol = Policy.load(tmp_path / "p.yaml")
    e = np.full(200, 5000.0)
    ds, st = run_policy(pol, fullsim_demo, e, "e-,gamma", seed=4, calibration_events=10)
    pdg = ds.extras["particle"]
    assert set(np.unique(pdg)) == {11, 22} and st["events_per_particle"][22] == int((pdg == 22).sum())
    np.testing.assert_array_equal(ds.extras["engine"], (pdg == 11).astype(np.int32))
    gamma = pdg == 22
    np.testing.assert_array_equal(ds.showers[gamma], fullsim_demo.run(e[gamma], "gamma", seed=4).showers.astype(np.float32))
    with pytest.raises(HepFastSimError, match="--engine geant4"):
        run_policy(pol, fullsim_demo, e[:20], "e-,pi+", seed=4)
