"""The prediction plan: the geometry of one prediction (the pixel grid), written down without PyTorch.

A prediction resizes the photo to the resolution's network size, pads it bottom/right to the pixel grid
(``grid_size``: k * output_stride + 1, deeplab's align_corners geometry, see ``segkit.inference``), runs the
network there and takes its logits through a few resize steps back to the photo. ``plan_prediction`` /
``plan_for`` write this down once per image size as a ``GridPlan``; every path executes that plan.

The plan lives here, apart from ``segkit.inference``, because ``segkit.runtime`` executes it with numpy and the
exported graphs and must not import torch: this module imports none at module level. The ``GridPlan`` methods
that execute the plan on tensors (``resize``, ``pad``, ``network_input``, ``upsample``) import it when called.
``segkit.inference`` re-exports everything here, so the torch paths keep using it under their old names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from segkit.errors import UserError
from segkit.resolutions import resolution as find_resolution

if TYPE_CHECKING:
    import torch

MIN_PHOTO_SIZE = 32  # pixels, each side: below that the network's strided layers run out of image

# One step from head logits towards the label map: (kind, (height, width)), with kind
#   "corners": bilinear resize with align_corners=True (TF's resize: logits to the padded network input),
#   "crop":    keep the first rows and columns (the network input's own pixels inside the padded grid),
#   "centers": bilinear resize with align_corners=False (from a resized image back to the image: upsample_logits).
ResizeStep = tuple[str, tuple[int, int]]


def grid_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """The grid rule: the smallest size >= ``size`` of the form k * stride + 1 on both axes."""
    return tuple(-(-(n - 1) // stride) * stride + 1 for n in size)


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


@dataclass(frozen=True)
class GridPlan:
    """The geometry of one prediction: an image of ``image_size`` is resized to ``network_size`` (the resolution's
    scale), padded bottom/right to ``padded_size`` (the pixel grid), and the network's logits are taken through
    ``steps`` back to ``image_size``."""

    image_size: tuple[int, int]
    network_size: tuple[int, int]
    padded_size: tuple[int, int]

    @property
    def steps(self) -> tuple[ResizeStep, ...]:
        """Head logits -> logits at the image size: upsample to the padded input (TF's align_corners), crop the
        network input's own pixels, then, for a resized image, upsample to the image (half-pixel centres)."""
        steps = [("corners", self.padded_size)]
        if self.network_size != self.padded_size:
            steps.append(("crop", self.network_size))
        if self.image_size != self.network_size:
            steps.append(("centers", self.image_size))
        return tuple(steps)

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, C, *image_size) at the network size (``segkit.inference.resize_images``)."""
        from segkit.inference import resize_images

        return resize_images(images, self.network_size)

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """Images of the network size padded bottom/right with 0 (the mean pixel) to the grid."""
        import torch.nn.functional as F

        if tuple(images.shape[-2:]) == self.padded_size:
            return images
        bottom, right = (p - int(n) for p, n in zip(self.padded_size, images.shape[-2:]))
        return F.pad(images, (0, right, 0, bottom))

    def network_input(self, images: torch.Tensor) -> torch.Tensor:
        """What the network runs on: the images resized, then padded to the grid."""
        return self.pad(self.resize(images))

    def upsample(self, logits: torch.Tensor) -> torch.Tensor:
        """The plan executed densely: head logits through every step to (N, C, *image_size). A step is skipped
        where the logits already have its size (a module whose output is at its input size)."""
        import torch.nn.functional as F

        for kind, size in self.steps:
            if kind == "crop":
                logits = logits[..., : size[0], : size[1]]
            elif tuple(logits.shape[-2:]) != size:
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=kind == "corners")
        return logits


def plan_prediction(image_size: tuple[int, int], stride: int, scale: float = 1.0) -> GridPlan:
    """The plan of an image of ``image_size`` run at ``scale`` times its size by a network of output ``stride``."""
    network_size = scaled_size(tuple(int(n) for n in image_size), scale)
    return GridPlan(tuple(int(n) for n in image_size), network_size, grid_size(network_size, stride))


def plan_for(image_size: tuple[int, int], resolution: str, stride: int) -> GridPlan:
    """The plan of an image at a named resolution ("full", "half": ``segkit.resolutions``)."""
    return plan_prediction(image_size, stride, find_resolution(resolution).scale)


def check_photo(image, resolution: str = "full"):
    """The photo as an array (numpy), or one sentence on what is wrong with it (or with ``resolution``): what
    every predictor takes, RGB uint8 (H, W, 3) of at least ``MIN_PHOTO_SIZE`` pixels a side."""
    import numpy as np

    find_resolution(resolution)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {tuple(image.shape)}.")
    if min(image.shape[:2]) < MIN_PHOTO_SIZE:
        raise UserError(f"the photo is {image.shape[1]}x{image.shape[0]} pixels; segkit needs at least "
                        f"{MIN_PHOTO_SIZE}x{MIN_PHOTO_SIZE}.")
    return image

