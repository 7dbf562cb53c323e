"""Data loading against training (``tools/benchmark.py CONFIG --data DIR``): is the loader the bottleneck?"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

from segkit.config import Config, DataConfig
from segkit.data.dataset import worker_init_fn
from segkit.data.layouts import build_dataset, resolve_data_root
from segkit.data.labels import IGNORE_INDEX
from segkit.engine.trainer import build_optimizer
from segkit.models import build_model


def training_step_rate(config: Config, repeats: int = 5) -> float:
    """Samples per second of full training steps (forward, loss, backward, optimizer step) at the config's crop
    and per-device batch, on random tensors in this process: what the model consumes. The optimizer and memory
    format are the trainer's, so this is the rate ``tools/train.py`` runs at on this CPU."""
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    model = build_model(config.model).train().to(memory_format=memory_format)
    optimizer = build_optimizer(model, config.optimizer)
    batch = config.train.batch_size
    images = torch.randn(batch, 3, *config.data.crop_size).contiguous(memory_format=memory_format)
    labels = torch.randint(0, config.model.num_classes, (batch, *config.data.crop_size))
    timings = []
    for step in range(repeats + 1):  # the first step allocates: not timed
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(images), labels, ignore_index=IGNORE_INDEX)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            timings.append(time.perf_counter() - start)
    return batch / statistics.median(timings)


def loader_throughput(config: DataConfig, root, batch_size: int = 8, workers: int = 2, seconds: float = 10.0,
                      split: str = "train") -> float:
    """Samples per second of a training DataLoader (the training pipeline at ``config.crop_size``, in the config's
    layout and class table).

    The first batch (worker start-up) is not timed; then batches are drawn for about ``seconds``.
    """
    dataset = build_dataset(config, split, root, train=True)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=False, num_workers=workers,
                        worker_init_fn=worker_init_fn, persistent_workers=workers > 0)
    samples, start = 0, None
    while True:
        for batch in loader:
            if start is None:
                start = time.perf_counter()
                continue
            samples += batch["image"].shape[0]
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return samples / elapsed


def data_report(config: Config, data_root, workers: int = 2, seconds: float = 10.0, repeats: int = 5) -> dict:
    """Loader samples/s (training pipeline at the training crop, ``workers`` processes) beside the model's
    training samples/s, measured one after the other on this machine."""
    root = resolve_data_root(data_root, config.data.root)
    loader = loader_throughput(config.data, root, batch_size=config.train.batch_size, workers=workers,
                               seconds=seconds)
    train = training_step_rate(config, repeats=repeats)
    return {"config": config.name, "data_root": str(root), "crop_size": list(config.data.crop_size),
            "batch_size": config.train.batch_size, "workers": workers, "loader_samples_per_s": round(loader, 2),
            "train_samples_per_s": round(train, 2), "loader_to_train_ratio": round(loader / train, 2)}
