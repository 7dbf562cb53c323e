"""Training losses: cross-entropy or OHEM cross-entropy, plus optional weighted Lovász and Dice terms (smp).

All losses take logits (N, C, H, W) and trainId targets (N, H, W) with 255 = ignore. A batch whose pixels are
all ignored gives a loss of 0 (not NaN), so it cannot trip the trainer's non-finite-loss stop.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import UserError, check_choice

LOSSES = ("ce", "ohem")  # the main terms build_loss makes: segkit.config.LOSS_NAMES, the values loss.name may take


class CrossEntropy(nn.Module):
    """Mean cross-entropy over non-ignored pixels, each weighted by its class weight (as F.cross_entropy)."""

    def __init__(self, ignore_index=255, class_weights=None):
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", _as_weights(class_weights), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        target = target.long()
        if keep is not None:  # pixels left out (e.g. easy ones under OHEM) become ignored
            target = torch.where(keep, target, self.ignore_index)
        valid = target != self.ignore_index
        loss = F.cross_entropy(logits.float(), target, weight=self.class_weights, ignore_index=self.ignore_index,
                               reduction="none")
        weight = valid.float() if self.class_weights is None else self.class_weights[target * valid] * valid
        # Divide by the weight sum, clamped: an all-ignored batch gives 0 without a host sync.
        return loss.sum() / weight.sum().clamp_min(1e-12)


class OhemCrossEntropy(nn.Module):
    """Online hard example mining (PaddleSeg / pytorch-segmentation-toolbox semantics), over the whole batch.

    Keep the valid pixels whose softmax probability of the true class is below ``thresh``, and in any case the
    ``min_kept`` hardest ones (lowest probability, ties included); with at most ``min_kept`` valid pixels keep them
    all. The loss is the (class-weighted) mean cross-entropy over the kept pixels.
    """

    def __init__(self, ignore_index=255, class_weights=None, thresh=0.7, min_kept=100_000):
        super().__init__()
        if not 0.0 < thresh <= 1.0:
            raise UserError(f"the OHEM threshold {thresh} must lie in (0, 1].")
        if min_kept < 0:
            raise UserError(f"the OHEM min_kept {min_kept} must not be negative.")
        self.thresh = thresh
        self.min_kept = int(min_kept)
        self.ce = CrossEntropy(ignore_index, class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.long()
        valid = target != self.ce.ignore_index
        with torch.no_grad():  # choosing pixels is not part of the gradient
            prob = logits.float().softmax(1).gather(1, (target * valid).unsqueeze(1)).squeeze(1)
            prob = torch.where(valid, prob, 2.0)  # ignored pixels sort after every real probability
            keep = prob < self.thresh
            num_valid = int(valid.sum())
            if num_valid <= self.min_kept:
                keep = valid
            elif self.min_kept > 0:
                kth = prob.flatten().kthvalue(self.min_kept).values  # the min_kept-th smallest probability
                keep |= prob <= kth
        return self.ce(logits, target, keep=keep)


class WeightedSum(nn.Module):
    """sum(weight * loss(logits, target)) over the terms; ``terms`` are (name, weight, module)."""

    def __init__(self, terms):
        super().__init__()
        self.names = [name for name, _, _ in terms]
        self.weights = [float(weight) for _, weight, _ in terms]
        self.losses = nn.ModuleList([module for _, _, module in terms])

    def forward(self, logits, target):
        return sum(w * loss(logits, target) for w, loss in zip(self.weights, self.losses))


def build_loss(name="ce", ignore_index=255, class_weights=None, ohem_thresh=0.7, ohem_min_kept=100_000,
               lovasz_weight=0.0, dice_weight=0.0) -> nn.Module:
    """The training loss: ``name`` ("ce" or "ohem") with weight 1, plus Lovász and Dice terms when weighted."""
    if name == "ce":
        main = CrossEntropy(ignore_index, class_weights)
    elif name == "ohem":
        main = OhemCrossEntropy(ignore_index, class_weights, ohem_thresh, ohem_min_kept)
    else:
        check_choice("loss.name", name, LOSSES)
    if lovasz_weight < 0 or dice_weight < 0:
        raise UserError(f"loss weights must not be negative (lovasz {lovasz_weight}, dice {dice_weight}).")
    terms = [(name, 1.0, main)]
    if lovasz_weight or dice_weight:
        from segmentation_models_pytorch.losses import DiceLoss, LovaszLoss  # only when used: a heavy import

        if lovasz_weight:
            terms.append(("lovasz", lovasz_weight, LovaszLoss(mode="multiclass", ignore_index=ignore_index)))
        if dice_weight:
            terms.append(("dice", dice_weight, DiceLoss(mode="multiclass", ignore_index=ignore_index)))
    return main if len(terms) == 1 else WeightedSum(terms)


def _as_weights(class_weights) -> torch.Tensor | None:
    if class_weights is None:
        return None
    weights = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
    if weights.numel() == 0 or (weights < 0).any() or not torch.isfinite(weights).all():
        raise UserError("class weights must be a non-empty list of finite, non-negative numbers, one per class.")
    return weights
