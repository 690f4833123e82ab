"""The task contract: what the Trainer and the experiment code know of a model.

Every task model (``BiLSTMCRFTagger``, ``Seq2SeqLSTM``, ``LSTMLanguageModel``,
``LSTMClassifier``, ``LSTMForecaster``) is a ``torch.nn.Module`` with the same shape:

- ``encode(rows) -> examples``: rows (dicts with the columns ``seqlstm.data.load`` makes, or
  the rows of a ``datasets.Dataset``) become the model's encoded examples;
- ``collate(examples) -> batch``: examples become one padded batch of tensors;
- ``forward(batch) -> StepOutput``: the SUM of the batch's per-token training losses and the
  number of tokens it is over (the Trainer normalises, so accumulation and DDP are exact);
- ``evaluate(rows) -> dict[str, float]``: the task's metrics on labelled rows (the tagger,
  translator and language model also read a ``datasets.Dataset`` in the hub's layout through
  its features: ``seqlstm.data.dataset_rows``);
- ``save_pretrained(directory)`` / ``from_pretrained(directory)``: config JSON, safetensors
  weights, tokenizer and vocabularies, never pickled.

Each task also has its own ``predict``-style methods (``predict``/``tag``, ``translate``,
``generate``, ``forecast``) with the signatures its users expect. Training and experiment code
import this module only, never a concrete model.

A model (or a batch source) whose training depends on more than its weights, the optimizer
and the data position - the language model carries its LSTM state from one window to the
next - also implements :class:`CarriesTrainingState`, so that checkpoints hold that state and
a resumed run is the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from seqlstm.errors import DataError

Row = Mapping[str, Any]


@dataclass
class StepOutput:
    """What a task model's ``forward(batch)`` returns for one (micro-)batch."""

    loss: torch.Tensor  # scalar: SUM of the per-token losses of the batch, not the mean
    num_tokens: torch.Tensor | int  # how many tokens that sum is over


@runtime_checkable
class TaskModel(Protocol):
    """The contract of every task model (see the module docstring)."""

    def encode(self, rows: Sequence[Row]) -> list[Any]: ...

    def collate(self, examples: Sequence[Any]) -> Any: ...

    def forward(self, batch: Any) -> StepOutput: ...

    def evaluate(self, rows: Sequence[Row]) -> dict[str, float]: ...

    def save_pretrained(self, directory: str | Path) -> Path: ...


@runtime_checkable
class CarriesTrainingState(Protocol):
    """Optional hook of a task model or a batch source: state that training carries from one
    batch to the next and that a checkpoint must keep for resume to be exact.

    - ``training_state_dict()`` returns that state as a dict of tensors and JSON-able values
      (nested dicts, lists and tuples allowed, as in an optimizer's ``state_dict``); empty
      when there is none yet. Tensors go to the checkpoint's safetensors file, the rest to
      its JSON; nothing is pickled. The Trainer copies the tensors it keeps.
    - ``load_training_state_dict(state)`` puts back what ``training_state_dict`` returned (an
      empty dict included: no carried state); it raises ValueError when ``state`` does not fit
      (the Trainer names the checkpoint).

    The Trainer takes the state of the model and of its batch source right after an optimizer
    step, when it writes a checkpoint, and of the model around each evaluation (which
    therefore cannot disturb it). On resume it loads the model's state with the weights, and
    the batch source's after re-drawing the batches the interrupted epoch had consumed from
    ``epoch(e)``. Under DDP every rank carries its own state (its own rows of a stream); the
    checkpoint keeps each rank's, and each rank resumes from its own. A batch source whose
    ``epoch(e)`` is a pure function of its seed and ``e`` (all of seqlstm's) needs no hook.
    """

    def training_state_dict(self) -> dict[str, Any]: ...

    def load_training_state_dict(self, state: Mapping[str, Any]) -> None: ...


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a tensor / dict / list / tuple / namedtuple / dataclass batch."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(v, device) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            f.name: move_to_device(getattr(batch, f.name), device)
            for f in dataclasses.fields(batch)
            if f.init
        }
        return dataclasses.replace(batch, **changes)
    return batch


def numbered_rows(rows: Iterable[Row]) -> Iterator[tuple[int, Row]]:
    """(number, row) for each row of ``rows``, numbered from 0 as a ``datasets.Dataset`` is.

    A lone row or string given in place of the iterable, or a row that is not a mapping of
    columns, is a DataError (a lone dict would otherwise be iterated as its column names).
    """
    if isinstance(rows, str | Mapping):
        raise DataError(
            "rows must be an iterable of rows (dicts or a datasets.Dataset), "
            f"not one {type(rows).__name__}"
        )
    for number, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(
                f"row {number}: expected a mapping of columns, got {type(row).__name__}"
            )
        yield number, row


def column(row: Row, number: int, name: str) -> Any:
    """``row[name]``; a missing column is a DataError naming the row and its columns."""
    if name not in row:
        raise DataError(f"row {number}: expected a {name!r} column, got columns {list(row)}")
    return row[name]


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Inside the block ``model`` is in eval mode (no dropout) and autograd is off; its
    training mode is restored after, so evaluating in the middle of training is harmless."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
