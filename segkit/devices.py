"""The device rule, asked by training, evaluation, the deploy backends and the self-check alike: a name ("cpu",
"cuda", "cuda:N") or None for the default, CUDA where torch sees a GPU, else the CPU."""
from __future__ import annotations

import torch

from segkit.errors import UserError


def resolve_device(name: str | None = None, index: int | None = None) -> torch.device:
    """``name`` ("cpu", "cuda", "cuda:N"; None: CUDA when available) as a device, made current on CUDA;
    ``index`` (torchrun's LOCAL_RANK) replaces the GPU number. One sentence for a device this machine lacks."""
    try:
        wanted = torch.device(name) if name is not None else None
    except RuntimeError:
        raise UserError(f"device={name!r} is not a device; use cpu, cuda or cuda:N.", "device") from None
    use_cuda = torch.cuda.is_available() if wanted is None else wanted.type == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise UserError(f"device={name!r} asked for CUDA, but torch sees no GPU here; use device='cpu'.", "device")
    if not use_cuda:
        if wanted is not None and wanted.type != "cpu":
            raise UserError(f"device={name!r} is not supported; use cpu or cuda[:N].", "device")
        return torch.device("cpu")
    gpu = index if index is not None else (wanted.index if wanted is not None and wanted.index is not None else 0)
    if gpu >= torch.cuda.device_count():
        raise UserError(f"device={name or 'cuda'!r} needs GPU {gpu}, but torch sees {torch.cuda.device_count()}; "
                        f"choose one of cuda:0..{torch.cuda.device_count() - 1}.", "device")
    torch.cuda.set_device(gpu)
    return torch.device("cuda", gpu)
