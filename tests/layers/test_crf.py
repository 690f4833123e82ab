"""LinearChainCRF against brute force (every path enumerated) and against pytorch-crf."""

import itertools

import pytest
import torch
from torchcrf import CRF

from seqlstm.layers.crf import LinearChainCRF
from seqlstm.text.tag_schemes import is_valid_sequence

IOB2 = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
IOBES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
# (labels, scheme) or (number of tags, None) for an unconstrained CRF
SETTINGS = [(4, None), (IOB2, "IOB2"), (IOBES, "IOBES")]


def make_crf(labels, scheme, seed=0, dtype=torch.float64):
    """A CRF with scores large enough that transitions matter (pytorch-crf starts near 0)."""
    torch.manual_seed(seed)
    crf = LinearChainCRF(labels) if scheme is None else LinearChainCRF.from_labels(labels, scheme)
    for parameter in crf.parameters():
        torch.nn.init.normal_(parameter)
    return crf.to(dtype)


def random_batch(lengths, max_len, num_tags, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    emissions = 2 * torch.randn(len(lengths), max_len, num_tags, generator=generator, dtype=dtype)
    mask = torch.arange(max_len) < torch.tensor(lengths).unsqueeze(1)
    return emissions, mask


def all_paths(crf, emissions, length, labels, scheme):
    """Every allowed path of one sentence and its score: (LongTensor[N, L], FloatTensor[N])."""
    paths = torch.tensor(list(itertools.product(range(crf.num_tags), repeat=length)))
    paths = paths.reshape(-1, length)
    if scheme is not None:
        valid = [is_valid_sequence([labels[i] for i in p], scheme) for p in paths.tolist()]
        paths = paths[torch.tensor(valid)]
    params = crf.crf
    scores = (
        params.start_transitions[paths[:, 0]]
        + emissions[torch.arange(length), paths].sum(dim=1)
        + params.transitions[paths[:, :-1], paths[:, 1:]].sum(dim=1)
        + params.end_transitions[paths[:, -1]]
    )
    return paths, scores


def assert_well_formed(paths, labels, scheme):
    for path in paths:
        assert is_valid_sequence([labels[i] for i in path], scheme), [labels[i] for i in path]


def test_from_labels_builds_the_scheme_constraints():
    crf = LinearChainCRF.from_labels(IOB2, "IOB2")
    # rows: previous tag O, B-PER, I-PER, B-LOC, I-LOC; I-X only after B-X or I-X
    expected = torch.tensor(
        [
            [1, 1, 0, 1, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 0, 1, 1],
            [1, 1, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(crf.allowed_transitions, expected)
    assert crf.allowed_start.tolist() == [True, True, False, True, False]
    assert crf.allowed_end.all()

    crf = LinearChainCRF.from_labels(["O", "B-X", "I-X", "E-X", "S-X"], "IOBES")
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 1],  # O -> O, B, S
            [0, 0, 1, 1, 0],  # B -> I, E
            [0, 0, 1, 1, 0],  # I -> I, E
            [1, 1, 0, 0, 1],  # E -> O, B, S
            [1, 1, 0, 0, 1],  # S -> O, B, S
        ],
        dtype=torch.bool,
    )
    assert torch.equal(crf.allowed_transitions, expected)
    assert crf.allowed_start.tolist() == [True, True, False, False, True]
    assert crf.allowed_end.tolist() == [True, False, False, True, True]


@pytest.mark.parametrize(("labels", "scheme"), SETTINGS)
def test_viterbi_and_nbest_equal_brute_force(labels, scheme):
    crf = make_crf(labels, scheme)
    lengths, k = [4, 0, 1, 3, 2, 4], 6
    emissions, mask = random_batch(lengths, 4, crf.num_tags)
    paths, scores = crf.viterbi(emissions, mask)
    top_paths, top_scores = crf.nbest(emissions, mask, k)
    one_path, one_score = crf.nbest(emissions, mask, 1)
    assert torch.equal(one_path[:, 0], paths)
    torch.testing.assert_close(one_score[:, 0], scores)
    assert crf.decode(emissions, mask) == [
        p[:n] for p, n in zip(paths.tolist(), lengths, strict=True)
    ]
    for b, length in enumerate(lengths):
        assert (paths[b, length:] == -1).all() and (top_paths[b, :, length:] == -1).all()
        if length == 0:
            assert scores[b] == 0 and top_scores[b].tolist() == [0.0] + [-float("inf")] * (k - 1)
            assert (top_paths[b] == -1).all()
            continue
        brute_paths, brute_scores = all_paths(crf, emissions[b], length, labels, scheme)
        order = brute_scores.argsort(descending=True)[:k]
        assert paths[b, :length].tolist() == brute_paths[order[0]].tolist()
        torch.testing.assert_close(scores[b], brute_scores[order[0]])
        found = len(order)  # a length-one sentence has fewer than k paths
        torch.testing.assert_close(top_scores[b, :found], brute_scores[order])
        assert top_paths[b, :found, :length].tolist() == brute_paths[order].tolist()
        assert top_scores[b, found:].isneginf().all() and (top_paths[b, found:] == -1).all()


@pytest.mark.parametrize(("labels", "scheme"), SETTINGS)
def test_partition_score_and_marginals_equal_brute_force(labels, scheme):
    crf = make_crf(labels, scheme, seed=1)
    lengths = [4, 1, 0, 3, 4]
    emissions, mask = random_batch(lengths, 4, crf.num_tags, seed=1)
    log_z = crf.log_partition(emissions, mask)
    marginals = crf.marginals(emissions, mask)
    gold = torch.zeros(len(lengths), 4, dtype=torch.long)
    gold_scores = torch.zeros(len(lengths), dtype=torch.float64)
    for b, length in enumerate(lengths):
        if length == 0:
            assert log_z[b] == 0 and (marginals[b] == 0).all()
            continue
        paths, scores = all_paths(crf, emissions[b], length, labels, scheme)
        torch.testing.assert_close(log_z[b], scores.logsumexp(0))
        probabilities = (scores - scores.logsumexp(0)).exp()
        one_hot = torch.nn.functional.one_hot(paths, crf.num_tags).to(probabilities.dtype)
        brute_marginals = (probabilities[:, None, None] * one_hot).sum(dim=0)
        torch.testing.assert_close(marginals[b, :length], brute_marginals)
        assert (marginals[b, length:] == 0).all()
        gold_path = len(paths) // 3  # some allowed path
        gold[b, :length] = paths[gold_path]
        gold_scores[b] = scores[gold_path]
    torch.testing.assert_close(marginals.sum(dim=2), mask.to(marginals.dtype))
    torch.testing.assert_close(crf.sequence_score(emissions, gold, mask), gold_scores)
    nll = crf.neg_log_likelihood(emissions, gold, mask)
    torch.testing.assert_close(nll, (log_z - gold_scores).sum())


@pytest.mark.parametrize("seed", range(3))
def test_unconstrained_crf_agrees_with_torchcrf(seed):
    crf = make_crf(7, None, seed=seed, dtype=torch.float32)
    reference = CRF(7, batch_first=True)
    reference.load_state_dict(crf.crf.state_dict())
    lengths = torch.randint(1, 16, (32,), generator=torch.Generator().manual_seed(seed))
    emissions, mask = random_batch(lengths.tolist(), 15, 7, seed=seed, dtype=torch.float32)
    tags = torch.randint(0, 7, (32, 15), generator=torch.Generator().manual_seed(seed))
    assert crf.decode(emissions, mask) == reference.decode(emissions, mask)
    torch.testing.assert_close(
        crf.neg_log_likelihood(emissions, tags, mask), -reference(emissions, tags, mask)
    )


def test_zero_and_one_length_sentences():
    crf = make_crf(IOB2, "IOB2", seed=2)
    lengths = [0, 1, 3, 0, 1]
    emissions, mask = random_batch(lengths, 3, 5, seed=2)
    emissions[~mask] = float("nan")  # padding may hold anything
    emissions.requires_grad_(True)
    tags = torch.tensor([[0, 0, 0], [1, 9, 9], [3, 4, 0], [0, 0, 0], [0, 9, 9]])
    nll = crf.neg_log_likelihood(emissions, tags, mask)
    nll.backward()
    assert torch.isfinite(emissions.grad).all() and (emissions.grad[~mask] == 0).all()
    nonempty = [1, 2, 4]
    expected = crf.neg_log_likelihood(emissions[nonempty], tags[nonempty], mask[nonempty])
    torch.testing.assert_close(nll, expected)

    with torch.no_grad():
        decoded = crf.decode(emissions, mask)
        assert [len(path) for path in decoded] == lengths
        assert decoded[1] == crf.decode(emissions[1:2, :1])[0]
        paths, scores = crf.nbest(emissions, mask, 3)
        # a single token can be O, B-PER or B-LOC: exactly three paths
        assert torch.isfinite(scores[[1, 2, 4]]).all()
        marginals = crf.marginals(emissions, mask)
        assert not marginals.isnan().any()
        torch.testing.assert_close(marginals.sum(dim=2), mask.double())

    # T = 0: a batch of empty sentences
    empty = torch.zeros(2, 0, 5, dtype=torch.float64)
    assert crf.decode(empty) == [[], []]
    assert crf.viterbi(empty)[0].shape == (2, 0)
    assert crf.nbest(empty, k=2)[1].tolist() == [[0.0, -float("inf")]] * 2
    assert crf.marginals(empty).shape == (2, 0, 5)
    assert crf.neg_log_likelihood(empty, torch.zeros(2, 0, dtype=torch.long)).item() == 0


@pytest.mark.parametrize(("labels", "scheme"), [(IOB2, "IOB2"), (IOBES, "IOBES")])
def test_constrained_decoding_is_always_well_formed(labels, scheme):
    crf = make_crf(labels, scheme, seed=3)
    unconstrained = make_crf(len(labels), None, seed=3)
    unconstrained.crf.load_state_dict(crf.crf.state_dict())
    lengths = torch.randint(1, 21, (64,), generator=torch.Generator().manual_seed(3)).tolist()
    emissions, mask = random_batch(lengths, 20, len(labels), seed=3)
    emissions = 3 * emissions
    assert_well_formed(crf.decode(emissions, mask), labels, scheme)
    paths, scores = crf.nbest(emissions, mask, 3)
    assert torch.isfinite(scores).all()  # one token has 3 allowed tags: O, B-X or S-X
    assert_well_formed([p[p >= 0].tolist() for p in paths.flatten(0, 1)], labels, scheme)
    # the constraints are doing the work: without them some paths are ill-formed
    free = unconstrained.decode(emissions, mask)
    assert not all(is_valid_sequence([labels[i] for i in p], scheme) for p in free)


def test_sentences_without_an_allowed_path_are_marked():
    # only tag 0 may start, only tag 1 may end, and no tag may change: no path at all
    crf = LinearChainCRF(
        3,
        torch.eye(3, dtype=torch.bool),
        torch.tensor([1, 0, 0]).bool(),
        torch.tensor([0, 1, 0]).bool(),
    ).double()
    emissions, mask = random_batch([1, 3, 0], 3, 3)
    paths, scores = crf.viterbi(emissions, mask)
    assert (paths == -1).all() and scores.tolist() == [-float("inf"), -float("inf"), 0.0]
    assert crf.decode(emissions, mask) == [[-1], [-1, -1, -1], []]
    top_paths, top_scores = crf.nbest(emissions, mask, 2)
    assert (top_paths == -1).all() and top_scores[:2].isneginf().all()


def test_half_precision_decodes_in_float32():
    half = make_crf(IOBES, "IOBES", seed=7).to(torch.bfloat16)
    full = make_crf(IOBES, "IOBES", seed=7).float()
    # the same, bfloat16-rounded scores
    full.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in half.state_dict().items()}
    )
    lengths = torch.randint(1, 41, (64,), generator=torch.Generator().manual_seed(7)).tolist()
    emissions, mask = random_batch(lengths, 40, len(IOBES), seed=7, dtype=torch.bfloat16)
    assert half.decode(emissions, mask) == full.decode(emissions.float(), mask)


def test_marginals_are_the_gradient_of_log_partition():
    crf = make_crf(IOBES, "IOBES", seed=4)
    emissions, mask = random_batch([6, 2, 0, 5], 6, len(IOBES), seed=4)
    emissions.requires_grad_(True)
    (gradient,) = torch.autograd.grad(crf.log_partition(emissions, mask).sum(), emissions)
    torch.testing.assert_close(crf.marginals(emissions, mask), gradient)


def test_path_marginals_pick_the_chosen_tags():
    crf = make_crf(IOB2, "IOB2", seed=5)
    emissions, mask = random_batch([3, 1, 0], 3, 5, seed=5)
    with torch.no_grad():
        paths, _ = crf.viterbi(emissions, mask)
        chosen = crf.path_marginals(emissions, mask, paths)
        marginals = crf.marginals(emissions, mask)
    for b, t in itertools.product(range(3), range(3)):
        expected = marginals[b, t, paths[b, t]] if mask[b, t] else 0.0
        assert chosen[b, t].item() == pytest.approx(float(expected))
    assert ((chosen > 0) == mask).all()


def test_constraints_are_saved_in_the_state_dict():
    crf = make_crf(IOB2, "IOB2", seed=6)
    restored = LinearChainCRF(len(IOB2)).double()
    restored.load_state_dict(crf.state_dict())
    emissions, mask = random_batch([5, 4], 5, 5, seed=6)
    assert restored.decode(emissions, mask) == crf.decode(emissions, mask)
    assert torch.equal(restored.allowed_transitions, crf.allowed_transitions)


def test_bad_input_is_rejected_clearly():
    crf = make_crf(IOB2, "IOB2")
    emissions, mask = random_batch([3, 2], 3, 5)
    tags = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="right-padded"):
        crf.decode(emissions, mask.flip(1))
    with pytest.raises(ValueError, match=r"shape \[B, T, 5\]"):
        crf.decode(emissions[..., :4], mask)
    with pytest.raises(ValueError, match="mask must have shape"):
        crf.decode(emissions, mask[:, :2])
    with pytest.raises(ValueError, match="tag 7 at sentence 1, position 1"):
        crf.neg_log_likelihood(emissions, torch.tensor([[0, 0, 0], [0, 7, 0]]), mask)
    tags[1, 1] = IOB2.index("I-PER")  # O -> I-PER
    with pytest.raises(ValueError, match="sentence 1 go from tag 0 to tag 2 at position 1"):
        crf.neg_log_likelihood(emissions, tags, mask)
    with pytest.raises(ValueError, match="k must be"):
        crf.nbest(emissions, mask, 0)
    with pytest.raises(ValueError, match="allowed_start"):
        LinearChainCRF(5, allowed_start=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="distinct"):
        LinearChainCRF.from_labels(["O", "O"], "IOB2")
    with pytest.raises(ValueError, match="unknown tag scheme"):
        LinearChainCRF.from_labels(IOB2, "BILOU")
    iobes = LinearChainCRF.from_labels(IOBES, "IOBES")
    s_per, b_per = IOBES.index("S-PER"), IOBES.index("B-PER")
    with pytest.raises(ValueError, match=f"end with tag {b_per}"):
        iobes.neg_log_likelihood(torch.randn(1, 3, 9), torch.tensor([[s_per, s_per, b_per]]))
