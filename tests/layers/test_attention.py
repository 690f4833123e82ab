import math

import pytest
import torch

from seqlstm.data import lengths_to_mask
from seqlstm.layers.attention import BahdanauAttention, LuongAttention, build_attention
from seqlstm.layers.decoders import AttentionDecoder
from seqlstm.layers.encoders import BiLSTMEncoder

QUERY, MEMORY = 6, 6  # equal, so that dot attention applies too


def _inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 3])
    query = torch.randn(3, QUERY, generator=generator)
    memory = torch.randn(3, 5, MEMORY, generator=generator)
    return query, memory, lengths_to_mask(lengths), lengths


def _brute_force_score(attention, kind, q, m):
    """The score of one query vector and one memory vector, written out from the formula."""
    if kind == "dot":
        return sum(q[i] * m[i] for i in range(len(q)))
    if kind == "general":
        w = attention.key_layer.weight  # [Dq, Dm]: W m
        return sum(q[i] * w[i, j] * m[j] for i in range(len(q)) for j in range(len(m)))
    hidden = attention.key_layer(m) + attention.query_layer(q)
    return (attention.energy_layer.weight[0] * torch.tanh(hidden)).sum()


@pytest.mark.parametrize("kind", ["general", "dot", "concat"])
@torch.no_grad()
def test_matches_brute_force_per_position(kind):
    torch.manual_seed(0)
    attention = build_attention(kind, QUERY, MEMORY, hidden_size=4)
    query, memory, mask, lengths = _inputs()
    context, weights = attention(query, attention.project_keys(memory), memory, mask)
    assert context.shape == (3, MEMORY) and weights.shape == (3, 5)
    for b in range(3):
        n = int(lengths[b])
        scores = [
            float(_brute_force_score(attention, kind, query[b], memory[b, s])) for s in range(n)
        ]
        top = max(scores)
        exp = [math.exp(x - top) for x in scores]
        expected = [e / sum(exp) for e in exp] + [0.0] * (5 - n)
        assert weights[b].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)
        expected_context = sum(expected[s] * memory[b, s] for s in range(n))
        torch.testing.assert_close(context[b], expected_context, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["general", "dot", "concat"])
def test_weights_sum_to_one_and_ignore_padding(kind):
    torch.manual_seed(1)
    attention = build_attention(kind, QUERY, MEMORY)
    query, memory, mask, _ = _inputs(seed=1)
    _, weights = attention(query, attention.project_keys(memory), memory, mask)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert torch.all(weights[~mask] == 0.0) and torch.all(weights[mask] > 0.0)
    # whatever the padding holds, the result is the same
    garbage = memory.masked_fill(~mask.unsqueeze(-1), 1e4)
    context, again = attention(query, attention.project_keys(garbage), garbage, mask)
    torch.testing.assert_close(again, weights)
    torch.testing.assert_close(
        context, attention(query, attention.project_keys(memory), memory, mask)[0]
    )


@pytest.mark.parametrize("kind", ["general", "dot", "concat"])
@torch.no_grad()
def test_a_group_of_queries_shares_one_memory(kind):
    # beam search: the 2 queries of group a attend over memory a, as with a copy per query
    torch.manual_seed(2)
    attention = build_attention(kind, QUERY, MEMORY, hidden_size=4)
    _, memory, mask, _ = _inputs(seed=2)
    query = torch.randn(6, QUERY)
    keys = attention.project_keys(memory)
    context, weights = attention(query, keys, memory, mask)
    rows = torch.arange(3).repeat_interleave(2)
    copied = attention(query, keys[rows], memory[rows], mask[rows])
    torch.testing.assert_close(context, copied[0])
    torch.testing.assert_close(weights, copied[1])
    assert torch.all(weights[~mask[rows]] == 0.0)


def test_build_attention_and_bad_arguments():
    assert isinstance(build_attention("general", 4, 8), LuongAttention)
    concat = build_attention("concat", 4, 8)
    assert isinstance(concat, BahdanauAttention) and concat.key_layer.out_features == 4
    assert build_attention("dot", 8, 8).key_layer is None
    with pytest.raises(ValueError, match="dot attention needs the query size"):
        build_attention("dot", 4, 8)
    with pytest.raises(ValueError, match="'general', 'dot' or 'concat'"):
        build_attention("mlp", 4, 8)


def test_encoder_is_padding_invariant_and_returns_final_states():
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(5, 4, num_layers=2).eval()
    x = torch.randn(1, 3, 5)
    # no padding: the unpacked path of the LSTM; the batch below with padding: the packed one
    alone, (h_alone, c_alone) = encoder(x, torch.tensor([3]))
    padded = torch.cat([x, torch.full((1, 4, 5), 7.0)], dim=1)
    other = torch.randn(1, 7, 5)
    outputs, (h, c) = encoder(torch.cat([other, padded]), torch.tensor([7, 3]))
    assert outputs.shape == (2, 7, 8) and h.shape == c.shape == (2, 2, 8)
    torch.testing.assert_close(outputs[1, :3], alone[0])
    assert torch.all(outputs[1, 3:] == 0.0)
    torch.testing.assert_close(h[:, 1], h_alone[:, 0])
    torch.testing.assert_close(c[:, 1], c_alone[:, 0])
    # the final forward state is the output at the last real step, the backward one at step 0
    torch.testing.assert_close(h[-1, 1, :4], outputs[1, 2, :4])
    torch.testing.assert_close(h[-1, 1, 4:], outputs[1, 0, 4:])


@pytest.mark.parametrize("kind", ["general", "dot", "concat"])
def test_decoder_attention_is_zero_on_padding(kind):
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(5, 3)
    attention = build_attention(kind, 6, encoder.output_size)
    decoder = AttentionDecoder(5, 6, encoder.output_size, attention, num_layers=2).eval()
    lengths = torch.tensor([4, 1, 2])
    memory, final = encoder(torch.randn(3, 4, 5), lengths)
    mask = lengths_to_mask(lengths)
    state = decoder.init_state(memory, mask, final)
    embedded = torch.randn(3, 6, 5)
    vectors, weights = decoder(embedded, state)
    assert vectors.shape == (3, 6, 6) and weights.shape == (3, 6, 4)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(3, 6))
    assert torch.all(weights.masked_select(~mask.unsqueeze(1)) == 0.0)
    # teacher forcing is the same as stepping
    step_state = state
    for t in range(6):
        vector, step_state, step_weights = decoder.step(embedded[:, t], step_state)
        torch.testing.assert_close(vector, vectors[:, t])
        torch.testing.assert_close(step_weights, weights[:, t])
    # a reordered state (rows repeated, dropped) gives the steps of those rows
    rows = torch.tensor([2, 2, 0])
    vector, _, step_weights = decoder.step(embedded[rows, 0], state.reorder(rows))
    torch.testing.assert_close(vector, vectors[rows, 0])
    torch.testing.assert_close(step_weights, weights[rows, 0])
    # in groups of 2 (beams) the encoder states are kept once per group, and only copied
    # when the groups change
    beams = state.reorder(torch.tensor([0, 0, 1, 1, 2, 2]), group_size=2)
    assert beams.group_size == 2 and beams.memory is state.memory
    same = beams.reorder(torch.tensor([1, 0, 2, 2, 5, 4]), group_size=2)
    assert same.memory is state.memory and same.keys is state.keys
    fewer = beams.reorder(torch.tensor([5, 4, 1, 1]), group_size=2)
    assert torch.equal(fewer.memory, state.memory[[2, 0]]) and fewer.group_size == 2
    rows = torch.tensor([2, 2, 0, 0])
    vector, _, step_weights = decoder.step(embedded[rows, 0], fewer)
    torch.testing.assert_close(vector, vectors[rows, 0])
    torch.testing.assert_close(step_weights, weights[rows, 0])
