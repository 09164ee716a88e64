"""Network building blocks shared by the families."""

from __future__ import annotations

import torch


def mlp(n_in: int, n_out: int, hidden: int, layers: int, act=torch.nn.SiLU, dropout: float = 0.0) -> torch.nn.Sequential:
    """Fully connected network: ``layers`` hidden layers of ``hidden`` units, activation ``act``."""
    mods: list[torch.nn.Module] = []
    d = n_in
    for _ in range(layers):
        mods += [torch.nn.Linear(d, hidden), act()]
        if dropout:
            mods.append(torch.nn.Dropout(dropout))
        d = hidden
    mods.append(torch.nn.Linear(d, n_out))
    return torch.nn.Sequential(*mods)
