"""Vocabulary: a frozen token <-> index map for labels, words and characters.

Order of `Vocabulary.build`: pad, unk, the other specials (in the order given), then the
counted tokens by frequency, highest first, ties broken by Unicode code-point order of the
token. The order therefore depends only on the counts, not on the order of the data (shuffled
or sharded input gives the same vocabulary).

A vocabulary never grows after it is built: there is no `add`, attributes cannot be set, and
an unknown token maps to unk or, when there is no unk token (label vocabularies), raises
KeyError.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from seqlstm.atomic_files import write_text_atomic
from seqlstm.errors import CheckpointError
from seqlstm.model_directory_checks import MAX_VOCABULARY_BYTES, read_json

FORMAT_VERSION = 1


class Vocabulary:
    """Tokens in a fixed order; `index(token)` and `vocab[i]` convert between the two."""

    __slots__ = ("_tokens", "_index", "pad_token", "unk_token", "specials")

    def __init__(
        self,
        tokens: Sequence[str],
        *,
        pad_token: str | None = None,
        unk_token: str | None = None,
        specials: Sequence[str] = (),
    ) -> None:
        """Wrap an explicit token list; pad, unk and specials must be among the tokens."""
        tokens = tuple(tokens)
        index: dict[str, int] = {}
        for i, token in enumerate(tokens):
            if not isinstance(token, str):
                raise TypeError(f"token {i} is a {type(token).__name__}, expected str")
            if token in index:
                raise ValueError(f"token {token!r} appears twice (at {index[token]} and {i})")
            index[token] = i
        for name, token in (("pad_token", pad_token), ("unk_token", unk_token)):
            if token is not None and token not in index:
                raise ValueError(f"{name} {token!r} is not one of the tokens")
        for token in specials:
            if token not in index:
                raise ValueError(f"special {token!r} is not one of the tokens")
        set_ = object.__setattr__  # the class forbids setattr after construction
        set_(self, "_tokens", tokens)
        set_(self, "_index", index)
        set_(self, "pad_token", pad_token)
        set_(self, "unk_token", unk_token)
        set_(self, "specials", tuple(specials))

    @classmethod
    def build(
        cls,
        items: Iterable[str] | Iterable[Iterable[str]],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        pad_token: str | None = "<pad>",
        unk_token: str | None = "<unk>",
        specials: Sequence[str] = (),
    ) -> Vocabulary:
        """Count tokens and build the vocabulary (order: see the module docstring).

        items is a stream of tokens or of token sequences (sentences); a str item is one token,
        so a character vocabulary is built from `(ch for word in words for ch in word)`.
        Tokens seen fewer than min_freq times are left out; max_size bounds len(vocab),
        pad/unk/specials included, keeping the most frequent tokens.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        reserved = [t for t in (pad_token, unk_token) if t is not None] + list(specials)
        if len(set(reserved)) != len(reserved):
            raise ValueError(f"pad_token, unk_token and specials must differ, got {reserved}")
        if max_size is not None and max_size < len(reserved):
            raise ValueError(
                f"max_size={max_size} leaves no room: {len(reserved)} entries are reserved "
                f"for pad/unk/specials {reserved}"
            )
        counts: Counter[str] = Counter()
        for i, item in enumerate(items):
            if isinstance(item, str):
                counts[item] += 1
                continue
            for token in item:
                if not isinstance(token, str):
                    raise TypeError(f"item {i} holds a {type(token).__name__}, expected str tokens")
                counts[token] += 1
        reserved_set = set(reserved)
        counted = sorted(
            (t for t, c in counts.items() if c >= min_freq and t not in reserved_set),
            key=lambda t: (-counts[t], t),
        )
        if max_size is not None:
            counted = counted[: max_size - len(reserved)]
        return cls(reserved + counted, pad_token=pad_token, unk_token=unk_token, specials=specials)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Vocabulary is frozen: cannot set {name!r}")

    # ----------------------------------------------------------------------------- lookup

    def index(self, token: str) -> int:
        """Index of token; unk_id for an unknown token, KeyError if there is no unk token."""
        i = self._index.get(token)
        if i is not None:
            return i
        if self.unk_token is None:
            raise KeyError(
                f"token {token!r} is not in the vocabulary ({len(self)} entries) and the "
                "vocabulary has no unk token"
            )
        return self._index[self.unk_token]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.index(t) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ids (ints, or a tensor/array of them)."""
        return [self[int(i)] for i in ids]

    def __getitem__(self, i: int) -> str:
        if not 0 <= i < len(self._tokens):
            raise IndexError(f"index {i} is outside the vocabulary (0..{len(self) - 1})")
        return self._tokens[i]

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    @property
    def pad_id(self) -> int | None:
        return None if self.pad_token is None else self._index[self.pad_token]

    @property
    def unk_id(self) -> int | None:
        return None if self.unk_token is None else self._index[self.unk_token]

    def _key(self) -> tuple:
        return (self._tokens, self.pad_token, self.unk_token, self.specials)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._tokens[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"Vocabulary({len(self)} tokens: {head}{more})"

    # ----------------------------------------------------------------------------- saving

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON, atomically (see seqlstm.atomic_files)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format_version": FORMAT_VERSION,
            "pad_token": self.pad_token,
            "unk_token": self.unk_token,
            "specials": list(self.specials),
            "tokens": list(self._tokens),
        }
        text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
        write_text_atomic(path, text)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read what `save` wrote; CheckpointError names a missing or corrupt file."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"vocabulary file missing: {path}")
        data = read_json(path, MAX_VOCABULARY_BYTES)  # a regular file, within a size limit
        try:
            version = data["format_version"]
            tokens, specials = data["tokens"], data["specials"]
            pad_token, unk_token = data["pad_token"], data["unk_token"]
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"{path}: not a valid vocabulary file ({err!r})") from None
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: format_version {version} is not supported (this seqlstm reads "
                f"{FORMAT_VERSION})"
            )
        if not isinstance(tokens, list) or not isinstance(specials, list):
            raise CheckpointError(f"{path}: 'tokens' and 'specials' must be lists")
        for name, token in (("pad_token", pad_token), ("unk_token", unk_token)):
            if token is not None and not isinstance(token, str):
                raise CheckpointError(
                    f"{path}: {name!r} must be a string or null, not a {type(token).__name__}"
                )
        if not all(isinstance(token, str) for token in specials):
            raise CheckpointError(f"{path}: 'specials' must be a list of strings")
        try:
            return cls(tokens, pad_token=pad_token, unk_token=unk_token, specials=specials)
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: not a valid vocabulary ({err})") from None
