"""The built-in RICH simulation against LHCb's 2018 efficiencies: kaon DLLK > 0 and pion DLLK < 0 per momentum bin.

    .venv/bin/python benchmarks/rich_tuning.py [--tracks 2000000] [--seed 1] [--repeats 3] [--plot docs/images/rich_efficiency.png]

Simulates --repeats independent samples (seeds seed, seed + 1, ...) of --tracks kaons and as many pions with the
shipped kinematics (P replaced by log-uniform 3-100 GeV so that every LHCb bin is filled), keeps calibration-like
tracks (RICH information, p_T > 250 MeV), prints each sample's largest |difference| to LHCb (the run-to-run
spread), the table RESULTS quotes for all samples together, and the simulation speed, and draws the curves.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hepfastsim.fullsim.rich import SPECIES, in_acceptance, sample_tracks, simulate_rich
from hepfastsim.validation.pid import calibration_like, compare_with_lhcb


def tracks(species: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    s, c = sample_tracks(n, seed, species=(species,))
    c[:, 0] = np.exp(np.random.default_rng(seed + 100).uniform(np.log(3000.0), np.log(100_000.0), n))
    simulate_rich(s[:10], c[:10], seed)                  # compile outside the timing
    t0 = time.perf_counter()
    d = simulate_rich(s, c, seed + 1)
    rate = n / (time.perf_counter() - t0)
    keep = calibration_like(c, in_acceptance(c[:, 1]).any(1))
    return c[keep], d[keep], rate


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.asarray(result["p_edges_MeV"]) / 1000.0
    mid = 0.5 * (e[1:] + e[:-1])
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for name, colour in (("K DLLK > 0", "tab:red"), ("pi DLLK < 0", "tab:blue")):
        r = result[name]
        ax.stairs(r["lhcb"], e, color=colour, lw=2, baseline=None, label=f"LHCb 2018: {name}")
        ax.errorbar(mid, r["simulated"], yerr=r["error"], fmt="o", ms=3, color=colour, label=f"hepfastsim RICH: {name}")
        ax.fill_between(mid, np.asarray(r["lhcb"]) - 0.03, np.asarray(r["lhcb"]) + 0.03, color=colour, alpha=0.12, step="mid")
    ax.set_xlabel("P [GeV]")
    ax.set_ylabel("efficiency")
    ax.set_ylim(0.55, 1.01)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("RICH PID efficiencies (band: LHCb +- 0.03)")
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plot", type=Path, default=Path("docs/images/rich_efficiency.png"), help="figure ('none': no figure)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/rich_tuning.json"))
    a = ap.parse_args()
    kaons, pions, per_sample = [], [], []
    for seed in range(a.seed, a.seed + a.repeats):
        kaons.append(tracks("K", a.tracks, seed))
        pions.append(tracks("pi", a.tracks, seed + 10))
        one = compare_with_lhcb(kaons[-1][:2], pions[-1][:2])
        per_sample.append({"seed": seed, "K": one["K DLLK > 0"]["max_abs_difference"],
                           "pi": one["pi DLLK < 0"]["max_abs_difference"]})
        print(f"seed {seed}: max |difference| kaons {per_sample[-1]['K']:.4f}, pions {per_sample[-1]['pi']:.4f}")
    pooled = [tuple(np.concatenate([t[i] for t in sample]) for i in (0, 1)) for sample in (kaons, pions)]
    res = compare_with_lhcb(*pooled)
    res["per_sample"] = per_sample
    rk, rp = float(np.median([t[2] for t in kaons])), float(np.median([t[2] for t in pions]))
    res["tracks_per_second_one_core"] = {"K": rk, "pi": rp}
    print(f"simulation: {rk:.0f} kaons/s, {rp:.0f} pions/s (one core, numba; median of the samples)")
    print(f"all {a.repeats} samples together:")
    print("| P [GeV] | K: DLLK > 0 sim | LHCb | diff | pi: DLLK < 0 sim | LHCb | diff |")
    print("|---|---|---|---|---|---|---|")
    e = np.asarray(res["p_edges_MeV"]) / 1000
    k, p = res["K DLLK > 0"], res["pi DLLK < 0"]
    for b in range(len(e) - 1):
        print(f"| {e[b]:.1f}-{e[b + 1]:.1f} | {k['simulated'][b]:.3f} ± {k['error'][b]:.4f} | {k['lhcb'][b]:.3f} | "
              f"{k['simulated'][b] - k['lhcb'][b]:+.3f} | {p['simulated'][b]:.3f} ± {p['error'][b]:.4f} | {p['lhcb'][b]:.3f} | "
              f"{p['simulated'][b] - p['lhcb'][b]:+.3f} |")
    print(f"max |difference| (all samples): kaons {k['max_abs_difference']:.3f}, pions {p['max_abs_difference']:.3f}")
    a.out.write_text(json.dumps(res, indent=1))
    if str(a.plot) != "none":
        a.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(res, a.plot)
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    assert SPECIES.index("K") == 3
    main()
