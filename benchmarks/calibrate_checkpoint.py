"""Apply the post-training steps of today's layer_fm config to a checkpoint trained before they existed.

`calibrate: true, calibration_bins: 6` is what `hepfastsim train` now runs after the loop (same training split
`train_val_split(len, VAL, 0)`, same seed); `--fill-empty-groups` sets the empty-layer fill that
`layer_fm.response_transform` now sets at fit time (it changes only the inverse, not training). How the shipped
dataset-2 model was made from the checkpoint of its 200-epoch run (benchmarks/RESULTS.md):

    .venv/bin/python benchmarks/calibrate_checkpoint.py ds2_layer_fm.pt ds2_layer_fm_cal_fill.pt \
        --data DS2/train --binning ds2 --fill-empty-groups
"""

from __future__ import annotations

import argparse
import time

from hepfastsim.data.calo_io import read_showers
from hepfastsim.geometry.binning import get_binning
from hepfastsim.models import load_generator
from hepfastsim.models.calibration import calibrate
from hepfastsim.models.options import CalibrationOptions
from hepfastsim.tasks import calo_samples, train_val_split


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--data", required=True, help="the training data of the checkpoint (file or shard folder)")
    ap.add_argument("--binning", default="ds2")
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--bins", type=int, default=6)
    ap.add_argument("--fill-empty-groups", action="store_true")
    a = ap.parse_args()
    m = load_generator(a.src)
    ds = read_showers(a.data, binning=get_binning(a.binning))
    i_tr, _ = train_val_split(len(ds), a.val_fraction, int(m.config["seed"]))
    t0 = time.perf_counter()
    calibrate(m, calo_samples(ds.subset(i_tr)), CalibrationOptions(calibrate=True, calibration_bins=a.bins),
              seed=int(m.config["seed"]))
    dt = time.perf_counter() - t0
    m.history_.seconds += dt
    if a.fill_empty_groups:
        m.x_tf_.fill_empty_groups = True
    m.save(a.out, slim=True)
    print(f"calibrated in {dt:.1f} s; wrote {a.out}")


if __name__ == "__main__":
    main()
