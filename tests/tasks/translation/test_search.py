import itertools

import pytest
import torch

from seqlstm.tasks.translation.search import _topk, beam_search, greedy_search, length_penalty

PAD, UNK, BOS, EOS, A, B = range(6)
VOCAB = 6
REAL = (EOS, A, B)  # the tokens a hypothesis can hold; the others have probability zero


class TableDecoder:
    """A decoder step with hand-set log-probabilities.

    tables[b] maps a prefix (tuple of generated tokens) to {token: log-prob}; a prefix that
    is not listed takes the row under the key None, and a token that is not listed `default`.
    The state is LongTensor[N, 2 + t]: the sentence index, BOS and the tokens so far. The
    attention it reports for a row is [sentence, step, last token], so that a hypothesis's
    attention rows can be checked.
    """

    def __init__(self, tables, default=-10.0):
        self.tables = tables
        self.default = default
        self.rows_per_call = []

    def initial_state(self):
        return torch.arange(len(self.tables)).unsqueeze(1)

    def step(self, prev_tokens, state):
        self.rows_per_call.append(len(prev_tokens))
        history = torch.cat([state, prev_tokens.unsqueeze(1)], dim=1)
        log_probs = torch.full((len(prev_tokens), VOCAB), float("-inf"))
        attention = torch.zeros(len(prev_tokens), 3)
        for row, (sentence, _, *prefix) in enumerate(history.tolist()):
            table = self.tables[sentence]
            scores = table.get(tuple(prefix), table.get(None, {}))
            for token in REAL:
                log_probs[row, token] = scores.get(token, self.default)
            attention[row] = torch.tensor([sentence, len(prefix), history[row, -1]])
        return log_probs, history, attention

    @staticmethod
    def reorder(state, indices):
        return state.index_select(0, indices)


def _greedy(decoder, max_lengths, **kwargs):
    return greedy_search(
        decoder.step,
        decoder.reorder,
        decoder.initial_state(),
        torch.tensor(max_lengths),
        BOS,
        EOS,
        **kwargs,
    )


def _beam(decoder, max_lengths, **kwargs):
    return beam_search(
        decoder.step,
        decoder.reorder,
        decoder.initial_state(),
        torch.tensor(max_lengths),
        BOS,
        EOS,
        **kwargs,
    )


def _random_tables(num_sentences, depth, seed):
    """Normalised random log-probs over EOS/A/B for every prefix over {A, B} up to depth."""
    generator = torch.Generator().manual_seed(seed)
    tables = []
    for _ in range(num_sentences):
        table = {}
        for length in range(depth + 1):
            for prefix in itertools.product((A, B), repeat=length):
                values = torch.randn(3, generator=generator).mul(2).log_softmax(0).tolist()
                table[prefix] = dict(zip(REAL, values, strict=True))
        tables.append(table)
    return tables


def _all_hypotheses(table, max_length, alpha):
    """Every output of at most max_length tokens, by brute force: {tokens: (log_prob, score)}."""
    outputs = {}
    for length in range(1, max_length + 1):
        for words in itertools.product((A, B), repeat=length - 1):
            ends = (EOS, A, B) if length == max_length else (EOS,)
            for last in ends:
                tokens = (*words, last)
                log_prob = sum(table[tokens[:i]][tokens[i]] for i in range(length))
                outputs[tokens] = (log_prob, log_prob / length_penalty(length, alpha))
    return outputs


def test_beam_search_finds_the_better_hypothesis_that_greedy_misses():
    # greedy takes A (-0.5) and then has to end badly; B (-0.9) then EOS (-0.1) is better
    table = {(): {A: -0.5, B: -0.9}, (A,): {EOS: -1.5}, (B,): {EOS: -0.1}}
    greedy = _greedy(TableDecoder([table]), [5])
    assert greedy[0].tokens == [A, EOS] and greedy[0].log_prob == pytest.approx(-2.0)
    beam = _beam(TableDecoder([table]), [5], beam_size=2, alpha=0.0)
    assert beam[0][0].tokens == [B, EOS] and beam[0][0].log_prob == pytest.approx(-1.0)
    assert beam[0][0].score == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("alpha", "best", "scores"),
    [
        # [EOS] has log-prob -1.0 and length 1; [A, B, EOS] has -1.2 and length 3
        (0.0, [EOS], [-1.0, -1.2]),
        (0.5, [EOS], [-1.0, -1.2 / (8 / 6) ** 0.5]),  # -1.0 > -1.0392
        (1.0, [A, B, EOS], [-1.2 / (8 / 6), -1.0]),  # -0.9 > -1.0
    ],
)
def test_length_penalty_ranks_by_the_gnmt_formula(alpha, best, scores):
    table = {
        (): {A: -0.5, EOS: -1.0},
        (A,): {B: -0.4, EOS: -6.0, A: -5.0},
        (A, B): {EOS: -0.3, A: -4.0, B: -4.0},
    }
    hypotheses = _beam(TableDecoder([table]), [6], beam_size=2, alpha=alpha, n_best=2)[0]
    assert hypotheses[0].tokens == best
    assert [h.score for h in hypotheses] == pytest.approx(scores)
    assert sorted(h.log_prob for h in hypotheses) == pytest.approx([-1.2, -1.0])


def test_a_beam_as_wide_as_the_search_space_is_exhaustive():
    # 3 steps over {A, B} + EOS give 1 + 2 + 12 = 15 outputs, all kept by 16 beams
    tables = _random_tables(2, depth=2, seed=0)
    results = _beam(TableDecoder(tables), [3, 3], beam_size=16, alpha=0.7, n_best=16)
    for table, hypotheses in zip(tables, results, strict=True):
        expected = _all_hypotheses(table, 3, alpha=0.7)
        found = {tuple(h.tokens): (h.log_prob, h.score) for h in hypotheses}
        assert found.keys() == expected.keys()
        for tokens, (log_prob, score) in expected.items():
            assert found[tokens] == pytest.approx((log_prob, score), abs=1e-5)
        assert [h.score for h in hypotheses] == sorted(found[t][1] for t in found)[::-1]


@pytest.mark.parametrize("seed", range(4))
def test_beam_size_one_is_greedy(seed):
    tables = _random_tables(3, depth=5, seed=seed)
    greedy = _greedy(TableDecoder(tables), [6, 3, 5])
    beam = _beam(TableDecoder(tables), [6, 3, 5], beam_size=1, alpha=1.0)
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    assert [h.log_prob for h in greedy] == pytest.approx([b[0].log_prob for b in beam])


def test_n_best_is_sorted_distinct_and_batch_independent():
    tables = _random_tables(3, depth=5, seed=1)
    batch = _beam(TableDecoder(tables), [6, 2, 5], beam_size=4, alpha=1.0, n_best=4)
    for b, hypotheses in enumerate(batch):
        assert len(hypotheses) == 4
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hypotheses}) == 4
        alone = _beam(TableDecoder([tables[b]]), [[6, 2, 5][b]], beam_size=4, n_best=4)[0]
        assert [(h.tokens, h.score) for h in alone] == [(h.tokens, h.score) for h in hypotheses]
    greedy = _greedy(TableDecoder(tables), [6, 2, 5])
    for b in range(3):
        alone = _greedy(TableDecoder([tables[b]]), [[6, 2, 5][b]])[0]
        assert (alone.tokens, alone.log_prob) == (greedy[b].tokens, greedy[b].log_prob)


def test_finished_sentences_leave_the_batch():
    quick = {(): {EOS: -0.1, A: -0.2}, (A,): {EOS: -0.1}}  # two finished after two steps
    endless = {None: {EOS: -20.0, A: -1.0, B: -2.0}}  # runs to its maximum length
    decoder = TableDecoder([quick, endless])
    results = _beam(decoder, [5, 5], beam_size=2, n_best=2)
    # the first step runs once per sentence, before it splits into beams
    assert decoder.rows_per_call == [2, 4, 2, 2, 2]
    assert sorted(h.tokens for h in results[0]) == [[EOS], [A, EOS]]
    assert all(len(h.tokens) == 5 and EOS not in h.tokens for h in results[1])
    decoder = TableDecoder([quick, endless])
    greedy = _greedy(decoder, [5, 4])
    assert decoder.rows_per_call == [2, 1, 1, 1]
    assert greedy[0].tokens == [EOS] and greedy[1].tokens == [A, A, A, A]


def test_maximum_length_is_per_sentence_and_counts_eos():
    tables = _random_tables(3, depth=6, seed=2)
    for max_lengths in ([1, 2, 7], [3, 3, 3]):
        results = _beam(TableDecoder(tables), max_lengths, beam_size=3, n_best=3)
        for limit, hypotheses in zip(max_lengths, results, strict=True):
            assert hypotheses and all(len(h.tokens) <= limit for h in hypotheses)
            assert all(h.tokens[-1] == EOS or len(h.tokens) == limit for h in hypotheses)
            assert all(EOS not in h.tokens[:-1] for h in hypotheses)


def test_attention_rows_follow_the_hypothesis():
    tables = _random_tables(2, depth=4, seed=3)
    beam = _beam(TableDecoder(tables), [4, 4], beam_size=3, n_best=3, return_attention=True)
    greedy = _greedy(TableDecoder(tables), [4, 4], return_attention=True)
    for sentence, hypotheses in enumerate(beam):
        for h in [*hypotheses, greedy[sentence]]:
            # the row behind token i saw the sentence, step i and the previous token
            expected = [[sentence, i, ([BOS, *h.tokens])[i]] for i in range(len(h.tokens))]
            assert h.attention.tolist() == expected


def test_bad_arguments():
    decoder = TableDecoder([{}])
    with pytest.raises(ValueError, match="n_best"):
        _beam(decoder, [3], beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="beam_size"):
        _beam(decoder, [3], beam_size=0)
    with pytest.raises(ValueError, match="max_lengths must be >= 1"):
        _greedy(decoder, [0])
    assert length_penalty(7, 0.0) == 1.0 and length_penalty(7, 1.0) == 2.0


@pytest.mark.parametrize("size", [8000, 8003, 700, 100])
def test_block_topk_is_topk(size):
    # the blocks of 64 columns with the largest maxima hold the top k; the tail (size mod 64)
    # is ranked too, and rows may be partly -inf like the log-probs of padding and BOS
    generator = torch.Generator().manual_seed(size)
    values = torch.randn(7, size, generator=generator).mul(3).log_softmax(dim=1)
    values[:, :2] = float("-inf")
    values[3, -1] = 10.0  # the best value of a row in the tail
    for k in (1, 10):
        top, columns = _topk(values, k)
        expected = values.topk(k, dim=1)
        assert torch.equal(top, expected.values) and torch.equal(columns, expected.indices)
