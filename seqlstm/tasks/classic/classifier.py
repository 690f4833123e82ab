"""Sequence classification with an LSTM: read a sequence, pool its states, predict one class.

The classic examples: an image read as a sequence of rows (MNIST as 28 steps of 28 pixels), or
a sentence of token ids. The encoder is ``seqlstm.layers.lstm.LSTM`` (the equations, readable),
whose ``lengths`` argument makes padded batches behave exactly like unpadded sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from seqlstm.layers.lstm import LSTM
from seqlstm.pretrained import PretrainedModel
from seqlstm.text.tokenizer import SubwordTokenizer

Pooling = Literal["last", "mean", "max"]


@dataclass
class ClassifierConfig:
    """Sizes of an ``LSTMClassifier``; give exactly one of ``input_size`` and ``vocab_size``.

    input_size: features per step of float inputs [B, T, input_size].
    vocab_size: token ids [B, T] are looked up in an ``nn.Embedding(vocab_size,
        embedding_dim)`` whose ``pad_id`` row stays zero.
    dropout: between LSTM layers and on the pooled vector before the head.
    """

    num_classes: int
    input_size: int | None = None
    vocab_size: int | None = None
    embedding_dim: int = 64
    pad_id: int = 0
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    pooling: Pooling = "last"

    def __post_init__(self) -> None:
        if (self.input_size is None) == (self.vocab_size is None):
            raise ValueError("give exactly one of input_size (features) or vocab_size (token ids)")
        if self.pooling not in ("last", "mean", "max"):
            raise ValueError(f"pooling must be 'last', 'mean' or 'max', got {self.pooling!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class LSTMClassifier(PretrainedModel):
    """LSTM encoder + pooling over valid steps + linear head (see ``ClassifierConfig``).

    Pooling turns the top layer's states into one vector [B, D*H] (D = 2 if bidirectional):
      - ``last``: the final state of each direction, i.e. the forward state at the last valid
        step and the backward state at step 0 (h_n of the top layer);
      - ``mean`` / ``max``: mean / element-wise max of the outputs over the valid steps.
    Padded steps (t >= lengths[b]) never influence the result.

    ``tokenizer`` is only kept (and saved by ``save_pretrained``) so that a model of token
    ids travels with the tokenizer that produced them; ``forward`` takes ids, not text.
    """

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig, tokenizer: SubwordTokenizer | None = None) -> None:
        super().__init__(config, tokenizer)
        self.embedding = (
            nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_id)
            if config.vocab_size is not None
            else None
        )
        self.lstm = LSTM(
            config.embedding_dim if config.vocab_size is not None else config.input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.lstm.num_directions * config.hidden_size, config.num_classes)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits [B, num_classes].

        Args:
            inputs: [B, T, input_size] floats, or [B, T] token ids.
            lengths: optional [B] number of valid (leading) steps; None means all T are valid.
        """
        return self.head(self.dropout(self.encode(inputs, lengths)))

    def encode(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled sequence representation [B, D*H] that the head classifies."""
        if self.embedding is not None:
            if inputs.dim() != 2 or inputs.is_floating_point():
                raise ValueError(
                    f"expected token ids [B, T], got {inputs.dtype} {list(inputs.shape)}"
                )
            inputs = self.embedding(inputs)
        outputs, (h_n, _) = self.lstm(inputs, lengths=lengths)  # outputs [B, T, D*H]

        if self.config.pooling == "last":
            # The top layer's final states, forward then backward, as in ``outputs``.
            return torch.cat(list(h_n[-self.lstm.num_directions :]), dim=-1)
        steps = outputs.size(1)
        if lengths is None:
            lengths = torch.full((outputs.size(0),), steps, device=outputs.device)
        lengths = torch.as_tensor(lengths, device=outputs.device)
        valid = (torch.arange(steps, device=outputs.device) < lengths.unsqueeze(1)).unsqueeze(-1)
        if self.config.pooling == "mean":
            # The LSTM already zeroes padded outputs; masking again keeps this self-evident.
            return (outputs * valid).sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)
        return outputs.masked_fill(~valid, float("-inf")).amax(dim=1)
