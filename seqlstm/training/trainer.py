"""The one training loop behind every task model (tagger, translator, language model,
classifier, forecaster).

The Trainer knows a model only through the task protocol of ``seqlstm.tasks.base``: it calls
``module(batch)`` on each batch of ``train_batches`` (DDP-wrapped under ``torchrun``) and
gets a ``StepOutput`` with the SUM of the batch's per-token losses and the number of tokens.
Whatever a task needs beyond one call per batch lives in its model's ``forward`` (the
language model carries its LSTM state from window to window there). An optional
``evaluate_fn(model) -> metrics`` gives the validation metrics. The Trainer does the rest:
device placement, DDP, mixed precision, gradient accumulation, clipping, warm-up and plateau
LR schedules, weight averaging, early stopping, logging, checkpoints and resume.

Loss normalisation. Gradients are divided by the token count of the whole optimizer step
(every accumulation micro-batch on every rank), so accumulation and DDP give exactly the
gradient of one big batch however unevenly the tokens are spread. DDP averages gradients over
ranks, so the factor applied after backward is ``world_size / global_tokens``; it is merged
with the clipping factor into one multiplication of the gradients.

Host syncs. The per-step summed loss and token count stay on the device (under DDP they are
summed over ranks in one all-reduce, with a vote on the time budget so that all ranks stop
together). They are read back only at *sync steps*: every step on CPU (where reading is
free, so a NaN is caught before the optimizer applies it) and on accelerators only at log,
evaluation, checkpoint and epoch-end steps. A non-finite loss raises
:class:`TrainingDivergedError` naming the first bad step; since checkpoints are only written
right after a sync step has been checked, the last checkpoint on disk is always a good one.

Weight averaging. With ``ema_decay`` the Trainer keeps an exponential moving average of the
weights (Polyak averaging), updated after every optimizer step. Evaluation, checkpoint
selection, the checkpoints' ``model/`` weights and the model left at the end of ``fit`` all
use the average; training goes on from the raw weights, which checkpoints keep too (under
``training_weights/``), so resume stays exact.

Resume. A checkpoint is taken between optimizer steps and records the data position
(epoch, batches consumed in it), so ``resume=True`` replays the same batches, dropout masks
(RNG states) and learning rates as an uninterrupted run, bit for bit on CPU. State that a
model or batch source carries from batch to batch (the language model's LSTM state) is
saved too, through the optional ``CarriesTrainingState`` hook of ``seqlstm.tasks.base``:
each rank's under DDP. Evaluation runs with the RNG states and the model's carried state
saved and restored around it, and the extra evaluation at the end of a run does not feed
the plateau schedule, so stopping and resuming changes nothing: a run killed after any step
and resumed ends with the weights of the uninterrupted run.

One writer. While ``fit`` runs, rank 0 holds the lock of ``output_dir``
(``seqlstm.atomic_files.lock_directory``): a second Trainer on the same directory fails at
once with a CheckpointError naming the holder, and a crashed one leaves no stale lock. Under
that lock ``fit`` first deletes what a killed write, save or prune left in ``output_dir`` and
its checkpoint directory. A fresh run (``resume=False``) refuses a directory that holds
checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from seqlstm.atomic_files import (
    DirectoryLock,
    lock_directory,
    remove_temporaries,
    write_text_atomic,
)
from seqlstm.errors import CheckpointError
from seqlstm.tasks.base import CarriesTrainingState, StepOutput, move_to_device
from seqlstm.training.checkpoint import (
    CheckpointManager,
    capture_rng_state,
    flatten_state,
    load_model_weights,
    model_class_name,
    read_checkpoint,
    read_checkpoint_state,
    restore_rng_state,
    seed_everything,
    unflatten_state,
)
from seqlstm.training.distributed import (
    DistributedContext,
    all_gather_json,
    all_gather_tensors,
    all_reduce_sum_,
    barrier,
    broadcast_json,
    destroy_distributed,
    init_distributed,
)

logger = logging.getLogger(__name__)


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


class BatchSource(Protocol):
    """Training batches, already sharded for this rank; the order is a function of the epoch."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[Any]: ...


@dataclass
class TrainerConfig:
    """Everything the training loop does, with defaults suitable for small LSTM models.

    Training stops at whichever of ``max_epochs``, ``max_steps`` (optimizer steps) and
    ``max_time_minutes`` (wall clock, counted across resumes) comes first, or by early stopping.

    LR schedule: the update after ``s`` completed steps uses
    ``lr_now * min(1, (s + 1) / warmup_steps)``, where ``lr_now`` starts at ``lr`` and is
    multiplied by ``lr_decay_factor`` (never below ``min_lr``) when more than ``lr_patience``
    scheduled evaluations in a row have not improved ``metric``. Training stops early when
    more than ``early_stopping_patience`` evaluations in a row have not improved it.

    ``eval_every_steps=None`` evaluates at the end of each epoch; a checkpoint is written
    after every scheduled evaluation, every ``checkpoint_every_steps`` steps (None: at each
    epoch end) and at the end of training.
    """

    output_dir: str = "runs/train"
    max_epochs: int | None = 10
    max_steps: int | None = None
    max_time_minutes: float | None = None
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    betas: tuple[float, float] = (0.9, 0.999)  # adam/adamw only
    grad_clip: float | None = 5.0  # max global L2 norm of the gradients; None disables
    # decay of the moving average of the weights that is evaluated and saved (None: none); the
    # update after step t uses min(ema_decay, (1 + t) / (10 + t)), so that the first steps'
    # weights do not linger in the average
    ema_decay: float | None = None
    accumulation_steps: int = 1
    warmup_steps: int = 0
    lr_decay_factor: float = 0.5  # 1.0 disables decay on plateau
    lr_patience: int = 2
    min_lr: float = 1e-6
    early_stopping_patience: int | None = None
    metric: str = "loss"  # key of the dict that evaluate_fn returns
    metric_mode: Literal["min", "max"] = "min"
    eval_every_steps: int | None = None
    checkpoint_every_steps: int | None = None
    save_checkpoints: bool = True
    keep_last: int = 3
    keep_best: bool = True
    load_best_at_end: bool = False  # put the best checkpoint's weights into the model
    device: str = "auto"  # auto: cuda, then mps, then cpu
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16/fp16 on CUDA
    seed: int = 0
    log_every_steps: int = 50  # the training loss; also at each evaluation and at the end
    progress_bar: bool = True
    resume: bool = False  # continue from the latest checkpoint in output_dir, if any

    def __post_init__(self) -> None:
        self.output_dir = str(self.output_dir)
        self.betas = tuple(self.betas)
        positive = ("accumulation_steps", "log_every_steps", "keep_last")
        optional_positive = (
            "max_epochs",
            "max_steps",
            "max_time_minutes",
            "eval_every_steps",
            "checkpoint_every_steps",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainerConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in optional_positive:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"TrainerConfig.{name} must be > 0 or None, got {value}")
        if self.max_epochs is None and self.max_steps is None and self.max_time_minutes is None:
            raise ValueError("TrainerConfig needs max_epochs, max_steps or max_time_minutes")
        choices = {
            "optimizer": ("adam", "adamw", "sgd"),
            "metric_mode": ("min", "max"),
            "precision": ("auto", "fp32", "bf16", "fp16"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainerConfig.{name} must be one of {allowed}")
        if not 0 < self.lr_decay_factor <= 1:
            raise ValueError(f"lr_decay_factor must be in (0, 1], got {self.lr_decay_factor}")
        for name in ("warmup_steps", "lr_patience", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"TrainerConfig.{name} must be >= 0, got {value}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")


@dataclass
class PlateauSchedule:
    """LR decay on a plateau of the validation metric, and early stopping (scheduled evals)."""

    lr: float
    factor: float
    patience: int
    min_lr: float
    mode: Literal["min", "max"]
    stop_patience: int | None
    best: float | None = None
    bad_evals: int = 0  # since the last improvement or decay
    evals_since_best: int = 0

    def improves(self, value: float, best: float | None) -> bool:
        if best is None:
            return not math.isnan(value)
        return value < best if self.mode == "min" else value > best

    def update(self, value: float) -> bool:
        """Record one evaluation; returns True when training should stop early."""
        if self.improves(value, self.best):
            self.best, self.bad_evals, self.evals_since_best = value, 0, 0
        else:
            self.bad_evals += 1
            self.evals_since_best += 1
            if self.bad_evals > self.patience:
                self.lr = max(self.lr * self.factor, min(self.min_lr, self.lr))
                self.bad_evals = 0
        return self.exhausted

    @property
    def exhausted(self) -> bool:
        """Early stopping: more than ``stop_patience`` evaluations without improvement."""
        return self.stop_patience is not None and self.evals_since_best > self.stop_patience

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("lr", "best", "bad_evals", "evals_since_best")}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def budget_reached(config: TrainerConfig, step: int, epoch: int) -> str | None:
    """The step or epoch budget that ``step`` completed steps (data position in ``epoch``)
    have reached, if any: "max_steps" or "max_epochs"."""
    if config.max_steps is not None and step >= config.max_steps:
        return "max_steps"
    if config.max_epochs is not None and epoch >= config.max_epochs:
        return "max_epochs"
    return None


def stop_reason_before_training(
    config: TrainerConfig, step: int, epoch: int, evals_since_best: int, elapsed_s: float
) -> str | None:
    """Why a run resumed at this point (its checkpoint's counters) would train no step:
    a step or epoch budget, early stopping, or the time budget spent before; None if it
    trains on."""
    reason = budget_reached(config, step, epoch)
    patience = config.early_stopping_patience
    if reason is None and patience is not None and evals_since_best > patience:
        reason = "early_stopping"
    budget = config.max_time_minutes
    if reason is None and budget is not None and elapsed_s > 60 * budget:
        reason = "max_time_minutes"
    return reason


def finished_checkpoint(config: TrainerConfig) -> tuple[Path, str] | None:
    """(the latest checkpoint in ``config.output_dir``, why resuming from it would train no
    further step under ``config``), or None when there is no checkpoint or it would train on.
    Reads the checkpoint's JSON only."""
    latest = CheckpointManager(checkpoint_directory(config.output_dir)).latest()
    if latest is None:
        return None
    state = read_checkpoint_state(latest)
    try:
        reason = stop_reason_before_training(
            config,
            state["step"],
            state["epoch"],
            state["schedule"]["evals_since_best"],
            state["elapsed_s"],
        )
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint {latest} lacks the entry {err}") from err
    return None if reason is None else (latest, reason)


def checkpoint_directory(output_dir: str | Path) -> Path:
    """Where a Trainer with this ``output_dir`` keeps its checkpoints."""
    return Path(output_dir) / "checkpoints"


def format_metric(value: float) -> str:
    """A metric for the log: 2 decimals (F1 72.25, loss 1.50), 3 significant digits below 1
    (0.0123, not 0.01), and whole numbers (counts, a first F1 of 0) without decimals."""
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def format_metrics(metrics: Mapping[str, float], first: str) -> str:
    """One short line of metrics: ``first`` (the metric that selects checkpoints), then
    ``|`` and the others in their order, e.g. ``f1 72.25 | precision 72.98 recall 71.54``."""
    line = f"{first} {format_metric(metrics[first])}"
    rest = " ".join(f"{k} {format_metric(v)}" for k, v in metrics.items() if k != first)
    return f"{line} | {rest}" if rest else line


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA when supported, else fp16 (with a GradScaler); fp32 elsewhere."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


class Trainer:
    """Train ``model`` on ``train_batches``; see the module docstring.

    ``model(batch)`` must return a ``StepOutput`` (the task protocol of ``seqlstm.tasks.base``)
    for every batch that ``train_batches`` yields. Under ``torchrun`` the Trainer joins the
    process group itself (and leaves it at the end of :meth:`fit`); the batches then go through
    the DDP-wrapped module, ``evaluate_fn`` receives the plain model on rank 0 only, and only
    rank 0 logs and writes checkpoints. For resume, every rank must see ``output_dir``.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainerConfig,
        train_batches: BatchSource,
        evaluate_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> None:
        self.config = config
        self.train_batches = train_batches
        self.evaluate_fn = evaluate_fn
        self.context = DistributedContext.from_env(config.device)
        self._owns_process_group = init_distributed(self.context)
        self.device = self.context.device
        self.model = model.to(self.device)
        self.module: nn.Module = self.model
        if self.context.is_distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.module = DistributedDataParallel(self.model, device_ids=device_ids)
        named = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        self._param_names = [name for name, _ in named]
        self._params = [p for _, p in named]
        # the moving average of self._params (weight averaging), or None
        self._average: list[torch.Tensor] | None = None
        if config.ema_decay is not None:
            self._average = [p.detach().clone() for p in self._params]
        self.optimizer = self._build_optimizer()
        self.precision = resolve_precision(config.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        self.schedule = PlateauSchedule(
            lr=config.lr,
            factor=config.lr_decay_factor,
            patience=config.lr_patience,
            min_lr=config.min_lr,
            mode=config.metric_mode,
            stop_patience=config.early_stopping_patience,
        )
        self.output_dir = Path(config.output_dir)
        self.checkpoints = CheckpointManager(
            checkpoint_directory(self.output_dir), config.keep_last, config.keep_best
        )
        self._lock: DirectoryLock | None = None  # of output_dir, held by rank 0 in fit
        # the model and batch source that carry training state of their own (see fit)
        holders = {"model": model, "batches": train_batches}
        self._state_holders: dict[str, CarriesTrainingState] = {
            name: holder
            for name, holder in holders.items()
            if isinstance(holder, CarriesTrainingState)
        }
        # (checkpoint, the batch source's carried state) read on resume, loaded once the
        # batches its epoch had consumed are drawn again
        self._batches_state: tuple[Path, Any] | None = None
        self.metrics_path = self.output_dir / "metrics.jsonl"
        # Progress: optimizer steps done, and the data position of the next batch.
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_metric: float | None = None
        self.best_metrics: dict[str, float] = {}
        self.best_step: int | None = None
        self._last_eval_step = 0
        self._last_checkpoint_step = 0
        self._elapsed_before = 0.0  # seconds spent by earlier runs of a resumed job
        self._start_time = time.monotonic()
        self._stop_reason: str | None = None
        # Reading a CPU tensor costs nothing, so CPU runs check every step (see module doc).
        self._sync_every_step = self.device.type == "cpu"
        # Per-step (step, summed loss, tokens, over-budget vote), not yet read to the host.
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor | int, torch.Tensor | bool]] = []
        self._window_loss = 0.0
        self._window_tokens = 0.0
        self._window_start = time.monotonic()
        self._progress: tqdm | None = None
        self._postfix: dict[str, str] = {}  # what the progress bar shows after the bar
        self._last_train_log_step = 0

    # --- setup ---------------------------------------------------------------------------

    def _build_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(
                self._params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
            )
        optimizer_class = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        return optimizer_class(self._params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    @property
    def is_main(self) -> bool:
        return self.context.is_main

    def lr_at(self, step: int) -> float:
        """Learning rate of the optimizer update that follows ``step`` completed steps."""
        warmup = self.config.warmup_steps
        return self.schedule.lr * (min(1.0, (step + 1) / warmup) if warmup else 1.0)

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._start_time

    # --- the loop ------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train until a stopping criterion; returns the best validation metrics ({} without
        ``evaluate_fn``)."""
        try:
            self._begin()
            while self._stop_reason is None:
                self._train_epoch()
            self._finish()
        finally:
            if self._progress is not None:
                self._progress.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            if self._owns_process_group:
                destroy_distributed()
                self._owns_process_group = False
        return dict(self.best_metrics)

    def _begin(self) -> None:
        if len(self.train_batches) == 0:
            raise ValueError("train_batches is empty: len(train_batches) == 0")
        if self.is_main:
            # one writer per directory; under the lock, a killed save's leftovers can go
            self._lock = lock_directory(self.output_dir)
            for directory, removed in (
                (self.output_dir, remove_temporaries(self.output_dir)),
                (self.checkpoints.directory, self.checkpoints.remove_stale_temporaries()),
            ):
                if removed:
                    self._log(
                        "removed what an interrupted run left in %s: %s",
                        directory,
                        ", ".join(removed),
                    )
        resumed = self.config.resume and self._resume()
        if not resumed:
            found = self.checkpoints.checkpoints()
            if found:
                raise CheckpointError(
                    f"{self.checkpoints.directory} holds checkpoints of an earlier run (the "
                    f"newest: {found[-1].name}); set resume=True to continue it or choose "
                    "another output_dir"
                )
            seed_everything(self.config.seed + self.context.rank)
        if self.is_main:
            self._truncate_metrics(self.step)
        self._start_time = self._window_start = time.monotonic()
        self._last_train_log_step = self.step  # a resumed run's window starts here
        # a resumed run may have nothing left to do (it stopped early, or spent its time)
        self._stop_reason = stop_reason_before_training(
            self.config,
            self.step,
            self.epoch,
            self.schedule.evals_since_best,
            self._elapsed_before,
        )
        self.model.train()
        self._progress = tqdm(
            total=self._planned_steps(),
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=not (self.config.progress_bar and self.is_main),
        )

    def _steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_batches) / self.config.accumulation_steps)

    def _planned_steps(self) -> int | None:
        limits = [self.config.max_steps]
        if self.config.max_epochs is not None:
            limits.append(self.config.max_epochs * self._steps_per_epoch())
        return min((x for x in limits if x is not None), default=None)

    def _limit_reached(self) -> str | None:
        return budget_reached(self.config, self.step, self.epoch)

    def _train_epoch(self) -> None:
        num_batches = len(self.train_batches)
        batches = iter(self.train_batches.epoch(self.epoch))
        for _ in range(self.batch_in_epoch):  # resume mid-epoch: skip the consumed batches
            self._next_batch(batches)
        if self._batches_state is not None:  # resumed: the source's state after those
            path, state = self._batches_state
            self._load_training_state("batches", state, path)
            self._batches_state = None
        while self._stop_reason is None:
            count = min(self.config.accumulation_steps, num_batches - self.batch_in_epoch)
            epoch_end = self.batch_in_epoch + count == num_batches
            epoch = self.epoch
            self._optimizer_step(batches, count, epoch_end)
            self.step += 1
            self.batch_in_epoch += count
            if epoch_end:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self._after_step(epoch, epoch_end)
            if epoch_end:
                return

    def _next_batch(self, batches: Iterator[Any]) -> Any:
        try:
            return next(batches)
        except StopIteration:
            raise ValueError(
                f"train_batches.epoch({self.epoch}) ended early: len(train_batches) is "
                f"{len(self.train_batches)} but it yielded fewer batches"
            ) from None

    def _must_sync(self, step: int, epoch_end: bool) -> bool:
        c = self.config
        return (
            self._sync_every_step
            or epoch_end
            or step % c.log_every_steps == 0
            or step == c.max_steps
            or (c.eval_every_steps is not None and step % c.eval_every_steps == 0)
            or (c.checkpoint_every_steps is not None and step % c.checkpoint_every_steps == 0)
        )

    def _optimizer_step(self, batches: Iterator[Any], count: int, epoch_end: bool) -> None:
        """Forward/backward ``count`` micro-batches, normalise, clip, update."""
        step = self.step + 1
        distributed = self.context.is_distributed
        loss_sum: torch.Tensor | None = None
        tokens: torch.Tensor | int = 0
        for i in range(count):
            batch = move_to_device(self._next_batch(batches), self.device)
            # Gradients are all-reduced only on the last micro-batch of the step.
            no_sync = self.module.no_sync() if distributed and i < count - 1 else None
            with no_sync or contextlib.nullcontext():
                with self._autocast():
                    out = self.module(batch)
                if not isinstance(out, StepOutput) or out.loss.dim() != 0:
                    raise TypeError(
                        f"{type(self.model).__name__}(batch) must return a StepOutput with a "
                        f"scalar summed loss, got {type(out).__name__}"
                    )
                (self.scaler.scale(out.loss) if self.scaler else out.loss).backward()
            loss = out.loss.detach()
            loss_sum = loss if loss_sum is None else loss_sum + loss
            tokens = tokens + out.num_tokens
        over_budget: torch.Tensor | bool = self._over_time_budget()
        if distributed:
            # One all-reduce gives every rank the global loss and token count, and makes
            # all ranks stop after the same step when any of them ran out of time.
            stats = torch.stack(
                [loss_sum.double(), self._device_scalar(tokens), self._device_scalar(over_budget)]
            )
            loss_sum, tokens, over_budget = all_reduce_sum_(stats, self.context).unbind()
        elif over_budget:
            self._stop_reason = self._stop_reason or "max_time_minutes"
        self._pending.append((step, loss_sum, tokens, over_budget))
        if self._must_sync(step, epoch_end):
            tokens = self._sync()
        elif isinstance(tokens, torch.Tensor):
            tokens = tokens.clamp(min=1)
        else:
            tokens = max(tokens, 1)

        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        self._normalise_and_clip(tokens)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self._average is not None:
            t = self.step + 1  # this update's step number
            decay = min(self.config.ema_decay, (1 + t) / (10 + t))
            torch._foreach_lerp_(self._average, [p.detach() for p in self._params], 1 - decay)

    @contextlib.contextmanager
    def _averaged_weights(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block (without averaging: as is)."""
        if self._average is None:
            yield
            return
        raw = [p.detach().clone() for p in self._params]
        with torch.no_grad():
            torch._foreach_copy_(self._params, self._average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._params, raw)

    def _normalise_and_clip(self, tokens: torch.Tensor | float) -> None:
        """Turn the summed gradients into those of the per-token mean loss of the whole step
        and clip their global norm, in a single pass over the gradients."""
        grads = [p.grad for p in self._params if p.grad is not None]
        if not grads:
            return
        # DDP averaged the gradients over ranks, hence world_size / global token count.
        scale = self.context.world_size / tokens
        if self.config.grad_clip is not None:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) * scale
            scale = scale * (self.config.grad_clip / (norm + 1e-6)).clamp(max=1.0)
        if isinstance(scale, torch.Tensor):
            scale = scale.to(grads[0].dtype)
        torch._foreach_mul_(grads, scale)

    def _over_time_budget(self) -> bool:
        budget = self.config.max_time_minutes
        return budget is not None and self._elapsed() > 60 * budget

    def _device_scalar(self, value: torch.Tensor | float) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            return value.to(self.device, torch.float64)
        # torch.full passes the number as a kernel argument: no host-to-device copy, no sync.
        return torch.full((), float(value), dtype=torch.float64, device=self.device)

    def _sync(self) -> float:
        """Read the pending per-step statistics to the host (the first read waits for the
        device); returns the token count of the newest step (at least 1)."""
        tokens = 1.0
        for step, loss_sum, step_tokens, over_budget in self._pending:
            loss, tokens = float(loss_sum), float(step_tokens)
            if not math.isfinite(loss):
                latest = self.checkpoints.latest()
                raise TrainingDivergedError(
                    f"training diverged: the summed loss of step {step} is {loss}; "
                    f"last good checkpoint: {latest or 'none'}"
                )
            self._window_loss += loss
            self._window_tokens += tokens
            if over_budget:
                self._stop_reason = self._stop_reason or "max_time_minutes"
        self._pending.clear()
        return max(tokens, 1.0)

    def _after_step(self, epoch: int, epoch_end: bool) -> None:
        c = self.config
        step = self.step
        if self._progress is not None:
            self._progress.update(1)
        every = c.eval_every_steps
        evaluate = self.evaluate_fn is not None and (
            step % every == 0 if every is not None else epoch_end
        )
        # Each evaluation also logs the training loss since the last line, so that a run
        # shorter than log_every_steps (a smoke preset) still logs its progress.
        if step % c.log_every_steps == 0 or evaluate:
            self._log_train(epoch)
        improved = evaluate and self._evaluate(epoch, scheduled=True)
        every = c.checkpoint_every_steps
        if c.save_checkpoints and (
            evaluate or (step % every == 0 if every is not None else epoch_end)
        ):
            self._save_checkpoint(is_best=improved)
        self._stop_reason = self._stop_reason or self._limit_reached()

    def _finish(self) -> None:
        self._sync()
        # the steps since the last line, if any; the last step ended an epoch when the data
        # position is at the start of one
        self._log_train(self.epoch - 1 if self.batch_in_epoch == 0 else self.epoch)
        if self.evaluate_fn is not None and self._last_eval_step != self.step:
            improved = self._evaluate(self.epoch, scheduled=False)
        else:
            improved = False
        if self.config.save_checkpoints and self._last_checkpoint_step != self.step:
            self._save_checkpoint(is_best=improved)
        self._log("training stopped after step %d (%s)", self.step, self._stop_reason)
        if self._average is not None:  # the model ends with the weights that were evaluated
            with torch.no_grad():
                torch._foreach_copy_(self._params, self._average)
        if self.config.load_best_at_end and self.best_step is not None:
            best = self.checkpoints.best()
            if best is None:
                self._log(
                    "load_best_at_end: no best checkpoint (keep_best=False?)", level=logging.WARNING
                )
            else:
                tensors, state = read_checkpoint(best)
                load_model_weights(self.model, tensors, state, best)

    # --- evaluation and logging ----------------------------------------------------------

    def _evaluate(self, epoch: int, scheduled: bool) -> bool:
        """Run evaluate_fn; returns whether the metric improved on the best so far.

        Only scheduled evaluations drive the LR plateau schedule and early stopping.
        """
        metrics = self._run_evaluate_fn() if self.is_main else None
        metrics = broadcast_json(metrics, self.context)
        value = metrics[self.config.metric]
        improved = self.schedule.improves(value, self.best_metric)
        if improved:
            self.best_metric, self.best_metrics, self.best_step = value, metrics, self.step
        if scheduled and self.schedule.update(value):
            self._stop_reason = self._stop_reason or "early_stopping"
        self._last_eval_step = self.step
        self._write_metrics(
            {"event": "valid", "step": self.step, "epoch": epoch, **metrics, "best": improved}
        )
        # metrics.jsonl keeps full precision; the log and the progress bar get a short form
        main = self.config.metric
        self._set_progress({f"valid {main}": format_metric(value)})
        line = format_metrics(metrics, main)
        self._log("step %d valid %s%s", self.step, line, " (best)" if improved else "")
        return improved

    def _run_evaluate_fn(self) -> dict[str, float]:
        # Evaluation must not move the training RNG streams, or runs that evaluate at
        # different steps (a stopped-and-resumed one) would diverge.
        rng = capture_rng_state(self.device)
        carried = self._copy_of_model_state()  # an evaluation through forward would move it
        self.model.eval()
        try:
            with torch.no_grad(), self._averaged_weights():
                raw = self.evaluate_fn(self.model)
        finally:
            self.model.train()
            restore_rng_state(*rng, self.device)
            if carried is not None:
                self.model.load_training_state_dict(carried)
        if self.config.metric not in raw:
            raise ValueError(
                f"evaluate_fn returned {sorted(raw)}, without the metric "
                f"{self.config.metric!r} named in TrainerConfig.metric"
            )
        return {str(k): float(v) for k, v in raw.items()}

    def _log_train(self, epoch: int) -> None:
        """Log the training loss and speed of the steps since the last line, if any."""
        if self.step == self._last_train_log_step:
            return
        self._last_train_log_step = self.step
        now = time.monotonic()
        loss = self._window_loss / max(self._window_tokens, 1.0)
        tokens_per_s = self._window_tokens / max(now - self._window_start, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        self._write_metrics(
            {
                "event": "train",
                "step": self.step,
                "epoch": epoch,
                "train_loss": loss,
                "lr": lr,
                "tokens_per_s": tokens_per_s,
                "elapsed_s": self._elapsed(),
            }
        )
        self._set_progress({"loss": f"{loss:.4f}", "tok/s": f"{tokens_per_s:.0f}"})
        self._log("step %d train_loss %.4f lr %.3g tok/s %.0f", self.step, loss, lr, tokens_per_s)
        self._window_loss = self._window_tokens = 0.0
        self._window_start = now

    def _set_progress(self, values: Mapping[str, str]) -> None:
        """Show ``name value`` for each of ``values`` after the progress bar, beside the
        latest values of the others (the training loss next to the validation metric)."""
        if self._progress is None:
            return
        self._postfix.update(values)
        self._progress.set_postfix_str(", ".join(f"{k} {v}" for k, v in self._postfix.items()))

    def _log(self, message: str, *args: Any, level: int = logging.INFO) -> None:
        if self.is_main:  # one log for the job, not one per rank
            logger.log(level, message, *args)

    def _write_metrics(self, row: dict) -> None:
        if self.is_main:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def _truncate_metrics(self, step: int) -> None:
        """Start metrics.jsonl afresh, or on resume drop the rows of steps being replayed."""
        rows = []
        if step > 0 and self.metrics_path.is_file():
            lines = self.metrics_path.read_text().splitlines()
            rows = [line for line in lines if line and json.loads(line)["step"] <= step]
        # atomic: a kill here must not lose the rows of the steps being kept
        write_text_atomic(self.metrics_path, "".join(row + "\n" for row in rows))

    # --- checkpoints ---------------------------------------------------------------------

    def _save_checkpoint(self, is_best: bool) -> None:
        self._sync()  # never write a checkpoint before this step's loss has been checked
        rng_tensors, rng_states = self._gather_rng_states()
        carried_tensors, carried_states = self._gather_training_states()
        if self.is_main:
            with self._averaged_weights():  # model/: the weights to evaluate and to use
                tensors = {
                    f"model/{k}": v if self._average is None else v.clone()
                    for k, v in self.model.state_dict().items()
                }
            if self._average is not None:
                tensors.update(
                    (f"training_weights/{name}", p.detach())
                    for name, p in zip(self._param_names, self._params, strict=True)
                )
            optimizer_state, optimizer_tensors = flatten_state(
                self.optimizer.state_dict(), "optimizer"
            )
            tensors.update(optimizer_tensors)
            tensors.update(rng_tensors)
            tensors.update(carried_tensors)
            state = {
                "model_class": model_class_name(self.model),
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "elapsed_s": self._elapsed(),
                "world_size": self.context.world_size,
                "optimizer_name": self.config.optimizer,
                "optimizer": optimizer_state,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "schedule": self.schedule.state_dict(),
                "best_metric": self.best_metric,
                "best_metrics": self.best_metrics,
                "best_step": self.best_step,
                "last_eval_step": self._last_eval_step,
                "rng": rng_states,
                "training_state": carried_states,
                "config": dataclasses.asdict(self.config),
            }
            self.checkpoints.save(self.step, tensors, state, is_best)
        barrier(self.context)  # nobody reads or exits before the checkpoint is complete
        self._last_checkpoint_step = self.step

    def _gather_rng_states(self) -> tuple[dict[str, torch.Tensor], list[dict]]:
        """RNG states of every rank (a collective): uint8 tensors and JSON, per rank."""
        tensors, state = capture_rng_state(self.device)
        if not self.context.is_distributed:
            return {f"rng/0/{k}": v for k, v in tensors.items()}, [state]
        records = all_gather_json(
            {"tensors": {k: v.tolist() for k, v in tensors.items()}, "state": state}, self.context
        )
        flat = {
            f"rng/{rank}/{k}": torch.tensor(v, dtype=torch.uint8)
            for rank, record in enumerate(records)
            for k, v in record["tensors"].items()
        }
        return flat, [record["state"] for record in records]

    def _gather_training_states(self) -> tuple[dict[str, torch.Tensor], list[dict]]:
        """The carried state of the model and batch source on every rank (a collective):
        tensors named ``training_state/RANK/HOLDER/...`` and the JSON rest, per rank."""
        if not self._state_holders:
            return {}, []
        own = {name: holder.training_state_dict() for name, holder in self._state_holders.items()}
        skeleton, tensors = flatten_state(own, f"training_state/{self.context.rank}")
        skeletons = all_gather_json(skeleton, self.context)
        merged = {
            k: v
            for rank_tensors in all_gather_tensors(tensors, self.context)
            for k, v in rank_tensors.items()
        }
        return merged, skeletons

    def _copy_of_model_state(self) -> Any:
        """A copy of the model's carried state (None without the hook)."""
        if "model" not in self._state_holders:
            return None
        skeleton, tensors = flatten_state(self.model.training_state_dict(), "carried")
        return unflatten_state(skeleton, {k: v.clone() for k, v in tensors.items()})

    def _restore_training_states(
        self, path: Path, tensors: dict[str, torch.Tensor], state: dict
    ) -> None:
        """Put back this rank's carried state of the model now, of the batch source once its
        interrupted epoch is replayed (``_train_epoch``)."""
        if not self._state_holders:
            return
        saved = state.get("training_state") or []
        rank = self.context.rank
        own = unflatten_state(saved[rank], tensors) if rank < len(saved) else {}
        for name in self._state_holders:
            if name not in own:
                self._log(
                    "checkpoint %s holds no carried training state of the %s (written by an "
                    "older seqlstm?): it restarts from none, so the resumed run differs from "
                    "an uninterrupted one",
                    path,
                    name,
                    level=logging.WARNING,
                )
            elif name == "batches":
                self._batches_state = (path, own[name])
            else:
                self._load_training_state(name, own[name], path)

    def _load_training_state(self, name: str, state: Any, path: Path) -> None:
        try:
            self._state_holders[name].load_training_state_dict(state)
        except ValueError as err:
            raise CheckpointError(
                f"checkpoint {path}: the carried training state of the {name} does not fit "
                f"it: {err}"
            ) from err

    def _resume(self) -> bool:
        path = self.checkpoints.latest()
        if path is None:
            self._log("resume: no checkpoint in %s, starting afresh", self.checkpoints.directory)
            return False
        tensors, state = read_checkpoint(path)
        try:
            self._restore(path, tensors, state)
        except KeyError as err:
            raise CheckpointError(f"checkpoint {path} lacks the entry {err}") from err
        self._log("resumed from %s (step %d, epoch %d)", path, self.step, self.epoch)
        return True

    def _restore(self, path: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
        load_model_weights(self.model, tensors, state, path)
        saved_decay = state["config"].get("ema_decay")
        if (saved_decay is None) != (self.config.ema_decay is None):
            raise CheckpointError(
                f"checkpoint {path} was written with ema_decay={saved_decay}; resume it with "
                f"{'an' if saved_decay is not None else 'no'} ema_decay, "
                f"not {self.config.ema_decay}"
            )
        if self._average is not None:  # model/ held the average; the raw weights train on
            self._average = [p.detach().clone() for p in self._params]
            with torch.no_grad():
                for name, p in zip(self._param_names, self._params, strict=True):
                    p.copy_(tensors[f"training_weights/{name}"])
        if state["world_size"] != self.context.world_size:
            raise CheckpointError(
                f"checkpoint {path} was written by {state['world_size']} processes; "
                f"resume it with the same number, not {self.context.world_size}"
            )
        if state["optimizer_name"] != self.config.optimizer:
            raise CheckpointError(
                f"checkpoint {path} holds {state['optimizer_name']} state, "
                f"but the config asks for {self.config.optimizer}"
            )
        try:
            self.optimizer.load_state_dict(unflatten_state(state["optimizer"], tensors))
        except ValueError as err:
            raise CheckpointError(f"optimizer state in {path} does not fit: {err}") from err
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.schedule.load_state_dict(state["schedule"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self._elapsed_before = state["elapsed_s"]
        self.best_metric, self.best_step = state["best_metric"], state["best_step"]
        self.best_metrics = state["best_metrics"]
        self._last_eval_step = state["last_eval_step"]
        self._last_checkpoint_step = self.step
        rank = self.context.rank
        prefix = f"rng/{rank}/"
        rng_tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        restore_rng_state(rng_tensors, state["rng"][rank], self.device)
        self._restore_training_states(path, tensors, state)
