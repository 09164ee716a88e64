"""Per-layer and per-energy-range checks of a calorimeter model against a held-out sample (issue 17's dataset-2 rows).

For each checkpoint: showers generated at the incident energies of the held-out sample, then per incident-energy
range the mean and relative rms of E_tot/E_inc and the hits per shower, and per layer the fraction of showers
with no cell above threshold (an empty layer is log10(1e-8) = -8 in CaloChallenge's high-level inputs).

    .venv/bin/python benchmarks/ds2_layers.py --test DS2/test --binning ds2 --n 4000 MODEL.pt [MODEL2.pt ...]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from hepfastsim.data.calo_io import read_showers
from hepfastsim.geometry.binning import get_binning
from hepfastsim.models import load_generator
from hepfastsim.tasks import calo_spec

RANGES = ((1e3, 3e3), (8e3, 12e3), (5e4, 1e5))


def summary(x: np.ndarray, e: np.ndarray, groups) -> dict:
    layers = np.stack([x[:, a:b].sum(1) for a, b in groups], 1)
    out = {"empty_layer_fraction": np.round((layers == 0).mean(0), 4).tolist()}
    for lo, hi in RANGES:
        sel = (e >= lo) & (e < hi)
        r = x[sel].sum(1) / e[sel]
        out[f"{lo / 1e3:g}-{hi / 1e3:g} GeV"] = {"n": int(sel.sum()), "etot_over_einc": float(r.mean()),
                                                "rel_rms": float(r.std() / r.mean()),
                                                "hits": float((x[sel] > 0).sum(1).mean()),
                                                "empty_layer_fraction": np.round((layers[sel] == 0).mean(0), 4).tolist()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--test", required=True)
    ap.add_argument("--binning", default="ds2")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    b = get_binning(a.binning)
    t = read_showers(a.test, binning=b, max_events=a.n)
    e, x = t.energies, np.asarray(t.showers)
    groups = calo_spec(b).groups
    res = {"test": a.test, "n": len(e), "simulation": summary(x, e, groups)}
    for path in a.models:
        res[path] = summary(load_generator(path).sample(e.reshape(-1, 1), seed=a.seed), e, groups)
    for name, s in res.items():
        if isinstance(s, dict):
            print(name)
            print("  empty layers (every 3rd):", s["empty_layer_fraction"][::3])
            for k in (f"{lo / 1e3:g}-{hi / 1e3:g} GeV" for lo, hi in RANGES):
                r = s[k]
                print(f"  {k}: n {r['n']}, E_tot/E_inc {r['etot_over_einc']:.4f}, rel. rms {r['rel_rms']:.4f}, "
                      f"hits {r['hits']:.0f}, empty layer 18 {r['empty_layer_fraction'][18]:.3f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
