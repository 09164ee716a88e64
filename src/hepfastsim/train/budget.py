"""A wall-clock budget for training (prefer an epoch budget for anything compared between runs)."""

from __future__ import annotations

import time

from hepfastsim.train.distributed import broadcast_flag


class TimeBudget:
    """``spent()`` is True once ``limit_s`` seconds (0: no limit) have passed since creation; in a distributed run
    process 0's clock decides, so that every process stops after the same epoch."""

    def __init__(self, limit_s: float, world: int = 1):
        self.limit_s, self.world = float(limit_s), world
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def spent(self) -> bool:
        return broadcast_flag(bool(self.limit_s) and self.elapsed() > self.limit_s, self.world)
