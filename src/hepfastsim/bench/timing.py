"""CaloChallenge timing protocol: milliseconds per shower at batch sizes 1, 100 and 10000,
median of repeats after a warm-up, with peak memory; and the built-in full simulation at the
same energies in the same run, so that speed-up ratios are measured like for like."""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from hepfastsim.models.base import Generator


def _median_time(fn, repeats: int, warmup: bool = True) -> float:
    """Median wall time of fn over repeats calls, after one untimed warm-up call."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_generator(model: Generator, conditions: float | np.ndarray = 10_000.0,
                   batch_sizes=(1, 100, 10_000), repeats: int = 5, backend=None) -> dict:
    """ms per response for each batch size (median of repeats), peak RSS in MB and the device used.

    conditions: an incident energy in MeV, or condition rows (M, C) cycled to fill each batch (TPC track parameters).
    """
    rows = np.asarray(conditions, np.float64)
    rows = rows.reshape(-1, 1) if rows.ndim < 2 else rows
    out = {}
    for b in batch_sizes:
        c = rows[np.arange(b) % len(rows)]
        fn = (lambda c=c: model.sample(c, batch_size=b, seed=0)) if backend is None else (lambda c=c: backend(c, b))
        reps = repeats if b < 10_000 else max(2, repeats // 2)
        if b == 1:
            reps = max(repeats, 20)
        out[int(b)] = 1000.0 * _median_time(fn, reps) / b
    dev = getattr(model, "device", torch.device("cpu"))
    res = {
        "ms_per_shower": out,
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{torch.get_num_threads()} threads",
    }
    if dev.type == "cuda":
        res["peak_gpu_MB"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return res


def time_fullsim(fullsim, energies_mev=(1_000.0, 10_000.0, 100_000.0), n: int = 20, particle: str = "e-") -> dict:
    """Built-in full simulation: ms per shower (all cores) at each energy, median of 3 batches of n."""
    fullsim.run(np.full(2, 1000.0), particle, seed=0)  # compile / warm-up
    return {float(e): 1000.0 * _median_time(lambda e=e: fullsim.run(np.full(n, e), particle, seed=1), 3, warmup=False) / n
            for e in energies_mev}
