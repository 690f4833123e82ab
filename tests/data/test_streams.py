"""Tests for seqlstm.data.streams: stream layout, BPTT windows, carried state, stream evaluation."""

import pytest
import torch

from seqlstm.data.streams import IGNORE_INDEX, StreamBatches, batchify, encode_stream, text_lines
from seqlstm.errors import DataError
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.language_modeling.tbptt import TBPTTStep, evaluate_stream
from seqlstm.text.tokenizer import SubwordTokenizer

PAD, BOS, EOS = 0, 2, 3
TEXTS = ["the cat sat on the mat", "", "a dog ran after the cat", "the end"]


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(TEXTS, vocab_size=300, model_type="char")


def tiny_model(tokenizer, **overrides):
    torch.manual_seed(0)
    sizes = dict(embedding_dim=12, hidden_size=16, num_layers=2)
    dropouts = dict(
        dropout_embedding=0.1, dropout_input=0.2, dropout_hidden=0.2, dropout_output=0.2
    )
    config = LanguageModelConfig(**{**sizes, **dropouts, "weight_drop": 0.3, **overrides})
    return LSTMLanguageModel(config, tokenizer)


def test_batchify_by_hand():
    rows = batchify(torch.arange(10, 20), batch_size=3, pad_id=PAD)
    assert rows.tolist() == [[10, 11, 12, 13], [13, 14, 15, 16], [16, 17, 18, 19]]
    # 8 tokens, 7 targets, L = ceil(7 / 3) = 3: the last row runs into padding
    rows = batchify(torch.arange(10, 18), batch_size=3, pad_id=PAD)
    assert rows.tolist() == [[10, 11, 12, 13], [13, 14, 15, 16], [16, 17, PAD, PAD]]


@pytest.mark.parametrize("num_tokens", [2, 3, 7, 50, 101])
@pytest.mark.parametrize("batch_size", [1, 2, 4, 7])
def test_batchify_targets_are_the_stream_once(num_tokens, batch_size):
    stream = torch.arange(100, 100 + num_tokens)
    rows = batchify(stream, batch_size, pad_id=PAD)
    assert rows.size(0) == batch_size
    targets = rows[:, 1:].flatten()
    assert targets[targets != PAD].tolist() == stream[1:].tolist()
    assert (targets[num_tokens - 1 :] == PAD).all()
    # a row carries on exactly where the previous one ends
    assert rows[:-1, -1].tolist() == rows[1:, 0].tolist()


def test_batchify_rejects_streams_with_nothing_to_predict():
    with pytest.raises(DataError, match="at least 2"):
        batchify(torch.tensor([5]), batch_size=2, pad_id=PAD)
    with pytest.raises(DataError, match="one-dimensional"):
        batchify(torch.ones(2, 3, dtype=torch.long), batch_size=2, pad_id=PAD)


@pytest.mark.parametrize("bptt", [1, 3, 5, 40])
def test_windows_cover_the_stream_once_with_targets_shifted_by_one(bptt):
    stream = torch.arange(10, 47)  # 37 tokens, none of them pad or BOS
    batches = StreamBatches(stream, batch_size=4, bptt=bptt, pad_id=PAD, bos_id=BOS)
    rows = batchify(stream, 4, PAD)
    length = rows.size(1) - 1
    windows = list(batches.epoch(0))
    assert len(windows) == len(batches) == -(-length // bptt)
    seen = torch.zeros(4, length, dtype=torch.long)
    for window in windows:
        start, width = window.position, window.inputs.size(1)
        assert window.inputs.tolist() == rows[:, start : start + width].tolist()
        next_tokens = rows[:, start + 1 : start + 1 + width]
        expected = torch.where(next_tokens == PAD, IGNORE_INDEX, next_tokens)
        assert window.targets.tolist() == expected.tolist()
        seen[:, start : start + width] += 1
    assert (seen == 1).all()
    targets = torch.cat([w.targets for w in windows], dim=1).flatten()
    assert targets[targets != IGNORE_INDEX].tolist() == stream[1:].tolist()
    # the same windows in every epoch
    again = list(batches.epoch(3))
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(windows, again, strict=True))


def test_bos_and_padding_are_not_scored_but_eos_is():
    stream = torch.tensor([BOS, 7, 8, EOS, BOS, 9, EOS])
    (window,) = StreamBatches(stream, batch_size=2, bptt=10, pad_id=PAD, bos_id=BOS).epoch(0)
    assert window.inputs.tolist() == [[BOS, 7, 8], [EOS, BOS, 9]]
    assert window.targets.tolist() == [[7, 8, EOS], [IGNORE_INDEX, 9, EOS]]


def test_stream_shorter_than_one_window_is_one_short_window():
    (window,) = StreamBatches(torch.tensor([5, 6, 7]), 1, bptt=70, pad_id=PAD).epoch(0)
    assert window.inputs.tolist() == [[5, 6]]
    assert window.targets.tolist() == [[6, 7]]


def test_ranks_read_disjoint_rows_of_the_same_layout():
    stream = torch.arange(10, 60)
    whole = StreamBatches(stream, batch_size=4, bptt=3, pad_id=PAD)
    ranks = [StreamBatches(stream, 2, 3, PAD, num_replicas=2, rank=r) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole)
    for full, *parts in zip(whole.epoch(0), *(r.epoch(0) for r in ranks), strict=True):
        assert torch.equal(torch.cat([p.inputs for p in parts]), full.inputs)
        assert torch.equal(torch.cat([p.targets for p in parts]), full.targets)


def test_encode_stream_frames_every_text(tokenizer):
    stream = encode_stream(tokenizer, TEXTS)
    expected = []
    for text in TEXTS:
        expected += [BOS, *tokenizer.encode(text), EOS]
    assert stream.tolist() == expected
    assert stream.tolist().count(EOS) == len(TEXTS)  # the empty text is kept


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("a\nb\n", ["a", "b"]),
        ("a\n\nb", ["a", "", "b"]),  # no final newline: the last line still gets an EOS
        ("\n\n", ["", ""]),
        ("", []),
        ("one line", ["one line"]),
    ],
)
def test_text_lines_gives_one_eos_per_newline(text, lines):
    assert text_lines(text) == lines
    # one character per newline: the count is exact when the text ends with a newline
    extra = 0 if text == "" or text.endswith("\n") else 1
    assert sum(len(line) + 1 for line in lines) == len(text) + extra


def test_evaluate_stream_does_not_depend_on_bptt(tokenizer):
    model = tiny_model(tokenizer)
    model.train()
    stream = encode_stream(tokenizer, TEXTS)
    results = [evaluate_stream(model, stream, batch_size=3, bptt=b) for b in (1, 4, 1000)]
    assert model.training  # the mode is restored
    num_scored = sum(1 for t in stream[1:].tolist() if t != BOS)
    for total_nll, num_tokens in results:
        assert num_tokens == num_scored
        assert total_nll == pytest.approx(results[0][0], rel=1e-5)


def test_tbptt_step_carries_detached_state_and_resets_each_epoch(tokenizer):
    model = tiny_model(tokenizer)
    stream = encode_stream(tokenizer, TEXTS)
    batches = StreamBatches(stream, 2, bptt=5, pad_id=PAD, bos_id=BOS)
    step = TBPTTStep()
    model.eval()
    with torch.no_grad():
        epochs = [[step(model, b) for b in batches.epoch(e)] for e in range(2)]
    assert not any(t.requires_grad for pair in step.hidden for t in pair)
    # carried through the epoch, the windows add up to one pass over the stream...
    total_nll, num_tokens = evaluate_stream(model, stream, batch_size=2, bptt=1000)
    assert sum(float(out.loss) for out in epochs[0]) == pytest.approx(total_nll, rel=1e-5)
    assert sum(int(out.num_tokens) for out in epochs[0]) == num_tokens
    # ...and the state is reset at the start of the next epoch, which repeats the first
    for first, second in zip(*epochs, strict=True):
        assert float(second.loss) == pytest.approx(float(first.loss), rel=1e-6)

    # in training, gradients stop at the window boundary: backward works window after window
    model.train()
    for batch in batches.epoch(2):
        out = step(model, batch)
        (out.loss / out.num_tokens).backward()
    assert model.decoder.weight.grad is not None
