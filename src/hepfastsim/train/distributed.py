"""Data-parallel training across processes started by torchrun (gloo on CPU, NCCL on GPUs).

Every process sees the same global batch order and trains on its share of each batch; gradients are averaged
over the processes before every optimiser step (what DDP does), so the weights stay identical everywhere.
"""

from __future__ import annotations

import os

import torch


def init_process_group() -> tuple[int, int]:
    """Join the process group when launched with WORLD_SIZE > 1; returns (rank, world size)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def pick_device(want: str, rank: int = 0) -> torch.device:
    """``auto``: this process's GPU if there is one, else the CPU; otherwise the named device."""
    if want == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", rank % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(want)


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Replace each gradient by its mean over the ``world`` processes (one all-reduce of all of them)."""
    if world <= 1 or not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    torch.distributed.all_reduce(flat)
    flat /= world
    i = 0
    for p in params:
        p.grad.copy_(flat[i:i + p.numel()].view_as(p.grad))
        i += p.numel()


def broadcast_weights(module: torch.nn.Module, world: int) -> None:
    """Process 0's weights and buffers on every process (identical starting points)."""
    if world > 1:
        for t in module.state_dict().values():
            torch.distributed.broadcast(t, 0)


def broadcast_flag(flag: bool, world: int) -> bool:
    """Process 0's value of flag, on every process."""
    t = torch.tensor([float(flag)])
    if world > 1:
        torch.distributed.broadcast(t, 0)
    return bool(t.item())


def finish_process_group() -> None:
    """Leave a distributed run cleanly: wait for every process (process 0 may still be writing the checkpoint),
    then destroy the process group, so that no process exits with the group's threads alive (an abort)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
