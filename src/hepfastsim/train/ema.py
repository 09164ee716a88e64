"""Exponential moving average of a network's weights (what every neural family samples with)."""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_of(net: torch.nn.Module, decay: float) -> AveragedModel:
    """A copy of net whose ``update_parameters(net)`` sets w_ema <- decay * w_ema + (1 - decay) * w (the first
    update copies w); buffers are averaged too."""
    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of module's state (to keep the best weights while training goes on)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
