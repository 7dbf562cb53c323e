"""Parameter count and multiply-adds, the way Table 7 reports them.

MAdds are ``torch.utils.flop_counter`` FLOPs / 2: the multiply-adds of convolutions and matrix products.
BatchNorm, activations, pooling and resizes are not counted (the paper's figures include some of them, which is
why ours sit a few percent under; docs/paper.md#parameter-and-madds-counting).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_madds(model: nn.Module, size: tuple[int, int]) -> int:
    """Multiply-adds of one eval-mode forward pass on a 1x3xHxW input.

    Runs a copy of the model on the meta device: shapes only, no arithmetic, so 1024x2048 costs milliseconds.
    """
    meta_model = copy.deepcopy(model).to("meta").eval()
    counter = FlopCounterMode(display=False)
    with counter:
        meta_model(torch.zeros(1, 3, *size, device="meta"))
    return counter.get_total_flops() // 2
