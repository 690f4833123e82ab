"""SubwordTokenizer: the one SentencePiece tokenizer shared by the tagger, translator and LM.

Text goes through `normalize` (NFKC, whitespace runs collapsed to one space, no leading or
trailing space) in Python, and SentencePiece itself runs with the identity normaliser. Keeping
the normalisation on the Python side makes it a public, testable function and gives the
round-trip guarantee

    tok.decode(tok.encode(text)) == tok.normalize(text)      for every str

because the model is trained with byte fallback: a character never seen in training is encoded
as its UTF-8 bytes (pieces `<0x00>`..`<0xFF>`), so encoding never produces `<unk>`.

Special ids are fixed: pad=0, unk=1, bos=2, eos=3. A saved tokenizer is a directory holding
`spm.model` (the SentencePiece model) and `tokenizer.json` (format version, model type, sizes
and special ids).
"""

from __future__ import annotations

import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import sentencepiece as spm

from seqlstm.atomic_files import write_bytes_atomic, write_text_atomic
from seqlstm.errors import CheckpointError, DataError
from seqlstm.model_directory_checks import (
    MAX_CONFIG_BYTES,
    MAX_VOCABULARY_BYTES,
    read_json,
    read_limited,
)

ModelType = Literal["unigram", "bpe", "char"]

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
_SPECIALS = {"pad_id": PAD_ID, "unk_id": UNK_ID, "bos_id": BOS_ID, "eos_id": EOS_ID}
_SPECIAL_IDS = tuple(_SPECIALS.values())
MODEL_FILE = "spm.model"
CONFIG_FILE = "tokenizer.json"
FORMAT_VERSION = 1

# SentencePiece marks word boundaries with U+2581; a literal one in the text would decode to a
# space, so normalisation turns it into a space up front and the round trip stays exact.
_WORD_BOUNDARY = "\u2581"
# Lone surrogates are not text and cannot be encoded as UTF-8 for SentencePiece.
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUM_SPECIALS = len(_SPECIALS)
_NUM_BYTE_PIECES = 256


def normalize(text: str) -> str:
    """The normal form that `decode(encode(text))` returns.

    Lone surrogates become U+FFFD, then NFKC, then U+2581 (SentencePiece's word-boundary mark)
    becomes a space, and every run of Unicode whitespace (tabs and newlines included) becomes a
    single space with none at either end. The result is a fixed point: normalize(normalize(s))
    == normalize(s).
    """
    text = unicodedata.normalize("NFKC", _SURROGATE.sub("\ufffd", text))
    return " ".join(text.replace(_WORD_BOUNDARY, " ").split())


class SubwordTokenizer:
    """A trained SentencePiece model (unigram, BPE or character) with byte fallback.

    Build one with `SubwordTokenizer.train`, `SubwordTokenizer.train_from_files` or
    `SubwordTokenizer.load`; the constructor takes a serialised SentencePiece model.
    """

    normalize = staticmethod(normalize)

    def __init__(self, model_proto: bytes, model_type: ModelType) -> None:
        self._model_proto = bytes(model_proto)
        self.model_type = model_type
        self._sp = spm.SentencePieceProcessor(model_proto=self._model_proto)
        found = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if found != _SPECIAL_IDS:
            raise ValueError(
                f"SentencePiece model has special ids (pad, unk, bos, eos) = {found}, "
                f"expected {_SPECIAL_IDS}"
            )

    # ----------------------------------------------------------------------------- training

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        model_type: ModelType = "unigram",
        character_coverage: float = 1.0,
        seed: int = 0,
        hard_vocab_limit: bool = True,
        num_threads: int = 4,
    ) -> SubwordTokenizer:
        """Train on an in-memory iterable of texts (streamed; each text is one sentence).

        vocab_size counts every piece: the 4 specials, the 256 byte pieces, the characters
        of the text (all of them at character_coverage=1.0) and the learnt subwords. With
        hard_vocab_limit=False it is an upper bound instead of an exact size; "char" models
        always treat it as an upper bound. num_threads is fixed rather than taken from the
        machine because SentencePiece's EM sums in a thread-dependent order: the same text
        gives byte-identical models only for the same num_threads.

        Raises DataError if no text is non-empty after normalisation, or if vocab_size does not
        fit the text (the message gives the size that would).
        """
        if model_type not in ("unigram", "bpe", "char"):
            raise ValueError(f"model_type must be 'unigram', 'bpe' or 'char', got {model_type!r}")
        if not 0.0 < character_coverage <= 1.0:
            raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage}")
        minimum = _NUM_SPECIALS + _NUM_BYTE_PIECES + 1
        if vocab_size < minimum:
            raise DataError(
                f"vocab_size={vocab_size} is too small: byte fallback alone takes "
                f"{_NUM_SPECIALS} special + {_NUM_BYTE_PIECES} byte pieces, so at least "
                f"{minimum} are needed, plus one per distinct character of the text"
            )
        sentences = _NormalizedSentences(texts)
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                hard_vocab_limit=hard_vocab_limit,
                byte_fallback=True,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                # normalize() already ran; SentencePiece must not change the text again
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                # long texts (a whole book as one string) are kept, not silently skipped
                max_sentence_length=1 << 30,
                num_threads=num_threads,
                minloglevel=2,
            )
        except RuntimeError as err:
            if sentences.error is not None:
                raise sentences.error from None
            raise _training_error(str(err), vocab_size, character_coverage, sentences) from None
        return cls(model.getvalue(), model_type)

    @classmethod
    def train_from_files(
        cls, paths: Sequence[str | os.PathLike], vocab_size: int, **kwargs
    ) -> SubwordTokenizer:
        """Train on the lines of UTF-8 text files, streamed; kwargs as for `train`.

        Raises DataError naming a file that is missing, has no non-blank line, or is not
        UTF-8 (with the line number).
        """
        paths = [Path(p) for p in paths]
        if not paths:
            raise DataError("train_from_files: no input files given")
        for path in paths:
            if not path.is_file():
                raise DataError(f"{path}: no such file")
        return cls.train(_read_lines(paths), vocab_size, **kwargs)

    # ----------------------------------------------------------------------------- encoding

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Subword ids of normalize(text), optionally framed by bos/eos."""
        return self._sp.encode(normalize(text), add_bos=add_bos, add_eos=add_eos)

    def encode_batch(
        self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """`encode` for many texts at once (one call into SentencePiece)."""
        normalized = [normalize(t) for t in texts]
        return self._sp.encode(normalized, add_bos=add_bos, add_eos=add_eos)

    def encode_words(self, words: Sequence[str]) -> tuple[list[int], list[int]]:
        """Encode pre-split words (tagging): (subword ids, index of the word of each subword).

        Each word is encoded on its own, as if preceded by a space, so every word - also
        punctuation and words of unseen characters - gets at least one subword, and
        decode(ids) == normalize(" ".join(words)). Since pieces never cross spaces, the ids
        equal encode(" ".join(words)) for words without inner whitespace. Raises DataError for
        a word that is empty after normalisation (it could not get a subword).
        """
        ids: list[int] = []
        word_index: list[int] = []
        # word by word: a word takes microseconds, while SentencePiece's batch call starts a
        # thread pool that cost about a millisecond a sentence (tagging got 2x faster)
        for i, word in enumerate(words):
            try:
                word_ids = self.encode_word(word)
            except DataError as err:
                raise DataError(f"encode_words: word {i}: {err}") from None
            ids.extend(word_ids)
            word_index.extend([i] * len(word_ids))
        return ids, word_index

    def encode_word(self, word: str) -> list[int]:
        """Subword ids of one pre-split word, encoded as if preceded by a space (see
        `encode_words`); DataError if the word is empty after normalisation."""
        normalized = normalize(word)
        if not normalized:
            raise DataError(
                f"{word!r} is empty after normalisation; every word needs at least one "
                "visible character"
            )
        return self._sp.encode(normalized)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a sequence of ids (list, tensor or array); pad/bos/eos are skipped.

        An `<unk>` id (never produced by `encode`) decodes to " ⁇ ".
        """
        return self._sp.decode(self._checked_ids(ids))

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        """`decode` for many sequences at once."""
        return self._sp.decode([self._checked_ids(ids) for ids in batch])

    def pieces(self, text: str) -> list[str]:
        """The subword strings of normalize(text); "▁" marks the start of a word."""
        return self._sp.encode(normalize(text), out_type=str)

    def id_to_piece(self, piece_id: int) -> str:
        return self._sp.id_to_piece(self._checked_ids([piece_id])[0])

    def piece_to_id(self, piece: str) -> int:
        """Id of a piece; unk_id if it is not in the vocabulary."""
        return self._sp.piece_to_id(piece)

    def _checked_ids(self, ids: Sequence[int]) -> list[int]:
        # SentencePiece's own message ("piece id is out of range") does not say which id
        checked = [int(i) for i in ids]
        size = len(self)
        for i in checked:
            if not 0 <= i < size:
                raise ValueError(f"id {i} is outside the vocabulary (0..{size - 1})")
        return checked

    def __len__(self) -> int:
        return self._sp.get_piece_size()

    @property
    def vocab_size(self) -> int:
        return len(self)

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    def __repr__(self) -> str:
        return f"SubwordTokenizer(model_type={self.model_type!r}, vocab_size={len(self)})"

    # ----------------------------------------------------------------------------- saving

    def save(self, directory: str | os.PathLike) -> None:
        """Write `spm.model` and `tokenizer.json` into directory (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format_version": FORMAT_VERSION,
            "model_type": self.model_type,
            "vocab_size": len(self),
            **_SPECIALS,
            "normalization": "nfkc+collapse_whitespace",
        }
        write_bytes_atomic(directory / MODEL_FILE, self._model_proto)
        write_text_atomic(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SubwordTokenizer:
        """Load what `save` wrote; CheckpointError names a missing, corrupt or mismatched file."""
        directory = Path(directory)
        config_path, model_path = directory / CONFIG_FILE, directory / MODEL_FILE
        for path in (config_path, model_path):
            if not path.exists():
                raise CheckpointError(f"tokenizer file missing: {path}")
        # both read within a size limit, and only if they are regular files
        config = read_json(config_path, MAX_CONFIG_BYTES)
        try:
            version, model_type = config["format_version"], config["model_type"]
            expected = {k: config[k] for k in ("vocab_size", *_SPECIALS)}
        except (KeyError, TypeError) as err:
            raise CheckpointError(
                f"{config_path}: not a valid tokenizer config (no {err})"
                if isinstance(err, KeyError)
                else f"{config_path}: not a valid tokenizer config (expected a JSON object)"
            ) from None
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{config_path}: format_version {version} is not supported "
                f"(this seqlstm reads {FORMAT_VERSION})"
            )
        if model_type not in ("unigram", "bpe", "char"):
            raise CheckpointError(f"{config_path}: unknown model_type {model_type!r}")
        model_proto = read_limited(model_path, MAX_VOCABULARY_BYTES)
        if not model_proto:  # SentencePiece takes no bytes for "no model" and logs about it
            raise CheckpointError(f"{model_path}: empty file, not a SentencePiece model")
        try:
            tok = cls(model_proto, model_type)
        except (RuntimeError, ValueError) as err:
            raise CheckpointError(f"{model_path}: not a SentencePiece model ({err})") from None
        found = {"vocab_size": len(tok), **_SPECIALS}
        if found != expected:
            raise CheckpointError(
                f"{model_path} does not match {config_path}: model has {found}, config says "
                f"{expected}"
            )
        return tok


class _NormalizedSentences:
    """Normalised, non-empty texts for the trainer, with what is needed to explain a failure.

    SentencePiece wraps an exception raised by the iterator into a RuntimeError; keeping the
    original lets `train` re-raise it (e.g. a DataError naming a file and line).
    """

    def __init__(self, texts: Iterable[str]) -> None:
        self._texts = texts
        self.count = 0
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            for i, text in enumerate(self._texts):
                if not isinstance(text, str):
                    raise TypeError(f"text {i} is a {type(text).__name__}, expected str")
                text = normalize(text)
                if text:
                    self.count += 1
                    yield text
        except Exception as err:
            self.error = err
            raise


def _training_error(
    message: str, vocab_size: int, coverage: float, sentences: _NormalizedSentences
) -> DataError:
    """Translate SentencePiece's trainer assertions into something a user can act on."""
    if sentences.count == 0:
        return DataError("no text to train the tokenizer on: every input text is empty or blank")
    too_small = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
    if too_small:
        needed = int(too_small.group(2))
        return DataError(
            f"vocab_size={vocab_size} is too small for this text: at least {needed} pieces are "
            f"needed ({_NUM_SPECIALS} special + {_NUM_BYTE_PIECES} byte pieces + "
            f"{needed - _NUM_SPECIALS - _NUM_BYTE_PIECES} characters at character_coverage="
            f"{coverage}); raise vocab_size or lower character_coverage"
        )
    too_large = re.search(r"too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if too_large:
        return DataError(
            f"vocab_size={vocab_size} is too large for this text: at most "
            f"{too_large.group(2)} pieces can be learnt from it; lower vocab_size, give more "
            "text, or pass hard_vocab_limit=False"
        )
    return DataError(f"SentencePiece could not train on this text: {message}")


def _read_lines(paths: Sequence[Path]) -> Iterator[str]:
    """Lines of each file, decoded line by line so an encoding error has a line number."""
    for path in paths:
        non_blank = 0
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(f"{path}:{lineno}: not UTF-8 text ({err.reason})") from None
                if line.strip():
                    non_blank += 1
                yield line
        if non_blank == 0:
            raise DataError(f"{path}: file is empty (no non-blank line to train on)")
