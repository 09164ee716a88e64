"""Benchmark of the built-in full simulation: time per shower vs incident energy, per core and on all cores.

Run:  .venv/bin/python benchmarks/fullsim_speed.py
Prints a Markdown table (append it to benchmarks/RESULTS.md with the date and machine).
"""

from __future__ import annotations

import os
import platform

import numba

from hepfastsim.bench.timing import time_fullsim
from hepfastsim.fullsim import FullSim

ENERGIES = {1_000.0: 400, 10_000.0: 100, 100_000.0: 20}


def main() -> None:
    fs = FullSim(binning="demo")
    cores = numba.get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numba threads {cores}")
    print("| particle | E (GeV) | ms/shower, all cores | ms/shower/core | ms per GeV per core | showers/s (all cores) |")
    print("|---|---|---|---|---|---|")
    for particle in ("e-", "gamma"):
        for e, n in ENERGIES.items():
            t_all = time_fullsim(fs, (e,), n=n, particle=particle)[e]
            numba.set_num_threads(1)
            t_one = time_fullsim(fs, (e,), n=max(n // 4, 5), particle=particle)[e]
            numba.set_num_threads(cores)
            print(f"| {particle} | {e / 1000:g} | {t_all:.2f} | {t_one:.2f} | {t_one / (e / 1000):.3f} | {1000 / t_all:.1f} |")


if __name__ == "__main__":
    main()
