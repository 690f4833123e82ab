"""LSTMClassifier: shapes, padding-aware pooling (vs. unpadded brute force), the task protocol
(encode/collate/forward/evaluate against hand computations and scikit-learn), learning."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, log_loss

from seqlstm.data import BucketedBatches
from seqlstm.errors import DataError
from seqlstm.tasks.base import TaskModel
from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier
from seqlstm.training import Trainer, TrainerConfig


def build(num_classes, **kwargs):
    return LSTMClassifier(ClassifierConfig(num_classes, **kwargs))


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_for_features_and_tokens(pooling, bidirectional):
    torch.manual_seed(0)
    features = build(5, input_size=8, hidden_size=6, bidirectional=bidirectional, pooling=pooling)
    assert features.logits(torch.randn(3, 7, 8)).shape == (3, 5)
    assert features.pool(torch.randn(3, 7, 8)).shape == (3, 6 * (1 + bidirectional))
    tokens = build(4, vocab_size=20, embedding_dim=5, hidden_size=6, pooling=pooling)
    assert tokens.logits(torch.randint(1, 20, (2, 9)), torch.tensor([9, 3])).shape == (2, 4)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooling_ignores_padding(pooling, bidirectional):
    """A padded batch gives each sequence the logits it gets on its own, unpadded."""
    torch.manual_seed(0)
    model = build(
        3, input_size=4, hidden_size=5, num_layers=2, bidirectional=bidirectional, pooling=pooling
    ).double()
    lengths = torch.tensor([6, 2, 4])
    batch = torch.randn(3, 6, 4, dtype=torch.float64)
    for b, n in enumerate(lengths):
        batch[b, n:] = 1e3  # garbage that would dominate max/mean pooling if it leaked in
    logits = model.logits(batch, lengths)
    for b, n in enumerate(lengths):
        alone = model.logits(batch[b : b + 1, :n])
        torch.testing.assert_close(logits[b : b + 1], alone)


def test_max_and_mean_pooling_by_hand():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3)
    lengths = torch.tensor([5, 3])
    for pooling, reduce in [("mean", lambda o: o.mean(0)), ("max", lambda o: o.amax(0))]:
        model = build(2, input_size=3, hidden_size=4, pooling=pooling)
        outputs, _ = model.lstm(x)
        expected = torch.stack([reduce(outputs[b, :n]) for b, n in enumerate(lengths)])
        torch.testing.assert_close(model.pool(x, lengths), expected)


def test_token_embedding_padding_row_is_zero():
    model = build(2, vocab_size=10, pad_id=3)
    assert torch.all(model.embedding.weight[3] == 0)


def test_argument_errors():
    with pytest.raises(ValueError, match="exactly one of"):
        build(2)
    with pytest.raises(ValueError, match="exactly one of"):
        build(2, input_size=3, vocab_size=10)
    with pytest.raises(ValueError, match="pooling must be"):
        build(2, input_size=3, pooling="first")
    with pytest.raises(ValueError, match=r"token ids \[B, T\]"):
        build(2, vocab_size=10).logits(torch.randn(2, 3, 4))


def _first_token_task(n: int, generator: torch.Generator):
    """Class = the first token (1..4); the rest are distractors 5..9; lengths 3..8, pad 0."""
    labels = torch.randint(0, 4, (n,), generator=generator)
    lengths = torch.randint(3, 9, (n,), generator=generator)
    tokens = torch.randint(5, 10, (n, 8), generator=generator)
    tokens[:, 0] = labels + 1
    tokens[torch.arange(8) >= lengths.unsqueeze(1)] = 0
    return tokens, lengths, labels


def test_learns_first_token_task_to_100_percent():
    """Unidirectional, last-state pooling: the class must be carried through up to 8 steps."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    tokens, lengths, labels = _first_token_task(256, generator)
    test_tokens, test_lengths, test_labels = _first_token_task(256, generator)
    model = build(4, vocab_size=10, embedding_dim=8, hidden_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model.logits(tokens, lengths), labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model.predict(test_tokens, test_lengths) == test_labels).float().mean()
    assert accuracy == 1.0


@pytest.mark.parametrize("inputs", ["features", "tokens"])
def test_save_pretrained_round_trip_gives_identical_logits(inputs, tmp_path):
    torch.manual_seed(0)
    if inputs == "features":
        model = build(3, input_size=4, hidden_size=5, bidirectional=True, pooling="max")
        batch = torch.randn(2, 6, 4)
    else:
        model = build(3, vocab_size=12, embedding_dim=4, hidden_size=5, num_layers=2)
        batch = torch.randint(1, 12, (2, 6))
    model.save_pretrained(tmp_path / "model")
    loaded = LSTMClassifier.from_pretrained(tmp_path / "model")
    assert loaded.config == model.config and loaded.tokenizer is None
    lengths = torch.tensor([6, 3])
    assert torch.equal(loaded.logits(batch, lengths), model.eval().logits(batch, lengths))


# --- the task protocol ----------------------------------------------------------------------


def feature_rows(lengths: list[int], features: int, classes: int, seed: int) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    return [
        {
            "inputs": torch.randn(n, features, generator=generator).tolist(),
            "label": int(torch.randint(classes, (), generator=generator)),
        }
        for n in lengths
    ]


def test_follows_the_task_protocol():
    assert isinstance(build(2, input_size=3), TaskModel)


def test_collate_pads_to_the_longest_and_masks_only_unequal_lengths():
    model = build(3, vocab_size=10, pad_id=7)
    examples = model.encode([{"inputs": [1, 2, 3], "label": 0}, {"inputs": [4], "label": 2}])
    batch = model.collate(examples)
    assert batch.inputs.tolist() == [[1, 2, 3], [4, 7, 7]]
    assert batch.lengths.tolist() == [3, 1] and batch.labels.tolist() == [0, 2]
    same = model.collate(model.encode([{"inputs": [1, 2], "label": 1}] * 2))
    assert same.lengths is None  # every sequence is whole: no mask needed


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_forward_is_the_summed_cross_entropy_of_each_sequence_alone(pooling):
    torch.manual_seed(0)
    model = build(4, input_size=3, hidden_size=5, bidirectional=True, pooling=pooling)
    rows = feature_rows([5, 2, 4, 5], features=3, classes=4, seed=1)
    out = model(model.collate(model.encode(rows)))
    assert out.num_tokens == len(rows)
    expected = 0.0
    for row in rows:  # -log softmax(z)[label], by hand, on the unpadded sequence
        z = model.logits(torch.tensor([row["inputs"]]))[0].tolist()
        expected += math.log(sum(math.exp(v) for v in z)) - z[row["label"]]
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_evaluate_matches_scikit_learn_for_any_batch_size():
    torch.manual_seed(0)
    model = build(3, vocab_size=12, embedding_dim=4, hidden_size=6, dropout=0.5)
    generator = torch.Generator().manual_seed(2)
    rows = [
        {
            "inputs": torch.randint(1, 12, (int(n),), generator=generator),
            "label": int(torch.randint(3, (), generator=generator)),
        }
        for n in torch.randint(1, 9, (23,), generator=generator)
    ]
    model.eval()
    with torch.no_grad():
        probabilities = np.stack(
            [F.softmax(model.logits(row["inputs"][None]).double(), -1)[0].numpy() for row in rows]
        )
    labels = [row["label"] for row in rows]
    model.train()  # evaluate must switch dropout off by itself, and switch it back on
    for batch_size in (1, 5, 64):
        metrics = model.evaluate(rows, batch_size=batch_size)
        assert set(metrics) == {"accuracy", "loss"}
        assert metrics["accuracy"] == accuracy_score(labels, probabilities.argmax(1))
        assert metrics["loss"] == pytest.approx(log_loss(labels, probabilities, labels=[0, 1, 2]))
    assert model.training


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"label": 0}, r"row 1: expected a 'inputs' column, got columns \['label'\]"),
        ({"inputs": [[0.5, 1.0]], "label": 0}, r"row 1: 'inputs' must hold T token ids"),
        ({"inputs": [0.5, 1.0], "label": 0}, r"row 1: 'inputs' must hold T token ids, got torch"),
        ({"inputs": [], "label": 0}, r"row 1: 'inputs' must hold T token ids with T >= 1"),
        ({"inputs": [3, 10], "label": 0}, r"row 1: token ids must be in \[0, 10\), got 3..10"),
        ({"inputs": [3], "label": 2}, r"row 1: label 2 is outside \[0, 2\)"),
        ({"inputs": [3], "label": 1.0}, r"row 1: 'label' must be an integer class index"),
        ({"inputs": [3]}, r"row 1: expected a 'label' column"),
        ("3", r"row 1: expected a mapping of columns, got str"),
    ],
)
def test_encode_names_the_bad_row(row, message):
    model = build(2, vocab_size=10)
    with pytest.raises(DataError, match=message):
        model.encode([{"inputs": [1, 2], "label": 1}, row])


def test_encode_checks_feature_shapes_and_refuses_a_lone_row():
    model = build(2, input_size=3)
    with pytest.raises(DataError, match=r"row 0: 'inputs' must hold \[T, 3\] numbers"):
        model.encode([{"inputs": [[1.0, 2.0]], "label": 0}])
    with pytest.raises(DataError, match="not one dict"):
        model.encode({"inputs": [[1.0, 2.0, 3.0]], "label": 0})
    (example,) = model.encode([{"inputs": np.ones((2, 3), dtype=np.float64), "label": 1}])
    assert example.inputs.dtype == torch.float32 and example.label == 1


def test_trainer_trains_the_classifier_through_its_forward(tmp_path):
    """No step function: the Trainer calls model(batch) on the model's own batches."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    def rows(n):
        tokens, lengths, labels = _first_token_task(n, generator)
        return [
            {"inputs": t[:length], "label": int(y)}
            for t, length, y in zip(tokens, lengths, labels, strict=True)
        ]

    train, valid = rows(256), rows(128)
    model = build(4, vocab_size=10, embedding_dim=8, hidden_size=16)
    examples = model.encode(train)
    batches = BucketedBatches(
        examples, [len(e.inputs) for e in examples], model.collate, max_tokens=8 * 64, seed=0
    )
    config = TrainerConfig(
        output_dir=str(tmp_path),
        lr=0.03,
        lr_decay_factor=1.0,
        max_epochs=25,
        metric="accuracy",
        metric_mode="max",
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
    )
    before = model.evaluate(valid)
    best = Trainer(model, config, batches, evaluate_fn=lambda m: m.evaluate(valid)).fit()
    assert before["accuracy"] < 0.5
    assert best["accuracy"] >= 0.95 and best["loss"] < 0.3
