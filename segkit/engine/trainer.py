"""The training loop: single process or torchrun DDP, CPU or CUDA, resumable to the bit.

Reproducibility rests on two choices. The data stream is a pure function of (seed, position): ``TrainStream``
yields each sample's index *and* its augmentation seed, derived from its global position in the stream, so a
resumed run (or a run split over N processes with the same global batch) sees exactly the same crops; and the
checkpoint stores everything else that changes (weights, optimizer, scheduler, scaler, RNG, iteration).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from segkit.config import OPTIMIZERS, Config, ModelConfig
from segkit.data.cityscapes import build_dataset, worker_init_fn
from segkit.data.labels import IGNORE_INDEX
from segkit.engine.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from segkit.engine.schedule import build_poly_scheduler, param_groups
from segkit.errors import UserError
from segkit.inference import grid_size
from segkit.losses import build_loss
from segkit.models import build_model


# ----------------------------------------------------------------------------------------------- processes
@dataclass
class Runtime:
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
    try:
        wanted = torch.device(device) if device is not None else None
    except RuntimeError:
        raise UserError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N.") from None
    use_cuda = torch.cuda.is_available() if wanted is None else wanted.type == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for CUDA, but torch sees no GPU here; use --device cpu.")
    if use_cuda:
        index = local_rank if world_size > 1 or wanted is None or wanted.index is None else wanted.index
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {device or 'cuda'} needs GPU {index}, but torch sees "
                            f"{torch.cuda.device_count()}; choose one of cuda:0..{torch.cuda.device_count() - 1}.")
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    elif wanted is not None and wanted.type != "cpu":
        raise UserError(f"--device {device} is not supported for training; use cpu or cuda[:N].")
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Runtime(rank, world_size, local_rank, dev)


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------------ data
def check_crop_on_grid(config: Config) -> None:
    """Training crops live on the prediction path's pixel grid (k * output_stride + 1, segkit.inference), where
    the authors' align_corners resizes are exact and their SAME padding symmetric: TF trains on 769x769."""
    crop = tuple(int(v) for v in config.data.crop_size)
    on_grid = grid_size(crop, config.model.output_stride)
    if min(crop) > 0 and on_grid != crop:
        raise UserError(f"data.crop_size={crop[0]},{crop[1]} is off the pixel grid of output stride "
                        f"{config.model.output_stride} (sizes k*{config.model.output_stride}+1, where the model's "
                        f"align_corners resizes are exact); use data.crop_size={on_grid[0]},{on_grid[1]}.")


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


# ---------------------------------------------------------------------------------------------------- model
def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 (with a grad scaler); None = full precision (and on CPU)."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD with momentum (the recipe) or AdamW; no weight decay on BatchNorm parameters and biases."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise UserError(f"train.optimizer={cfg.optimizer!r} is unknown; choose one of {', '.join(OPTIMIZERS)}.")


def set_bn_eval(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


# -------------------------------------------------------------------------------------------------- logging
class RunLog:
    """``log.jsonl`` (one JSON object per line), TensorBoard when installed; rank 0 only."""

    def __init__(self, work_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = work_dir / "log.jsonl"
        self.tensorboard = None
        if enabled:
            with contextlib.suppress(ImportError):  # optional dependency
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(work_dir / "tensorboard"))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "iteration" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["iteration"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(log_path: Path, out_path: Path) -> None:
    """Loss, learning rate and validation mIoU against iterations, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "val_miou" in r]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot([r["iteration"] for r in steps], [r["loss"] for r in steps])
    axes[0].set(title="training loss", xlabel="iteration", yscale="log")
    axes[1].plot([r["iteration"] for r in steps], [r["lr"] for r in steps])
    axes[1].set(title="learning rate", xlabel="iteration")
    axes[2].plot([r["iteration"] for r in evals], [r["val_miou"] for r in evals], marker="o")
    axes[2].set(title="validation mIoU (%)", xlabel="iteration", ylim=(0, 100))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------------- train
def train(config: Config, work_dir: str | Path, data_root: str | None = None, resume: bool = False,
          device: str | None = None, progress: bool = True) -> dict:
    """Train ``config`` into ``work_dir`` (``last.pt``, ``best.pt``, ``log.jsonl``, ``config.json``,
    ``curves.png``); returns a summary dict (iterations, best_miou, paths). Works under torchrun."""
    rt = setup_runtime(device)
    cfg, work_dir = config.train, Path(work_dir)
    last_path, best_path = work_dir / "last.pt", work_dir / "best.pt"
    check_crop_on_grid(config)
    # Data first: a missing data set should fail before any model work.
    train_set = build_dataset(config.data, "train", data_root)
    val_set = build_dataset(config.data, "val", data_root, train=False)
    if len(train_set) < rt.world_size:
        raise UserError(f"the train split of {train_set.root} has {len(train_set)} images, fewer than the "
                        f"{rt.world_size} processes.")

    if rt.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        if not resume:  # a new run starts a new log (a resumed one appends)
            (work_dir / "log.jsonl").unlink(missing_ok=True)

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_model(config.model).to(rt.device)
    if rt.distributed and rt.device.type == "cuda" and cfg.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # channels_last: faster convolutions on CUDA and, measured here, 1.5x faster training steps on this CPU too.
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_poly_scheduler(optimizer, cfg.iterations, cfg.poly_power, cfg.warmup_iterations,
                                     cfg.warmup_ratio, cfg.min_lr_ratio)
    dtype = amp_dtype(rt.device, cfg.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    criterion = build_loss(cfg.loss, class_weights=cfg.class_weights, ohem_thresh=cfg.ohem_thresh,
                           ohem_min_kept=cfg.ohem_min_kept, lovasz_weight=cfg.lovasz_weight,
                           dice_weight=cfg.dice_weight).to(rt.device)

    # From here on each rank draws its own random numbers (dropout masks): distinct streams, seed + rank.
    seed_everything(cfg.seed + rt.rank)
    start, best_miou = 0, -1.0
    if resume:
        if not last_path.is_file():
            raise UserError(f"--resume found no {last_path}; start without --resume or pass the run's --work-dir.")
        start, best_miou = resume_from(last_path, config, rt, model, optimizer, scheduler, scaler)
        if rt.is_main:  # drop log lines written after the checkpoint: they are about to be redone
            kept = [r for r in read_log(work_dir / "log.jsonl") if r["iteration"] <= start]
            (work_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
        if start >= cfg.iterations:
            raise UserError(f"{last_path} already finished {start} of train.iterations={cfg.iterations}; "
                            f"raise train.iterations to continue.")

    net = model
    if cfg.compile:
        net = torch.compile(net)
    if rt.distributed:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[rt.local_rank] if rt.device.type == "cuda" else None)

    stream = TrainStream(len(train_set), cfg.seed, rt.rank, rt.world_size, start=start * cfg.batch_size)
    loader = DataLoader(SeededAugmentation(train_set), batch_size=cfg.batch_size, sampler=stream,
                        num_workers=config.data.workers, worker_init_fn=worker_init_fn,
                        pin_memory=rt.device.type == "cuda", drop_last=True,
                        persistent_workers=config.data.workers > 0,
                        # The loader's own generator: it must not draw from the global RNG a resume restores.
                        generator=torch.Generator().manual_seed(cfg.seed))
    batches = iter(loader)
    log = RunLog(work_dir, rt.is_main)

    def checkpoint_state(iteration: int) -> dict:
        """Called on every rank: each contributes its RNG states, rank 0 writes the file."""
        return {"model": model.state_dict(), "config": config.to_dict(), "iteration": iteration,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": gather_rng_states(rt), "world_size": rt.world_size,
                "best_miou": best_miou}

    bar = tqdm(total=cfg.iterations, initial=start, disable=not (progress and rt.is_main), dynamic_ncols=True)
    window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
    net.train()
    if cfg.bn_eval:
        set_bn_eval(model)
    for iteration in range(start, cfg.iterations):
        images, labels = next(batches)
        images = images.to(rt.device, non_blocking=True).contiguous(memory_format=memory_format)
        labels = labels.to(rt.device, non_blocking=True)
        with torch.autocast(rt.device.type, dtype=dtype, enabled=dtype is not None):
            logits = net(images)
        loss = criterion(logits.float(), labels)
        # The loss is a mean over this rank's valid pixels, and DDP averages gradients over ranks: weight each
        # rank by its share of the valid pixels so the update is the mean over the *global* batch (exactly so
        # for unweighted cross-entropy; class weights and OHEM make it an approximation).
        check = torch.stack([loss.detach(), (labels != IGNORE_INDEX).sum().float()])
        if rt.distributed:
            counts = check.clone()
            dist.all_reduce(counts)
            loss = loss * (rt.world_size * check[1] / counts[1].clamp_min(1))
            check[0] = counts[0]
        if not torch.isfinite(check[0]):
            raise UserError(f"the loss became {check[0].item()} at iteration {iteration + 1}; training stopped "
                            f"and {last_path} keeps the last good state (lower train.lr or check the data).")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        lr = optimizer.param_groups[0]["lr"]  # the rate this step uses (the scheduler moves on below)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        done = iteration + 1
        window_loss += check[0].item() / rt.world_size if rt.distributed else check[0].item()
        window_steps += 1
        bar.update(1)
        if done % cfg.log_every == 0 or done == cfg.iterations:
            elapsed = time.perf_counter() - window_start
            record = {"iteration": done, "loss": window_loss / window_steps, "lr": lr,
                      "it_per_s": window_steps / max(elapsed, 1e-9)}
            log.write(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}")
            window_loss, window_start, window_steps = 0.0, time.perf_counter(), 0
        if cfg.eval_every and done % cfg.eval_every == 0 or done == cfg.iterations:
            miou = validate(model, val_set, cfg.eval_resolutions, rt, workers=config.data.workers)
            net.train()
            if cfg.bn_eval:
                set_bn_eval(model)
            log.write({"iteration": done, "val_miou": miou, "resolutions": list(cfg.eval_resolutions)})
            if rt.is_main:
                bar.write(f"iteration {done}: val mIoU {miou:.2f} % ({'/'.join(cfg.eval_resolutions)} resolution)")
            if miou > best_miou:
                best_miou = miou
                if rt.is_main:
                    save_checkpoint(best_path, {"model": model.state_dict(), "config": config.to_dict(),
                                                "iteration": done, "best_miou": best_miou})
        if done % cfg.checkpoint_every == 0 or done == cfg.iterations:
            state = checkpoint_state(done)
            if rt.is_main:
                save_checkpoint(last_path, state)
    bar.close()
    log.close()
    if rt.is_main:
        plot_curves(log.path, work_dir / "curves.png")
    if rt.distributed:
        dist.barrier()
    return {"iterations": cfg.iterations, "best_miou": best_miou, "work_dir": str(work_dir),
            "last": str(last_path), "best": str(best_path)}


def gather_rng_states(rt: Runtime) -> list[dict]:
    """Every rank's RNG states, in rank order (a collective: all ranks call it)."""
    state = capture_rng_state()
    if not rt.distributed:
        return [state]
    states: list = [None] * rt.world_size
    dist.all_gather_object(states, state)
    return states


def resume_from(path: Path, config: Config, rt: Runtime, model: nn.Module, optimizer, scheduler, scaler) \
        -> tuple[int, float]:
    """Restore a run from ``path`` (its iteration and best mIoU are returned). The file is read on the CPU
    whatever the training device: RNG states must stay CPU tensors, and ``load_state_dict`` moves weights and
    optimizer state to their parameters' device. A run of another model, batch size or number of processes
    cannot continue exactly (the data stream would seek elsewhere): one UserError."""
    state = load_checkpoint(path, map_location="cpu")
    saved = Config.from_dict(state["config"])
    differs = [f"model.{f.name}" for f in dataclasses.fields(ModelConfig) if f.name != "pretrained"
               and getattr(saved.model, f.name) != getattr(config.model, f.name)]
    if differs:
        raise UserError(f"{path} was trained with another model ({', '.join(differs)} differ); resume with the "
                        f"config of that run, or start a new run in another --work-dir.")
    saved_world = int(state.get("world_size", 1))
    if (saved.train.batch_size, saved_world) != (config.train.batch_size, rt.world_size):
        raise UserError(f"{path} was written by {saved_world} process(es) with train.batch_size="
                        f"{saved.train.batch_size}; resume with the same (now {rt.world_size} with "
                        f"{config.train.batch_size}), or the data stream would continue elsewhere.")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    states = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]  # older files: rank 0's only
    restore_rng_state(states[rt.rank])
    return int(state["iteration"]), float(state.get("best_miou", -1.0))


def validate(model: nn.Module, dataset, resolutions, rt: Runtime, workers: int) -> float:
    """Mean IoU (%) over ``resolutions`` on ``dataset``; every rank takes part (the evaluator shards)."""
    from segkit.engine.evaluator import evaluate

    results = evaluate(model, dataset, resolutions=tuple(resolutions), device=rt.device, progress=False,
                       workers=workers)
    return float(np.mean([100 * results[r].scores.miou for r in resolutions]))
