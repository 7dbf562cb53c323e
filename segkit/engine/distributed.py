"""Processes and devices: the one place that chooses a device and joins a torchrun process group, for training,
evaluation and prediction alike."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from segkit.errors import UserError


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


def resolve_device(name: str | None, index: int | None = None) -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:N"; None: CUDA when available) as a device, made current on CUDA;
    ``index`` (torchrun's LOCAL_RANK) replaces the GPU number. One sentence for a device this machine lacks."""
    try:
        wanted = torch.device(name) if name is not None else None
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N.") from None
    use_cuda = torch.cuda.is_available() if wanted is None else wanted.type == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for CUDA, but torch sees no GPU here; use --device cpu.")
    if not use_cuda:
        if wanted is not None and wanted.type != "cpu":
            raise UserError(f"--device {name} is not supported; use cpu or cuda[:N].")
        return torch.device("cpu")
    gpu = index if index is not None else (wanted.index if wanted is not None and wanted.index is not None else 0)
    if gpu >= torch.cuda.device_count():
        raise UserError(f"--device {name or 'cuda'} needs GPU {gpu}, but torch sees {torch.cuda.device_count()}; "
                        f"choose one of cuda:0..{torch.cuda.device_count() - 1}.")
    torch.cuda.set_device(gpu)
    return torch.device("cuda", gpu)


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
