"""Tests for seqlstm.data.streams: framed texts, stream layout, BPTT windows, rank shares."""

import pytest
import torch

import seqlstm.data.batching
from seqlstm.data.streams import (
    IGNORE_INDEX,
    StreamBatches,
    batchify,
    encode_stream,
    frame_texts,
    join_stream,
    text_batch,
    text_lines,
)
from seqlstm.errors import DataError
from seqlstm.text.tokenizer import SubwordTokenizer

PAD, BOS, EOS = 0, 2, 3
TEXTS = ["the cat sat on the mat", "", "a dog ran after the cat", "the end"]


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(TEXTS, vocab_size=300, model_type="char")


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


def test_ranks_read_their_share_of_the_rows_of_one_layout():
    stream = torch.arange(10, 60)
    whole = StreamBatches(stream, batch_size=6, bptt=3, pad_id=PAD)
    ranks = [StreamBatches(stream, 2, 3, PAD, num_replicas=3, rank=r) for r in range(3)]
    assert len(ranks[0]) == len(ranks[1]) == len(ranks[2]) == len(whole)
    for full, *parts in zip(whole.epoch(0), *(r.epoch(0) for r in ranks), strict=True):
        # rank r reads rows r and r + 3 of the six (batching.rank_share, the one rule)
        for r, part in enumerate(parts):
            assert torch.equal(part.inputs, full.inputs[[r, r + 3]])
            assert torch.equal(part.targets, full.targets[[r, r + 3]])
            assert part.position == full.position
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, 2\)"):
        StreamBatches(stream, 2, 3, PAD, num_replicas=2, rank=2)


def test_replicas_and_rank_come_from_the_process_group_by_default(monkeypatch):
    stream = torch.arange(10, 60)
    alone = StreamBatches(stream, 2, 3, PAD)  # no process group: one replica
    assert torch.equal(
        alone.inputs, StreamBatches(stream, 2, 3, PAD, num_replicas=1, rank=0).inputs
    )
    # under torchrun the group tells each rank who it is (the LM recipes pass nothing)
    dist = seqlstm.data.batching.dist
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    second = StreamBatches(stream, 2, 3, PAD)
    assert torch.equal(
        second.inputs, StreamBatches(stream, 2, 3, PAD, num_replicas=2, rank=1).inputs
    )
    assert not torch.equal(
        second.inputs, StreamBatches(stream, 2, 3, PAD, num_replicas=2, rank=0).inputs
    )


def test_encode_stream_frames_every_text(tokenizer):
    stream = encode_stream(tokenizer, TEXTS)
    expected = []
    for text in TEXTS:
        expected += [BOS, *tokenizer.encode(text), EOS]
    assert stream.tolist() == expected
    assert stream.tolist().count(EOS) == len(TEXTS)  # the empty text is kept
    framed = frame_texts(tokenizer, iter(TEXTS))
    assert [f.tolist() for f in framed] == [[BOS, *tokenizer.encode(t), EOS] for t in TEXTS]
    assert torch.equal(join_stream(framed), stream)
    assert join_stream([]).tolist() == []


def test_from_examples_lays_the_examples_end_to_end(tokenizer):
    framed = frame_texts(tokenizer, TEXTS)
    streamed = StreamBatches(encode_stream(tokenizer, TEXTS), 3, 4, PAD, BOS)
    from_examples = StreamBatches.from_examples(framed, 3, 4, PAD, BOS, num_replicas=1, rank=0)
    for a, b in zip(streamed.epoch(0), from_examples.epoch(0), strict=True):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    as_lists = StreamBatches.from_examples([f.tolist() for f in framed], 3, 4, PAD, BOS)
    assert torch.equal(as_lists.inputs, streamed.inputs)
    with pytest.raises(DataError, match="0 token"):
        StreamBatches.from_examples([], 3, 4, PAD, BOS)


def test_text_batch_gives_each_text_a_row_from_position_zero():
    batch = text_batch([[BOS, 7, 8, EOS], [BOS, EOS], torch.tensor([BOS, 9, EOS])], PAD, BOS)
    assert batch.position == 0
    # inputs are the rows but for their last column: EOS and padding may be read, never scored
    assert batch.inputs.tolist() == [[BOS, 7, 8], [BOS, EOS, PAD], [BOS, 9, EOS]]
    no = IGNORE_INDEX
    assert batch.targets.tolist() == [[7, 8, EOS], [EOS, no, no], [9, EOS, no]]
    with pytest.raises(DataError, match="example 1 has fewer than 2 tokens"):
        text_batch([[BOS, EOS], [BOS]], PAD, BOS)
    with pytest.raises(DataError, match="at least one text"):
        text_batch([], PAD, BOS)


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
