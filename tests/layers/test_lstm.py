"""seqlstm.layers.lstm.LSTM / LSTMCell against torch.nn.LSTM / LSTMCell, gradcheck, gate traces."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlstm.layers.lstm import LSTM, LSTMCell

TOL = {"atol": 1e-6, "rtol": 0.0}


def _random_like_output(output, state):
    """Upstream gradients for output, h_n and c_n, so every path into the parameters is used."""
    return [torch.randn_like(t) for t in (output, *state)]


def _backward(output, state, upstream):
    loss = sum((t * u).sum() for t, u in zip((output, *state), upstream, strict=True))
    loss.backward()


def _assert_same_run(ours: LSTM, theirs: nn.LSTM, x, hx, lengths=None):
    """Outputs, final states, input and parameter gradients agree."""
    x_ours = x.clone().requires_grad_()
    x_theirs = x.clone().requires_grad_()
    out_ours, state_ours = ours(x_ours, hx, lengths=lengths)
    if lengths is None:
        out_theirs, state_theirs = theirs(x_theirs, hx)
    else:
        packed = pack_padded_sequence(
            x_theirs, lengths, batch_first=theirs.batch_first, enforce_sorted=False
        )
        out_packed, state_theirs = theirs(packed, hx)
        out_theirs, _ = pad_packed_sequence(
            out_packed, batch_first=theirs.batch_first, total_length=x.size(int(theirs.batch_first))
        )
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    torch.testing.assert_close(state_ours[0], state_theirs[0], **TOL)
    torch.testing.assert_close(state_ours[1], state_theirs[1], **TOL)

    upstream = _random_like_output(out_ours, state_ours)
    _backward(out_ours, state_ours, upstream)
    _backward(out_theirs, state_theirs, upstream)
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, **TOL)
    theirs_params = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, theirs_params[name].grad, **TOL, msg=name)


CONFIGS = [
    # (num_layers, bidirectional, batch_first, proj_size)
    *itertools.product([1, 2], [False, True], [False, True], [0]),
    (2, True, True, 3),
    (1, False, False, 2),
]


@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first", "proj_size"), CONFIGS)
def test_copy_either_way_matches_torch(num_layers, bidirectional, batch_first, proj_size):
    torch.manual_seed(0)
    kwargs = dict(
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        proj_size=proj_size,
    )
    x = torch.randn(3, 5, 4, dtype=torch.float64)  # [B, T, I] or [T, B, I]
    batch = x.size(0) if batch_first else x.size(1)
    layers = num_layers * (2 if bidirectional else 1)
    hx = (
        torch.randn(layers, batch, proj_size or 6, dtype=torch.float64),
        torch.randn(layers, batch, 6, dtype=torch.float64),
    )

    theirs = nn.LSTM(4, 6, **kwargs).double()
    _assert_same_run(LSTM.from_torch(theirs), theirs, x, hx)

    ours = LSTM(4, 6, **kwargs).double()
    _assert_same_run(ours, ours.to_torch(), x, None)


def test_state_dicts_load_both_ways():
    torch.manual_seed(0)
    theirs = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    ours = LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in theirs.named_parameters()
    ]
    ours.load_state_dict(theirs.state_dict())
    fresh = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    fresh.load_state_dict(ours.state_dict())
    for (name, a), b in zip(theirs.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("bidirectional", "batch_first"), [(True, True), (True, False), (False, True)]
)
def test_lengths_match_packed_sequence(bidirectional, batch_first):
    torch.manual_seed(0)
    theirs = nn.LSTM(4, 5, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    theirs.double()
    ours = LSTM.from_torch(theirs)
    lengths = torch.tensor([2, 6, 1, 4])
    x = torch.randn(4, 6, 4, dtype=torch.float64)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    _assert_same_run(ours, theirs, x, None, lengths=lengths)


def test_padding_values_do_not_matter_with_lengths():
    torch.manual_seed(0)
    lstm = LSTM(3, 4, bidirectional=True, batch_first=True).double()
    lengths = torch.tensor([3, 5])
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    noisy = x.clone()
    noisy[0, 3:] = 100.0
    out_a, (h_a, c_a) = lstm(x, lengths=lengths)
    out_b, (h_b, c_b) = lstm(noisy, lengths=lengths)
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(h_a, h_b)
    torch.testing.assert_close(c_a, c_b)
    assert torch.all(out_a[0, 3:] == 0)


def test_cell_matches_torch_both_ways():
    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64)
    state = (torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64))
    theirs = nn.LSTMCell(4, 5).double()
    ours = LSTMCell(4, 5).double()
    for a, b in [(LSTMCell.from_torch(theirs), theirs), (ours, ours.to_torch())]:
        h_a, c_a = a(x, state)
        h_b, c_b = b(x, state)
        torch.testing.assert_close(h_a, h_b, **TOL)
        torch.testing.assert_close(c_a, c_b, **TOL)
        (h_a.sum() + 2 * c_a.sum()).backward()
        (h_b.sum() + 2 * c_b.sum()).backward()
        b_params = dict(b.named_parameters())
        for name, parameter in a.named_parameters():
            torch.testing.assert_close(parameter.grad, b_params[name].grad, **TOL, msg=name)


def test_cell_without_state_starts_from_zeros():
    torch.manual_seed(0)
    cell = LSTMCell(2, 3)
    x = torch.randn(4, 2)
    zeros = torch.zeros(4, 3)
    for a, b in zip(cell(x), cell(x, (zeros, zeros)), strict=True):
        assert torch.equal(a, b)


def test_gradcheck_cell():
    torch.manual_seed(0)
    cell = LSTMCell(3, 2).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def f(x, h, c, *params):
        return torch.func.functional_call(cell, dict(zip(names, params, strict=True)), (x, (h, c)))

    assert torch.autograd.gradcheck(f, (x, h, c, *params))


def test_gradcheck_two_layer_bidirectional_with_lengths():
    torch.manual_seed(0)
    lstm = LSTM(2, 3, num_layers=2, bidirectional=True, batch_first=True).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2])
    names = [n for n, _ in lstm.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in lstm.parameters()]

    def f(x, h0, c0, *params):
        out, (h, c) = torch.func.functional_call(
            lstm, dict(zip(names, params, strict=True)), (x, (h0, c0)), {"lengths": lengths}
        )
        return out, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, *params))


def test_gate_trace_satisfies_the_equations():
    torch.manual_seed(0)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, proj_size=2).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    lengths = torch.tensor([5, 3])
    h0 = torch.randn(4, 2, 2, dtype=torch.float64)
    c0 = torch.randn(4, 2, 4, dtype=torch.float64)
    output, (h_n, c_n), traces = lstm(x, (h0, c0), lengths=lengths, return_gates=True)
    assert [(t.layer, t.reverse) for t in traces] == [(0, False), (0, True), (1, False), (1, True)]

    valid = (torch.arange(5).unsqueeze(1) < lengths).unsqueeze(-1)  # [T, B, 1]
    for index, trace in enumerate(traces):
        for gate in (trace.input_gate, trace.forget_gate, trace.cell_candidate, trace.output_gate):
            assert gate.shape == (5, 2, 4)
        assert trace.hidden.shape == (5, 2, 2)
        assert torch.all(trace.input_gate.masked_select(~valid) == 0)
        # Recompute the cell state from the gates, step by step, in processing order.
        c_prev = c0[index]
        order = reversed(range(5)) if trace.reverse else range(5)
        for t in order:
            c_t = trace.forget_gate[t] * c_prev + trace.input_gate[t] * trace.cell_candidate[t]
            c_prev = torch.where(valid[t], c_t, c_prev)
            torch.testing.assert_close(trace.cell[t], c_t * valid[t])
            weight_hr = getattr(lstm, f"weight_hr_l{trace.layer}" + "_reverse" * trace.reverse)
            h_t = (trace.output_gate[t] * torch.tanh(c_t)) @ weight_hr.T
            torch.testing.assert_close(trace.hidden[t], h_t * valid[t])
        torch.testing.assert_close(c_prev, c_n[index])
    # The last layer's hidden traces are the output (forward half, then reverse half).
    top = torch.cat([traces[2].hidden, traces[3].hidden], dim=-1).transpose(0, 1)
    torch.testing.assert_close(top, output)


def test_gates_recomputed_from_weights():
    torch.manual_seed(0)
    lstm = LSTM(3, 4).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    _, _, (trace,) = lstm(x, return_gates=True)
    h_prev = torch.zeros(2, 4, dtype=torch.float64)
    for t in range(6):
        z = x[t] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h_prev @ lstm.weight_hh_l0.T
        z_i, z_f, z_g, z_o = (z + lstm.bias_hh_l0).chunk(4, dim=-1)
        torch.testing.assert_close(trace.input_gate[t], torch.sigmoid(z_i))
        torch.testing.assert_close(trace.forget_gate[t], torch.sigmoid(z_f))
        torch.testing.assert_close(trace.cell_candidate[t], torch.tanh(z_g))
        torch.testing.assert_close(trace.output_gate[t], torch.sigmoid(z_o))
        h_prev = trace.hidden[t]


def test_dropout_between_layers():
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3)
    lstm = LSTM(3, 4, num_layers=2, dropout=1.0)
    reference = nn.LSTM(3, 4, num_layers=2, dropout=1.0)
    reference.load_state_dict(lstm.state_dict())
    lstm.eval()
    reference.eval()
    torch.testing.assert_close(lstm(x)[0], reference(x)[0])
    # In training, dropout=1 zeroes the second layer's input entirely.
    lstm.train()
    second = nn.LSTM(4, 4)
    second.load_state_dict(
        {k.replace("_l1", "_l0"): v for k, v in lstm.state_dict().items() if k.endswith("_l1")}
    )
    torch.testing.assert_close(lstm(x)[0], second(torch.zeros(5, 2, 4))[0])


def test_bad_shapes_raise_clear_errors():
    lstm = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="3 input features"):
        lstm(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match="batched input"):
        lstm(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"hx must be \(h0 \[2, 2, 4\]"):
        lstm(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 5\]"):
        lstm(torch.randn(5, 2, 3), lengths=torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="LSTMCell expects input"):
        LSTMCell(3, 4)(torch.randn(2, 5))
