"""Sequence classification with an LSTM: read a sequence, pool its states, predict one class.

The classic examples: an image read as a sequence of rows (MNIST as 28 steps of 28 pixels), or
a sentence of token ids. The encoder is ``seqlstm.layers.lstm.LSTM`` (the equations, readable),
whose ``lengths`` argument makes padded batches behave exactly like unpadded sequences.

The task protocol (``seqlstm.tasks.base``): rows ``{"inputs": [T, F] floats or T token ids,
"label": class index}`` -> ``encode`` -> ``ClassifierExample`` -> ``collate`` ->
``ClassifierBatch`` -> ``forward`` -> summed cross-entropy over the batch's sequences;
``evaluate(rows)`` gives accuracy and mean cross-entropy. ``logits`` and ``predict`` are the
raw calls on tensors.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from seqlstm.errors import DataError
from seqlstm.layers.lstm import LSTM
from seqlstm.pretrained import PretrainedModel
from seqlstm.tasks.base import (
    Row,
    StepOutput,
    column,
    evaluating,
    move_to_device,
    numbered_rows,
)
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


class ClassifierExample(NamedTuple):
    """One encoded row: inputs FloatTensor[T, input_size] or LongTensor[T] of token ids, and
    its class index."""

    inputs: Tensor
    label: int


@dataclass
class ClassifierBatch:
    """Examples padded to the longest: inputs [B, T, input_size] floats or [B, T] token ids
    (padded with ``pad_id``), lengths LongTensor[B] (None when every sequence has T steps),
    labels LongTensor[B]."""

    inputs: Tensor
    lengths: Tensor | None
    labels: Tensor


class LSTMClassifier(PretrainedModel):
    """LSTM encoder + pooling over valid steps + linear head (see ``ClassifierConfig``).

    Pooling turns the top layer's states into one vector [B, D*H] (D = 2 if bidirectional):
      - ``last``: the final state of each direction, i.e. the forward state at the last valid
        step and the backward state at step 0 (h_n of the top layer);
      - ``mean`` / ``max``: mean / element-wise max of the outputs over the valid steps.
    Padded steps (t >= lengths[b]) never influence the result.

    ``tokenizer`` is only kept (and saved by ``save_pretrained``) so that a model of token
    ids travels with the tokenizer that produced them; ``encode`` and ``logits`` take ids,
    not text.
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

    # --- the task protocol ----------------------------------------------------------------

    def encode(self, rows: Iterable[Row]) -> list[ClassifierExample]:
        """Rows ``{"inputs": ..., "label": ...}`` -> examples.

        ``inputs`` is anything ``torch.as_tensor`` reads (a tensor, an array, nested lists):
        [T, input_size] numbers for a model of features, T token ids in [0, vocab_size) for a
        model of tokens, with T >= 1. ``label`` is an integer in [0, num_classes). A row that
        breaks these rules is a DataError naming its number.
        """
        return [self._example(row, number) for number, row in numbered_rows(rows)]

    def collate(self, examples: Sequence[ClassifierExample]) -> ClassifierBatch:
        """Examples -> one batch, right-padded to the longest sequence (see ClassifierBatch)."""
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        sequences = [example.inputs for example in examples]
        lengths = torch.tensor([len(sequence) for sequence in sequences])
        padding = self.config.pad_id if self.embedding is not None else 0.0
        return ClassifierBatch(
            inputs=pad_sequence(sequences, batch_first=True, padding_value=padding),
            # Equal lengths need no mask, and the LSTM's unmasked path is the faster one.
            lengths=None if bool((lengths == lengths[0]).all()) else lengths,
            labels=torch.tensor([example.label for example in examples]),
        )

    def forward(self, batch: ClassifierBatch) -> StepOutput:
        """The cross-entropy of the batch's labels, summed over its B sequences, and B."""
        logits = self.logits(batch.inputs, batch.lengths)
        loss = F.cross_entropy(logits, batch.labels, reduction="sum")
        return StepOutput(loss, batch.labels.numel())

    def evaluate(self, rows: Iterable[Row], batch_size: int = 256) -> dict[str, float]:
        """{"accuracy": fraction of rows whose argmax class is the label, "loss": mean
        cross-entropy (nats)} over ``rows``, in eval mode, ``batch_size`` rows at a time."""
        examples = self.encode(rows)
        if not examples:
            raise DataError("evaluate needs at least one row")
        device = self.device
        correct, loss = 0, 0.0
        with evaluating(self):
            for start in range(0, len(examples), batch_size):
                batch = move_to_device(self.collate(examples[start : start + batch_size]), device)
                logits = self.logits(batch.inputs, batch.lengths)
                correct += int((logits.argmax(-1) == batch.labels).sum())
                loss += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        return {"accuracy": correct / len(examples), "loss": loss / len(examples)}

    # --- raw calls on tensors -----------------------------------------------------------

    def logits(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits [B, num_classes].

        Args:
            inputs: [B, T, input_size] floats, or [B, T] token ids.
            lengths: optional [B] number of valid (leading) steps; None means all T are valid.
        """
        return self.head(self.dropout(self.pool(inputs, lengths)))

    def predict(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The most likely class of each sequence, LongTensor[B] (in eval mode, no autograd);
        arguments as for ``logits``."""
        with evaluating(self):
            return self.logits(inputs, lengths).argmax(-1)

    def pool(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
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

    def _example(self, row: Row, number: int) -> ClassifierExample:
        """One row as an example; DataError names the row and what it should hold."""
        config = self.config
        raw = column(row, number, "inputs")
        tokens = config.vocab_size is not None
        wanted = "T token ids" if tokens else f"[T, {config.input_size}] numbers"
        try:
            inputs = torch.as_tensor(raw) if tokens else torch.as_tensor(raw, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise DataError(f"row {number}: 'inputs' must hold {wanted}: {err}") from None
        shape_ok = (
            inputs.dim() == 1
            if tokens
            else inputs.dim() == 2 and inputs.size(1) == config.input_size
        )
        if not shape_ok or len(inputs) == 0:
            raise DataError(
                f"row {number}: 'inputs' must hold {wanted} with T >= 1, "
                f"got shape {list(inputs.shape)}"
            )
        if tokens and (inputs.is_floating_point() or inputs.is_complex()):
            raise DataError(f"row {number}: 'inputs' must hold {wanted}, got {inputs.dtype}")
        if tokens:
            inputs = inputs.long()
            if inputs.min() < 0 or inputs.max() >= config.vocab_size:
                raise DataError(
                    f"row {number}: token ids must be in [0, {config.vocab_size}), "
                    f"got {int(inputs.min())}..{int(inputs.max())}"
                )
        label = column(row, number, "label")
        try:
            label = operator.index(label)
        except TypeError:
            raise DataError(
                f"row {number}: 'label' must be an integer class index, got {label!r}"
            ) from None
        if not 0 <= label < config.num_classes:
            raise DataError(f"row {number}: label {label} is outside [0, {config.num_classes})")
        return ClassifierExample(inputs, label)
