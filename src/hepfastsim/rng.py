"""Randomness that leaves the user's global generators alone.

Library code seeds torch's global generator where PyTorch offers nothing else (weight initialisation, dropout);
``isolated_torch_rng`` runs such code on a fork of the global state and restores it afterwards, so a user's
``torch.manual_seed`` before and after a fit or an evaluation sees the same random stream as without it.
"""

from __future__ import annotations

from functools import wraps

import numpy as np
import torch


def isolated_torch_rng(fn):
    """Decorator: run fn on a fork of torch's global (CPU and current CUDA device) random state."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            return fn(*args, **kwargs)

    return wrapper


def fresh_seed() -> int:
    """A 63-bit seed from the operating system's entropy, without touching any global generator."""
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
