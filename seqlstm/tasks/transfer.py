"""Start a tagger or translator from a trained language model (transfer learning).

A language model trained on plenty of raw text has learnt embeddings for the tokenizer's
pieces and, in its lowest LSTM layer, features of left-to-right context. A model for a task
with less data (the BiLSTM-CRF tagger, the Seq2Seq translator) that reads the same pieces can
start from those weights instead of random ones:

    lm = LSTMLanguageModel.from_pretrained("runs/wikitext2_lm/model")
    tagger = BiLSTMCRFTagger.build(config, lm.tokenizer, train_rows)
    for line in transfer_from_language_model(tagger, lm):
        print(line)                     # what was copied, what was skipped and why

What is copied, always with `copy_` (the target keeps its own tensors, nothing is tied):

- the LM's subword table `embedding.token_embedding.weight` [V, E] into the `token_embedding`
  of every SharedEmbedding of the target (the translator's source and target tables, or its
  one shared table; the tagger's table), when [V, E] matches;
- the LM's first LSTM layer (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`) into
  the first layer, forward direction, of the target's first LSTM (`torch.nn.LSTM` or
  `seqlstm.layers.lstm.LSTM`, found in registration order: the encoder of both models), tensor by
  tensor where the shapes match. The backward direction stays as it is: the LM read left to
  right only. `weight_ih_l0` matches only when the encoder's input is the bare subword
  embedding (not so for a tagger with a character CNN or a word table).

The weights mean something only for the same pieces, so the two tokenizers must have the same
vocabulary, piece for piece (a ValueError otherwise). Explicit module paths (`embeddings=`,
`lstm=`) override the search, e.g. `lstm="decoder.rnn"`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seqlstm.layers import lstm as seqlstm_lstm
from seqlstm.layers.embedding import SharedEmbedding
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel

logger = logging.getLogger(__name__)

_LSTM_TYPES = (nn.LSTM, seqlstm_lstm.LSTM)
_LSTM_NAMES = "torch.nn.LSTM or seqlstm.layers.lstm.LSTM"
_LAYER_TENSORS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def transfer_from_language_model(
    target: nn.Module,
    lm: LSTMLanguageModel,
    embeddings: Sequence[str] | None = None,
    lstm: str | None = None,
) -> list[str]:
    """Copy the LM's embedding table and first LSTM layer into target; see the module docstring.

    target: a model with a `tokenizer`, one or more SharedEmbedding and an LSTM encoder.
    embeddings: module paths of the target's SharedEmbeddings (default: all of them; [] copies
    no embedding);
    lstm: module path of the target's LSTM to receive the LM's first layer (default: the
    first one registered).

    Returns one line per tensor, in order: "copied TARGET_NAME <- LM_NAME [shape]" or
    "skipped TARGET_NAME <- LM_NAME: shape [...] in the target, [...] in the language model"
    (or "...: not in the target" for a bias the target does not have). The same lines are
    logged at INFO. Raises ValueError when the tokenizers differ or a module is not found.
    """
    check_same_vocabulary(target, lm)
    embedding_paths = list(embeddings) if embeddings is not None else _find(target, SharedEmbedding)
    lstm_path = lstm if lstm is not None else next(iter(_find(target, _LSTM_TYPES)), None)
    no_embedding = embeddings is None and not embedding_paths
    if no_embedding or lstm_path is None:
        missing = "SharedEmbedding" if no_embedding else _LSTM_NAMES
        raise ValueError(
            f"{type(target).__name__} has no {missing} to transfer into; pass the module paths "
            "as embeddings=[...] and lstm=..."
        )
    pairs: list[tuple[str, Tensor | None, str, Tensor]] = []
    for path in embedding_paths:
        weight = _submodule(target, path, SharedEmbedding, "SharedEmbedding").token_embedding.weight
        lm_weight = lm.embedding.token_embedding.weight
        pairs.append(
            (
                f"{_prefix(path)}token_embedding.weight",
                weight,
                "embedding.token_embedding.weight",
                lm_weight,
            )
        )
    source_lstm = lm.layers[0].lstm
    target_lstm = _submodule(target, lstm_path, _LSTM_TYPES, _LSTM_NAMES)
    for name in _LAYER_TENSORS:
        pairs.append(
            (
                f"{_prefix(lstm_path)}{name}",
                getattr(target_lstm, name, None),
                f"layers.0.lstm.{name}",
                getattr(source_lstm, name),
            )
        )

    report = []
    with torch.no_grad():
        for target_name, target_tensor, lm_name, lm_tensor in pairs:
            if target_tensor is None:
                line = f"skipped {target_name} <- {lm_name}: not in the target"
            elif target_tensor.shape != lm_tensor.shape:
                line = (
                    f"skipped {target_name} <- {lm_name}: shape {list(target_tensor.shape)} in "
                    f"the target, {list(lm_tensor.shape)} in the language model"
                )
            else:
                target_tensor.copy_(lm_tensor)
                line = f"copied {target_name} <- {lm_name} {list(lm_tensor.shape)}"
            logger.info("transfer: %s", line)
            report.append(line)
    return report


def check_same_vocabulary(target: nn.Module, lm: LSTMLanguageModel) -> None:
    """Raise ValueError unless target.tokenizer has lm.tokenizer's pieces, id for id."""
    tokenizer = getattr(target, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(
            f"{type(target).__name__} has no tokenizer attribute: transfer needs it to check "
            "that the embedding rows mean the same pieces"
        )
    ours, theirs = lm.tokenizer, tokenizer
    if len(ours) != len(theirs):
        raise ValueError(
            f"the tokenizers differ: the language model has {len(ours)} pieces, "
            f"{type(target).__name__} {len(theirs)}; build the target with the LM's tokenizer"
        )
    for piece_id in range(len(ours)):
        if ours.id_to_piece(piece_id) != theirs.id_to_piece(piece_id):
            raise ValueError(
                f"the tokenizers differ at id {piece_id}: {ours.id_to_piece(piece_id)!r} in "
                f"the language model, {theirs.id_to_piece(piece_id)!r} in "
                f"{type(target).__name__}; build the target with the LM's tokenizer"
            )


def _find(module: nn.Module, kind: type | tuple[type, ...]) -> list[str]:
    """Paths of the submodules of a kind, in registration order, each shared module once."""
    return [name for name, sub in module.named_modules() if isinstance(sub, kind)]


def _submodule(
    module: nn.Module, path: str, kind: type | tuple[type, ...], description: str
) -> nn.Module:
    try:
        sub = module.get_submodule(path)
    except AttributeError:
        raise ValueError(f"{type(module).__name__} has no submodule {path!r}") from None
    if not isinstance(sub, kind):
        raise ValueError(f"{path!r} is a {type(sub).__name__}, not a {description}")
    return sub


def _prefix(path: str) -> str:
    return f"{path}." if path else ""
