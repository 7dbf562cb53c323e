"""The training data stream: a pure function of (seed, position), so a resumed run, or N processes with the same
global batch, see exactly the samples and augmentations of one uninterrupted process."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The augmentation seed of the sample at ``position`` of ``epoch``: independent of processes and workers."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0])


class TrainStream(Sampler):
    """An endless, resumable stream of ``(index, augmentation_seed)`` for one rank.

    One global stream, sliced: epoch ``e`` is a permutation drawn from ``seed + e``, the epochs follow each other
    without padding, and rank ``r`` of ``R`` takes global positions ``r, r+R, ...``. So batch ``t`` of all ranks
    together is exactly batch ``t`` of one process with an R-times larger batch -- the same samples with the
    same seeds, for any data set size and across epoch boundaries. ``start`` skips this rank's first samples
    (resume).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, start: int = 0):
        self.size, self.seed, self.rank, self.world_size, self.start = size, seed, rank, world_size, start

    def __iter__(self):
        position, epoch, order = self.start * self.world_size + self.rank, -1, []
        while True:
            current, index = divmod(position, self.size)
            if current != epoch:
                epoch = current
                order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
            yield order[index], sample_seed(self.seed, epoch, index)
            position += self.world_size


class SeededAugmentation(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` is augmented with that seed (each worker has its copy)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item
        self.dataset.transform.set_random_seed(seed)
        sample = self.dataset[index]
        return sample["image"], sample["label"]
