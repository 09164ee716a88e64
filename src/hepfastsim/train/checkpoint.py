"""Checkpoint files: written atomically, read back with torch's weights-only unpickler (no code execution)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from hepfastsim.errors import HepFastSimError
from hepfastsim.fileio import atomic_output

FORMAT = "hepfastsim-checkpoint-2"
READABLE = ("hepfastsim-checkpoint-1", FORMAT)   # format 1: options before the typed configs (upgraded on load)


def write_checkpoint(state: dict, path: str | Path) -> Path:
    """One file (temp file + rename: a crash never leaves a half-written checkpoint)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        torch.save({**state, "format": FORMAT}, tmp)
    return path


def _safe_numpy_globals() -> list:
    """What torch's weights-only unpickler may build besides tensors and containers: numpy arrays and dtypes."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [_reconstruct, np.ndarray, np.dtype, *dtypes]


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's state: tensors, numpy arrays, containers and plain values only, so a crafted file cannot
    execute code; a one-line error for a missing, damaged or foreign file."""
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_safe_numpy_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):  # torch names the refused global (a class or function the file wants to call)
            raise HepFastSimError(f"{path} holds objects other than tensors, arrays and containers: refused (a checkpoint "
                                  "must not be able to run code; re-save it with this version)") from None
        raise HepFastSimError(f"{path} is not a readable hepfastsim checkpoint (corrupt or truncated)") from None
    except Exception as exc:  # torch raises many types for damaged files
        raise HepFastSimError(f"{path} is not a readable hepfastsim checkpoint (corrupt or truncated: {type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") not in READABLE:
        raise HepFastSimError(f"{path} is not a hepfastsim checkpoint")
    return state
