"""An LSTM written from the textbook equations, parameter-compatible with ``torch.nn.LSTM``.

For every step t, with input x_t, previous hidden state h_{t-1} and cell state c_{t-1}:

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)     input gate
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)     forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)        cell candidate
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)     output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)                (times W_hr when ``proj_size > 0``)

The four gates' weights are stacked in the order i, f, g, o, exactly as in ``torch.nn.LSTM``,
so ``weight_ih_l0`` is ``[W_ii; W_if; W_ig; W_io]`` of shape [4H, I]. Parameter names and
shapes match ``torch.nn.LSTM`` / ``torch.nn.LSTMCell``, so state dicts load both ways and
``from_torch`` / ``to_torch`` convert modules. The point of this module is readability and the
gate trace (``return_gates=True``); ``torch.nn.LSTM`` is the fast path for large models.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = tuple[Tensor, Tensor]


@dataclass
class GateTrace:
    """Every activation of one layer and direction, indexed by input time step.

    All gate tensors and ``cell`` are [T, B, H]; ``hidden`` is [T, B, P] with P = proj_size
    (or H without projection). Time is the position in the input sequence for both directions,
    so for ``reverse=True`` the recurrence runs from t = T-1 down to 0:
    ``cell[t] = forget_gate[t] * cell[t+1] + input_gate[t] * cell_candidate[t]``.
    With ``lengths``, everything at padded steps (t >= lengths[b]) is zero.
    """

    layer: int
    reverse: bool
    input_gate: Tensor
    forget_gate: Tensor
    cell_candidate: Tensor
    output_gate: Tensor
    cell: Tensor
    hidden: Tensor


def lstm_step(
    x_projected: Tensor,
    state: State,
    weight_hh: Tensor,
    bias_hh: Tensor | None,
    weight_hr: Tensor | None = None,
) -> tuple[State, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """One LSTM step from the equations in the module docstring.

    Args:
        x_projected: [B, 4H], the input term ``W_ih x_t + b_ih``; it is passed in already
            projected so that a layer can project all T inputs with one matrix product.
        state: (h [B, P], c [B, H]) from the previous step.
        weight_hh: [4H, P]; bias_hh: [4H] or None; weight_hr: [P, H] or None.

    Returns:
        ((h_t [B, P], c_t [B, H]), (i_t, f_t, g_t, o_t) each [B, H]).
    """
    h, c = state
    pre_activation = x_projected + F.linear(h, weight_hh, bias_hh)
    z_i, z_f, z_g, z_o = pre_activation.chunk(4, dim=-1)
    i = torch.sigmoid(z_i)
    f = torch.sigmoid(z_f)
    g = torch.tanh(z_g)
    o = torch.sigmoid(z_o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    if weight_hr is not None:
        h = F.linear(h, weight_hr)
    return (h, c), (i, f, g, o)


class LSTMCell(nn.Module):
    """A single LSTM step; same parameters and call signature as ``torch.nn.LSTMCell``.

    Shapes: input [B, I] -> (h [B, H], c [B, H]). ``state`` defaults to zeros.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, the ``torch.nn.LSTMCell`` default."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, input: Tensor, state: State | None = None) -> State:
        """(h_t, c_t) for input [B, I] and state (h [B, H], c [B, H])."""
        return self.step(input, state)[0]

    def step(
        self, input: Tensor, state: State | None = None
    ) -> tuple[State, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Like ``forward`` but also returns the gates (i, f, g, o), each [B, H]."""
        if input.dim() != 2 or input.size(1) != self.input_size:
            raise ValueError(
                f"LSTMCell expects input [B, {self.input_size}], got {list(input.shape)}"
            )
        if state is None:
            zeros = input.new_zeros(input.size(0), self.hidden_size)
            state = (zeros, zeros)
        return lstm_step(
            F.linear(input, self.weight_ih, self.bias_ih), state, self.weight_hh, self.bias_hh
        )

    @classmethod
    def from_torch(cls, cell: nn.LSTMCell) -> LSTMCell:
        """A copy of ``cell`` (same weights, dtype and device)."""
        ours = cls(cell.input_size, cell.hidden_size, bias=cell.bias)
        ours.to(device=cell.weight_ih.device, dtype=cell.weight_ih.dtype)
        ours.load_state_dict(cell.state_dict())
        return ours

    def to_torch(self) -> nn.LSTMCell:
        """A ``torch.nn.LSTMCell`` with a copy of these weights."""
        cell = nn.LSTMCell(self.input_size, self.hidden_size, bias=self.bias)
        cell.to(device=self.weight_ih.device, dtype=self.weight_ih.dtype)
        cell.load_state_dict(self.state_dict())
        return cell

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class LSTM(nn.Module):
    """Multi-layer, optionally bidirectional LSTM; a drop-in for ``torch.nn.LSTM``.

    Same constructor arguments, parameter names (``weight_ih_l{k}[_reverse]``,
    ``weight_hh_l{k}[_reverse]``, ``bias_ih_l{k}[_reverse]``, ``bias_hh_l{k}[_reverse]``,
    ``weight_hr_l{k}[_reverse]`` with ``proj_size``), shapes and outputs. Differences: input must
    be batched (no unbatched [T, I] input), variable lengths are given as ``lengths`` instead of
    a ``PackedSequence``, and ``return_gates=True`` also returns every gate activation.

    With D = 2 if bidirectional else 1, L = num_layers, P = proj_size or H:
        input [T, B, I] ([B, T, I] if batch_first), hx = (h0 [L*D, B, P], c0 [L*D, B, H])
        -> output [T, B, D*P] ([B, T, D*P] if batch_first), (h_n [L*D, B, P], c_n [L*D, B, H])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        if not 0 <= proj_size < hidden_size:
            raise ValueError(
                f"proj_size must be in [0, hidden_size={hidden_size}), got {proj_size}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout only acts between LSTM layers; with num_layers=1 it does nothing",
                stacklevel=2,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.num_directions = 2 if bidirectional else 1
        self.output_size = proj_size or hidden_size

        # Registered in torch.nn.LSTM's order so that parameters() lines up one to one.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.output_size * self.num_directions
            for reverse in range(self.num_directions):
                suffix = self._suffix(layer, bool(reverse))
                gates = 4 * hidden_size
                self.register_parameter(
                    f"weight_ih{suffix}", nn.Parameter(torch.empty(gates, layer_input))
                )
                self.register_parameter(
                    f"weight_hh{suffix}", nn.Parameter(torch.empty(gates, self.output_size))
                )
                if bias:
                    self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(gates)))
                    self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(gates)))
                if proj_size:
                    self.register_parameter(
                        f"weight_hr{suffix}", nn.Parameter(torch.empty(proj_size, hidden_size))
                    )
        self.reset_parameters()

    @staticmethod
    def _suffix(layer: int, reverse: bool) -> str:
        return f"_l{layer}" + ("_reverse" if reverse else "")

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, the ``torch.nn.LSTM`` default."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(
        self,
        input: Tensor,
        hx: State | None = None,
        lengths: Tensor | None = None,
        return_gates: bool = False,
    ) -> tuple[Tensor, State] | tuple[Tensor, State, list[GateTrace]]:
        """Run the LSTM over a batch of sequences.

        Args:
            input: [T, B, I], or [B, T, I] if ``batch_first``.
            hx: optional (h0 [L*D, B, P], c0 [L*D, B, H]); zeros when omitted.
            lengths: optional [B] valid lengths (1 <= lengths <= T). Sequence b then behaves as
                if it were only lengths[b] steps long, like a ``PackedSequence``: the reverse
                direction starts at its last valid step, h_n/c_n come from its last valid step,
                and ``output`` is zero at padded steps.
            return_gates: also return a ``GateTrace`` per layer and direction.

        Returns:
            (output, (h_n, c_n)) with the shapes in the class docstring, plus, with
            ``return_gates``, a list of L*D ``GateTrace`` in h_n's order (index layer*D +
            direction).
        """
        if input.dim() != 3:
            raise ValueError(
                f"LSTM expects batched input of 3 dimensions, got shape {list(input.shape)}"
            )
        x = input.transpose(0, 1) if self.batch_first else input
        steps, batch, features = x.shape
        if features != self.input_size:
            raise ValueError(f"LSTM expects {self.input_size} input features, got {features}")
        valid = self._valid_steps(lengths, steps, batch, x.device)
        h0, c0 = self._initial_state(hx, batch, x)

        final_h, final_c, traces = [], [], []
        for layer in range(self.num_layers):
            if layer > 0:
                x = F.dropout(x, self.dropout, self.training)
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                out, (h, c), trace = self._run_direction(
                    x, (h0[index], c0[index]), layer, bool(direction), valid, return_gates
                )
                outputs.append(out)
                final_h.append(h)
                final_c.append(c)
                if trace is not None:
                    traces.append(trace)
            x = torch.cat(outputs, dim=-1)

        output = x.transpose(0, 1) if self.batch_first else x
        state = (torch.stack(final_h), torch.stack(final_c))
        if return_gates:
            return output, state, traces
        return output, state

    def _valid_steps(
        self, lengths: Tensor | None, steps: int, batch: int, device: torch.device
    ) -> Tensor | None:
        """[T, B] bool, True where step t is inside sequence b; None means all steps are valid."""
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.shape != (batch,):
            raise ValueError(f"lengths must have shape [{batch}], got {list(lengths.shape)}")
        if lengths.numel() and (lengths.min() < 1 or lengths.max() > steps):
            raise ValueError(
                f"lengths must be in [1, {steps}] (the padded length), got "
                f"min {int(lengths.min())} and max {int(lengths.max())}"
            )
        return torch.arange(steps, device=device).unsqueeze(1) < lengths.unsqueeze(0)

    def _initial_state(self, hx: State | None, batch: int, x: Tensor) -> State:
        layers = self.num_layers * self.num_directions
        h_shape = (layers, batch, self.output_size)
        c_shape = (layers, batch, self.hidden_size)
        if hx is None:
            return x.new_zeros(h_shape), x.new_zeros(c_shape)
        h0, c0 = hx
        if h0.shape != h_shape or c0.shape != c_shape:
            raise ValueError(
                f"hx must be (h0 {list(h_shape)}, c0 {list(c_shape)}), "
                f"got (h0 {list(h0.shape)}, c0 {list(c0.shape)})"
            )
        return h0, c0

    def _run_direction(
        self,
        x: Tensor,
        state: State,
        layer: int,
        reverse: bool,
        valid: Tensor | None,
        record: bool,
    ) -> tuple[Tensor, State, GateTrace | None]:
        """One layer in one direction: x [T, B, I_layer] -> output [T, B, P], final state."""
        suffix = self._suffix(layer, reverse)
        weight_hh = getattr(self, f"weight_hh{suffix}")
        bias_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None
        weight_hr = getattr(self, f"weight_hr{suffix}") if self.proj_size else None
        bias_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None
        # The input term does not depend on the recurrence: one matmul for all steps.
        x_projected = F.linear(x, getattr(self, f"weight_ih{suffix}"), bias_ih)

        outputs, recorded = [], []
        for t in reversed(range(x.size(0))) if reverse else range(x.size(0)):
            new_state, gates = lstm_step(x_projected[t], state, weight_hh, bias_hh, weight_hr)
            h, c = new_state
            if valid is None:
                state = new_state
            else:
                # Padded steps leave the state untouched, so a reverse pass starts at each
                # sequence's own last step and h_n is taken at each sequence's last step.
                keep = valid[t].unsqueeze(1)
                state = (torch.where(keep, h, state[0]), torch.where(keep, c, state[1]))
                h, c = h * keep, c * keep
                gates = tuple(gate * keep for gate in gates)
            outputs.append(h)
            if record:
                recorded.append((*gates, c, h))
        if reverse:  # back to input order
            outputs.reverse()
            recorded.reverse()

        trace = None
        if record:
            i, f, g, o, c, h = (torch.stack(column) for column in zip(*recorded, strict=True))
            trace = GateTrace(layer, reverse, i, f, g, o, c, h)
        return torch.stack(outputs), state, trace

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> LSTM:
        """A copy of ``lstm`` (same configuration, weights, dtype and device)."""
        ours = cls(
            lstm.input_size,
            lstm.hidden_size,
            num_layers=lstm.num_layers,
            bias=lstm.bias,
            batch_first=lstm.batch_first,
            dropout=lstm.dropout,
            bidirectional=lstm.bidirectional,
            proj_size=lstm.proj_size,
        )
        first = next(lstm.parameters())
        ours.to(device=first.device, dtype=first.dtype)
        ours.load_state_dict(lstm.state_dict())
        return ours

    def to_torch(self) -> nn.LSTM:
        """A ``torch.nn.LSTM`` with the same configuration and a copy of these weights."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the dropout warning was already given once
            lstm = nn.LSTM(
                self.input_size,
                self.hidden_size,
                num_layers=self.num_layers,
                bias=self.bias,
                batch_first=self.batch_first,
                dropout=self.dropout,
                bidirectional=self.bidirectional,
                proj_size=self.proj_size,
            )
        first = next(self.parameters())
        lstm.to(device=first.device, dtype=first.dtype)
        lstm.load_state_dict(self.state_dict())
        return lstm

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        for name, default in [
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
            ("proj_size", 0),
        ]:
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text
