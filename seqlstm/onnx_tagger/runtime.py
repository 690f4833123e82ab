"""OnnxTagger: an exported BiLSTM-CRF tagger run by onnxruntime, without torch.

It reads the directory seqlstm.onnx_tagger.export writes and tags as the tagger does
(seqlstm.tasks.tagging.tagger): each distinct word of a call is encoded once - its subwords
by the same SubwordTokenizer (of the lowercased word with ``lowercase_subwords``), its
characters and word-table row by the same vocabularies, unknowns as <unk> - and embedded once
by word_features.onnx; the texts to read (sentences, or with document context the chunks of
seqlstm.tasks.tagging.document_chunks) go through emissions.onnx in batches of similar
length, the emissions are cut per sentence, and each sentence is decoded by constrained
Viterbi (seqlstm.onnx_tagger.viterbi) and its tags converted from the CRF's scheme to the
tagger's. Only onnxruntime, numpy, sentencepiece and torch-free seqlstm modules are imported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import onnxruntime as ort
except ImportError:
    raise ImportError(
        "OnnxTagger needs onnxruntime: pip install 'seqlstm[onnx]' (or onnxruntime)"
    ) from None

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
    read_crf,
    read_header,
)
from seqlstm.onnx_tagger.viterbi import ViterbiDecoder
from seqlstm.tasks.tagging.document_chunks import document_chunks
from seqlstm.tasks.tagging.word_codes import WordCode, WordCoder
from seqlstm.text.tag_schemes import convert_tags
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary
from seqlstm.text.words import sentence_words

# A sentence is raw text (split by seqlstm.text.words) or its list of words; a document is a
# sequence of sentences, read together (as the tagger takes them).
Sentence = str | Sequence[str]
Document = Sequence[Sentence]

# word_features.onnx embeds the distinct words of a call in pieces of at most this many word
# types x subwords or characters of the piece's longest word, which bounds the memory of the
# character CNN when one word is very long (the tagger's bound)
FEATURE_CELLS = 1 << 17


class OnnxTagger:
    """An exported tagger: :meth:`load` a directory, then :meth:`predict` sentences or
    :meth:`predict_documents` documents; :meth:`emissions` gives the scores the CRF decodes.

    ``config`` is the tagger's TaggerConfig as a dict, ``labels`` the CRF's labels.
    """

    def __init__(
        self,
        header: Header,
        word_features: ort.InferenceSession,
        emissions: ort.InferenceSession,
        decoder: ViterbiDecoder,
        tokenizer: SubwordTokenizer,
        vocabularies: dict[str, Vocabulary],
    ) -> None:
        self.config = header.config
        self.labels = vocabularies["labels"]
        self.chars = vocabularies.get("chars")
        self.words = vocabularies.get("words")
        self.tokenizer = tokenizer
        self._header = header
        self._word_features = word_features
        self._emissions = emissions
        self._decoder = decoder

    @classmethod
    def load(cls, directory: str | os.PathLike, threads: int | None = None) -> OnnxTagger:
        """The tagger exported into ``directory``; onnxruntime runs it on the CPU with
        ``threads`` threads per graph (None: onnxruntime's default, one per core).

        Raises CheckpointError naming the file for a missing or mismatched file, a format
        version this seqlstm does not read, or a graph the installed onnxruntime cannot load
        (e.g. of an opset it lacks).
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: no such directory (an exported tagger)")
        header = read_header(directory)
        missing = [name for name in header.files if not (directory / name).exists()]
        if missing:
            raise CheckpointError(f"{directory} is incomplete: missing {', '.join(missing)}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        word_features, emissions = (
            _session(directory / name, options, header.opset)
            for name in (WORD_FEATURES_FILE, EMISSIONS_FILE)
        )
        vocabularies = {
            name: Vocabulary.load(directory / VOCAB_DIR / f"{name}.json")
            for name in header.vocabularies
        }
        _check_graphs(directory, header, word_features, emissions, len(vocabularies["labels"]))
        decoder = read_crf(directory / CRF_FILE, header.num_labels)
        tokenizer = SubwordTokenizer.load(directory / TOKENIZER_DIR)
        return cls(header, word_features, emissions, decoder, tokenizer, vocabularies)

    # ----------------------------------------------------------------------------- prediction

    def predict(self, sentences: Sequence[Sentence], batch_size: int = 64) -> list[list[str]]:
        """The best tag sequence (config scheme) of each sentence, each read alone, in input
        order: BiLSTMCRFTagger.predict. A sentence is a list of words or a raw string (split
        by seqlstm.text.words); an empty one gets []."""
        words = _split(sentences)
        return self._decode(words, self._scores(words, None, batch_size), batch_size)

    def predict_documents(
        self, documents: Sequence[Document], batch_size: int = 64
    ) -> list[list[list[str]]]:
        """:meth:`predict` for documents: with document context (``context_words``) each
        sentence is read with its neighbours in its own document, never across documents,
        as BiLSTMCRFTagger.predict_documents reads it. One list of tag sequences a document.
        """
        if isinstance(documents, str) or any(isinstance(d, str) for d in documents):
            raise TypeError("pass a list of documents, each a list of sentences (str or words)")
        words = _split([sentence for document in documents for sentence in document])
        sizes = [len(document) for document in documents]
        tags = self._decode(words, self._scores(words, sizes, batch_size), batch_size)
        grouped, start = [], 0
        for size in sizes:
            grouped.append(tags[start : start + size])
            start += size
        return grouped

    def emissions(self, sentences: Sequence[Sentence], batch_size: int = 64) -> list[np.ndarray]:
        """The emission scores float32 [n, K] of each sentence of n words (K labels), each
        read alone: what BiLSTMCRFTagger.emissions gives, and the CRF decodes."""
        return self._scores(_split(sentences), None, batch_size)

    # ----------------------------------------------------------------------------- internals

    def _scores(
        self, words: Sequence[Sequence[str]], sizes: Sequence[int] | None, batch_size: int
    ) -> list[np.ndarray]:
        """Emissions [n, K] of each sentence: BiLSTMCRFTagger._scored_batches. ``sizes``: the
        sentences form consecutive documents of these numbers of sentences; None, or a
        tagger without context: every sentence is read alone."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        lengths = [len(sentence) for sentence in words]
        starts = np.cumsum([0, *lengths]).tolist()  # the first word of each sentence
        scores = np.zeros((starts[-1], self._header.num_labels), dtype=np.float32)
        table, numbers = self._word_table(words)
        flags = np.zeros(starts[-1] + 1, dtype=bool)
        flags[starts[:-1]] = True  # the sentence starts (and one past the end, never read)
        context, chunk_words = self.config["context_words"], self.config["chunk_words"]
        if sizes is None or not context:  # every sentence alone, and whole
            sizes, chunk_words = [1] * len(words), 0
        chunks = sorted(
            document_chunks(lengths, sizes, context, chunk_words), key=lambda c: c.stop - c.start
        )
        for begin in range(0, len(chunks), batch_size):
            part = chunks[begin : begin + batch_size]
            width = max(c.stop - c.start for c in part)
            rows = np.zeros((len(part), width), dtype=np.int64)  # padding reads row 0
            sentence_start = np.zeros((len(part), width), dtype=bool)
            for row, c in enumerate(part):
                rows[row, : c.stop - c.start] = numbers[c.start : c.stop]
                sentence_start[row, : c.stop - c.start] = flags[c.start : c.stop]
            inputs = {
                FEATURES: table[rows],
                LENGTHS: np.array([c.stop - c.start for c in part], dtype=np.int64),
            }
            if context:
                inputs[SENTENCE_START] = sentence_start
            batch_scores = self._emissions.run([EMISSIONS], inputs)[0]
            for row, c in enumerate(part):
                scores[c.target_start : c.target_stop] = batch_scores[
                    row, c.target_start - c.start : c.target_stop - c.start
                ]
        return [scores[start:stop] for start, stop in zip(starts, starts[1:], strict=False)]

    def _decode(
        self, words: Sequence[Sequence[str]], scores: list[np.ndarray], batch_size: int
    ) -> list[list[str]]:
        """Tags (config scheme) of each sentence from its emissions, decoded in batches of
        sentences of similar length."""
        results: list[list[str]] = [[] for _ in words]
        order = sorted(range(len(words)), key=lambda i: len(words[i]))
        for begin in range(0, len(order), batch_size):
            indices = order[begin : begin + batch_size]
            lengths = [len(words[i]) for i in indices]
            padded = np.zeros((len(indices), max(lengths), self._header.num_labels), np.float32)
            for row, i in enumerate(indices):
                padded[row, : lengths[row]] = scores[i]
            for i, path in zip(indices, self._decoder.decode(padded, lengths), strict=True):
                labels = self.labels.decode(path)
                results[i] = convert_tags(labels, self.config["crf_scheme"], self.config["scheme"])
        return results

    @property
    def word_coder(self) -> WordCoder:
        """How the exported tagger encodes a word (seqlstm.tasks.tagging.word_codes)."""
        return WordCoder(self.tokenizer, self.chars, self.words, self.config["lowercase_subwords"])

    def _word_table(self, sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """The features of each distinct word of the sentences, float32 [V, D], and the row
        of every word of the sentences, one after another, int64 [N]."""
        codes, numbers = self.word_coder.distinct_word_codes(sentences)
        table = np.zeros((len(codes), self._header.feature_dim), dtype=np.float32)

        def width(i: int) -> int:
            return max(len(codes[i][0]), len(codes[i][1]), 1)

        piece: list[int] = []  # words by length, so a piece pads its rows little
        for i in sorted(range(len(codes)), key=width):
            if piece and (len(piece) + 1) * width(i) > FEATURE_CELLS:
                table[piece] = self._embed_words([codes[j] for j in piece])
                piece = []
            piece.append(i)
        if piece:
            table[piece] = self._embed_words([codes[j] for j in piece])
        return table, np.array(numbers, dtype=np.int64)

    def _embed_words(self, codes: Sequence[WordCode]) -> np.ndarray:
        """Features float32 [V, D] of word types given by their codes (:attr:`word_coder`)."""
        inputs = {SUBWORD_IDS: _padded([code[0] for code in codes], self.tokenizer.pad_id)}
        if self.chars is not None:
            inputs[CHAR_IDS] = _padded([code[1] for code in codes], self.chars.pad_id)
        if self.words is not None:
            inputs[WORD_IDS] = np.array([code[2] for code in codes], dtype=np.int64)
        return self._word_features.run([FEATURES], inputs)[0]


def _check_graphs(
    directory: Path,
    header: Header,
    word_features: ort.InferenceSession,
    emissions: ort.InferenceSession,
    num_labels: int,
) -> None:
    """The graphs' inputs and outputs are those of the tagger config in the header, the
    features the one graph makes the other reads, and the ``num_labels`` labels of
    vocab/labels.json get one emission score each; CheckpointError naming the file if not."""
    config = header.config
    for name, session, inputs, output in (
        (
            WORD_FEATURES_FILE,
            word_features,
            [SUBWORD_IDS]
            + [CHAR_IDS] * (config["char_filters"] > 0)
            + [WORD_IDS] * (config["word_embedding_dim"] > 0),
            FEATURES,
        ),
        (
            EMISSIONS_FILE,
            emissions,
            [FEATURES, LENGTHS] + [SENTENCE_START] * (config["context_words"] > 0),
            EMISSIONS,
        ),
    ):
        found = sorted(node.name for node in session.get_inputs())
        outputs = [node.name for node in session.get_outputs()]
        if found != sorted(inputs) or output not in outputs:
            raise CheckpointError(
                f"{directory / name}: inputs {found} and outputs {outputs}, expected inputs "
                f"{sorted(inputs)} and output {output!r} for the tagger config of "
                f"{directory / CONFIG_FILE}"
            )
    for name, verb, size in (
        (WORD_FEATURES_FILE, "makes", _last_dim(word_features.get_outputs(), FEATURES)),
        (EMISSIONS_FILE, "reads", _last_dim(emissions.get_inputs(), FEATURES)),
    ):
        if size != header.feature_dim:
            raise CheckpointError(
                f"{directory / name} {verb} {size} features a word, {directory / CONFIG_FILE} "
                f"says {header.feature_dim}"
            )
    scores = _last_dim(emissions.get_outputs(), EMISSIONS)
    for source, count in (
        (directory / VOCAB_DIR / "labels.json", num_labels),
        (directory / CONFIG_FILE, header.num_labels),
    ):
        if count != scores:
            raise CheckpointError(
                f"{source} has {count} labels, but {directory / EMISSIONS_FILE} scores {scores} "
                f"(its output {EMISSIONS} is [batch, steps, {scores}])"
            )


def _session(path: Path, options: ort.SessionOptions, opset: int) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's errors share no base class below Exception
        reason = str(err).rsplit("failed:", 1)[-1].strip()
        # onnxruntime starts its reason with the C++ source line and function that raised it
        reason = re.sub(r"^/\S+:\d+ [^(]*\(.*?\) ", "", reason)
        raise CheckpointError(
            f"{path}: onnxruntime {ort.__version__} cannot load this graph (exported at ONNX "
            f"opset {opset}): {reason}"
        ) from None


def _last_dim(nodes: Sequence[Any], name: str) -> int | str:
    """The size of the last axis of the graph input or output ``name`` (a str if dynamic)."""
    return next(node.shape[-1] for node in nodes if node.name == name)


def _padded(rows: Sequence[Sequence[int]], pad: int) -> np.ndarray:
    """int64 [len(rows), longest row (at least 1)], ``pad`` after each row."""
    array = np.full((len(rows), max(max(map(len, rows), default=0), 1)), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        array[i, : len(row)] = row
    return array


def _split(sentences: Sequence[Sentence]) -> list[Sequence[str]]:
    """The words of each sentence (seqlstm.text.words.sentence_words, as the tagger reads them)."""
    if isinstance(sentences, str):
        raise TypeError("pass a list of sentences, not one string (use [text])")
    return [sentence_words(sentence, number)[0] for number, sentence in enumerate(sentences)]
