"""Early stopping on the validation loss, keeping the best weights seen."""

from __future__ import annotations

import math
from typing import Callable


class EarlyStopping:
    """Stop after ``patience`` epochs without an improvement larger than ``min_delta``; remembers the best
    epoch's value, epoch number and state (``state()`` is called only when the value improves)."""

    def __init__(self, patience: int, min_delta: float = 1e-6, best: float = math.inf):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.bad, self.best_epoch = best, 0, -1
        self.best_state: dict | None = None

    def update(self, value: float, epoch: int, state: Callable[[], dict]) -> bool:
        """Record one epoch's validation value; True when it improved."""
        if value < self.best - self.min_delta:
            self.best, self.bad, self.best_epoch = value, 0, epoch
            self.best_state = state()
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad >= self.patience
