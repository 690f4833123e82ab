"""The directory an exported tagger lives in: its files, written and read back with checks.

    onnx_tagger.json     format name and version, ONNX opset, the tagger's config (its
                         TaggerConfig as JSON), the feature and label counts, the export check
    word_features.onnx   word types -> word features (subwords, character CNN, word table)
    emissions.onnx       word features of texts -> emission scores (BiLSTM and linear layer)
    crf.json             the CRF's start, transition and end scores and their constraints
    tokenizer/           the SubwordTokenizer (SentencePiece model and its JSON config)
    vocab/NAME.json      labels, and chars (character CNN) and words (word table) if used

Everything is JSON, SentencePiece or ONNX: nothing is unpickled. Reading checks what the
files must agree on; a problem is a CheckpointError naming the file and what was expected.
The graphs' inputs and outputs are checked once onnxruntime has loaded them (OnnxTagger.load).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqlstm.atomic_files import write_text_atomic
from seqlstm.errors import CheckpointError
from seqlstm.model_directory_checks import (
    MAX_CONFIG_BYTES,
    MAX_CONFIG_NUMBER,
    MAX_VOCABULARY_BYTES,
    check_config_values,
    check_regular_file,
    read_json,
)
from seqlstm.onnx_tagger.viterbi import ViterbiDecoder
from seqlstm.text.tag_schemes import SCHEMES

CONFIG_FILE = "onnx_tagger.json"
FORMAT = "seqlstm-onnx-tagger"
FORMAT_VERSION = 1
WORD_FEATURES_FILE = "word_features.onnx"
EMISSIONS_FILE = "emissions.onnx"
CRF_FILE = "crf.json"
TOKENIZER_DIR = "tokenizer"
VOCAB_DIR = "vocab"

# The graphs' inputs and outputs. word_features.onnx: word types, one row each, padded on the
# right -> features; emissions.onnx: texts of word features, padded on the right -> scores.
SUBWORD_IDS = "subword_ids"  # int64 [V, S], the tokenizer's pad id after a word's subwords
CHAR_IDS = "char_ids"  # int64 [V, C], the character vocabulary's pad id after its characters
WORD_IDS = "word_ids"  # int64 [V], the word-table row of each word type
FEATURES = "features"  # float32 [V, D] out of word_features, [B, W, D] into emissions
LENGTHS = "lengths"  # int64 [B], the words of each text, at least 1
SENTENCE_START = "sentence_start"  # bool [B, W], true on each sentence's first word
EMISSIONS = "emissions"  # float32 [B, W, K]; what padding gets is unspecified


@dataclass(frozen=True)
class _InferenceFields:
    """The fields of the tagger's config (TaggerConfig) that inference reads, with their
    types: onnx_tagger.json's tagger_config is checked against these (types, and numbers in
    [0, MAX_CONFIG_NUMBER]: seqlstm.model_directory_checks) without importing the tagger."""

    scheme: str
    crf_scheme: str
    lowercase_subwords: bool
    char_filters: int
    word_embedding_dim: int
    context_words: int
    chunk_words: int


@dataclass(frozen=True)
class Header:
    """What onnx_tagger.json says: the opset of the graphs, the tagger's config (the fields
    of TaggerConfig), the word-feature size D, the label count K and the export check."""

    opset: int
    config: dict[str, Any]
    feature_dim: int
    num_labels: int
    export_check: dict[str, Any]

    @property
    def vocabularies(self) -> list[str]:
        """The vocabularies the directory holds: labels, chars and words as configured."""
        names = ["labels"]
        if self.config["char_filters"] > 0:
            names.append("chars")
        if self.config["word_embedding_dim"] > 0:
            names.append("words")
        return names

    @property
    def files(self) -> list[str]:
        """The files (and, ending in /, directories) the directory must hold."""
        files = [CONFIG_FILE, WORD_FEATURES_FILE, EMISSIONS_FILE, CRF_FILE, TOKENIZER_DIR + "/"]
        return files + [f"{VOCAB_DIR}/{name}.json" for name in self.vocabularies]


def write_header(directory: Path, header: Header, seqlstm_version: str) -> None:
    """Write onnx_tagger.json into ``directory``."""
    data = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seqlstm_version": seqlstm_version,
        "opset": header.opset,
        "feature_dim": header.feature_dim,
        "num_labels": header.num_labels,
        "tagger_config": header.config,
        "export_check": header.export_check,
    }
    write_text_atomic(directory / CONFIG_FILE, json.dumps(data, indent=2) + "\n")


def read_header(directory: Path) -> Header:
    """onnx_tagger.json of ``directory``, checked; CheckpointError for a missing file, another
    format or version, a missing or mistyped field, a number out of range, and for a file the
    header lists that is there but not a regular file (a FIFO would block onnxruntime)."""
    path = directory / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(
            f"{directory} is not an exported tagger: no {CONFIG_FILE} (`seqlstm export --format "
            "onnx` writes one)"
        )
    data = _read_json(path, f"an exported tagger's {CONFIG_FILE}", MAX_CONFIG_BYTES)
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format is {data.get('format')!r}, expected {FORMAT!r}")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {data.get('format_version')!r} is not supported (this "
            f"seqlstm reads {FORMAT_VERSION}; export the model again)"
        )
    for name in ("opset", "feature_dim", "num_labels"):
        value = data.get(name)
        if not (_is_int(value) and 1 <= value <= MAX_CONFIG_NUMBER):
            raise CheckpointError(
                f"{path}: {name} must be an integer in [1, {MAX_CONFIG_NUMBER}], got {value!r}"
            )
    config = data.get("tagger_config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: tagger_config must be an object (the TaggerConfig)")
    missing = [
        field.name for field in dataclasses.fields(_InferenceFields) if field.name not in config
    ]
    if missing:
        raise CheckpointError(f"{path}: tagger_config lacks {', '.join(missing)}")
    # the fields inference reads, type- and range-checked; the others are the tagger's own
    config = {**config, **check_config_values(_InferenceFields, config, path, "tagger_config")}
    for name in ("scheme", "crf_scheme"):
        if config[name] not in SCHEMES:
            raise CheckpointError(
                f"{path}: tagger_config.{name} must be one of {SCHEMES}, got {config[name]!r}"
            )
    header = Header(
        data["opset"], config, data["feature_dim"], data["num_labels"], data.get("export_check", {})
    )
    for name in header.files:
        if not name.endswith("/") and (directory / name).exists():
            check_regular_file(directory / name)
    return header


def write_crf(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write crf.json from the arguments of ViterbiDecoder.constrained by name: the scores
    start [K], transitions [K, K], end [K] and the bool arrays allowed_start,
    allowed_transitions, allowed_end. Floats are written exactly (float32 -> JSON -> float32).
    """
    data: dict[str, Any] = {"format_version": FORMAT_VERSION}
    for name, array in arrays.items():
        data[name] = np.asarray(array, bool if name.startswith("allowed_") else np.float32).tolist()
    write_text_atomic(path, json.dumps(data) + "\n")


def read_crf(path: Path, num_labels: int) -> ViterbiDecoder:
    """The decoder of crf.json, checked to be over ``num_labels`` tags."""
    data = _read_json(path, "the CRF's scores", MAX_VOCABULARY_BYTES)
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {data.get('format_version')!r} is not supported (this "
            f"seqlstm reads {FORMAT_VERSION})"
        )
    arrays = {}
    for name, shape in (
        ("start", (num_labels,)),
        ("transitions", (num_labels, num_labels)),
        ("end", (num_labels,)),
    ):
        for key, dtype in ((name, np.float32), (f"allowed_{name}", bool)):
            try:
                array = np.asarray(data[key], dtype=dtype)
            except (KeyError, TypeError, ValueError):
                raise CheckpointError(f"{path}: {key} missing or not numbers") from None
            if array.shape != shape:
                raise CheckpointError(
                    f"{path}: {key} has shape {list(array.shape)}, expected {list(shape)} "
                    f"({num_labels} labels)"
                )
            if not np.isfinite(array).all():  # a NaN score would make every path NaN
                raise CheckpointError(f"{path}: {key} holds NaN or infinite values")
            arrays[key] = array
    return ViterbiDecoder.constrained(**arrays)


def _read_json(path: Path, what: str, limit: int) -> dict[str, Any]:
    data = read_json(path, limit)  # a regular file of at most `limit` bytes
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object ({what})")
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
