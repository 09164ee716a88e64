"""Issue 21: hadron showers through the Geant4 engine's data-free FTFP_BERT, the dataset-1-like calorimeter."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.detector import load_detector

needs_geant4 = pytest.mark.skipif(importlib.util.find_spec("geant4_pybind") is None,
                                  reason="geant4_pybind is not installed")

# one Geant4 per process: the whole Geant4 part runs in one subprocess that prints its measurements as JSON
_GEANT4_RUN = """
import json, sys
import numpy as np
from hepfastsim.fullsim import make_engine
from hepfastsim.fullsim.geant4.hadronic import cross_section_per_atom
from hepfastsim.geometry.detector import load_detector
out = sys.argv[1]
sim = make_engine("geant4", load_detector("atlas_barrel_ds1"), "ds1-pions")
stats = sim.simulate_to_file(out, 10, "10000", "pi+", seed=3, chunk=5, progress=False)
xs = {e: cross_section_per_atom(sim.g4, "neutron", "inelastic", e, "Fe", "G4_Fe") for e in (5.0, 14.0, 30.0)}
stopped = sim.run(np.full(5, 30.0), "pi-", seed=4)
print(json.dumps({"xs": xs, "repair": sim.bgg_repair, "stopped_end": sim.primary_end_process,
                  "stopped_visible": stopped.si_layer.sum(1).tolist(), "seconds": stats["seconds"]}))
"""


@pytest.fixture(scope="module")
def geant4_pions(tmp_path_factory):
    out = tmp_path_factory.mktemp("hadrons") / "pions.h5"
    res = subprocess.run([sys.executable, "-c", _GEANT4_RUN, str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return out, json.loads(res.stdout.strip().splitlines()[-1])


@needs_geant4
def test_ten_pions_through_the_data_free_list_make_a_valid_ds1_file(geant4_pions):
    """10 pi+ of 10 GeV in the dataset-1-like calorimeter: 533 voxels of the ds1-pions binning, cells at or above
    1 MeV, a visible E/E of a pion (0.5-1.2 in EM-scale units), engine options recorded in the file."""
    from hepfastsim.data.calo_io import file_summary, read_showers

    out, _ = geant4_pions
    ds = read_showers(out)
    assert ds.showers.shape == (10, 533)
    nz = ds.showers[ds.showers > 0]
    assert nz.min() >= 1.0
    ratio = ds.showers.sum(1) / ds.energies
    assert 0.5 < ratio.mean() < 1.2, ratio
    attrs = file_summary(out)["attrs"]
    assert attrs["physics"] == "data-free-FTFP_BERT" and attrs["particle"] == "pi+"
    assert attrs["birks_mm_per_MeV"] == 0.126 and attrs["time_cut_ns"] == 100.0
    sf = np.asarray(attrs["sampling_fraction"])
    assert sf.shape == (24,) and sf[2] == pytest.approx(0.2045) and sf[13] == pytest.approx(0.0313)


@needs_geant4
def test_neutron_inelastic_cross_section_on_iron_below_14_mev(geant4_pions):
    """Guards the repaired Geant4 11.4 BGG low-energy factors: Barashenkov's 1.44 b on Fe at 14 MeV within 15 %
    (unrepaired: 2.0 b), and continuous across 14 MeV."""
    _, res = geant4_pions
    xs = {float(k): v for k, v in res["xs"].items()}
    assert xs[14.0] == pytest.approx(1.44, rel=0.15)
    assert 0.5 < xs[5.0] < 1.8 and 1.0 < xs[30.0] < 1.6
    assert res["repair"]["neutron:Fe"] == pytest.approx(0.73, abs=0.05)  # the bug is there and was repaired


@needs_geant4
def test_stopped_negative_pion_is_captured(geant4_pions):
    """A 30 MeV pi- stops in the front iron and is absorbed by a nucleus (Bertini capture at rest), no crash."""
    _, res = geant4_pions
    assert all("CaptureAtRest" in name for name in res["stopped_end"]), res["stopped_end"]
    assert len(res["stopped_visible"]) == 5


def test_hadron_from_the_builtin_engine_is_a_one_line_error_naming_geant4(tmp_path):
    for particle in ("pi+", "proton", "neutron"):
        r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x.h5"), "--n", "2", "--particle", particle])
        assert r.exit_code == 2
        assert "--engine geant4" in r.output and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()


def test_ds1_detector_readout_map_and_sampling_fractions():
    """Seven readout layers (0-3 LAr, 12-14 Tile) of the ds1-pions binning, each with its own EM sampling fraction."""
    det = load_detector("atlas_barrel_ds1")
    ro = det.readout_map(24)
    assert sorted(set(ro.tolist())) == [0, 1, 2, 3, 12, 13, 14]
    assert [int((ro == k).sum()) for k in (0, 1, 2, 3, 12, 13, 14)] == [1, 13, 49, 6, 17, 47, 21]
    sf = det.readout_sampling_fractions(24)
    assert sf[1] == pytest.approx(0.2045) and sf[14] == pytest.approx(0.0313)
    assert det.birks_mm_per_mev == 0.126 and det.time_cut_ns == 100.0


def test_detector_readout_options_are_checked(tmp_path):
    bad = tmp_path / "mixed.yaml"
    bad.write_text("layers:\n  - {material: Fe, thickness_mm: 10}\n"
                   "  - {material: Scintillator, thickness_mm: 3, sensitive: true, readout: 0, sampling_fraction: 0.03}\n"
                   "  - {material: Scintillator, thickness_mm: 3, sensitive: true, readout: 0, sampling_fraction: 0.05}\n")
    with pytest.raises(HepFastSimError, match="mixes sampling fractions"):
        load_detector(bad).readout_sampling_fractions(1)
    half = tmp_path / "half.yaml"
    half.write_text("layers:\n  - {material: Scintillator, thickness_mm: 3, sensitive: true, readout: 0}\n"
                    "  - {material: Scintillator, thickness_mm: 3, sensitive: true}\n")
    with pytest.raises(HepFastSimError, match="every sensitive layer names its readout"):
        load_detector(half).readout_map(1)
    passive = tmp_path / "passive.yaml"
    passive.write_text("layers:\n  - {material: Fe, thickness_mm: 3, readout: 0}\n")
    with pytest.raises(HepFastSimError, match="options of sensitive layers"):
        load_detector(passive)


def test_builtin_engine_refuses_geant4_only_detector_options():
    from hepfastsim.fullsim import make_engine

    with pytest.raises(HepFastSimError, match="Geant4 engine only"):
        make_engine("builtin", load_detector("atlas_barrel_ds1"), "ds1-pions")


def test_birks_law_of_one_step():
    """kB = 0.126 mm/MeV: a MIP-like step (2 MeV/cm) loses 2.5 %, a 100 MeV/mm proton step 93 %; neutral and
    zero-length deposits are kept, the non-ionising part is dropped."""
    from hepfastsim.fullsim.geant4.engine import birks_visible

    assert birks_visible(0.2, 0.0, 1.0, 1.0, 0.126) == pytest.approx(0.2 / 1.0252)
    assert birks_visible(100.0, 0.0, 1.0, 1.0, 0.126) == pytest.approx(100.0 / 13.6)
    assert birks_visible(1.0, 0.0, 0.0, 1.0, 0.126) == 1.0
    assert birks_visible(1.0, 0.0, 1.0, 0.0, 0.126) == 1.0
    assert birks_visible(1.0, 0.5, 1.0, 1.0, 0.0) == 0.5
