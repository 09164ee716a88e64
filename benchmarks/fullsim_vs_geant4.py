"""The built-in simulation against the Geant4 engine on the CaloChallenge dataset-2 stack and binning.

Both engines in one run (production cuts: a 0.7 mm range cut in every material, which the built-in engine's default
``Cuts`` convert to energies with Geant4's tabulated conversion; built-in: 10 keV tracking floors with range
rejection). Geant4 runs in `--workers` processes
(one Geant4 each, one core each), the built-in engine afterwards on all cores (numba threads), so that the two
never share the cores. Per sample (e- at 1/10/100 GeV, gamma at 10 GeV):

* E_tot/E_inc (stored units: Si / 0.033, voxels of the ds2 readout above 15.15 keV): mean and sigma/mean;
* mean depth: the energy-weighted mean readout layer (0-44) of each shower, averaged; t_max: the maximum of a
  Gamma-function fit to the mean layer-energy profile, in readout layers;
* containment: fraction of the Si energy within 10.9 mm of the shower axis (any depth);
* the 45 x 45 correlation matrix of the layer energies: max |difference| between the engines;
* cell spectrum near threshold: mean number of cells above threshold per shower, and the fraction of hit cells
  below 2x, 5x and 20x the threshold;
* ms per GeV per core.

And the classifier under CaloChallenge's protocol (`validation.classifier`, 3 trainings, both samples cut at
15.15 keV) built-in vs Geant4 on the 10 GeV e- samples (5000 each): low level and high level.

    .venv/bin/python benchmarks/fullsim_vs_geant4.py --out benchmarks/fullsim_vs_geant4.json

`--geant4-cache DIR` keeps each Geant4 sample as NPZ in DIR (named by sample, size, seeds and geant4_pybind version) and
reads it back in a later run instead of simulating it again: Geant4 is deterministic for a seed, so a rerun after a
change of the built-in engine gives the same Geant4 showers in minutes instead of ~45 minutes.

`--classifier-only` simulates just the two 10 GeV samples (cached as NPZ beside --out) and adds the classifier
entry to an existing --out file.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

from hepfastsim.fileio import atomic_output

SAMPLES = {"e-_1GeV": ("e-", 1000.0, 1000), "e-_10GeV": ("e-", 10_000.0, 5000), "e-_100GeV": ("e-", 100_000.0, 500),
           "gamma_10GeV": ("gamma", 10_000.0, 500)}
CONTAINMENT_MM = 10.9


def _simulate(engine: str, particle: str, energy: float, n: int, seed: int) -> dict:
    """One task: n showers; returns the arrays the observables need and the CPU (geant4) or wall (builtin) time."""
    from hepfastsim.fullsim import make_engine

    physics = "data-free-em" if engine == "geant4" else "auto"  # the EM list these numbers were measured with
    eng = _ENGINES.get(engine) or _ENGINES.setdefault(engine, make_engine(engine, None, "ds2", physics))
    t0 = time.process_time() if engine == "geant4" else time.perf_counter()
    r = eng.run(np.full(n, energy), particle, seed=seed)
    dt = (time.process_time() if engine == "geant4" else time.perf_counter()) - t0
    return {"showers": r.showers.astype(np.float32), "energies": r.energies, "radial": r.radial, "si": r.totals[:, 3],
            "seconds": dt}


_ENGINES: dict = {}


def _worker_init() -> None:
    os.environ["NUMBA_NUM_THREADS"] = "1"  # a Geant4 worker uses one core


def _t_max(profile: np.ndarray) -> float:
    """Maximum (readout layers) of a Gamma-function fit A b (b t)^(a-1) exp(-b t) to a mean layer profile."""
    t = np.arange(len(profile)) + 0.5
    f = lambda t, A, a, b: A * b * (b * t) ** (a - 1) * np.exp(-b * t)
    p, _ = curve_fit(f, t, profile, p0=[profile.sum(), 3.0, 0.4], maxfev=20000)
    return float((p[1] - 1) / p[2])


def mean_depth(e_layer: np.ndarray) -> np.ndarray:
    """Per shower, the energy-weighted mean readout layer (0 = front) of its (N, layers) layer energies."""
    return (e_layer * np.arange(e_layer.shape[1])).sum(1) / np.maximum(e_layer.sum(1), 1e-30)


def observables(d: dict, binning) -> dict:
    from hepfastsim.validation.features import layer_energies

    e_layer = layer_energies(d["showers"], binning).astype(np.float64)
    ratio = d["showers"].sum(1, dtype=np.float64) / d["energies"]
    depth = mean_depth(e_layer)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(e_layer.T)  # layers without energy in every shower give NaN rows
    cum = np.cumsum(d["radial"].sum(0))
    contained = float(np.interp(CONTAINMENT_MM, np.arange(1, len(cum) + 1) * 0.5, cum) / d["si"].sum())
    hits = d["showers"][d["showers"] > 0]
    thr = binning.threshold
    n = len(ratio)
    rel_sigma = float(ratio.std() / ratio.mean())
    return {"E_ratio_mean": float(ratio.mean()), "E_ratio_mean_err": float(ratio.std() / np.sqrt(n)),
            "E_ratio_rel_sigma": rel_sigma, "E_ratio_rel_sigma_err": rel_sigma / np.sqrt(2.0 * (n - 1)),
            "mean_depth_layers": float(depth.mean()), "mean_depth_layers_err": float(depth.std() / np.sqrt(n)),
            "t_max_layers": _t_max(e_layer.mean(0)),
            "containment_10.9mm": contained, "hit_cells_per_shower": float((d["showers"] > 0).sum(1).mean()),
            **{f"hits_below_{k}x_threshold": float((hits < k * thr).mean()) for k in (2, 5, 20)},
            "ms_per_GeV_per_core": 1000 * d["seconds"] / (d["energies"].sum() / 1000),
            "corr": corr}


def _cache_file(directory: Path | None, key: str, n: int, seed: int, workers: int) -> Path | None:
    """Where a Geant4 sample is kept (None: no cache); the name holds everything that fixes its showers (the
    geant4_pybind pin fixes the Geant4 version; the sample is split into `workers` processes with seeds seed + i)."""
    if directory is None:
        return None
    from hepfastsim.fullsim.geant4.setup import PYBIND_VERSION

    return directory / f"geant4_pybind{PYBIND_VERSION}_{key}_n{n}_seed{seed}_w{workers}.npz"


def _gather(results: list[dict]) -> dict:
    out = {k: np.concatenate([r[k] for r in results]) for k in ("showers", "energies", "radial", "si")}
    out["seconds"] = sum(r["seconds"] for r in results)
    return out


def classifier_entry(g: dict, b: dict, binning, runs: int) -> dict:
    """CaloChallenge-protocol classifier, Geant4 (reference, label 0) vs built-in, low and high level."""
    from hepfastsim.validation.classifier import classifier_auc, low_level_inputs
    from hepfastsim.validation.features import feature_matrix

    t0 = time.time()
    thr = binning.threshold
    low = classifier_auc(low_level_inputs(g["showers"], g["energies"], thr),
                         low_level_inputs(b["showers"], b["energies"], thr), runs=runs)
    high = classifier_auc(feature_matrix(g["showers"], g["energies"], binning)[0],
                          feature_matrix(b["showers"], b["energies"], binning)[0], runs=runs)
    return {"n_per_engine": len(g["energies"]), "protocol": "calochallenge", "low": low.as_dict(),
            "high": high.as_dict(), "date": time.strftime("%Y-%m-%d"), "classifier_seconds": time.time() - t0}


def classifier_only(args, binning) -> None:
    """The 10 GeV samples alone (cached), then the classifier entry merged into --out."""
    cache = args.out.with_suffix(".e10GeV.npz")
    if cache.exists():
        z = np.load(cache)
        g = {"showers": z["g_showers"], "energies": z["g_energies"]}
        b = {"showers": z["b_showers"], "energies": z["b_energies"]}
    else:
        particle, energy, n = SAMPLES["e-_10GeV"]
        n = max(int(n * args.scale), 10)
        sizes = [len(p) for p in np.array_split(np.arange(n), args.workers)]
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
            futs = [pool.submit(_simulate, "geant4", particle, energy, m, 2000 + i) for i, m in enumerate(sizes)]
            g = _gather([f.result() for f in futs])
        b = _simulate("builtin", particle, energy, n, 6000)
        np.savez(cache, g_showers=g["showers"], g_energies=g["energies"], b_showers=b["showers"],
                 b_energies=b["energies"])
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result["classifier_10GeV_e-"] = entry = classifier_entry(g, b, binning, args.classifier_runs)
    args.out.write_text(json.dumps(result, indent=1))
    for k in ("low", "high"):
        print(f"AUC {k}: {entry[k]['auc']:.3f} ± {entry[k]['auc_std']:.3f}  runs {entry[k]['aucs']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/fullsim_vs_geant4.json"))
    ap.add_argument("--workers", type=int, default=2, help="Geant4 processes")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sample size (a quick check: 0.05)")
    ap.add_argument("--classifier-runs", type=int, default=3)
    ap.add_argument("--classifier-only", action="store_true")
    ap.add_argument("--geant4-cache", type=Path, default=None, help="directory of Geant4 samples kept between runs")
    ap.add_argument("--samples", default=None,
                    help="KEY=N,...: only these samples with N showers per engine, merged into an existing --out "
                         f"(keys: {', '.join(SAMPLES)})")
    args = ap.parse_args()
    from hepfastsim.geometry.binning import get_binning

    binning = get_binning("ds2")
    if args.classifier_only:
        classifier_only(args, binning)
        return
    samples = {key: (p, e, max(int(n * args.scale), 10)) for key, (p, e, n) in SAMPLES.items()}
    if args.samples:
        chosen = dict(item.split("=") for item in args.samples.split(","))
        unknown = set(chosen) - set(SAMPLES)
        if unknown:
            raise SystemExit(f"unknown sample {sorted(unknown)[0]!r}: one of {', '.join(SAMPLES)}")
        samples = {key: (SAMPLES[key][0], SAMPLES[key][1], int(n)) for key, n in chosen.items()}
    data: dict = {"geant4": {}, "builtin": {}}
    t_start = time.time()
    seed_index = {key: k for k, key in enumerate(SAMPLES)}   # a sample's seeds do not depend on which others run
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        for key, (particle, energy, n) in samples.items():
            k = seed_index[key]
            sizes = [len(p) for p in np.array_split(np.arange(n), args.workers)]
            cached = _cache_file(args.geant4_cache, key, n, 1000 + 17 * k, args.workers)
            if cached is not None and cached.exists():
                with np.load(cached) as z:
                    data["geant4"][key] = {name: z[name] for name in z.files}
                data["geant4"][key]["seconds"] = float(data["geant4"][key]["seconds"])
                print(f"geant4 {key}: {n} showers read from {cached}", flush=True)
                continue
            futs = [pool.submit(_simulate, "geant4", particle, energy, m, 1000 + 17 * k + i) for i, m in enumerate(sizes)]
            data["geant4"][key] = _gather([f.result() for f in futs])
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                with atomic_output(cached) as tmp, open(tmp, "wb") as f:
                    np.savez(f, **data["geant4"][key])
            print(f"geant4 {key}: {n} showers, {time.time() - t_start:.0f} s", flush=True)
    _simulate("builtin", "e-", 1000.0, 4, 0)  # load the compiled kernels before timing
    for key, (particle, energy, n) in samples.items():
        d = _simulate("builtin", particle, energy, n, 5000 + seed_index[key])
        d["seconds"] *= os.cpu_count() or 1  # all cores busy: per-core time
        data["builtin"][key] = d
    rows = {}
    for key in samples:
        og, ob = observables(data["geant4"][key], binning), observables(data["builtin"][key], binning)
        with np.errstate(invalid="ignore"):
            diff = float(np.nanmax(np.abs(og.pop("corr") - ob.pop("corr"))))
        rows[key] = {"n": len(data["geant4"][key]["energies"]), "geant4": og, "builtin": ob,
                     "layer_corr_max_abs_diff": diff}
    if args.samples:   # a partial run: its rows replace those of an earlier full run in --out
        result = json.loads(args.out.read_text()) if args.out.exists() else {}
        result.setdefault("samples", {}).update(rows)
        result.setdefault("partial_runs", []).append({"samples": args.samples, "date": time.strftime("%Y-%m-%d"),
                                                      "wall_seconds": time.time() - t_start})
    else:
        g, b = data["geant4"]["e-_10GeV"], data["builtin"]["e-_10GeV"]
        result = {"machine": f"{os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"), "samples": rows,
                  "classifier_10GeV_e-": classifier_entry(g, b, binning, args.classifier_runs),
                  "wall_seconds": time.time() - t_start}
    args.out.write_text(json.dumps(result, indent=1))
    keys = list(next(iter(rows.values()))["geant4"])
    print(f"{'':30s}" + "".join(f"{k:>26s}" for k in rows))
    for k in keys:
        print(f"{k:30s}" + "".join(f"{r['geant4'][k]:>12.4g} / {r['builtin'][k]:<11.4g}" for r in rows.values()))
    print(f"{'layer corr max |diff|':30s}" + "".join(f"{r['layer_corr_max_abs_diff']:>26.3f}" for r in rows.values()))
    for r in rows.values():
        for k in ("E_ratio_mean", "E_ratio_rel_sigma", "mean_depth_layers"):
            dv = r["builtin"][k] - r["geant4"][k]
            err = np.hypot(r["builtin"][k + "_err"], r["geant4"][k + "_err"])
            print(f"built-in - geant4 {k}: {dv:+.4g} +- {err:.2g} ({dv / r['geant4'][k]:+.1%})")
    if args.samples:
        print(f"merged {', '.join(rows)} into {args.out}")
        return
    c = result["classifier_10GeV_e-"]
    print(f"(geant4 / built-in) classifier 10 GeV e-, {len(g['energies'])} per engine: AUC low {c['low']['auc']:.3f} "
          f"+- {c['low']['auc_std']:.3f}, high {c['high']['auc']:.3f} +- {c['high']['auc_std']:.3f}; wrote {args.out}")


if __name__ == "__main__":
    main()
