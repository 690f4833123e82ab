"""Trainer behaviour: exact resume, loss normalisation, schedules, checkpoints, divergence."""

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlstm.atomic_files import DirectoryInUseError
from seqlstm.errors import CheckpointError
from seqlstm.tasks.base import StepOutput
from seqlstm.training import (
    Trainer,
    TrainerConfig,
    TrainingDivergedError,
    seed_everything,
)
from seqlstm.training.checkpoint import read_checkpoint
from seqlstm.training.trainer import format_metric


class TinyLM(nn.Module):
    """Embedding -> dropout -> linear; the loss is summed over the unmasked tokens."""

    def __init__(self, vocab: int = 11, dim: int = 8, dropout: float = 0.3):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, vocab)

    def forward(self, batch: dict) -> StepOutput:
        logits = self.out(self.drop(self.emb(batch["inputs"])))
        mask = batch["mask"]
        loss = F.cross_entropy(logits[mask], batch["targets"][mask], reduction="sum")
        return StepOutput(loss, mask.sum())


class FaultInjection:
    """Mixed into a test model: training call ``crash_at`` of ``forward`` raises and training
    call ``nan_at`` returns a NaN loss (calls in eval mode, i.e. evaluation, are not counted).
    The Trainer calls nothing but ``model(batch)``, so faults are injected in the model."""

    crash_at: int | None = None
    nan_at: int | None = None
    calls = 0

    def forward(self, batch) -> StepOutput:
        out = super().forward(batch)
        if not self.training:
            return out
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("simulated crash")
        if self.calls == self.nan_at:
            return StepOutput(out.loss * math.nan, out.num_tokens)
        return out


def make_batch(lengths: list[int], seed: int, vocab: int = 11) -> dict:
    """Random token sequences of the given lengths, padded to the longest."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    return {
        "inputs": torch.randint(vocab, (len(lengths), width), generator=g),
        "targets": torch.randint(vocab, (len(lengths), width), generator=g),
        "mask": mask,
    }


class ShuffledBatches:
    """A BatchSource: fixed batches with unequal token counts, shuffled per epoch by seed."""

    def __init__(self, num_batches: int = 5, seed: int = 0):
        self.batches = [
            make_batch([2 + i % 3, 1 + i % 4, 3], seed=100 + i) for i in range(num_batches)
        ]
        self.seed = seed

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int):
        order = torch.randperm(
            len(self), generator=torch.Generator().manual_seed(self.seed + epoch)
        )
        return (self.batches[i] for i in order)


class ListBatches:
    """A BatchSource that yields the same list every epoch."""

    def __init__(self, batches: list):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int):
        return iter(self.batches)


class Scalar(nn.Module):
    """One parameter w; its loss w * n summed over n tokens has per-token gradient exactly 1,
    so plain SGD moves w by exactly -lr per step and the applied LR can be read off w."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, n: torch.Tensor) -> StepOutput:
        return StepOutput(self.w * n, n)


class FaultyLM(FaultInjection, TinyLM):
    pass


class FaultyScalar(FaultInjection, Scalar):
    pass


def scalar_config(tmp_path: Path, **overrides) -> TrainerConfig:
    settings = dict(
        output_dir=str(tmp_path),
        optimizer="sgd",
        lr=0.1,
        grad_clip=None,
        lr_decay_factor=1.0,
        max_epochs=None,
        max_steps=6,
        log_every_steps=1,
        progress_bar=False,
        device="cpu",
    )
    return TrainerConfig(**{**settings, **overrides})


def read_metrics(directory: Path, event: str) -> list[dict]:
    lines = (directory / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["event"] == event]


# --- exact resume ---------------------------------------------------------------------------


def lm_config(output_dir: Path, **overrides) -> TrainerConfig:
    settings = dict(
        output_dir=str(output_dir),
        optimizer="adam",
        lr=0.05,
        warmup_steps=3,
        grad_clip=0.5,
        accumulation_steps=2,
        lr_patience=0,
        max_epochs=None,
        max_steps=8,
        checkpoint_every_steps=2,
        log_every_steps=1,
        progress_bar=False,
        device="cpu",
        seed=7,
    )
    return TrainerConfig(**{**settings, **overrides})


def lm_evaluate(model: nn.Module) -> dict[str, float]:
    torch.rand(3)  # an evaluation that draws random numbers must not perturb training
    batch = make_batch([3, 4], seed=999)
    out = model(batch)
    return {"loss": out.loss.item() / out.num_tokens.item()}


def new_lm(init_seed: int, crash_at: int | None = None) -> TinyLM:
    torch.manual_seed(init_seed)
    # Without faults a FaultyLM is a TinyLM; every run uses this one class, which the
    # checkpoints record and resume checks.
    model = FaultyLM()
    model.crash_at = crash_at
    return model


def train_lm(
    output_dir: Path, init_seed: int = 0, crash_at: int | None = None, **overrides
) -> TinyLM:
    model = new_lm(init_seed, crash_at)
    trainer = Trainer(
        model, lm_config(output_dir, **overrides), ShuffledBatches(), evaluate_fn=lm_evaluate
    )
    trainer.fit()
    return model


def assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("precision", ["fp32", "fp16"])  # fp16: GradScaler state too
def test_resume_after_stop_is_bit_identical(tmp_path, precision):
    # 5 batches per epoch, 2 per step: steps of 2, 2, 1 batches; step 5 is mid-epoch 1, and
    # the stopped run evaluates there (unlike the reference) before its final checkpoint.
    reference = train_lm(tmp_path / "full", precision=precision)
    train_lm(tmp_path / "split", max_steps=5, precision=precision)
    resumed = train_lm(tmp_path / "split", init_seed=123, resume=True, precision=precision)
    assert not torch.equal(new_lm(123).emb.weight, new_lm(0).emb.weight)
    assert_same_parameters(reference, resumed)
    steps = [row["step"] for row in read_metrics(tmp_path / "split", "train")]
    assert steps == list(range(1, 9))  # replayed rows are not duplicated


def test_resume_after_crash_is_bit_identical(tmp_path):
    reference = train_lm(tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated crash"):
        # call 11: the first micro-batch of step 6; the last checkpoint is step 4
        train_lm(tmp_path / "crash", crash_at=11)
    resumed = train_lm(tmp_path / "crash", init_seed=123, resume=True)
    assert_same_parameters(reference, resumed)


def test_resume_rejects_a_checkpoint_of_another_model_config(tmp_path):
    train_lm(tmp_path, max_steps=2)
    model = FaultyLM(dim=9)
    trainer = Trainer(model, lm_config(tmp_path, resume=True), ShuffledBatches())
    with pytest.raises(CheckpointError, match=r"emb\.weight \(11, 8\) vs model \(11, 9\)"):
        trainer.fit()


def test_fresh_run_refuses_to_mix_with_old_checkpoints(tmp_path):
    train_lm(tmp_path, max_steps=2)
    with pytest.raises(
        CheckpointError, match=r"earlier run \(the newest: step-00000002\).*resume=True"
    ):
        train_lm(tmp_path, max_steps=2)


def test_a_second_trainer_on_the_same_output_dir_is_refused_while_the_first_runs(tmp_path):
    hold = (
        "import sys; from seqlstm.atomic_files import lock_directory; "
        "lock = lock_directory(sys.argv[1]); print('locked', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(
            DirectoryInUseError, match=rf"in use by another run \(pid {holder.pid} "
        ):
            train_lm(tmp_path, max_steps=2)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "checkpoints").exists()
    train_lm(tmp_path, max_steps=2)  # the killed holder left no stale lock
    assert (tmp_path / ".lock").read_text() == ""  # released at the end of fit


def test_fit_removes_what_a_killed_write_left(tmp_path, caplog):
    train_lm(tmp_path, max_steps=2)
    (tmp_path / ".tmp-metrics.jsonl-0a1b2c3d").write_text('{"event"')
    (tmp_path / "checkpoints" / ".tmp-step-00000004-1a2b3c4d").mkdir()
    with caplog.at_level(logging.INFO, logger="seqlstm.training.trainer"):
        train_lm(tmp_path, resume=True, max_steps=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoints", "metrics.jsonl"]
    messages = [r.getMessage() for r in caplog.records]
    assert (
        f"removed what an interrupted run left in {tmp_path}: .tmp-metrics.jsonl-0a1b2c3d"
        in messages
    )


# --- loss normalisation, seeding ------------------------------------------------------------


@pytest.mark.parametrize("grad_clip", [None, 0.05])
def test_accumulation_equals_one_combined_batch_and_the_token_mean(tmp_path, grad_clip):
    lengths_a, lengths_b = [4, 3], [1]  # 7 and 1 tokens: a mean of means would differ
    a, b = make_batch(lengths_a, seed=1), make_batch(lengths_b, seed=2)
    width = 4
    pad = {k: F.pad(v, (0, width - v.shape[1])) for k, v in b.items()}
    combined = {k: torch.cat([a[k], pad[k]]) for k in a}

    def trained(batches, accumulation):
        torch.manual_seed(0)
        model = TinyLM(dropout=0.0).double()
        config = TrainerConfig(
            output_dir=str(tmp_path / f"run{accumulation}"),
            optimizer="sgd",
            lr=0.5,
            grad_clip=grad_clip,
            accumulation_steps=accumulation,
            max_steps=1,
            save_checkpoints=False,
            progress_bar=False,
            device="cpu",
        )
        Trainer(model, config, ListBatches(batches)).fit()
        return model

    torch.manual_seed(0)
    reference = TinyLM(dropout=0.0).double()
    initial = [p.detach().clone() for p in reference.parameters()]
    out_a, out_b = reference(a), reference(b)
    ((out_a.loss + out_b.loss) / 8).backward()
    if grad_clip is not None:
        assert nn.utils.clip_grad_norm_(reference.parameters(), grad_clip) > grad_clip
    expected = [p.detach() - 0.5 * p.grad for p in reference.parameters()]

    for model in (trained([a, b], 2), trained([combined], 1)):
        for p, e, p0 in zip(model.parameters(), expected, initial, strict=True):
            torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-12)
            assert not torch.equal(p.detach(), p0)
    # Sanity check of the test's power: averaging per-batch means gives another update.
    reference.zero_grad()
    (reference(a).loss / 7 / 2 + reference(b).loss / 1 / 2).backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(reference.parameters(), grad_clip)
    naive = [p0 - 0.5 * p.grad for p, p0 in zip(reference.parameters(), initial, strict=True)]
    assert not all(torch.allclose(n, e) for n, e in zip(naive, expected, strict=True))


def test_same_seed_same_parameters_and_other_seed_differs(tmp_path):
    def run(directory, seed):
        seed_everything(0)
        model = TinyLM()
        config = lm_config(directory, seed=seed, max_steps=4, save_checkpoints=False)
        Trainer(model, config, ShuffledBatches()).fit()
        return model

    first, second = run(tmp_path / "a", 5), run(tmp_path / "b", 5)
    assert_same_parameters(first, second)
    other = run(tmp_path / "c", 6)  # same init, other dropout masks
    assert not torch.equal(first.emb.weight, other.emb.weight)


# --- schedules and stopping -----------------------------------------------------------------


def test_weight_average_follows_the_ema_formula_in_evaluation_checkpoints_and_the_end(tmp_path):
    decay, lr, steps = 0.3, 0.1, 6
    seen = []
    model = Scalar()
    config = scalar_config(
        tmp_path, ema_decay=decay, eval_every_steps=1, checkpoint_every_steps=1, keep_last=10
    )
    Trainer(
        model,
        config,
        ListBatches([torch.tensor(3.0)]),
        evaluate_fn=lambda m: seen.append(m.w.item()) or {"loss": m.w.item()},
    ).fit()
    # by hand: SGD puts the raw weight at -lr * t after step t
    average, expected = 0.0, []
    for t in range(1, steps + 1):
        d = min(decay, (1 + t) / (10 + t))
        average = d * average + (1 - d) * -lr * t
        expected.append(average)
    assert seen == pytest.approx(expected, abs=1e-12)
    assert expected[2] != pytest.approx(-lr * 3)  # the average lags the raw weight
    assert model.w.item() == pytest.approx(expected[-1], abs=1e-12)  # the end: the average
    for t in range(1, steps + 1):
        tensors, _ = read_checkpoint(tmp_path / "checkpoints" / f"step-{t:08d}")
        assert tensors["model/w"].item() == pytest.approx(expected[t - 1], abs=1e-12)
        assert tensors["training_weights/w"].item() == pytest.approx(-lr * t, abs=1e-12)


def test_resume_with_weight_averaging_is_bit_identical(tmp_path):
    reference = train_lm(tmp_path / "full", ema_decay=0.8)
    train_lm(tmp_path / "split", max_steps=5, ema_decay=0.8)
    resumed = train_lm(tmp_path / "split", init_seed=123, resume=True, ema_decay=0.8)
    assert_same_parameters(reference, resumed)
    raw = train_lm(tmp_path / "raw")  # the same training without the average ends elsewhere
    assert not torch.equal(raw.out.weight, reference.out.weight)
    with pytest.raises(CheckpointError, match="ema_decay"):
        train_lm(tmp_path / "raw", resume=True, ema_decay=0.8, max_steps=10)
    with pytest.raises(ValueError, match="ema_decay"):
        lm_config(tmp_path, ema_decay=1.0)


def test_warmup_lr_follows_the_linear_formula(tmp_path):
    model = Scalar()
    n = torch.tensor(5.0, dtype=torch.float64)
    trainer = Trainer(model, scalar_config(tmp_path, warmup_steps=4), ListBatches([n]))
    trainer.fit()
    expected = [0.1 * min(1.0, s / 4) for s in range(1, 7)]  # 0.025, 0.05, 0.075, 0.1, ...
    logged = [row["lr"] for row in read_metrics(tmp_path, "train")]
    assert logged == pytest.approx(expected, abs=1e-15)
    assert model.w.item() == pytest.approx(-sum(expected), abs=1e-12)  # the LRs were applied


def test_plateau_decay_and_early_stopping_trigger_at_the_right_evaluation(tmp_path):
    accuracies = iter([0.5, 0.6, 0.6, 0.55, 0.7, 0.65, 0.65, 0.65, 0.9, 0.9])
    # evaluation (after step): 1 best, 2 best, 3 bad(1), 4 bad(2) > patience 1 -> lr 0.5,
    # 5 best, 6 bad, 7 bad(2) -> lr max(0.25, min_lr 0.3) = 0.3, 8: 3 evals since best > 2.
    model = Scalar()
    config = scalar_config(
        tmp_path,
        lr=1.0,
        lr_decay_factor=0.5,
        lr_patience=1,
        min_lr=0.3,
        early_stopping_patience=2,
        metric="acc",
        metric_mode="max",
        eval_every_steps=1,
        max_steps=20,
    )
    trainer = Trainer(
        model,
        config,
        ListBatches([torch.tensor(2.0, dtype=torch.float64)]),
        evaluate_fn=lambda m: {"acc": next(accuracies)},
    )
    best = trainer.fit()
    assert best == {"acc": 0.7}
    assert trainer.step == 8
    lrs = [row["lr"] for row in read_metrics(tmp_path, "train")]
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3]
    assert model.w.item() == pytest.approx(-5.8, abs=1e-12)
    assert len(read_metrics(tmp_path, "valid")) == 8
    # Resuming an early-stopped run does not train on.
    config.resume = True
    again = Trainer(Scalar(), config, trainer.train_batches, evaluate_fn=trainer.evaluate_fn)
    assert again.fit() == {"acc": 0.7}
    assert again.step == 8 and again.model.w.item() == pytest.approx(-5.8, abs=1e-12)


def test_epoch_and_time_limits(tmp_path):
    n = torch.tensor(1.0, dtype=torch.float64)
    by_epochs = Trainer(
        Scalar(),
        scalar_config(tmp_path / "e", max_steps=None, max_epochs=2, accumulation_steps=2),
        ListBatches([n] * 5),
    )
    by_epochs.fit()
    assert (by_epochs.step, by_epochs.epoch) == (6, 2)  # ceil(5 / 2) steps per epoch
    by_time = Trainer(
        Scalar(), scalar_config(tmp_path / "t", max_time_minutes=1e-12), ListBatches([n])
    )
    by_time.fit()
    assert by_time.step == 1


# --- checkpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize("keep_best", [True, False])
def test_keep_last_and_keep_best(tmp_path, keep_best):
    losses = iter([3.0, 1.0, 2.0, 4.0, 5.0, 6.0])
    model = Scalar()
    config = scalar_config(
        tmp_path, eval_every_steps=1, keep_last=2, keep_best=keep_best, load_best_at_end=True
    )
    n = torch.tensor(1.0, dtype=torch.float64)
    trainer = Trainer(model, config, ListBatches([n]), evaluate_fn=lambda m: {"loss": next(losses)})
    assert trainer.fit() == {"loss": 1.0}
    directory = tmp_path / "checkpoints"
    names = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    if keep_best:
        assert names == ["best", "latest", "step-00000002", "step-00000005", "step-00000006"]
        assert (directory / "best").read_text().strip() == "step-00000002"
        assert model.w.item() == pytest.approx(-0.2)  # weights of the best step were loaded
    else:
        assert names == ["latest", "step-00000005", "step-00000006"]
        assert model.w.item() == pytest.approx(-0.6)
    assert (directory / "latest").read_text().strip() == "step-00000006"


def test_nan_loss_stops_without_overwriting_the_last_good_checkpoint(tmp_path):
    model = FaultyScalar()
    model.nan_at = 3
    config = scalar_config(tmp_path, checkpoint_every_steps=1)
    trainer = Trainer(model, config, ListBatches([torch.tensor(1.0, dtype=torch.float64)]))
    with pytest.raises(TrainingDivergedError, match="step 3") as info:
        trainer.fit()
    assert isinstance(info.value, FloatingPointError)
    assert "step-00000002" in str(info.value)
    directory = tmp_path / "checkpoints"
    assert (directory / "latest").read_text().strip() == "step-00000002"
    assert not (directory / "step-00000003").exists()
    tensors, state = read_checkpoint(directory / "step-00000002")
    assert state["step"] == 2
    assert tensors["model/w"].item() == pytest.approx(-0.2)
    assert model.w.item() == pytest.approx(-0.2)  # on CPU the bad step is never applied


def test_deferred_reads_name_the_first_bad_step_and_give_the_same_parameters(tmp_path):
    """The accelerator path (statistics read only at log/checkpoint steps), run on CPU."""

    def run(directory, deferred, nan_at=None):
        torch.manual_seed(0)
        model = FaultyLM()
        model.nan_at = nan_at
        config = lm_config(directory, log_every_steps=5, checkpoint_every_steps=5, max_steps=6)
        trainer = Trainer(model, config, ShuffledBatches())
        trainer._sync_every_step = not deferred
        trainer.fit()
        return model

    assert_same_parameters(run(tmp_path / "a", False), run(tmp_path / "b", True))
    # The NaN is in the first micro-batch of step 2 and read at the epoch-end step 3.
    with pytest.raises(TrainingDivergedError, match="step 2 is nan; last good checkpoint: none"):
        run(tmp_path / "c", True, nan_at=3)


def test_a_forward_without_a_step_output_is_named(tmp_path):
    class Logits(nn.Module):  # a raw network call, not the task protocol
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, n):
            return self.w * n

    trainer = Trainer(Logits(), scalar_config(tmp_path), ListBatches([torch.tensor(1.0)]))
    with pytest.raises(TypeError, match=r"Logits\(batch\) must return a StepOutput .* got Tensor"):
        trainer.fit()


# --- what a run reports ---------------------------------------------------------------------

F1_METRICS = {"precision": 72.97854077253218, "f1": 72.25291068241692, "loss": 0.1234567}


def test_an_evaluation_logs_one_short_line_and_metrics_jsonl_keeps_full_precision(tmp_path, caplog):
    config = scalar_config(tmp_path, metric="f1", metric_mode="max", eval_every_steps=3)
    batches = ListBatches([torch.tensor(2.0, dtype=torch.float64)])
    trainer = Trainer(Scalar(), config, batches, evaluate_fn=lambda m: F1_METRICS)
    with caplog.at_level(logging.INFO, logger="seqlstm.training.trainer"):
        trainer.fit()
    valid = [r.getMessage() for r in caplog.records if " valid " in r.getMessage()]
    # the checkpoint metric first, then the rest in their order; no 16-digit floats
    assert valid == [
        "step 3 valid f1 72.25 | precision 72.98 loss 0.123 (best)",
        "step 6 valid f1 72.25 | precision 72.98 loss 0.123",
    ]
    rows = read_metrics(tmp_path, "valid")
    assert [row["f1"] for row in rows] == [72.25291068241692] * 2


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (72.25291068241692, "72.25"),
        (1.49923, "1.50"),
        (-7.4419, "-7.44"),
        (0.012345, "0.0123"),
        (360.0, "360"),
        (0.0, "0"),
        (math.nan, "nan"),
    ],
)
def test_format_metric_keeps_two_decimals_and_small_values_readable(value, text):
    assert format_metric(value) == text


def test_the_progress_bar_shows_the_latest_validation_metric(tmp_path, capsys):
    config = scalar_config(
        tmp_path, metric="f1", metric_mode="max", eval_every_steps=3, progress_bar=True
    )
    batches = ListBatches([torch.tensor(2.0, dtype=torch.float64)])
    Trainer(Scalar(), config, batches, evaluate_fn=lambda m: F1_METRICS).fit()
    final = capsys.readouterr().err.split("\r")[-1]  # the bar as it was last drawn
    assert "6/6" in final and "valid f1 72.25" in final and "loss " in final


def test_a_run_shorter_than_log_every_steps_still_logs_its_progress(tmp_path, caplog):
    # two epochs of three steps, log_every_steps 50: a smoke preset's budget
    config = scalar_config(tmp_path, log_every_steps=50, max_steps=None, max_epochs=2)
    batches = ListBatches([torch.tensor(2.0, dtype=torch.float64)] * 3)
    with caplog.at_level(logging.INFO, logger="seqlstm.training.trainer"):
        Trainer(Scalar(), config, batches, evaluate_fn=lambda m: {"loss": 1.0}).fit()
        # without evaluations, the end of training logs the steps since the last line
        Trainer(Scalar(), scalar_config(tmp_path / "plain", log_every_steps=50), batches).fit()
    train = [
        r.getMessage().split(" train_loss")[0]
        for r in caplog.records
        if "train_loss" in r.getMessage()
    ]
    assert train == ["step 3", "step 6", "step 6"]
    assert [row["epoch"] for row in read_metrics(tmp_path, "train")] == [0, 1]
    assert [row["epoch"] for row in read_metrics(tmp_path / "plain", "train")] == [1]
