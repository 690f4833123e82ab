"""The numpy Viterbi decoder against brute force and against LinearChainCRF's decoder."""

import itertools

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")  # seqlstm.onnx_tagger is the onnxruntime tagger

from seqlstm.layers.crf import LinearChainCRF  # noqa: E402
from seqlstm.onnx_tagger.viterbi import ViterbiDecoder  # noqa: E402

IOBES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def decoder_of(crf: LinearChainCRF) -> ViterbiDecoder:
    return ViterbiDecoder.constrained(
        crf.crf.start_transitions.detach().numpy(),
        crf.crf.transitions.detach().numpy(),
        crf.crf.end_transitions.detach().numpy(),
        crf.allowed_start.numpy(),
        crf.allowed_transitions.numpy(),
        crf.allowed_end.numpy(),
    )


def brute_force(emissions, start, transitions, end, allowed_start, allowed, allowed_end):
    """The best allowed path of one sentence's emissions [T, K], every path enumerated."""
    length, num_tags = emissions.shape
    best, best_score = [], -np.inf
    for path in itertools.product(range(num_tags), repeat=length):
        steps = list(itertools.pairwise(path))
        if length == 0:
            return []
        if not (allowed_start[path[0]] and allowed_end[path[-1]]):
            continue
        if not all(allowed[a, b] for a, b in steps):
            continue
        score = start[path[0]] + end[path[-1]] + sum(transitions[a, b] for a, b in steps)
        score += sum(emissions[t, tag] for t, tag in enumerate(path))
        if score > best_score:
            best, best_score = list(path), score
    return best


def test_decode_is_the_best_allowed_path_by_brute_force():
    rng = np.random.default_rng(0)
    num_tags, lengths = 3, [4, 1, 0, 3, 4]
    for _ in range(20):
        start, end = rng.normal(size=num_tags), rng.normal(size=num_tags)
        transitions = rng.normal(size=(num_tags, num_tags))
        allowed = rng.random((num_tags, num_tags)) < 0.7
        allowed_start, allowed_end = rng.random(num_tags) < 0.8, rng.random(num_tags) < 0.8
        allowed_start[0] = allowed_end[0] = allowed[0, 0] = True  # 0, 0, ... always allowed
        constraints = (allowed_start, allowed, allowed_end)
        decoder = ViterbiDecoder.constrained(start, transitions, end, *constraints)
        emissions = rng.normal(size=(len(lengths), max(lengths), num_tags)).astype(np.float32)
        emissions[1, 1:] = np.nan  # padding is never read
        paths = decoder.decode(emissions, lengths)
        for row, (length, path) in enumerate(zip(lengths, paths, strict=True)):
            scores = emissions[row, :length].astype(np.float64)
            assert path == brute_force(scores, start, transitions, end, *constraints)


@pytest.mark.parametrize("seed", range(3))
def test_decode_gives_the_paths_of_the_torch_crf(seed):
    torch.manual_seed(seed)
    crf = LinearChainCRF.from_labels(IOBES, "IOBES")
    for parameter in crf.parameters():
        torch.nn.init.normal_(parameter)
    lengths = [7, 1, 0, 5, 7, 2]
    emissions = 3 * torch.randn(len(lengths), 7, len(IOBES))
    mask = torch.arange(7) < torch.tensor(lengths).unsqueeze(1)
    expected = crf.decode(emissions, mask)
    assert decoder_of(crf).decode(emissions.numpy(), lengths) == expected


def test_decode_of_nothing():
    scores = (np.zeros(2), np.zeros((2, 2)), np.zeros(2))
    decoder = ViterbiDecoder.constrained(*scores, *(np.ones(a.shape, bool) for a in scores))
    assert decoder.decode(np.zeros((2, 0, 2), np.float32), [0, 0]) == [[], []]
    assert decoder.decode(np.zeros((0, 3, 2), np.float32), []) == []
    with pytest.raises(ValueError, match="lengths"):
        decoder.decode(np.zeros((1, 3, 2), np.float32), [4])
