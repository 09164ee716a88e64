"""PID generation speed: tracks per second of the distilled fm student and the gan generator, torch and ONNX Runtime.

    .venv/bin/python benchmarks/pid_speed.py [--train 200000] [--repeats 3]

Trains the shipped pid_fm and pid_gan configs (with their post-training calibration) on --train simulated kaons (as benchmarks/pid_models.py), then
times 10^6 tracks in batches of 10^5 (median of --repeats, all cores), in torch and in onnxruntime with the
exported graph (the DLLs in physical units come out of the graph).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hepfastsim.bench.export import OnnxSampler, export_onnx
from hepfastsim.demo import family_config
from hepfastsim.models import get_family
from hepfastsim.models.options import split_calibration
from hepfastsim.tasks import pid_samples, pid_spec
from hepfastsim.train import Trainer

from pid_models import rich_tracks


def rate(sample, c: np.ndarray, repeats: int) -> float:
    sample(c[:1000], batch_size=1000, seed=0)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        sample(c, batch_size=100_000, seed=r)
        times.append(time.perf_counter() - t0)
    return len(c) / float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--families", default="fm,gan")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/pid_speed.json"))
    a = ap.parse_args()
    data = rich_tracks("K", a.train, seed=100)
    c = np.repeat(data.conditions, 1_000_000 // len(data) + 1, axis=0)[:1_000_000]
    res = {"date": time.strftime("%Y-%m-%d"), "tracks": len(c), "rows": []}
    for fam in a.families.split(","):
        cfg, calibration = split_calibration(family_config(f"pid_{fam}"))   # the shipped configs calibrate
        model = Trainer(calibration=calibration).fit(get_family(fam)(pid_spec(data, "K"), **cfg), pid_samples(data))
        with tempfile.TemporaryDirectory() as tmp:
            onnx = OnnxSampler(model, export_onnx(model, Path(tmp) / "m.onnx"))
            row = {"family": fam, "torch_tracks_per_s": rate(model.sample, c, a.repeats),
                   "onnxruntime_tracks_per_s": rate(onnx.sample, c, a.repeats)}
        res["rows"].append(row)
        print(json.dumps(row), flush=True)
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
