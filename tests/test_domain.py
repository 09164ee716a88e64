"""The domain contract (issue 17, part): a checkpoint records the conditions it was trained on and how its training
data was made; generation and routing refuse what lies outside unless told to extrapolate."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.calo_io import write_showers
from hepfastsim.errors import HepFastSimError
from hepfastsim.models import get_family, load_generator
from hepfastsim.tasks import calo_samples, calo_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_samples, fullsim_demo):
    """A shower library trained through the CLI on electrons of 1-10 GeV (a file with the engine's attributes)."""
    ref, _ = demo_samples
    d = tmp_path_factory.mktemp("domain")
    write_showers(d / "train.h5", ref.subset(slice(0, 1000)),
                  attrs={"binning": "demo", "particle": "e-", "engine": "builtin", "energy_spec": "log:1000:10000",
                         "geometry_id": fullsim_demo.binning.geometry_id, "threshold_MeV": 0.01515,
                         "physics_revision": fullsim_demo.attrs()["physics_revision"]})
    r = CliRunner().invoke(app, ["train", "--data", str(d / "train.h5"), "--model", "library", "--out", str(d / "lib.pt"),
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    return d


def test_checkpoint_records_domain_and_provenance(trained, demo_samples, fullsim_demo):
    m = load_generator(trained / "lib.pt")
    e = demo_samples[0].energies[:1000]
    lo, hi = m.domain_["energy_MeV"]  # of the 90 % training part
    assert e.min() <= lo < 1100 and 9000 < hi <= e.max()
    assert m.provenance_["particle"] == "e-" and m.provenance_["engine"] == "builtin"
    assert m.provenance_["physics_revision"] == fullsim_demo.attrs()["physics_revision"]   # which simulation it learnt


def test_holdout_energy_is_left_out_and_recorded(trained):
    """--holdout-energy: no shower within 5 % of it reaches the model, the count is printed, and the checkpoint
    (and so every generated file's model_domain) says which energy the model never saw."""
    from hepfastsim.data.calo_io import read_energies

    e = read_energies(trained / "train.h5")
    near = np.abs(e / 5000.0 - 1) <= 0.05
    r = CliRunner().invoke(app, ["train", "--data", str(trained / "train.h5"), "--model", "library", "--out",
                                 str(trained / "hold.pt"), "--holdout-energy", "5000"])
    assert r.exit_code == 0, r.output
    assert f"left out {near.sum()} of {len(e)} showers within 5 % of 5000 MeV" in r.output and near.sum() > 20
    m = load_generator(trained / "hold.pt")
    seen = m.c_lib_[:, 0]   # the library keeps its training showers' energies
    assert not np.any(np.abs(seen / 5000.0 - 1) <= 0.05) and len(seen) >= 0.8 * (len(e) - near.sum())
    assert m.provenance_["holdout_energy_MeV"] == 5000.0
    assert "holdout_energy_MeV" not in load_generator(trained / "lib.pt").provenance_
    # under torchrun only process 0 reports the count (RANK set, no process group: the training itself is serial)
    r = CliRunner().invoke(app, ["train", "--data", str(trained / "train.h5"), "--model", "library", "--out",
                                 str(trained / "hold1.pt"), "--holdout-energy", "5000"], env={"RANK": "1"})
    assert r.exit_code == 0 and "left out" not in r.output, r.output


def test_holdout_help_states_the_window_that_is_left_out():
    """`train --help` states the window of the one constant that training leaves out and evaluate scores."""
    from hepfastsim.data.samples import HOLDOUT_TOLERANCE

    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "300"})
    assert f"within {HOLDOUT_TOLERANCE * 100:g} % of this energy" in r.output, r.output


def test_generate_refuses_energies_outside_the_domain_unless_extrapolating(trained):
    run = CliRunner().invoke
    r = run(app, ["generate", "--model", str(trained / "lib.pt"), "--energies", "50000", "--n", "5",
                  "--out", str(trained / "g.h5")])
    assert r.exit_code == 2 and "outside the model's training domain" in r.output and "--extrapolate" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (trained / "g.h5").exists()
    # inside the domain, and within the 2 % margin (log width) at its edge: fine
    for spec in ("5000", "10300"):
        r = run(app, ["generate", "--model", str(trained / "lib.pt"), "--energies", spec, "--n", "5",
                      "--out", str(trained / "in.h5"), "--overwrite"])
        assert r.exit_code == 0, r.output
    r = run(app, ["generate", "--model", str(trained / "lib.pt"), "--energies", "50000", "--n", "5", "--extrapolate",
                  "--out", str(trained / "x.h5")])
    assert r.exit_code == 0, r.output
    with h5py.File(trained / "x.h5") as f:
        assert int(f.attrs["extrapolated_rows"]) == 5
        assert json.loads(f.attrs["model_domain"])["training_data"]["particle"] == "e-"


def test_domain_check_in_python_and_for_other_conditions(demo_samples, fullsim_demo):
    ref, _ = demo_samples
    m = get_family("library")(calo_spec(fullsim_demo.binning)).fit(calo_samples(ref.subset(slice(0, 500))))
    lo, hi = m.domain_["energy_MeV"]
    with pytest.raises(HepFastSimError, match="outside the model's training domain"):
        m.sample(np.array([[lo * 0.8]]))
    m.extrapolate = True
    assert m.sample(np.array([[lo * 0.8]])).shape == (1, fullsim_demo.binning.n_voxels)


def test_routing_refuses_a_model_of_another_particle(trained, fullsim_demo, tmp_path):
    (tmp_path / "lib.pt").write_bytes((trained / "lib.pt").read_bytes())
    (tmp_path / "p.yaml").write_text("default: full\nrules:\n  - {particle: [gamma], engine: fast, model: lib.pt}\n")
    from hepfastsim.routing import Policy, run_policy

    with pytest.raises(HepFastSimError, match="trained on e- showers"):
        run_policy(Policy.load(tmp_path / "p.yaml"), fullsim_demo, np.full(10, 5000.0), "gamma", seed=1)
