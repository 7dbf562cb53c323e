"""The training loop: single process or torchrun DDP, CPU or CUDA, resumable to the bit.

``train`` reads top to bottom: build (data, model, optimizer, schedule, loss), restore, log the setup it uses,
then per iteration (``run_iterations``) step, log, validate-and-keep-best, save, and at the end log every rank's
peak memory (``log.jsonl`` and TensorBoard's event files, ``segkit.engine.runlog``). Reproducibility rests on two
choices: the data stream is a pure function of (seed, position) (``segkit.engine.stream``), and the checkpoint holds
everything else that changes (weights, optimizer, scheduler, grad scaler, every rank's RNG states, the iteration).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from segkit.config import Config, ModelConfig, validate
from segkit.data.classes import IGNORE_INDEX, ClassTable, class_table
from segkit.data.dataset import worker_init_fn
from segkit.data.layouts import build_dataset
from segkit.data.normalize import image_to_tensor
from segkit.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from segkit.engine.distributed import Runtime, gather, seed_everything, setup_runtime
from segkit.engine.evaluator import evaluate
from segkit.engine.runlog import (RunLog, peak_memory, plot_curves, remove_events, side_by_side, trim_log,
                                  validation_scalars)
from segkit.engine.schedule import build_poly_scheduler, param_groups
from segkit.engine.stream import SeededAugmentation, TrainStream
from segkit.errors import UserError
from segkit.fileio import write_json_atomic
from segkit.inference import grid_size, model_labels
from segkit.losses import build_loss
from segkit.models import build_model


@dataclass
class Training:
    """What a run changes as it goes: all that ``last.pt`` and ``best.pt`` hold besides the config."""

    model: nn.Module  # the network itself (its state is what checkpoints save)
    net: nn.Module  # what a step calls: the model, compiled and/or wrapped in DistributedDataParallel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    amp_dtype: torch.dtype | None
    memory_format: torch.memory_format
    classes: dict = dataclasses.field(default_factory=dict)  # the class table the checkpoints carry
    iteration: int = 0
    best_miou: float = -1.0


def train(config: Config, work_dir: str | Path, data_root: str | None = None, resume: bool = False,
          device: str | None = None, progress: bool = True) -> dict:
    """Train ``config`` into ``work_dir`` (``last.pt``, ``best.pt``, ``log.jsonl``, ``config.json``,
    ``curves.png``, ``tensorboard/``); returns a summary dict (iterations, best_miou, paths). Works under torchrun."""
    config = validate(config).resolved()  # a config built in Python is checked here, a loaded one again (cheap)
    rt = setup_runtime(device)
    work_dir = Path(work_dir)
    check_crop_on_grid(config)
    train_set, val_set = build_data(config, data_root, rt)  # before any output: a data mistake writes nothing
    prepare_work_dir(work_dir, config, rt, resume)

    state = build_training(config, rt, train_set.table)
    if resume:
        restore(state, work_dir / "last.pt", config, rt)
        if rt.is_main:
            trim_log(work_dir / "log.jsonl", state.iteration)
    log = RunLog(work_dir, rt.is_main, config.train.log_every, start=state.iteration)
    log.write({"iteration": state.iteration, "setup": run_setup(state, config, rt)})
    run_iterations(state, train_set, val_set, config, rt, log, work_dir, progress)
    # A collective (every rank takes part): what each rank held at its peak, in rank order.
    log.write({"iteration": state.iteration, "peak_memory": gather(rt, peak_memory(rt.device))})
    log.close()
    if rt.is_main:
        plot_curves(log.path, work_dir / "curves.png")
    if rt.distributed:
        dist.barrier()
    return {"iterations": config.train.iterations, "best_miou": state.best_miou, "work_dir": str(work_dir),
            "last": str(work_dir / "last.pt"), "best": str(work_dir / "best.pt")}


def run_iterations(state: Training, train_set, val_set, config: Config, rt: Runtime, log: RunLog, work_dir: Path,
                   progress: bool) -> None:
    """From ``state.iteration`` to ``train.iterations``: step, log, validate-and-keep-best, save."""
    last_path, best_path = work_dir / "last.pt", work_dir / "best.pt"
    batches = iter(training_batches(train_set, config, rt, start=state.iteration))
    bar = tqdm(total=config.train.iterations, initial=state.iteration, disable=not (progress and rt.is_main),
               dynamic_ncols=True)
    state.net.train()
    if config.train.bn_eval:
        set_bn_eval(state.model)
    while state.iteration < config.train.iterations:
        waiting = time.perf_counter()
        images, labels = next(batches)
        data_time = time.perf_counter() - waiting  # the loader's workers fell behind the step by this much
        loss, lr = step(state, images, labels, rt, last_path)
        state.iteration += 1
        last = state.iteration == config.train.iterations
        bar.update(1)
        record = log.step(state.iteration, loss, lr, last, data_time)
        if record is not None:
            bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}")
        if (config.train.eval_every and state.iteration % config.train.eval_every == 0) or last:
            validate_and_keep_best(state, val_set, config, rt, log, bar, best_path)
        if state.iteration % config.train.checkpoint_every == 0 or last:
            save(state, config, rt, last_path)
    bar.close()


def run_setup(state: Training, config: Config, rt: Runtime) -> dict:
    """What this run trains with, as ``log.jsonl`` records it: device (and GPU), processes, AMP dtype (None: full
    precision), memory format, compilation, data loader workers."""
    return {"device": str(rt.device),
            "gpu": torch.cuda.get_device_name(rt.device) if rt.device.type == "cuda" else None,
            "world_size": rt.world_size,
            "amp": str(state.amp_dtype).removeprefix("torch.") if state.amp_dtype is not None else None,
            "channels_last": state.memory_format == torch.channels_last, "compile": config.train.compile,
            "workers": config.data.workers}


# ---- build ----------------------------------------------------------------------------------------------------

def check_crop_on_grid(config: Config) -> None:
    """Training crops live on the prediction path's pixel grid (k * output_stride + 1, segkit.inference), where
    the authors' align_corners resizes are exact and their SAME padding symmetric: TF trains on 769x769."""
    crop = tuple(int(v) for v in config.data.crop_size)
    on_grid = grid_size(crop, config.model.output_stride)
    if on_grid != crop:
        raise UserError(f"data.crop_size={crop[0]},{crop[1]} is off the pixel grid of output stride "
                        f"{config.model.output_stride} (sizes k*{config.model.output_stride}+1, where the model's "
                        f"align_corners resizes are exact); use data.crop_size={on_grid[0]},{on_grid[1]}.")


def build_data(config: Config, data_root: str | None, rt: Runtime):
    """The training split (``data.train_split``, with augmentation) and the validation split, both read through
    the class table (``data.classes``), which must fit the model's head; both must exist."""
    table = class_table(config.data.classes)
    if table.num_classes > config.model.num_classes:
        raise UserError(f"data.classes={config.data.classes} has {table.num_classes} classes but model.num_classes is "
                        f"{config.model.num_classes}; leave model.num_classes unset (it follows the table) or give "
                        f"the head {table.num_classes} outputs.", "model.num_classes")
    train_set = build_dataset(config.data, config.data.train_split, data_root, train=True, table=table)
    val_set = build_dataset(config.data, "val", data_root, train=False, table=table)
    if len(train_set) < rt.world_size:
        raise UserError(f"the train split of {train_set.root} has {len(train_set)} images, fewer than the "
                        f"{rt.world_size} processes.")
    return train_set, val_set


def prepare_work_dir(work_dir: Path, config: Config, rt: Runtime, resume: bool) -> None:
    """The run's folder with its resolved config; a new run starts a new log (a resumed one appends)."""
    if rt.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(work_dir / "config.json", config.to_dict())
        if not resume:
            (work_dir / "log.jsonl").unlink(missing_ok=True)
            remove_events(work_dir)


def build_training(config: Config, rt: Runtime, table: ClassTable | None = None) -> Training:
    """Model (the same initial weights on every rank), optimizer, poly schedule, grad scaler and loss; ``table``
    (default: Cityscapes') is what the model's outputs mean."""
    table = table or ClassTable.cityscapes()
    seed_everything(config.train.seed)
    model = build_model(config.model, table.names)
    model = model.to(rt.device)
    if rt.distributed and rt.device.type == "cuda" and config.train.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # channels_last: faster convolutions on CUDA and on this project's CPUs too (BENCHMARKS.md).
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = build_optimizer(model, config.optimizer)
    schedule = config.schedule
    scheduler = build_poly_scheduler(optimizer, config.train.iterations, schedule.poly_power,
                                     schedule.warmup_iterations, schedule.warmup_ratio, schedule.min_lr_ratio)
    dtype = amp_dtype(rt.device, config.train.amp)
    loss = config.loss
    criterion = build_loss(loss.name, class_weights=loss.class_weights, ohem_thresh=loss.ohem_thresh,
                           ohem_min_kept=loss.ohem_min_kept, lovasz_weight=loss.lovasz_weight,
                           dice_weight=loss.dice_weight).to(rt.device)
    net = torch.compile(model) if config.train.compile else model
    if rt.distributed:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[rt.local_rank] if rt.device.type == "cuda" else None)
    # From here on each rank draws its own random numbers (dropout masks): distinct streams, seed + rank.
    seed_everything(config.train.seed + rt.rank)
    return Training(model, net, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=dtype == torch.float16),
                    criterion, dtype, memory_format, table.to_dict())


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD with momentum (the recipe) or AdamW (``cfg``: an OptimizerConfig); no weight decay on BatchNorm
    parameters and biases."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 (with a grad scaler); None = full precision (and on CPU)."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def training_batches(dataset, config: Config, rt: Runtime, start: int) -> DataLoader:
    """This rank's endless batches, from iteration ``start`` on (``TrainStream``)."""
    batch = config.train.batch_size
    stream = TrainStream(len(dataset), config.train.seed, rt.rank, rt.world_size, start=start * batch)
    return DataLoader(SeededAugmentation(dataset), batch_size=batch, sampler=stream, num_workers=config.data.workers,
                      worker_init_fn=worker_init_fn, pin_memory=rt.device.type == "cuda", drop_last=True,
                      persistent_workers=config.data.workers > 0,
                      # The loader's own generator: it must not draw from the global RNG a resume restores.
                      generator=torch.Generator().manual_seed(config.train.seed))


def set_bn_eval(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


# ---- one iteration --------------------------------------------------------------------------------------------

def step(state: Training, images: torch.Tensor, labels: torch.Tensor, rt: Runtime, last_path: Path) \
        -> tuple[float, float]:
    """Forward, loss, backward, optimizer and schedule step; returns (the global batch's mean loss, the learning
    rate this step used)."""
    images = images.to(rt.device, non_blocking=True).contiguous(memory_format=state.memory_format)
    labels = labels.to(rt.device, non_blocking=True)
    with torch.autocast(rt.device.type, dtype=state.amp_dtype, enabled=state.amp_dtype is not None):
        logits = state.net(images)
    loss = state.criterion(logits.float(), labels)
    # The loss is a mean over this rank's valid pixels, and DDP averages gradients over ranks: weight each rank by
    # its share of the valid pixels so the update is the mean over the *global* batch (exactly so for unweighted
    # cross-entropy; class weights and OHEM make it an approximation).
    check = torch.stack([loss.detach(), (labels != IGNORE_INDEX).sum().float()])
    if rt.distributed:
        counts = check.clone()
        dist.all_reduce(counts)
        loss = loss * (rt.world_size * check[1] / counts[1].clamp_min(1))
        check[0] = counts[0] / rt.world_size
    if not torch.isfinite(check[0]):
        raise UserError(f"the loss became {check[0].item()} at iteration {state.iteration + 1}; training stopped "
                        f"and {last_path} keeps the last good state (lower optimizer.lr or check the data).")
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    lr = state.optimizer.param_groups[0]["lr"]  # the rate this step uses (the scheduler moves on below)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    return check[0].item(), lr


# ---- validate, save, restore ----------------------------------------------------------------------------------

def validate_and_keep_best(state: Training, dataset, config: Config, rt: Runtime, log: RunLog, bar, best_path: Path):
    """Mean IoU (%) over ``eval.resolutions`` on the validation split (every rank takes part: the evaluator
    shards); a new best writes ``best.pt``. TensorBoard gets the scores and a few pictures (rank 0)."""
    state.model.eval()
    results = evaluate(model_labels(state.model), dataset, resolutions=config.eval.resolutions, device=rt.device,
                       progress=False, workers=config.data.workers)
    if log.tensorboard is not None:  # rank 0 only; the other ranks go on to the next step's all-reduce and wait
        log.scalars(state.iteration, validation_scalars(results, dataset.table.names))
        log.pictures(state.iteration, validation_pictures(state.model, dataset, config.eval.resolutions[0],
                                                          rt.device))
    state.net.train()
    if config.train.bn_eval:
        set_bn_eval(state.model)
    miou = float(np.mean([100 * results[r].scores.miou for r in config.eval.resolutions]))
    log.write({"iteration": state.iteration, "val_miou": miou, "resolutions": list(config.eval.resolutions)})
    if rt.is_main:
        bar.write(f"iteration {state.iteration}: val mIoU {miou:.2f} % ({'/'.join(config.eval.resolutions)} "
                  f"resolution)")
    if miou > state.best_miou:
        state.best_miou = miou
        save(state, config, rt, best_path)


def validation_pictures(model: nn.Module, dataset, resolution: str, device, count: int = 4) -> dict:
    """The first ``count`` validation images, each the photo with the predicted colours beside the photo with the
    ground truth's, at ``resolution``: the same images at every validation, so TensorBoard's slider shows them
    learn. Predicted again here (``count`` images: cheap), the evaluator keeps no predictions."""
    predict = model_labels(model)
    pictures = {}
    for index in range(min(count, len(dataset))):
        photo, truth = dataset.read(index)
        prediction = predict(image_to_tensor(photo, dataset.normalize)[None].to(device), resolution)[0]
        pictures[f"val/overlay_{resolution}/{index}"] = side_by_side(photo, prediction.cpu().numpy(), truth,
                                                                      dataset.table)
    return pictures


def checkpoint_state(state: Training, config: Config, rt: Runtime) -> dict:
    """The one shape of ``last.pt`` and ``best.pt``. Called on every rank: each contributes its RNG states."""
    return {"model": state.model.state_dict(), "config": config.to_dict(), "iteration": state.iteration,
            "optimizer": state.optimizer.state_dict(), "scheduler": state.scheduler.state_dict(),
            "scaler": state.scaler.state_dict(), "rng": gather(rt, capture_rng_state()),
            "world_size": rt.world_size, "best_miou": state.best_miou, "classes": state.classes}


def save(state: Training, config: Config, rt: Runtime, path: Path) -> None:
    checkpoint = checkpoint_state(state, config, rt)
    if rt.is_main:
        save_checkpoint(path, checkpoint)


def restore(state: Training, path: Path, config: Config, rt: Runtime) -> None:
    """Continue the run saved in ``path``. The file is read on the CPU whatever the training device: RNG states
    must stay CPU tensors, and ``load_state_dict`` moves weights and optimizer state to their parameters' device.
    A run of another model, batch size or number of processes cannot continue exactly (the data stream would
    seek elsewhere): one UserError."""
    work_dir = path.parent
    if not path.is_file():
        raise UserError(f"work_dir={str(work_dir)!r} holds no {path.name} to resume from; start a new run there "
                        f"without resuming, or name the folder of the run to continue.", "work_dir")
    checkpoint = load_checkpoint(path, map_location="cpu")
    saved = Config.from_dict(checkpoint["config"])
    differs = [f"model.{f.name}" for f in dataclasses.fields(ModelConfig) if f.name != "pretrained"
               and getattr(saved.model, f.name) != getattr(config.model, f.name)]
    if differs:
        raise UserError(f"{path} was trained with another model ({', '.join(differs)} differ); resume with the "
                        f"config of that run, or start the new one in another folder (not "
                        f"work_dir={str(work_dir)!r}).", "work_dir")
    saved_world = int(checkpoint.get("world_size", 1))
    if (saved.train.batch_size, saved_world) != (config.train.batch_size, rt.world_size):
        raise UserError(f"{path} was written by {saved_world} process(es) with train.batch_size="
                        f"{saved.train.batch_size}; resume with the same (now {rt.world_size} with "
                        f"{config.train.batch_size}), or the data stream would continue elsewhere.")
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    state.scaler.load_state_dict(checkpoint["scaler"])
    states = checkpoint["rng"] if isinstance(checkpoint["rng"], list) else [checkpoint["rng"]]  # older: rank 0's
    restore_rng_state(states[rt.rank])
    state.iteration, state.best_miou = int(checkpoint["iteration"]), float(checkpoint.get("best_miou", -1.0))
    if state.iteration >= config.train.iterations:
        raise UserError(f"{path} already finished {state.iteration} of train.iterations={config.train.iterations}; "
                        f"raise train.iterations to continue.")
