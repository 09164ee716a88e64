"""Benchmark of the built-in full simulation: time per shower vs incident energy, per core and on all cores.

Run:  .venv/bin/python benchmarks/fullsim_speed.py
Prints a Markdown table (append it to benchmarks/RESULTS.md with the date and machine).
"""

from __future__ import annotations

import os
import platform
import time

import numba
import numpy as np

from hepfastsim.fullsim import FullSim

ENERGIES = {1_000.0: 400, 10_000.0: 100, 100_000.0: 20}


def timed(fs: FullSim, e: float, n: int, particle: str) -> float:
    times = []
    for rep in range(3):
        t0 = time.perf_counter()
        fs.run(np.full(n, e), particle, seed=rep)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / n


def main() -> None:
    fs = FullSim(binning="demo")
    fs.run(np.full(4, 1000.0), "e-", seed=0)  # compile
    cores = numba.get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numba threads {cores}")
    print("| particle | E (GeV) | ms/shower, all cores | ms/shower/core | ms per GeV per core | showers/s (all cores) |")
    print("|---|---|---|---|---|---|")
    for particle in ("e-", "gamma"):
        for e, n in ENERGIES.items():
            t_all = timed(fs, e, n, particle) * 1000
            numba.set_num_threads(1)
            t_one = timed(fs, e, max(n // 4, 5), particle) * 1000
            numba.set_num_threads(cores)
            print(f"| {particle} | {e / 1000:g} | {t_all:.2f} | {t_one:.2f} | {t_one / (e / 1000):.3f} | {1000 / t_all:.1f} |")


if __name__ == "__main__":
    main()
