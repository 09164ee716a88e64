"""Generation speed of every family (PyTorch, onnxruntime FP32 and INT8) with the quality cost of INT8,
the speed-up over the built-in full simulation at 1, 10 and 100 GeV measured in the same run, and
the dataset-2 readout (6480 voxels).

Uses the checkpoints trained by benchmarks/model_zoo.py (demo_output/zoo/*.pt) and the demo test set.
CaloChallenge timing protocol: ms per shower at batch 1, 100 and 10000, median of repeats after a
warm-up, on this machine's CPU threads.

    .venv/bin/python benchmarks/speed.py --out benchmarks/speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hepfastsim.bench.export import OnnxSampler, export_onnx, quantize
from hepfastsim.bench.timing import time_fullsim, time_generator
from hepfastsim.data.calo_io import ShowerDataset, read_showers
from hepfastsim.fullsim import FullSim
from hepfastsim.geometry.binning import get_binning
from hepfastsim.models import get_family, load_generator
from hepfastsim.tasks import calo_samples, calo_spec
from hepfastsim.validation.evaluate import evaluate

XML = "ds2"  # the shipped CaloChallenge dataset-2 binning
BATCHES = (1, 100, 10_000)


def quality(test: ShowerDataset, x: np.ndarray, binning) -> dict:
    m = evaluate(test, ShowerDataset(test.energies, x), binning, fast=True, seed=0)
    return {"auc_low": m["classifier_low"]["auc"], "auc_high": m["classifier_high"]["auc"], "fpd": m["fpd"]}


def demo_rows(models: Path, test: ShowerDataset, binning, tmp: Path) -> list[dict]:
    rows = []
    for ck in sorted(models.glob("*.pt")):
        gen = load_generator(ck)
        t = time_generator(gen, 10_000.0, batch_sizes=BATCHES, repeats=5)["ms_per_shower"]
        row = {"family": gen.family, "backend": "torch", "ms": t}
        if gen.family in ("fm", "vae", "gan", "flow", "library"):
            onnx = export_onnx(gen, tmp / f"{gen.family}.onnx")
            int8 = quantize(onnx, tmp / f"{gen.family}.int8.onnx")
            c = test.energies.reshape(-1, 1)
            z = np.random.default_rng(1).standard_normal((len(c), gen.latent_dim())).astype(np.float32)
            samplers = {"onnxruntime FP32": OnnxSampler(gen, onnx), "onnxruntime INT8": OnnxSampler(gen, int8)}
            row.update(quality(test, samplers["onnxruntime FP32"].run_latent(c, z), binning))
            rows.append(row)
            for name, s in samplers.items():
                tt = time_generator(gen, 10_000.0, batch_sizes=BATCHES, repeats=5,
                                    backend=lambda cc, b, s=s: s.sample(cc, batch_size=b, seed=0))["ms_per_shower"]
                r = {"family": gen.family, "backend": name, "ms": tt}
                if name.endswith("INT8"):
                    r.update(quality(test, s.run_latent(c, z), binning))
                rows.append(r)
        else:
            row.update(quality(test, gen.sample(test.energies.reshape(-1, 1), seed=1), binning))
            rows.append(row)
        print(json.dumps(rows[-1], default=float), flush=True)
    return rows


def ds2_rows(n_train: int = 300) -> list[dict]:
    """Families on the dataset-2 readout: fitted for one epoch on a small full-simulation sample (speed only)."""
    b = get_binning(XML)
    res = FullSim(binning=b).run(np.exp(np.random.default_rng(0).uniform(np.log(1000), np.log(20000), n_train)), "e-", seed=5)
    data = calo_samples(res.dataset())
    rows = []
    for fam, cfg in (("gan", {"hidden": 512, "layers": 3}), ("vae", {"hidden": 512, "layers": 3}),
                     ("fm", {"hidden": 512, "layers": 4, "steps": 8})):
        gen = get_family(fam)(calo_spec(b), **cfg, epochs=1).fit(data)
        t = time_generator(gen, 10_000.0, batch_sizes=BATCHES, repeats=3)["ms_per_shower"]
        rows.append({"family": fam, "binning": b.name, "voxels": b.n_voxels, "backend": "torch", "ms": t})
        print(json.dumps(rows[-1], default=float), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=Path("demo_output/zoo"))
    ap.add_argument("--test", type=Path, default=Path("demo_output/fullsim_test.h5"))
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--default", default="fm", help="the default family, for the speed-up table")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/speed.json"))
    a = ap.parse_args()
    fs = FullSim(binning="demo")
    test = read_showers(a.test, binning=fs.binning, max_events=a.n_test)
    with tempfile.TemporaryDirectory() as tmp:
        rows = demo_rows(a.models, test, fs.binning, Path(tmp))
    # speed-up over the full simulation, one run: full simulation and models timed back to back
    energies = (1_000.0, 10_000.0, 100_000.0)
    full = time_fullsim(fs, energies, n=20)
    speedup = {}
    for fam in sorted({a.default, "gan", "vae"}):
        ck = a.models / f"{fam}.pt"
        if ck.exists():
            gen = load_generator(ck)
            ms = {e: time_generator(gen, e, batch_sizes=(10_000,), repeats=3)["ms_per_shower"][10_000] for e in energies}
            speedup[fam] = {e: {"fullsim_ms": full[e], "model_ms": ms[e], "speedup": full[e] / ms[e]} for e in energies}
    print(json.dumps({"fullsim_ms": full, "speedup": speedup}, default=float), flush=True)
    ds2 = ds2_rows()
    info = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(), "rows": rows, "fullsim_ms": full, "speedup": speedup, "ds2": ds2}
    a.out.write_text(json.dumps(info, indent=2, default=float))


if __name__ == "__main__":
    main()
