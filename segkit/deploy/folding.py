"""BatchNorm folded into the convolutions: the PyTorch model as deployed (``TorchBackend``)."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution in an ``nn.Sequential`` into that convolution
    (in place; eval mode). Our models build conv+BN pairs only that way (torchvision's Conv2dNormActivation and
    the heads' conv_bn_relu), so a walk over Sequentials finds them all without tracing; the BN becomes Identity
    so module indices (and the backbone's depthwise tap) stay as they were."""
    model.eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for index in range(len(module) - 1):
            conv, norm = module[index], module[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module[index] = fuse_conv_bn_eval(conv, norm)
                module[index + 1] = nn.Identity()
    return model


def optimize_for_inference(model: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """A copy of ``model`` for inference: eval mode, BatchNorm folded, channels_last (the layout oneDNN's
    convolutions run natively, so no reorder per layer), no gradients. The original is left untouched."""
    model = fold_batchnorm(copy.deepcopy(model).eval())
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.to(device=device, memory_format=torch.channels_last)
