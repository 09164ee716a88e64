"""`make demo` end to end at toy size: the demo-readout job and the shipped dataset-2 model's check."""

from __future__ import annotations

import json

from hepfastsim.data.calo_io import file_summary
from hepfastsim.demo import run_demo


def test_demo_runs_end_to_end_and_checks_the_shipped_ds2_model(tmp_path):
    summary = run_demo(tmp_path, minutes=0.05, n_train=300, n_test=200, classifier_epochs=2, n_ds2=60)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["ds2_showers"] == 60 and written["total_minutes"] == summary["total_minutes"]
    for key in ("auc_low", "auc_high"):
        assert 0.0 <= written[key] <= 1.0
    for key in ("ds2_auc_low", "ds2_auc_high"):   # "mean +- std" of the 3 trainings
        mean, std = (float(v) for v in written[key].split("+-"))
        assert 0.0 <= mean <= 1.0 and std >= 0.0
    assert written["ds2_ms_per_shower_batch1000"] > 0 and written["ds2_speedup_10GeV_batch1000"] > 0
    assert file_summary(tmp_path / "fullsim_ds2_test.h5")["events"] == 60
    assert (tmp_path / "report_fm" / "report.html").exists()
