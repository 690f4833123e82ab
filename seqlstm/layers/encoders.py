"""Bidirectional LSTM encoder over packed sequences.

The embedded source [B, S, E] is packed by its lengths before the LSTM, so padding never
enters the recurrence: the backward direction of a short sentence starts at its own last
token, not at the end of the batch's padding, and the states of a sentence are the same
whatever it is batched with. Outputs at padded positions are zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BiLSTMEncoder(nn.Module):
    """Stacked bidirectional LSTM; each position's output is [forward; backward] states."""

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)

    @property
    def output_size(self) -> int:
        """Feature size of the outputs and of the final states: 2 * hidden_size."""
        return 2 * self.hidden_size

    def forward(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Encode a padded batch.

        embedded: FloatTensor[B, S, E]; lengths: LongTensor[B], each in 1..S.
        Returns (outputs FloatTensor[B, S, 2H], zero at padding, with dropout applied;
        (h, c) final states, each FloatTensor[L, B, 2H]: per layer the forward state after
        the last real token and the backward state after the first, concatenated).
        """
        batch, steps, _ = embedded.shape
        if lengths.numel() and int(lengths.min()) < 1:
            raise ValueError("every source sequence needs at least one position (e.g. its EOS)")
        if lengths.numel() and bool((lengths == steps).all()):
            # nothing to skip: the LSTM's unpacked path projects the inputs of all steps in
            # one matrix product instead of one per step (the tagger's document chunks)
            outputs, (h, c) = self.rnn(embedded)
        else:
            packed = pack_padded_sequence(
                embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            packed_outputs, (h, c) = self.rnn(packed)
            outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=steps)
        return self.dropout(outputs), (self._join(h, batch), self._join(c, batch))

    def _join(self, state: Tensor, batch: int) -> Tensor:
        """[L * 2, B, H] (layer-major, forward first) -> [L, B, 2H]."""
        state = state.view(self.num_layers, 2, batch, self.hidden_size)
        return torch.cat([state[:, 0], state[:, 1]], dim=-1)
