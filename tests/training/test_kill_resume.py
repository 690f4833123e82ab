"""Kill and resume, for every task's training: a run interrupted after step k - stopped by a
step budget (its last checkpoint is step k), or killed part-way through step k + 1 (its last
checkpoint is the last one of the schedule, every 2 steps) - and resumed in a fresh model and
Trainer ends with exactly the weights of the uninterrupted run: torch.equal on every tensor.

Kill points: before the first checkpoint, mid-epoch, at an epoch boundary and in the second
epoch. Dropout of every kind is on (the RNG streams must be restored), evaluations run every
3 steps (they must not disturb training), and the language model reads a stream of several
windows an epoch, so its carried LSTM state matters mid-epoch.
"""

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from locations import FIXTURES
from torch import nn

from seqlstm.data import BucketedBatches, read_conll
from seqlstm.data.streams import StreamBatches
from seqlstm.errors import CheckpointError
from seqlstm.tasks.base import CarriesTrainingState, StepOutput
from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier
from seqlstm.tasks.classic.forecaster import ForecasterConfig, LSTMForecaster, sliding_windows
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer, TrainerConfig
from seqlstm.training.checkpoint import read_checkpoint, write_checkpoint

# (model, batches, evaluate_fn) of one task, built afresh for every run
Setup = tuple[nn.Module, Any, Callable[[nn.Module], dict[str, float]]]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class SimulatedKill(Exception):
    """Stands for kill -9: the run ends where it is, with no clean-up."""


class KillAfter:
    """``batches`` as a BatchSource that raises SimulatedKill instead of giving its batch
    number ``count`` + 1 of the run: the run dies in the middle of the step that needs it."""

    def __init__(self, batches: Any, count: int) -> None:
        self.batches = batches
        self.left = count

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int) -> Iterator[Any]:
        for batch in self.batches.epoch(epoch):
            if self.left == 0:
                raise SimulatedKill
            self.left -= 1
            yield batch


class KillAfterCarrying(KillAfter):
    """KillAfter over a batch source that carries training state of its own."""

    def training_state_dict(self) -> dict[str, Any]:
        return self.batches.training_state_dict()

    def load_training_state_dict(self, state: dict[str, Any]) -> None:
        self.batches.load_training_state_dict(state)


def trainer_config(directory: Path, **overrides: Any) -> TrainerConfig:
    settings = dict(
        output_dir=str(directory),
        optimizer="adam",
        lr=0.02,
        warmup_steps=2,
        max_epochs=2,
        checkpoint_every_steps=2,
        eval_every_steps=3,
        keep_last=2,
        log_every_steps=1,
        progress_bar=False,
        device="cpu",
        seed=5,
    )
    return TrainerConfig(**{**settings, **overrides})


def train(
    setup: Callable[[], Setup],
    directory: Path,
    init_seed: int = 0,
    kill_after_batches: int | None = None,
    **overrides: Any,
) -> nn.Module:
    torch.manual_seed(init_seed)
    random.seed(init_seed)
    model, batches, evaluate = setup()
    if kill_after_batches is not None:
        carrying = isinstance(batches, CarriesTrainingState)
        batches = (KillAfterCarrying if carrying else KillAfter)(batches, kill_after_batches)
    Trainer(model, trainer_config(directory, **overrides), batches, evaluate).fit()
    return model


def assert_same_weights(expected: nn.Module, got: nn.Module, what: str) -> None:
    got_state = got.state_dict()
    for name, value in expected.state_dict().items():
        assert torch.equal(value, got_state[name]), f"{what}: {name} differs"


def steps_per_epoch(setup: Callable[[], Setup]) -> int:
    _, batches, _ = setup()
    return len(batches)  # accumulation_steps=1: one batch a step


def assert_kill_and_resume_are_exact(
    setup: Callable[[], Setup],
    tmp_path: Path,
    stops: tuple[int, ...],
    kills: tuple[int, ...],
    **overrides: Any,
) -> nn.Module:
    """Stop after each step of ``stops``, and kill during each step of ``kills``; resume each
    to the end and compare with the uninterrupted run (which it returns)."""
    reference = train(setup, tmp_path / "reference", **overrides)
    torch.manual_seed(0)
    initial, _, _ = setup()
    assert any(  # training moved the weights: the comparison is not of two initial models
        not torch.equal(value, initial.state_dict()[name])
        for name, value in reference.state_dict().items()
    )
    torch.manual_seed(1)
    other, _, _ = setup()
    assert any(  # resumed runs start from other weights: the checkpoint must replace them
        not torch.equal(value, other.state_dict()[name])
        for name, value in initial.state_dict().items()
    )
    for step in stops:  # resumed from other initial weights: the checkpoint must hold all
        directory = tmp_path / f"stopped-after-{step}"
        train(setup, directory, max_steps=step, **overrides)
        _, state = read_checkpoint(directory / "checkpoints" / f"step-{step:08d}")
        assert state["step"] == step
        resumed = train(setup, directory, init_seed=1, resume=True, **overrides)
        assert_same_weights(reference, resumed, f"stopped after step {step}")
    for step in kills:
        directory = tmp_path / f"killed-in-step-{step}"
        with pytest.raises(SimulatedKill):
            train(setup, directory, kill_after_batches=step - 1, **overrides)
        # the same command again, as after a real kill: the same initial weights, which a
        # checkpoint replaces (before the first one, the run starts afresh)
        resumed = train(setup, directory, resume=True, **overrides)
        assert_same_weights(reference, resumed, f"killed in step {step}")
    return reference


# ----------------------------------------------------------------------------- language model

LINES = [
    "When shall we three meet again",
    "In thunder, lightning, or in rain?",
    "When the hurlyburly's done,",
    "When the battle's lost and won.",
    "That will be ere the set of sun.",
]


@pytest.fixture(scope="module")
def char_tokenizer() -> SubwordTokenizer:
    return SubwordTokenizer.train(LINES, vocab_size=300, model_type="char")


def lm_setup(tokenizer: SubwordTokenizer, through_forward: bool = True) -> Callable[[], Setup]:
    def setup() -> Setup:
        config = LanguageModelConfig(
            embedding_dim=8,
            hidden_size=12,
            num_layers=2,
            dropout_embedding=0.1,
            dropout_input=0.2,
            dropout_hidden=0.2,
            dropout_output=0.2,
            weight_drop=0.2,
        )
        model = LSTMLanguageModel(config, tokenizer)
        examples = model.encode(LINES)
        batches = StreamBatches.from_examples(examples, 2, 16, tokenizer.pad_id, tokenizer.bos_id)

        def evaluate(m: LSTMLanguageModel) -> dict[str, float]:
            metrics = {"loss": m.evaluate(LINES, batch_size=2, bptt=16)["nll"]}
            if through_forward:
                # this moves the carried state, which the Trainer must put back before
                # training goes on
                metrics["forward"] = float(m(m.collate(examples[:3])).loss)
            return metrics

        return model, batches, evaluate

    return setup


def test_the_language_model_resumes_exactly_with_its_carried_state(char_tokenizer, tmp_path):
    setup = lm_setup(char_tokenizer)
    assert steps_per_epoch(setup) == 6
    # 12 steps; checkpoints at 2, 4, 6 (the end of epoch 0), 8, 10, 12
    assert_kill_and_resume_are_exact(setup, tmp_path, stops=(3, 6, 9), kills=(1, 4, 7, 11))


def test_without_its_carried_state_the_language_model_would_resume_elsewhere(
    char_tokenizer, tmp_path, monkeypatch
):
    """The power of the test above: a resume that restarts the state mid-epoch (as before
    the state was checkpointed) ends with other weights."""
    setup = lm_setup(char_tokenizer, through_forward=False)
    reference = train(setup, tmp_path / "reference")
    train(setup, tmp_path / "stopped", max_steps=3)
    monkeypatch.setattr(LSTMLanguageModel, "load_training_state_dict", lambda self, state: None)
    resumed = train(setup, tmp_path / "stopped", init_seed=1, resume=True)
    assert not torch.equal(reference.decoder.weight, resumed.decoder.weight)


def test_an_evaluation_through_forward_leaves_the_carried_state_alone(char_tokenizer, tmp_path):
    plain = train(lm_setup(char_tokenizer, through_forward=False), tmp_path / "plain")
    through_forward = train(lm_setup(char_tokenizer), tmp_path / "forward")
    assert_same_weights(plain, through_forward, "evaluated through forward")


def test_the_checkpoint_holds_the_carried_state_and_refuses_one_that_does_not_fit(
    char_tokenizer, tmp_path
):
    setup = lm_setup(char_tokenizer)
    model = train(setup, tmp_path, max_steps=3)
    tensors, state = read_checkpoint(tmp_path / "checkpoints" / "step-00000003")
    carried = model.training_state_dict()
    for i, size in enumerate((12, 8)):  # layer sizes: hidden_size, then embedding_dim (tied)
        for part in ("h", "c"):
            saved = tensors[f"training_state/0/model/{part}/{i}"]
            assert saved.shape == (1, 2, size)
            assert torch.equal(saved, carried[f"{part}/{i}"])
    assert state["training_state"] == [
        {"model": {k: {"__tensor__": f"training_state/0/model/{k}"} for k in carried}}
    ]
    # a model with another number of layers cannot carry it on
    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_dim=8, hidden_size=12, num_layers=3)
    model = LSTMLanguageModel(config, char_tokenizer)
    with pytest.raises(ValueError, match=r"expected the entries .*c/2.* of a 3-layer model"):
        model.load_training_state_dict(carried)
    wrong = {**carried, "h/1": carried["h/1"][:, :1]}
    with pytest.raises(ValueError, match=r"h/1 has shape \(1, 1, 8\), expected \(1, B, 8\)"):
        setup()[0].load_training_state_dict(wrong)
    model.load_training_state_dict({})
    assert model.training_state_dict() == {}


# ----------------------------------------------------------------------------- other tasks

TRAIN = read_conll(FIXTURES / "ner_train.txt")


@pytest.fixture(scope="module")
def word_tokenizer() -> SubwordTokenizer:
    text = [" ".join(row["tokens"]) for row in TRAIN]
    return SubwordTokenizer.train(text, 400, hard_vocab_limit=False)


@pytest.mark.parametrize("context_words", [0, 6])  # sentences alone; document windows
def test_the_tagger_resumes_exactly(word_tokenizer, tmp_path, context_words):
    def setup() -> Setup:
        config = TaggerConfig(
            subword_dim=8,
            char_embedding_dim=4,
            char_filters=6,
            hidden_size=8,
            dropout=0.2,
            word_dropout=0.2,
            context_words=context_words,
        )
        model = BiLSTMCRFTagger.build(config, word_tokenizer, TRAIN)
        batches = model.training_batches(TRAIN, batch_words=40, window_words=12, seed=3)
        return model, batches, lambda m: {"loss": -m.evaluate(TRAIN)["f1"]}

    per_epoch = steps_per_epoch(setup)
    assert per_epoch >= 3
    assert_kill_and_resume_are_exact(setup, tmp_path, stops=(per_epoch,), kills=(3, per_epoch + 2))


WORDS = ["red", "blue", "cat", "dog", "runs", "sleeps", "big", "old"]


def test_the_translator_resumes_exactly(tmp_path):
    rng = random.Random(0)
    sources = [" ".join(rng.choices(WORDS, k=rng.randint(2, 5))) for _ in range(16)]
    rows = [{"source": s, "target": " ".join(s.split()[::-1])} for s in sources]
    tokenizer = SubwordTokenizer.train(sources, vocab_size=300, hard_vocab_limit=False)

    def setup() -> Setup:
        config = TranslatorConfig(
            embedding_dim=8,
            encoder_hidden_size=6,
            decoder_hidden_size=10,
            encoder_layers=1,
            decoder_layers=2,
            dropout=0.2,
            label_smoothing=0.1,
        )
        model = Seq2SeqLSTM(config, tokenizer)
        examples = model.encode(rows)
        lengths = [len(s) + len(t) for s, t in examples]
        batches = BucketedBatches(examples, lengths, model.collate, max_tokens=40, seed=2)
        held_out = model.collate(examples[:4])  # the loss, cheaper than decoding for BLEU
        return model, batches, lambda m: {"loss": float(m(held_out).loss)}

    per_epoch = steps_per_epoch(setup)
    assert per_epoch >= 3
    assert_kill_and_resume_are_exact(setup, tmp_path, stops=(2,), kills=(per_epoch + 1,))


def test_the_classifier_resumes_exactly(tmp_path):
    generator = torch.Generator().manual_seed(0)
    rows = [
        {"inputs": torch.randint(1, 10, (int(n),), generator=generator).tolist(), "label": i % 3}
        for i, n in enumerate(torch.randint(2, 7, (24,), generator=generator))
    ]

    def setup() -> Setup:
        config = ClassifierConfig(
            num_classes=3, vocab_size=10, embedding_dim=4, hidden_size=6, num_layers=2, dropout=0.2
        )
        model = LSTMClassifier(config)
        examples = model.encode(rows)
        lengths = [len(e.inputs) for e in examples]
        batches = BucketedBatches(examples, lengths, model.collate, max_tokens=24, seed=1)
        return model, batches, lambda m: {"loss": m.evaluate(rows)["loss"]}

    per_epoch = steps_per_epoch(setup)
    assert per_epoch >= 3
    assert_kill_and_resume_are_exact(setup, tmp_path, stops=(per_epoch,), kills=(2,))


def test_the_forecaster_resumes_exactly(tmp_path):
    t = torch.arange(80.0)
    series = torch.sin(t / 5) + 0.1 * torch.cos(t / 2)
    windows, targets = sliding_windows(series, window=8, horizon=3)
    rows = [{"window": w, "target": y} for w, y in zip(windows, targets, strict=True)]

    def setup() -> Setup:
        config = ForecasterConfig(1, horizon=3, hidden_size=6, num_layers=2, dropout=0.2)
        model = LSTMForecaster(config)
        model.fit_scaler(series)
        examples = model.encode(rows)
        batches = BucketedBatches(examples, [8] * len(examples), model.collate, 160, seed=4)
        return model, batches, lambda m: {"loss": m.evaluate(rows)["mae"]}

    per_epoch = steps_per_epoch(setup)
    assert per_epoch >= 3
    assert_kill_and_resume_are_exact(setup, tmp_path, stops=(1,), kills=(per_epoch + 1,))


# ----------------------------------------------------------------------------- the hook


class Scale(nn.Module):
    """y = w * x summed over a window of random length: the loss depends on the lengths."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4))

    def forward(self, batch: torch.Tensor) -> StepOutput:
        return StepOutput(((self.w[: batch.size(1)] * batch) ** 2).sum(), batch.numel())


class RandomLengthWindows:
    """A batch source like variable-length BPTT: every window's length is drawn from a
    generator that runs on across epochs (not a function of the epoch), so a checkpoint
    must keep the generator's state."""

    def __init__(self) -> None:
        self.generator = torch.Generator().manual_seed(0)
        self.data = torch.arange(1.0, 5.0).expand(3, 4) / 4

    def __len__(self) -> int:
        return 5

    def epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        for _ in range(5):
            length = int(torch.randint(1, 5, (), generator=self.generator))
            yield self.data[:, :length]


class CarryingWindows(RandomLengthWindows):
    def training_state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "note": "lengths"}

    def load_training_state_dict(self, state: dict[str, Any]) -> None:
        assert state["note"] == "lengths"  # the JSON part comes back too
        self.generator.set_state(state["generator"])


@pytest.mark.parametrize("carrying", [True, False])
def test_a_batch_source_that_carries_state_resumes_exactly_through_the_hook(tmp_path, carrying):
    source = CarryingWindows if carrying else RandomLengthWindows

    def setup() -> Setup:
        return Scale(), source(), lambda m: {"loss": float(m.w.sum())}

    settings = dict(optimizer="sgd", lr=0.1, warmup_steps=0)
    reference = train(setup, tmp_path / "reference", **settings)
    # in the second epoch: replaying its first 2 batches does not bring the generator back
    # to where it was, after the 5 draws of the first epoch
    train(setup, tmp_path / "stopped", max_steps=7, **settings)
    resumed = train(setup, tmp_path / "stopped", init_seed=1, resume=True, **settings)
    assert torch.equal(reference.w, resumed.w) == carrying


def test_a_carried_state_that_does_not_fit_is_named(char_tokenizer, tmp_path):
    setup = lm_setup(char_tokenizer)
    train(setup, tmp_path, max_steps=3)

    def other_rows() -> Setup:  # 3 rows of the stream where the checkpoint has 2
        model, batches, evaluate = setup()
        tok = char_tokenizer
        batches = StreamBatches.from_examples(model.encode(LINES), 3, 16, tok.pad_id, tok.bos_id)
        return model, batches, evaluate

    train(other_rows, tmp_path, max_steps=3, resume=True)  # budget reached: nothing runs
    with pytest.raises(ValueError, match="a window of 3 rows at position 48 follows one of 2"):
        train(other_rows, tmp_path, resume=True)
    # a checkpoint whose state does not fit the model (tampered with here)
    path = tmp_path / "checkpoints" / "step-00000003"
    tensors, state = read_checkpoint(path)
    tensors["training_state/0/model/c/1"] = torch.zeros(1, 2, 5)
    write_checkpoint(path, tensors, {k: v for k, v in state.items() if k != "tensors_sha256"})
    message = r"step-00000003: the carried training state of the model does not fit it: c/1 has"
    with pytest.raises(CheckpointError, match=message):
        train(setup, tmp_path, resume=True)
