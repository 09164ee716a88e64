"""`make demo` end to end at toy size, through the CLI: the demo-readout job and the shipped dataset-2 model's check."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.calo_io import file_summary

from conftest import check_report_html


def test_demo_runs_end_to_end_and_checks_the_shipped_ds2_model(tmp_path):
    out = tmp_path / "d"
    r = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "3", "--n-train", "300", "--n-test", "200",
                                 "--classifier-epochs", "2", "--n-ds2", "60"])
    assert r.exit_code == 0, r.output
    written = json.loads((out / "summary.json").read_text())
    assert written["ds2_showers"] == 60 and written["total_minutes"] > 0
    assert written["epochs"] == 3                    # the demo's budget is epochs, not wall-clock minutes
    for key in ("auc_low", "auc_high"):
        assert 0.0 <= written[key] <= 1.0
    for key in ("ds2_auc_low", "ds2_auc_high"):   # "mean +- std" of the 3 trainings
        mean, std = (float(v) for v in written[key].split("+-"))
        assert 0.0 <= mean <= 1.0 and std >= 0.0
    assert written["speedup_10GeV_batch10000"] > 0
    assert written["ds2_ms_per_shower_batch1000"] > 0 and written["ds2_speedup_10GeV_batch1000"] > 0
    assert file_summary(out / "fullsim_ds2_test.h5")["events"] == 60
    assert check_report_html(out / "report_fm" / "report.html") >= 8   # well-formed, every figure a readable PNG
