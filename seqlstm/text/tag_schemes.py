"""Chunk tag schemes: IOB1, IOB2 (BIO) and IOBES, conversion between them, and validity.

A tag is either ``O`` or ``P-TYPE`` with prefix ``P`` in B (begin), I (inside), E (end),
S (single) and a non-empty chunk ``TYPE`` (``B-PER``, ``I-ORG`` ...). The schemes differ in
which prefixes they use and where:

- IOB1: B and I; chunks start with I-, and B- marks only a chunk that directly follows a
  chunk of the same type (the original CoNLL-2003 files).
- IOB2: B and I; every chunk starts with B- (the usual BIO).
- IOBES: B, I, E, S; a one-token chunk is S-, longer ones are B- I-* E-.

Sequences are read into chunks the way conlleval reads them, whatever the scheme: a chunk
goes on only while the tag is I- or E- of the previous chunk's type after a B- or I-; any
other non-O tag starts a new chunk. So a stray I-X after O starts a chunk, and a conversion
to any scheme keeps the chunks exactly.
"""

import functools
from collections.abc import Iterable, Sequence
from itertools import pairwise

from seqlstm.errors import DataError

SCHEMES = ("IOB1", "IOB2", "IOBES")

_PREFIXES = {"IOB1": frozenset("BI"), "IOB2": frozenset("BI"), "IOBES": frozenset("BIES")}
_FORBIDDEN_FIRST = {"IOB1": ("B",), "IOB2": ("I",), "IOBES": ("I", "E")}
_FORBIDDEN_LAST = {"IOB1": (), "IOB2": (), "IOBES": ("B", "I")}


@functools.lru_cache(maxsize=4096)  # a corpus has few distinct tags and millions of tokens
def split_tag(tag: str) -> tuple[str, str]:
    """Split ``"B-PER"`` into ``("B", "PER")``; ``"O"`` gives ``("O", "")``.

    The type may itself contain ``-`` (only the first one separates). Raises DataError for
    anything else, so that a POS tag or a typo is never read as a chunk tag.
    """
    if tag == "O":
        return "O", ""
    prefix, sep, chunk_type = tag.partition("-")
    if not sep or prefix not in _PREFIXES["IOBES"] or not chunk_type:
        raise DataError(f"{tag!r} is not a chunk tag: expected 'O' or B-/I-/E-/S- and a type")
    return prefix, chunk_type


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")


def _split_all(tags: Sequence[str], scheme: str | None = None) -> list[tuple[str, str]]:
    """Split every tag; with ``scheme``, also insist that its prefixes belong to that scheme."""
    parts = []
    for position, tag in enumerate(tags):
        try:
            prefix, chunk_type = split_tag(tag)
        except DataError as exc:
            raise DataError(f"tag {position}: {exc}") from None
        if scheme is not None and prefix != "O" and prefix not in _PREFIXES[scheme]:
            allowed = "/".join(sorted(_PREFIXES[scheme]))
            raise DataError(f"tag {position}: {tag!r} is not an {scheme} tag (only {allowed}-)")
        parts.append((prefix, chunk_type))
    return parts


def tag_chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks of a tag sequence as ``(type, start, end)``, end exclusive, conlleval-style.

    Works for every scheme (the prefixes decide, not the scheme's name).
    """
    chunks: list[tuple[str, int, int]] = []
    start, current_type, previous_prefix = -1, "", "O"
    for position, (prefix, chunk_type) in enumerate(_split_all(tags)):
        continues = (
            prefix in ("I", "E") and previous_prefix in ("B", "I") and chunk_type == current_type
        )
        if not continues:
            if start >= 0:
                chunks.append((current_type, start, position))
            start, current_type = (-1, "") if prefix == "O" else (position, chunk_type)
        previous_prefix = prefix
    if start >= 0:
        chunks.append((current_type, start, len(tags)))
    return chunks


def chunks_to_tags(length: int, chunks: Iterable[tuple[str, int, int]], scheme: str) -> list[str]:
    """Write non-overlapping ``(type, start, end)`` chunks as ``length`` tags in ``scheme``."""
    _check_scheme(scheme)
    tags = ["O"] * length
    previous_end, previous_type = -1, ""
    for chunk_type, start, end in sorted(chunks, key=lambda chunk: chunk[1]):
        if start < previous_end or not 0 <= start < end <= length:
            raise ValueError(f"chunk {(chunk_type, start, end)} overlaps or is out of range")
        if scheme == "IOB1":
            # B- only where it is needed: a chunk right after one of the same type.
            touching = start == previous_end and chunk_type == previous_type
            tags[start] = f"B-{chunk_type}" if touching else f"I-{chunk_type}"
            inside = range(start + 1, end)
        elif scheme == "IOB2":
            tags[start] = f"B-{chunk_type}"
            inside = range(start + 1, end)
        elif end - start == 1:
            tags[start] = f"S-{chunk_type}"
            inside = range(0)
        else:
            tags[start], tags[end - 1] = f"B-{chunk_type}", f"E-{chunk_type}"
            inside = range(start + 1, end - 1)
        for position in inside:
            tags[position] = f"I-{chunk_type}"
        previous_end, previous_type = end, chunk_type
    return tags


def convert_tags(tags: Sequence[str], from_scheme: str, to_scheme: str) -> list[str]:
    """Rewrite ``tags`` from ``from_scheme`` into ``to_scheme``, keeping every chunk.

    ``from_scheme`` fixes which prefixes may occur (an E- or S- in IOB2 input is a DataError);
    within that, invalid orders are read as conlleval reads them (a stray I-X starts a chunk),
    so IOB1 -> IOB2 turns ``I-X`` after ``O`` into ``B-X``. A valid sequence converted to its
    own scheme comes back unchanged.
    """
    _check_scheme(from_scheme)
    _check_scheme(to_scheme)
    parts = _split_all(tags, from_scheme)
    if from_scheme == to_scheme and _is_valid(parts, to_scheme):
        return list(tags)
    return chunks_to_tags(len(tags), tag_chunks(tags), to_scheme)


def allowed_start_labels(labels: Iterable[str], scheme: str) -> set[str]:
    """The labels a valid ``scheme`` sequence may start with (not I- in IOB2, not B- in IOB1)."""
    _check_scheme(scheme)
    return {label for label in labels if _usable(split_tag(label)[0], scheme, first=True)}


def allowed_end_labels(labels: Iterable[str], scheme: str) -> set[str]:
    """The labels a valid ``scheme`` sequence may end with (IOBES: not B- or I-)."""
    _check_scheme(scheme)
    return {label for label in labels if _usable(split_tag(label)[0], scheme, last=True)}


def _usable(prefix: str, scheme: str, *, first: bool = False, last: bool = False) -> bool:
    """Whether ``scheme`` has tags with this prefix, at the start / end if asked."""
    if prefix != "O" and prefix not in _PREFIXES[scheme]:
        return False
    if first and prefix in _FORBIDDEN_FIRST[scheme]:
        return False
    return not (last and prefix in _FORBIDDEN_LAST[scheme])


def _transition_allowed(previous: tuple[str, str], current: tuple[str, str], scheme: str) -> bool:
    (previous_prefix, previous_type), (prefix, chunk_type) = previous, current
    same_chunk_type = previous_prefix != "O" and previous_type == chunk_type
    if scheme == "IOB1":
        return prefix != "B" or same_chunk_type
    if scheme == "IOB2":
        return prefix != "I" or same_chunk_type
    # IOBES: an open chunk (after B- or I-) must go on with I-/E- of its type; a closed one
    # (after O, E-, S-) must be followed by O, B- or S-.
    if previous_prefix in ("B", "I"):
        return prefix in ("I", "E") and same_chunk_type
    return prefix in ("O", "B", "S")


def allowed_transitions(labels: Iterable[str], scheme: str) -> set[tuple[str, str]]:
    """All ``(from_label, to_label)`` pairs that may stand next to each other in ``scheme``.

    Together with :func:`allowed_start_labels` and :func:`allowed_end_labels` this is exactly
    :func:`is_valid_sequence`: a sequence is valid iff it starts and ends with allowed labels
    and every neighbouring pair is allowed. Under IOB2, for example, ``O -> I-X`` and
    ``B-Y -> I-X`` are missing. Labels that no tag of ``scheme`` can use (E-/S- outside IOBES)
    get no transitions at all.
    """
    _check_scheme(scheme)
    parsed = {label: split_tag(label) for label in labels}
    usable = {label: parts for label, parts in parsed.items() if _usable(parts[0], scheme)}
    return {
        (a, b)
        for a, parts_a in usable.items()
        for b, parts_b in usable.items()
        if _transition_allowed(parts_a, parts_b, scheme)
    }


def is_valid_sequence(tags: Sequence[str], scheme: str) -> bool:
    """Whether ``tags`` follows ``scheme`` strictly (see the module docstring for the rules).

    Raises DataError for strings that are not chunk tags at all.
    """
    _check_scheme(scheme)
    return _is_valid(_split_all(tags), scheme)


def _is_valid(parts: Sequence[tuple[str, str]], scheme: str) -> bool:
    if not parts:
        return True
    if not all(_usable(prefix, scheme) for prefix, _ in parts):
        return False
    if not _usable(parts[0][0], scheme, first=True) or not _usable(parts[-1][0], scheme, last=True):
        return False
    return all(_transition_allowed(a, b, scheme) for a, b in pairwise(parts))


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """The weakest scheme under which every sequence is valid, in the order IOB1, IOB2, IOBES.

    Data without any chunk fits all three and gives ``"IOB1"``; data in which every chunk
    starts with B- gives ``"IOB2"``. Data that breaks the rules of every scheme is not
    rejected: it gives ``"IOBES"`` if any E-/S- tag occurs, else ``"IOB1"``, and conversion
    then reads it as conlleval does. Raises DataError (naming the sequence and position) for
    strings that are not chunk tags.
    """
    fits = dict.fromkeys(SCHEMES, True)
    has_end_or_single = False
    for number, tags in enumerate(sequences):
        try:
            parts = _split_all(tags)
        except DataError as exc:
            raise DataError(f"sequence {number}, {exc}") from None
        has_end_or_single = has_end_or_single or any(prefix in ("E", "S") for prefix, _ in parts)
        for scheme in SCHEMES:
            fits[scheme] = fits[scheme] and _is_valid(parts, scheme)
    for scheme in SCHEMES:
        if fits[scheme]:
            return scheme
    return "IOBES" if has_end_or_single else "IOB1"
