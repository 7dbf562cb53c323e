"""Optimizer parameter groups and the per-iteration poly learning-rate schedule (with optional linear warmup).

    lr(it) = (base - min) * (1 - it / iterations) ** power + min,   it = 0 .. iterations
and during warmup (it < warmup_iterations) that value times warmup_ratio + (1 - warmup_ratio) * it / warmup
(the mmcv "linear" warmup: it ramps up onto the poly curve, so the schedule still ends at ``min``).
Call ``scheduler.step()`` once after every ``optimizer.step()``: the LambdaLR counter is the iteration.
"""
from __future__ import annotations

import torch
from torch import nn

from segkit.errors import UserError


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weight decay on conv/linear weights, none on BN parameters and biases (every tensor of ndim <= 1)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def poly_lr_lambda(iterations: int, power: float = 0.9, warmup_iterations: int = 0, warmup_ratio: float = 1e-3,
                   min_ratio: float = 0.0):
    """The multiplier of the base lr at iteration ``it`` (for LambdaLR); ``min_ratio`` = min lr / base lr."""
    if iterations <= 0:
        raise UserError(f"train.iterations={iterations} must be positive.")
    if not 0 <= warmup_iterations < iterations:
        raise UserError(f"train.warmup_iterations={warmup_iterations} must lie in [0, train.iterations={iterations}).")
    if power <= 0 or not 0 <= warmup_ratio <= 1 or not 0 <= min_ratio < 1:
        raise UserError(f"poly schedule needs power > 0, warmup_ratio in [0, 1] and min_ratio in [0, 1) "
                        f"(got {power}, {warmup_ratio}, {min_ratio}).")

    def factor(it: int) -> float:
        progress = min(it, iterations) / iterations  # past the end: stay at the minimum
        value = (1 - min_ratio) * (1 - progress) ** power + min_ratio
        if it < warmup_iterations:
            value *= warmup_ratio + (1 - warmup_ratio) * it / warmup_iterations
        return value

    return factor


def build_poly_scheduler(optimizer: torch.optim.Optimizer, iterations: int, power: float = 0.9,
                         warmup_iterations: int = 0, warmup_ratio: float = 1e-3, min_ratio: float = 0.0):
    """LambdaLR over ``poly_lr_lambda``; its state_dict is plain data (safe for weights_only checkpoints)."""
    factor = poly_lr_lambda(iterations, power, warmup_iterations, warmup_ratio, min_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
