"""Hadron showers through the Geant4 engine's data-free FTFP_BERT (issue 21): the physics table and the EM sampling
fractions of the dataset-1-like calorimeter.

Per stack, particle and energy (each in its own process: one Geant4 per process, two at a time):

* interaction fraction: primaries that interact inelastically inside the stack;
* first-interaction depth: mean depth (in lambda_I of the stack, from Geant4's material interaction lengths) of
  those that do, beside the mean an exponential truncated at the stack depth gives with the pion's own
  interaction length (Geant4's inelastic cross section at that energy);
* visible E/E: active-layer deposit / incident energy (Birks-quenched where kB > 0), its rms/mean;
* e/pi: visible energy of e- over that of pi+ at the same energy;
* ms per event (process CPU time of the Geant4 worker, Geant4 plus the Python scoring).

Stacks: the CaloChallenge dataset-2 W/Si stack (1.32 lambda_I) and 50 x (20 mm Fe + 5 mm scintillator)
(6.3 lambda_I) with and without Birks quenching (kB 0.126 mm/MeV).

`--sampling-fractions` instead measures the electromagnetic sampling fractions of the dataset-1-like calorimeter's
two sampling structures (10 GeV e-, active deposit / E in a 32 X0 accordion-cell stack and a 48 X0 Tile-period stack),
the values `geometry/data/detector_atlas_barrel_ds1.yaml` holds.

    .venv/bin/python benchmarks/hadron_showers.py --out benchmarks/hadron_showers.json
    .venv/bin/python benchmarks/hadron_showers.py --sampling-fractions
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

BIRKS = 0.126  # mm/MeV, polystyrene-based scintillator


def _stack(name: str):
    from hepfastsim.geometry.detector import Detector, Layer, calochallenge_ds2, load_detector

    if name == "ds2_WSi":
        return calochallenge_ds2()
    if name.startswith("FeSc"):
        # 50 periods on the ds2 binning's 45 readout layers: the last 6 periods summed into readout layer 44
        layers = tuple(l for i in range(50) for l in (Layer("Fe", 20.0, False),
                                                      Layer("Scintillator", 5.0, True, min(i, 44))))
        return Detector(name, layers, 1.0, BIRKS if name == "FeSc_Birks" else 0.0)
    if name in ("accordion", "tile"):  # the repeated structure of readout layer 2 (middle) or 13 (Tile BC)
        det = load_detector("atlas_barrel_ds1")
        ro, size = (2, 4) if name == "accordion" else (13, 2)
        first = next(i for i, l in enumerate(det.layers) if l.sensitive and l.readout == ro)
        cell = det.layers[first - size + 1:first + 1]
        repeat = 100 if name == "accordion" else 60
        return Detector(name, tuple(Layer(l.material, l.thickness_mm, l.sensitive, 0 if l.sensitive else -1)
                                    for _ in range(repeat) for l in cell), 1.0, det.birks_mm_per_mev)
    raise ValueError(name)


def _lengths(sim, detector, energy: float) -> tuple[float, float]:
    """(lambda_I of the stack, the pi+'s inelastic interaction length at energy), mm."""
    from hepfastsim.fullsim.geant4.engine import NIST
    from hepfastsim.fullsim.geant4.hadronic import cross_section_per_atom

    g4 = sim.g4
    inv_i = inv_pi = 0.0
    for layer in detector.layers:
        mat = g4.G4Material.GetMaterial(NIST[layer.material])
        inv_i += layer.thickness_mm / mat.GetNuclearInterLength()
        density = mat.GetVecNbOfAtomsPerVolume()  # atoms / mm^3 per element
        sigma = sum(n * cross_section_per_atom(g4, "pi+", "inelastic", energy, el.GetName(), NIST[layer.material]) * 1e-22
                    for n, el in zip(density, mat.GetElementVector()))
        inv_pi += layer.thickness_mm * sigma
    return detector.depth_mm / inv_i, detector.depth_mm / inv_pi


def _task(stack: str, particle: str, energy: float, n: int, seed: int) -> dict:
    os.environ["NUMBA_NUM_THREADS"] = "1"
    from hepfastsim.fullsim import make_engine

    detector = _stack(stack)
    sim = make_engine("geant4", detector, "ds2", physics="data-free-FTFP_BERT")
    t0 = time.process_time()
    r = sim.run(np.full(n, energy), particle, seed=seed)
    ms = (time.process_time() - t0) / n * 1e3
    visible = r.si_layer.sum(1) / energy
    lam_i, lam_pi = _lengths(sim, detector, energy)
    depth = r.first_interaction_mm
    hit = np.isfinite(depth)
    d = detector.depth_mm / lam_pi
    expected = lam_pi * (1 - (1 + d) * np.exp(-d)) / (1 - np.exp(-d)) / lam_i
    return {"stack": stack, "particle": particle, "energy_MeV": energy, "n": n, "ms_per_event": ms,
            "visible_over_E": float(visible.mean()), "visible_over_E_err": float(visible.std() / np.sqrt(n)),
            "rms_over_mean": float(visible.std() / visible.mean()),
            "interaction_fraction": float(hit.mean()), "interaction_fraction_err": float(np.sqrt(hit.mean() * (1 - hit.mean()) / n)),
            "depth_lambda_I": detector.depth_mm / lam_i,
            "first_interaction_lambda_I": float(depth[hit].mean() / lam_i) if hit.any() else None,
            "first_interaction_err": float(depth[hit].std() / np.sqrt(hit.sum()) / lam_i) if hit.sum() > 1 else None,
            "expected_first_interaction_lambda_I": float(expected), "lambda_pi_over_lambda_I": lam_pi / lam_i}


def _run(tasks: list[tuple]) -> list[dict]:
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        return list(pool.map(_task, *zip(*tasks)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/hadron_showers.json"))
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--sampling-fractions", action="store_true")
    args = ap.parse_args()
    if args.sampling_fractions:
        for row in _run([("accordion", "e-", 10_000.0, 50, 1), ("tile", "e-", 10_000.0, 50, 1)]):
            print(f"{row['stack']}: EM sampling fraction {row['visible_over_E']:.4f} (rms/mean {row['rms_over_mean']:.3f}, "
                  f"{row['n']} e- of 10 GeV)")
        return
    n = args.events
    tasks = [("ds2_WSi", "pi+", 10_000.0, n, 1),
             ("FeSc_Birks", "pi+", 10_000.0, n, 2), ("FeSc_Birks", "e-", 10_000.0, n, 3),
             ("FeSc", "pi+", 10_000.0, n, 2), ("FeSc", "e-", 10_000.0, n, 3),
             ("FeSc_Birks", "pi+", 50_000.0, max(n // 4, 20), 4)]
    rows = _run(tasks)
    for row in rows:
        print(json.dumps(row))
    vis = {(r["stack"], r["particle"], r["energy_MeV"]): r["visible_over_E"] for r in rows}
    e_pi = {s: vis[(s, "e-", 10_000.0)] / vis[(s, "pi+", 10_000.0)] for s in ("FeSc_Birks", "FeSc")}
    print(f"e/pi at 10 GeV: with Birks {e_pi['FeSc_Birks']:.3f}, without {e_pi['FeSc']:.3f}")
    args.out.write_text(json.dumps({"rows": rows, "e_over_pi_10GeV": e_pi, "events": n,
                                    "date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores"}, indent=1))


if __name__ == "__main__":
    main()
