"""LSTMClassifier: shapes, padding-aware pooling (vs. unpadded brute force), learning."""

import pytest
import torch
import torch.nn.functional as F

from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier


def build(num_classes, **kwargs):
    return LSTMClassifier(ClassifierConfig(num_classes, **kwargs))


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_for_features_and_tokens(pooling, bidirectional):
    torch.manual_seed(0)
    features = build(5, input_size=8, hidden_size=6, bidirectional=bidirectional, pooling=pooling)
    assert features(torch.randn(3, 7, 8)).shape == (3, 5)
    assert features.encode(torch.randn(3, 7, 8)).shape == (3, 6 * (1 + bidirectional))
    tokens = build(4, vocab_size=20, embedding_dim=5, hidden_size=6, pooling=pooling)
    assert tokens(torch.randint(1, 20, (2, 9)), torch.tensor([9, 3])).shape == (2, 4)


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
    logits = model(batch, lengths)
    for b, n in enumerate(lengths):
        alone = model(batch[b : b + 1, :n])
        torch.testing.assert_close(logits[b : b + 1], alone)


def test_max_and_mean_pooling_by_hand():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3)
    lengths = torch.tensor([5, 3])
    for pooling, reduce in [("mean", lambda o: o.mean(0)), ("max", lambda o: o.amax(0))]:
        model = build(2, input_size=3, hidden_size=4, pooling=pooling)
        outputs, _ = model.lstm(x)
        expected = torch.stack([reduce(outputs[b, :n]) for b, n in enumerate(lengths)])
        torch.testing.assert_close(model.encode(x, lengths), expected)


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
        build(2, vocab_size=10)(torch.randn(2, 3, 4))


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
        F.cross_entropy(model(tokens, lengths), labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_tokens, test_lengths).argmax(-1) == test_labels).float().mean()
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
    assert torch.equal(loaded(batch, lengths), model.eval()(batch, lengths))
