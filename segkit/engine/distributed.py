"""Processes: joining a torchrun process group (the device each process takes follows ``segkit.devices``),
gathering from ranks, seeding."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from segkit.devices import resolve_device


@dataclass
class Runtime:
    """This process: its rank among ``world_size`` (torchrun), and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_runtime(device: str | None = None) -> Runtime:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and join the process group: nccl on GPUs,
    gloo on CPUs. Without torchrun: one process on ``device`` (default: CUDA when available), e.g. ``cuda:1``;
    under torchrun each process takes GPU LOCAL_RANK, whatever index ``device`` names."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank if world_size > 1 else None)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Runtime(rank, world_size, local_rank, dev)


def distributed() -> bool:
    """Whether this process belongs to a process group (torchrun)."""
    return dist.is_available() and dist.is_initialized()


def gather(rt: Runtime, value) -> list:
    """Every rank's ``value`` (picklable), in rank order; a collective: all ranks call it."""
    if not rt.distributed:
        return [value]
    values: list = [None] * rt.world_size
    dist.all_gather_object(values, value)
    return values


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
