"""LSTM decoder with attention and input feeding (Luong et al., 2015), one step at a time.

One decoder step, for N rows (sentences, or sentences x beams):

    x_t   = [y_{t-1} embedded ; a_{t-1}]        input feeding: the previous attentional vector
    h_t   = LSTM(x_t, h_{t-1})                  stacked layers; the top layer's h_t is the query
    c_t, w_t = attention(h_t, encoder states)   context vector and weights over the source
    a_t   = dropout(tanh(W_a [h_t ; c_t]))      attentional vector, the input of the output layer

The three attention scores (`seqlstm.layers.attention`) plug into the same step, as in Joey NMT.
Without input feeding x_t is the embedding alone. The initial LSTM state is a bridge from the
encoder's final states: h_0 = tanh(W_h h_enc), c_0 = W_c c_enc, layer by layer when encoder
and decoder have as many layers, otherwise the encoder's top layer for every decoder layer;
with bridge=False it is zero.

Everything a step needs is in a `DecoderState`, whose rows can be re-ordered, repeated and
dropped (`DecoderState.reorder`), which is all that greedy and beam search need. Beam search
keeps one copy of a sentence's encoder states for all its beams (`group_size`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlstm.layers.attention import Attention


@dataclass
class DecoderState:
    """The decoder's recurrent state for N rows and the encoder states they attend over.

    hidden: (h, c), each FloatTensor[L, N, H]; feed: FloatTensor[N, H], the previous
    attentional vector (None without input feeding); memory: FloatTensor[A, S, Dm] encoder
    outputs; keys: FloatTensor[A, S, K] their attention projection; mask: BoolTensor[A, S],
    True at real source positions. N = A x group_size: the group_size consecutive rows of
    group a (the beams of sentence a) share memory row a; group_size is 1 but in beam search.
    """

    hidden: tuple[Tensor, Tensor]
    feed: Tensor | None
    memory: Tensor
    keys: Tensor
    mask: Tensor

    @property
    def group_size(self) -> int:
        """How many consecutive rows share one row of memory, keys and mask."""
        return self.hidden[0].size(1) // self.memory.size(0)

    def reorder(self, indices: Tensor, group_size: int = 1) -> DecoderState:
        """The state of rows `indices` (LongTensor[N']), in that order; rows may repeat.

        group_size: the group size of the new state, which keeps one memory row per group;
        every group of `indices` must then take its rows from one group of this state (the
        beams of a sentence continue beams of the same sentence).
        """
        h, c = self.hidden
        memory_rows = indices[::group_size] // self.group_size
        memory, keys, mask = self.memory, self.keys, self.mask
        # most beam search steps keep every sentence: the encoder states then stay as they are
        if memory_rows.numel() != memory.size(0) or not torch.equal(
            memory_rows, torch.arange(memory.size(0), device=memory_rows.device)
        ):
            memory, keys, mask = (x.index_select(0, memory_rows) for x in (memory, keys, mask))
        return DecoderState(
            hidden=(h.index_select(1, indices), c.index_select(1, indices)),
            feed=None if self.feed is None else self.feed.index_select(0, indices),
            memory=memory,
            keys=keys,
            mask=mask,
        )


class AttentionDecoder(nn.Module):
    """Stacked LSTM decoder with attention, input feeding and a bridge; see the module docstring.

    embedding_dim: E, the size of the embedded previous token; memory_size: Dm, the encoder
    output size; hidden_size: H, the LSTM size and the size of the attentional vector.
    `attention` must take queries of size H over memory of size Dm.
    """

    def __init__(
        self,
        embedding_dim: int,
        hidden_size: int,
        memory_size: int,
        attention: Attention,
        num_layers: int = 1,
        input_feeding: bool = True,
        bridge: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.input_feeding = input_feeding
        rnn_input = embedding_dim + hidden_size if input_feeding else embedding_dim
        self.rnn = nn.LSTM(
            rnn_input,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = attention
        self.combine = nn.Linear(hidden_size + memory_size, hidden_size)
        self.bridge = bridge
        if bridge:
            self.bridge_h = nn.Linear(memory_size, hidden_size)
            self.bridge_c = nn.Linear(memory_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def init_state(
        self, memory: Tensor, mask: Tensor, encoder_final: tuple[Tensor, Tensor]
    ) -> DecoderState:
        """The state before the first step.

        memory: FloatTensor[N, S, Dm]; mask: BoolTensor[N, S]; encoder_final: (h, c), each
        FloatTensor[L_enc, N, Dm] (as `BiLSTMEncoder` returns them).
        """
        rows = memory.size(0)
        if not self.bridge:
            zeros = memory.new_zeros(self.num_layers, rows, self.hidden_size)
            hidden = (zeros, zeros)
        else:
            h, c = encoder_final
            if h.size(0) != self.num_layers:
                h = h[-1:].expand(self.num_layers, -1, -1)
                c = c[-1:].expand(self.num_layers, -1, -1)
            hidden = (torch.tanh(self.bridge_h(h)), self.bridge_c(c))
        feed = memory.new_zeros(rows, self.hidden_size) if self.input_feeding else None
        return DecoderState(hidden, feed, memory, self.attention.project_keys(memory), mask)

    def step(self, embedded: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor]:
        """One step for N rows.

        embedded: FloatTensor[N, E], the previous target tokens embedded.
        Returns (attentional vectors FloatTensor[N, H], the new state, attention weights
        FloatTensor[N, S]).
        """
        rnn_input = embedded if state.feed is None else torch.cat([embedded, state.feed], dim=-1)
        output, hidden = self.rnn(rnn_input.unsqueeze(1), state.hidden)
        query = output.squeeze(1)  # [N, H], the top layer's new state
        context, weights = self.attention(query, state.keys, state.memory, state.mask)
        vector = self.dropout(torch.tanh(self.combine(torch.cat([query, context], dim=-1))))
        new_state = DecoderState(
            hidden=hidden,
            feed=vector if self.input_feeding else None,
            memory=state.memory,
            keys=state.keys,
            mask=state.mask,
        )
        return vector, new_state, weights

    def forward(self, embedded: Tensor, state: DecoderState) -> tuple[Tensor, Tensor]:
        """Teacher forcing over a whole target: embedded FloatTensor[B, T, E] (BOS y_1 ...).

        Returns (attentional vectors FloatTensor[B, T, H], weights FloatTensor[B, T, S]).
        Input feeding makes each step depend on the previous one, so this loops over T.
        """
        vectors, weights = [], []
        for t in range(embedded.size(1)):
            vector, state, step_weights = self.step(embedded[:, t], state)
            vectors.append(vector)
            weights.append(step_weights)
        return torch.stack(vectors, dim=1), torch.stack(weights, dim=1)
