"""Training throughput of the Trainer versus a bare PyTorch loop on the same LSTM LM.

Both loops train nn.Embedding + nn.LSTM + nn.Linear with cross-entropy and SGD with
gradient-norm clipping, from the same initial weights on the same batches (already on the
device), in fp32. The bare loop is what one would write without a framework; the Trainer
additionally normalises by the token count, checks for divergence, tracks the time budget
and writes metrics.jsonl. Runs of the two alternate (A B, B A, ...) to spread machine noise
over both, and the first ``warmup`` steps of every run are not timed. The result is the
median over rounds of trainer/bare tokens/s (target >= 0.95), in wall-clock time and in
process CPU time (steadier on a shared machine, meaningful with one torch thread).
``max_param_diff`` checks that both loops computed the same updates.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seqlstm.tasks.base import StepOutput
from seqlstm.training import Trainer, TrainerConfig
from seqlstm.training.device import resolve_device

LR = 0.5
CLIP = 1.0
TARGET_RATIO = 0.95


@dataclass(frozen=True)
class Shape:
    vocab: int
    embed: int
    hidden: int
    batch: int
    seq_len: int
    warmup: int  # untimed steps at the start of every run
    steps: int  # timed steps per run
    rounds: int  # runs of each loop


FULL = Shape(vocab=1000, embed=128, hidden=256, batch=16, seq_len=32, warmup=3, steps=10, rounds=15)
QUICK = Shape(vocab=100, embed=16, hidden=32, batch=4, seq_len=8, warmup=2, steps=5, rounds=2)


class PlainLSTMLM(nn.Module):
    """The benchmark's LM: ``logits`` for the bare loop, ``forward(batch) -> StepOutput`` (the
    task protocol) for the Trainer; both loops compute the same cross-entropy."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.embedding = nn.Embedding(shape.vocab, shape.embed)
        self.lstm = nn.LSTM(shape.embed, shape.hidden, batch_first=True)
        self.output = nn.Linear(shape.hidden, shape.vocab)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [B, T] -> logits [B, T, V]"""
        hidden, _ = self.lstm(self.embedding(inputs))
        return self.output(hidden)

    def forward(self, batch: torch.Tensor) -> StepOutput:
        """batch [B, T + 1] -> the cross-entropy of its next tokens, summed over B x T."""
        logits = self.logits(batch[:, :-1])
        targets = batch[:, 1:]
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum"
        )
        return StepOutput(loss, targets.numel())


def new_model(shape: Shape, device: torch.device) -> PlainLSTMLM:
    torch.manual_seed(0)
    return PlainLSTMLM(shape).to(device)


def make_data(shape: Shape, device: torch.device) -> list[torch.Tensor]:
    """``warmup + steps`` batches of token ids [B, T + 1] (inputs and shifted targets)."""
    g = torch.Generator().manual_seed(1)
    size = (shape.batch, shape.seq_len + 1)
    return [
        torch.randint(shape.vocab, size, generator=g).to(device)
        for _ in range(shape.warmup + shape.steps)
    ]


def _clock(device: torch.device) -> tuple[float, float]:
    """(wall, process CPU) seconds, after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter(), time.process_time()


def _elapsed(start: tuple[float, float], device: torch.device) -> tuple[float, float]:
    end = _clock(device)
    return end[0] - start[0], end[1] - start[1]


def bare_loop(model: nn.Module, data: list[torch.Tensor], shape: Shape) -> tuple[float, float]:
    """(wall, CPU) seconds for the timed steps of a plain training loop."""
    device = data[0].device
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    start = (0.0, 0.0)
    for i, batch in enumerate(data):
        if i == shape.warmup:
            start = _clock(device)
        logits = model.logits(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, shape.vocab), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
    return _elapsed(start, device)


class _Batches:
    def __init__(self, batches: list[torch.Tensor]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int):
        return iter(self.batches)


def trainer_loop(model: nn.Module, data: list[torch.Tensor], shape: Shape) -> tuple[float, float]:
    """(wall, CPU) seconds for the timed steps of Trainer.fit; the clock starts in a forward
    pre-hook, at the first timed call of ``model(batch)``."""
    device = data[0].device
    calls = 0
    start = (0.0, 0.0)

    def start_clock(module: nn.Module, args: tuple) -> None:
        nonlocal calls, start
        if calls == shape.warmup:
            start = _clock(device)
        calls += 1

    with tempfile.TemporaryDirectory() as output_dir:
        config = TrainerConfig(
            output_dir=output_dir,
            optimizer="sgd",
            lr=LR,
            grad_clip=CLIP,
            lr_decay_factor=1.0,
            max_epochs=None,
            max_steps=len(data),
            log_every_steps=10,
            save_checkpoints=False,
            progress_bar=False,
            device=str(device),
            precision="fp32",
        )
        hook = model.register_forward_pre_hook(start_clock)
        try:
            Trainer(model, config, _Batches(data)).fit()
        finally:
            hook.remove()
        return _elapsed(start, device)


def _summary(per_round: dict[str, list[float]]) -> dict:
    """Median tokens/s of each loop and the median ratio of neighbouring runs, which share
    the machine's load and so give the less noisy comparison."""
    bare, trainer = per_round["bare"], per_round["trainer"]
    ratios = [t / b for b, t in zip(bare, trainer, strict=True)]
    return {
        "bare_tokens_per_s": statistics.median(bare),
        "trainer_tokens_per_s": statistics.median(trainer),
        "ratio": statistics.median(ratios),
        "ratio_of_medians": statistics.median(trainer) / statistics.median(bare),
        "per_round": per_round,
    }


def run(quick: bool) -> dict:
    """Wall-clock tokens/s, and tokens per second of process CPU time, which a busy shared
    machine disturbs much less (both loops run in this process)."""
    shape = QUICK if quick else FULL
    device = resolve_device("auto")
    data = make_data(shape, device)
    tokens = shape.steps * shape.batch * shape.seq_len
    loops: dict[str, Callable[[nn.Module, list[torch.Tensor], Shape], tuple[float, float]]] = {
        "bare": bare_loop,
        "trainer": trainer_loop,
    }
    wall: dict[str, list[float]] = {name: [] for name in loops}
    cpu: dict[str, list[float]] = {name: [] for name in loops}
    final: dict[str, PlainLSTMLM] = {}
    load_before = os.getloadavg()[0]
    for loop in loops.values():  # one untimed round pays for first-call initialisation
        loop(new_model(shape, device), data, shape)
    for round_index in range(shape.rounds):
        order = list(loops) if round_index % 2 == 0 else list(reversed(loops))
        for name in order:
            model = new_model(shape, device)
            wall_s, cpu_s = loops[name](model, data, shape)
            wall[name].append(tokens / wall_s)
            cpu[name].append(tokens / cpu_s)
            final[name] = model
    # Both loops did the same arithmetic (mean vs sum / count only reorders it).
    max_param_diff = max(
        (p - q).abs().max().item()
        for p, q in zip(final["bare"].parameters(), final["trainer"].parameters(), strict=True)
    )
    wall_summary, cpu_summary = _summary(wall), _summary(cpu)
    return {
        "device": str(device),
        **{k: v for k, v in wall_summary.items() if k != "per_round"},
        "cpu_time_ratio": cpu_summary["ratio"],
        "target_ratio": TARGET_RATIO,
        "max_param_diff": max_param_diff,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "wall_clock": wall_summary,
        "cpu_time": cpu_summary,
        "shape": asdict(shape),
    }
