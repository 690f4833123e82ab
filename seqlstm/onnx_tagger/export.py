"""Export a BiLSTMCRFTagger to ONNX, for seqlstm.onnx_tagger.runtime to run without torch.

The network up to the emission scores becomes two graphs, the two stages of the tagger's own
inference (BiLSTMCRFTagger._scored_batches), with every batch and length axis dynamic:

    word_features.onnx   subword_ids [V, S], char_ids [V, C], word_ids [V] -> features [V, D]
        the word types of a call, one a row, each row padded on the right: the subwords'
        embeddings pooled as SharedEmbedding.words pools them ("first" or "mean"), the
        character CNN, the word table, concatenated in SharedEmbedding's order
    emissions.onnx       features [B, W, D], lengths [B], sentence_start [B, W] -> [B, W, K]
        texts of word features, padded on the right: the sentence-start flag (with document
        context), the BiLSTM and the linear emission layer

char_ids, word_ids and sentence_start are inputs only when the tagger has the character CNN,
the word table and document context. The tagger packs its texts, so the backward LSTM of a
short text starts at its own last word; the graph does the same with ONNX's LSTM operator and
its ``sequence_lens`` input (one bidirectional LSTM node a layer, PyTorch's gate blocks
reordered into ONNX's), so a text's scores do not depend on the padding of its batch.

Exporter: torch.onnx.export's torch.export-based one (``dynamo=True``, which needs onnxscript;
the TorchScript one is deprecated). torch.export cannot trace packed sequences, so the LSTM
node is written with torch.onnx.ops.symbolic (torch >= 2.8). Opset 18: the lowest the
exporter implements (it converts to lower ones with ONNX's version converter, which may fail),
so the graphs run on the widest range of onnxruntime versions; the files are ONNX IR version
10, which onnxruntime reads from 1.18 on (tested with 1.32).

Every export is checked before it is kept: the exported directory, loaded by OnnxTagger, must
give the tagger's emission scores for a few sentences of unequal lengths, read as one padded
batch, within ``tolerance``; the largest difference is recorded in onnx_tagger.json.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import Tensor, nn

from seqlstm.atomic_files import refuse_foreign_directory, staged_directory
from seqlstm.errors import CheckpointError
from seqlstm.onnx_tagger.directory import (
    CHAR_IDS,
    CONFIG_FILE,
    CRF_FILE,
    EMISSIONS,
    EMISSIONS_FILE,
    FEATURES,
    LENGTHS,
    SENTENCE_START,
    SUBWORD_IDS,
    TOKENIZER_DIR,
    VOCAB_DIR,
    WORD_FEATURES_FILE,
    WORD_IDS,
    Header,
    write_crf,
    write_header,
)
from seqlstm.onnx_tagger.runtime import OnnxTagger
from seqlstm.pretrained import seqlstm_version
from seqlstm.tasks.base import evaluating
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
from seqlstm.text.words import tokenize

OPSET = 18
# emissions are sums of a few hundred float32 products: the two runtimes' different kernels
# differ by about 1e-6 of their size; a wrong graph differs by whole units
TOLERANCE = 1e-4
# the check's sentences: unequal lengths (1 to 16 words), capitals, digits, punctuation,
# characters and words no training set has
CHECK_SENTENCES = (
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn",
    "BRUSSELS 1996-08-22",
    "?",
    "Zürich's café in 東京 charged 3,50 € for Mr. O'Neill's quixotic xylophone ...",
    "The European Commission said on Thursday it disagreed with German advice .",
)
# why the other models are not exported: their decoding is not one graph
_NOT_EXPORTED = {
    "Seq2SeqLSTM": "its beam search is a Python loop that runs the decoder one step at a time",
    "LSTMLanguageModel": "its sampling is a Python loop that runs the model one step at a time",
}


class NotExportedError(CheckpointError):
    """ONNX export of a model other than the tagger: ``model_class`` names it, ``source``
    (its directory, or the function asked) starts the message."""

    def __init__(self, model_class: str, source: str) -> None:
        reason = _NOT_EXPORTED.get(model_class, "only the tagger has an ONNX export")
        super().__init__(
            f"{source}: ONNX export covers the tagger (BiLSTMCRFTagger) only, and this model "
            f"is {model_class}: {reason}"
        )
        self.model_class = model_class


def export_onnx(
    model: nn.Module,
    directory: str | os.PathLike,
    check_sentences: Sequence[str | Sequence[str]] = CHECK_SENTENCES,
    tolerance: float = TOLERANCE,
) -> Path:
    """Write ``model`` (a BiLSTMCRFTagger) as an exported tagger directory (see
    seqlstm.onnx_tagger.directory) and return its path; an older export there is replaced.

    The export is kept only if OnnxTagger's emission scores for ``check_sentences`` (raw text
    or lists of words) are within ``tolerance`` of the tagger's. Raises NotExportedError (a
    CheckpointError) for a model that is not a tagger, ValueError for a quantized tagger,
    ImportError where torch is older than 2.8 or onnx or onnxscript is missing, and
    CheckpointError for a directory that holds something other than an export or for scores
    beyond the tolerance (nothing is written then).
    """
    if not isinstance(model, BiLSTMCRFTagger):
        raise NotExportedError(type(model).__name__, "export_onnx")
    _check_exporter()
    if not (isinstance(model.encoder.rnn, nn.LSTM) and isinstance(model.emission, nn.Linear)):
        raise ValueError(
            "this tagger is quantized (int8); the ONNX graphs are float32: export the float "
            "model, BiLSTMCRFTagger.from_pretrained(directory) without quantize"
        )
    directory = Path(directory)
    refuse_foreign_directory(directory, CONFIG_FILE, "an exported tagger")
    header = Header(
        OPSET,
        asdict(model.config),
        model.embedding.word_output_dim,
        len(model.labels),
        export_check={},
    )
    with staged_directory(directory) as staging, evaluating(model), _quiet_exporter():
        _export(
            _WordFeatures(model).eval(), _word_feature_inputs(model), staging / WORD_FEATURES_FILE
        )
        _export(_Emissions(model).eval(), _emission_inputs(model), staging / EMISSIONS_FILE)
        crf = model.crf
        scores = {
            "start": crf.crf.start_transitions,
            "transitions": crf.crf.transitions,
            "end": crf.crf.end_transitions,
            "allowed_start": crf.allowed_start,
            "allowed_transitions": crf.allowed_transitions,
            "allowed_end": crf.allowed_end,
        }
        write_crf(staging / CRF_FILE, {k: v.detach().cpu().numpy() for k, v in scores.items()})
        model.tokenizer.save(staging / TOKENIZER_DIR)
        for name in header.vocabularies:
            getattr(model, name).save(staging / VOCAB_DIR / f"{name}.json")
        # OnnxTagger reads the header; it gets the check's result once there is one
        write_header(staging, header, seqlstm_version())
        difference = _largest_difference(model, staging, check_sentences)
        if not difference <= tolerance:  # also for NaN
            raise CheckpointError(
                f"the exported graphs' emission scores differ from the tagger's by up to "
                f"{difference:.3g} on {len(check_sentences)} check sentences (tolerance "
                f"{tolerance:g}); nothing was written to {directory}"
            )
        check = {
            "sentences": len(check_sentences),
            "max_abs_difference": difference,
            "tolerance": tolerance,
            "torch_version": torch.__version__,
            "onnxruntime_version": onnxruntime.__version__,
        }
        write_header(staging, replace(header, export_check=check), seqlstm_version())
    return directory


def _check_exporter() -> None:
    """ImportError naming what to install where this torch cannot export the graphs."""
    if not hasattr(torch.onnx, "ops"):
        raise ImportError(
            f"ONNX export needs torch >= 2.8 (torch.onnx.ops); this is torch {torch.__version__}"
        )
    for package in ("onnx", "onnxscript"):
        if importlib.util.find_spec(package) is None:
            raise ImportError(
                f"ONNX export needs {package}: pip install 'seqlstm[onnx]' (onnx, onnxscript, "
                "onnxruntime)"
            )


class _WordFeatures(nn.Module):
    """The tagger's word features of word types given one a row, each row padded on the
    right: SharedEmbedding.words of one word each, in a form with no data-dependent shapes.

    subword_ids: LongTensor[V, S] (the tokenizer's pad id after a word's subwords);
    char_ids: LongTensor[V, C] (the character pad id after its characters), with the CNN;
    word_ids: LongTensor[V], with the word table. Returns FloatTensor[V, D].
    """

    def __init__(self, tagger: BiLSTMCRFTagger) -> None:
        super().__init__()
        self.embedding = tagger.embedding
        self.pad_id = tagger.tokenizer.pad_id

    def forward(
        self, subword_ids: Tensor, char_ids: Tensor | None = None, word_ids: Tensor | None = None
    ) -> Tensor:
        embedding = self.embedding
        is_piece = (subword_ids != self.pad_id).unsqueeze(-1)  # [V, S, 1]
        pieces = embedding.token_embedding(subword_ids) * is_piece
        if embedding.pooling == "first":
            parts = [pieces[:, 0]]
        else:  # a mean over a word's subwords, as SharedEmbedding._pool's sums over counts
            parts = [pieces.sum(dim=1) / is_piece.sum(dim=1).clamp(min=1).to(pieces.dtype)]
        if embedding.char_cnn is not None:
            # the CNN of each row; CharCNN.forward would first find the distinct rows, which
            # the runtime's rows already are
            parts.append(embedding.char_cnn._row_features(char_ids))
        if embedding.word_embedding is not None:
            parts.append(embedding.word_embedding(word_ids))
        return torch.cat(parts, dim=-1)


class _Emissions(nn.Module):
    """The tagger's emission scores of texts of word features, the BiLSTM as ONNX LSTM nodes.

    features: FloatTensor[B, W, D]; lengths: LongTensor[B], each in 1..W; sentence_start:
    BoolTensor[B, W], with document context. Returns FloatTensor[B, W, K]. Export only: the
    LSTM is an ONNX node, which PyTorch does not run.
    """

    def __init__(self, tagger: BiLSTMCRFTagger) -> None:
        super().__init__()
        rnn = tagger.encoder.rnn
        self.hidden_size = rnn.hidden_size
        self.num_layers = rnn.num_layers
        self.emission = tagger.emission
        for layer in range(rnn.num_layers):
            # ONNX's W [2, 4H, in], R [2, 4H, H] and B [2, 8H] (input then recurrent biases),
            # forward direction first
            directions = [f"l{layer}", f"l{layer}_reverse"]
            weights = {
                "w": [_onnx_gates(getattr(rnn, f"weight_ih_{d}")) for d in directions],
                "r": [_onnx_gates(getattr(rnn, f"weight_hh_{d}")) for d in directions],
                "b": [
                    torch.cat(
                        [
                            _onnx_gates(getattr(rnn, f"bias_ih_{d}")),
                            _onnx_gates(getattr(rnn, f"bias_hh_{d}")),
                        ]
                    )
                    for d in directions
                ],
            }
            for name, tensors in weights.items():
                self.register_buffer(f"{name}{layer}", torch.stack(tensors).detach())

    def forward(
        self, features: Tensor, lengths: Tensor, sentence_start: Tensor | None = None
    ) -> Tensor:
        if sentence_start is not None:
            features = torch.cat([features, sentence_start.unsqueeze(-1).to(features.dtype)], -1)
        batch, steps = features.shape[:2]
        x = features.transpose(0, 1)  # [W, B, D]: onnxruntime's LSTM takes time first
        sequence_lens = lengths.to(torch.int32)
        for layer in range(self.num_layers):
            weights = [getattr(self, f"{name}{layer}") for name in "wrb"]
            y = torch.onnx.ops.symbolic(
                "LSTM",
                (x, *weights, sequence_lens),
                {"direction": "bidirectional", "hidden_size": self.hidden_size},
                dtype=x.dtype,
                shape=(steps, 2, batch, self.hidden_size),
                version=OPSET,
            )  # [W, 2, B, H]
            # [forward; backward] at each position, as BiLSTMEncoder's outputs
            x = y.permute(0, 2, 1, 3).reshape(steps, batch, 2 * self.hidden_size)
        return self.emission(x.transpose(0, 1)).float()


def _onnx_gates(weight: Tensor) -> Tensor:
    """PyTorch's LSTM gate blocks (input, forget, cell, output), stacked along dim 0, in ONNX's
    order (input, output, forget, cell)."""
    i, f, g, o = weight.detach().chunk(4)
    return torch.cat([i, o, f, g])


def _word_feature_inputs(tagger: BiLSTMCRFTagger) -> dict[str, Tensor | None]:
    """Example inputs of _WordFeatures: 3 word types of 2 subwords and 4 characters (sizes
    above 1, which torch.export would take as fixed)."""
    device = tagger.embedding.token_embedding.weight.device
    pieces = torch.full((3, 2), 4, device=device)
    chars = words = None
    if tagger.chars is not None:
        chars = torch.full((3, 4), tagger.chars.unk_id, device=device)
    if tagger.words is not None:
        words = torch.full((3,), tagger.words.unk_id, device=device)
    return {SUBWORD_IDS: pieces, CHAR_IDS: chars, WORD_IDS: words}


def _emission_inputs(tagger: BiLSTMCRFTagger) -> dict[str, Tensor | None]:
    """Example inputs of _Emissions: 2 texts of 3 words."""
    device = tagger.embedding.token_embedding.weight.device
    flags = None
    if tagger.config.context_words:
        flags = torch.tensor([[True, False, False]] * 2, device=device)
    return {
        FEATURES: torch.zeros(2, 3, tagger.embedding.word_output_dim, device=device),
        LENGTHS: torch.tensor([3, 2], device=device),
        SENTENCE_START: flags,
    }


def _export(module: nn.Module, inputs: dict[str, Tensor | None], path: Path) -> None:
    """torch.onnx.export of ``module`` called with the ``inputs`` that are not None (those that
    are None are not inputs of the graph), with every axis dynamic but the features' last."""
    given = {name: value for name, value in inputs.items() if value is not None}
    axes = {
        SUBWORD_IDS: ("words", "subwords"),
        CHAR_IDS: ("words", "characters"),
        WORD_IDS: ("words",),
        FEATURES: ("batch", "steps"),
        LENGTHS: ("batch",),
        SENTENCE_START: ("batch", "steps"),
    }
    program = torch.onnx.export(
        module,
        kwargs=given,
        dynamo=True,
        input_names=list(given),
        output_names=[FEATURES if isinstance(module, _WordFeatures) else EMISSIONS],
        dynamic_shapes={name: dict(enumerate(axes[name])) for name in given},
        opset_version=OPSET,
        verbose=False,
    )
    program.save(str(path))


def _largest_difference(
    tagger: BiLSTMCRFTagger, directory: Path, sentences: Sequence[str | Sequence[str]]
) -> float:
    """The largest absolute difference between the emission scores of ``sentences`` (each
    read alone, all in one padded batch) from the tagger and from the export in
    ``directory``."""
    words = [[t.text for t in tokenize(s)] if isinstance(s, str) else list(s) for s in sentences]
    expected, _ = tagger.emissions(tagger.collate(tagger.encode([{"tokens": w} for w in words])))
    exported = OnnxTagger.load(directory, threads=1).emissions(words, batch_size=len(words))
    return max(
        (
            float(np.abs(got - expected[i, : len(got)].cpu().numpy()).max())
            for i, got in enumerate(exported)
            if len(got)
        ),
        default=0.0,
    )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes about torch's own internals (deprecations inside torch,
    torchvision operators it skips) are not the user's business: they are hidden inside."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
            yield
    finally:
        logger.setLevel(level)
