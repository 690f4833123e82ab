"""Seeded generators of awkward input for the fuzz suite (issue 18, item 5).

Every generator takes a ``random.Random`` and returns what one case reads: the bytes of a
text file (`TEXT_KINDS`), of a CoNLL file (`CONLL_KINDS`), the bytes of a pair of parallel
files (`PARALLEL_KINDS`) or a prompt string (`PROMPT_KINDS`). A case is ``(kind, seed)``
and its input is ``GENERATORS[kind](random.Random(seed))``, so the id of a failing case
(``crlf-s3017``) is all it takes to make its input again: `case_input("crlf", 3017)`.

The inputs mix well-formed text with what careless users and hostile files bring: random
bytes, invalid UTF-8, UTF-8/UTF-16 byte-order marks, UTF-16 without one, CRLF and lone CR
line ends, NUL bytes, a 200 KB line, empty and blank-only files, lines of Unicode
whitespace, characters that normalisation removes, combining marks, emoji, control
characters, wrong CoNLL column counts, ``-DOCSTART-`` lines, unequal and empty parallel
files; the ``mixed*`` kinds chain several mutations.

`reference_lines` is the suite's own reading of a file's lines (the documented rules of
seqlstm.data.readers: ``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line, a leading UTF-8
BOM is dropped), against which results are checked.
"""

import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

# SEQLSTM_FUZZ_ROUNDS=N: N times as many seeds per kind (tests/fuzz/conftest.py)
ROUNDS = max(1, int(os.environ.get("SEQLSTM_FUZZ_ROUNDS", "1")))

WORDS = [
    "Peter", "Blackburn", "visited", "Paris", "Reuters", "met", "Bill", "Clinton", "EU",
    "rejects", "German", "call", "to", "boycott", "British", "lamb", ".", ",", "the", "a",
    "in", "New", "York", "'s", "(", ")", "--", "1996-08-22", "3.5", "100", "ein", "Hund",
    "rennt", "Zürich", "naïve", "São", "Paulo", "東京", "Москва", "القاهرة", "Ærø",
]  # fmt: skip
ENTITY_TYPES = ["PER", "LOC", "ORG", "MISC"]
# characters Python's str.split() takes for whitespace, and a few that look like it
WHITESPACE = [
    " ", "\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680",
    "\u2000", "\u2007", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
    "\u200b", "\u180e", "\ufeff",
]  # fmt: skip
# characters that the tokenizer's normalisation (NFKC, U+2581 and whitespace to spaces,
# stripped) turns into nothing
VANISHING = ["\u2581", "\xa0", "\u2581\u2581", "\xa0\u2581", "\u2029", "\u3000", "\u2028"]
COMBINING = ["\u0301", "\u0300", "\u0308", "\u20dd", "\u0489", "\u036f", "\u0e49"]
EMOJI = [
    "😀", "👍🏽", "👩‍👩‍👧‍👦", "🇺🇳", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "❤️", "🤷‍♀️", "1️⃣", "\U0001f9ff" * 3,
]  # fmt: skip
CONTROL = ["\x01", "\x02", "\x07", "\x08", "\x1b[31m", "\x7f", "\x0e", "\x1a"]
ODD_UNICODE = [
    "\ufffd", "\uffff", "\ufdd0", "\ue000", "\u202e", "\u200d", "\u00ad", "\ufb01",
    "\uff21\uff22", "\u2126", "\U0010fffd", "\U0001d400", "ǅ", "ﷺ", "\u0345",
]  # fmt: skip
INVALID_UTF8 = [
    b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80",
    b"\xe2\x82", b"\xf8\x88\x80\x80\x80",
]  # fmt: skip
LONG_LINE_BYTES = 200_000
DOCSTART = "-DOCSTART- -X- -X- O"


def sentence(rng: random.Random, low: int = 1, high: int = 9) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def sentences(rng: random.Random, low: int = 1, high: int = 6) -> list[str]:
    return [sentence(rng) for _ in range(rng.randint(low, high))]


def join_lines(rng: random.Random, lines: list[str], ending: str = "\n") -> str:
    """The lines with ``ending`` after each; sometimes none after the last."""
    text = "".join(line + ending for line in lines)
    return text.removesuffix(ending) if lines and rng.random() < 0.3 else text


def insert_at_random(rng: random.Random, text, piece, times: int = 1):
    for _ in range(times):
        at = rng.randint(0, len(text))
        text = text[:at] + piece + text[at:]
    return text


# ----------------------------------------------------------------------------- mutations

# str -> str, on the text before it is encoded


def _mutate_line_ends(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    return "".join(
        line + (rng.choice(["\n", "\r\n", "\r"]) if i < len(lines) - 1 else "")
        for i, line in enumerate(lines)
    )


def _mutate_whitespace_line(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    blank = "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 3)))
    lines.insert(rng.randint(0, len(lines)), blank)
    return "\n".join(lines)


def _mutate_space_characters(rng: random.Random, text: str) -> str:
    return text.replace(" ", rng.choice(WHITESPACE), rng.randint(1, 3))


def _mutate_word(rng: random.Random, text: str) -> str:
    kind = rng.choice([VANISHING, COMBINING, EMOJI, CONTROL, ODD_UNICODE])
    return insert_at_random(rng, text, " " + rng.choice(kind) + " ")


def _mutate_inside_word(rng: random.Random, text: str) -> str:
    kind = rng.choice([COMBINING, EMOJI, ODD_UNICODE, ["\xa0", "\u2581", "\u200b"]])
    return insert_at_random(rng, text, rng.choice(kind), rng.randint(1, 3))


def _mutate_docstart(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    lines.insert(rng.randint(0, len(lines)), rng.choice([DOCSTART, "-DOCSTART-"]))
    return "\n".join(lines)


TEXT_MUTATIONS: list[Callable[[random.Random, str], str]] = [
    _mutate_line_ends,
    _mutate_whitespace_line,
    _mutate_space_characters,
    _mutate_word,
    _mutate_inside_word,
    _mutate_docstart,
]

# bytes -> bytes, on the encoded file


def _mutate_invalid_utf8(rng: random.Random, data: bytes) -> bytes:
    return insert_at_random(rng, data, rng.choice(INVALID_UTF8), rng.randint(1, 2))


def _mutate_nul(rng: random.Random, data: bytes) -> bytes:
    return insert_at_random(rng, data, b"\0" * rng.choice([1, 1, 2, 4]), rng.randint(1, 3))


def _mutate_bom(rng: random.Random, data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data


def _mutate_truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randint(0, len(data))]


BYTE_MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _mutate_invalid_utf8,
    _mutate_nul,
    _mutate_bom,
    _mutate_truncate,
]


def mixed(rng: random.Random, text: str) -> bytes:
    """``text`` after 2 to 4 text mutations, encoded, then (half the time) a byte mutation."""
    for mutation in rng.sample(TEXT_MUTATIONS, rng.randint(2, 4)):
        text = mutation(rng, text)
    data = text.encode("utf-8")
    if rng.random() < 0.5:
        data = rng.choice(BYTE_MUTATIONS)(rng, data)
    return data


# ----------------------------------------------------------------------------- text files


def _encoded(text: str) -> bytes:
    return text.encode("utf-8")


def long_line(rng: random.Random) -> str:
    """About LONG_LINE_BYTES of one line of words; sometimes a line of one long word after it."""
    words: list[str] = []
    size = 0
    while size < LONG_LINE_BYTES:
        words.append(rng.choice(WORDS))
        size += len(words[-1]) + 1
    line = " ".join(words)
    if rng.random() < 0.3:
        line += "\n" + rng.choice(["x", "é", "東"]) * (LONG_LINE_BYTES // 6)
    return line


TEXT_KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "plain": lambda rng: _encoded(join_lines(rng, sentences(rng))),
    "random_bytes": lambda rng: rng.randbytes(rng.randint(1, 400)),
    "invalid_utf8": lambda rng: _mutate_invalid_utf8(
        rng, _encoded(join_lines(rng, sentences(rng)))
    ),
    "utf8_bom": lambda rng: b"\xef\xbb\xbf" + _encoded(join_lines(rng, sentences(rng))),
    "utf16_bom": lambda rng: join_lines(rng, sentences(rng)).encode(
        rng.choice(["utf-16", "utf-32"])
    ),
    "utf16_no_bom": lambda rng: join_lines(rng, sentences(rng)).encode(
        rng.choice(["utf-16-le", "utf-16-be"])
    ),
    "crlf": lambda rng: _encoded(join_lines(rng, sentences(rng), "\r\n")),
    "lone_cr": lambda rng: _encoded(join_lines(rng, sentences(rng), "\r")),
    "mixed_line_ends": lambda rng: _encoded(
        _mutate_line_ends(rng, join_lines(rng, sentences(rng, 2)))
    ),
    "nul": lambda rng: _mutate_nul(rng, _encoded(join_lines(rng, sentences(rng)))),
    "long_line": lambda rng: _encoded(join_lines(rng, [long_line(rng), *sentences(rng, 0, 1)])),
    "empty": lambda rng: b"",
    "blank_only": lambda rng: _encoded(
        "".join(
            rng.choice(["", " ", "\t", "  \t "]) + rng.choice(["\n", "\r\n", "\r"])
            for _ in range(rng.randint(1, 6))
        )
    ),
    "whitespace_lines": lambda rng: _encoded(
        _mutate_space_characters(rng, _mutate_whitespace_line(rng, "\n".join(sentences(rng))))
    ),
    "vanishing_words": lambda rng: _encoded(
        "\n".join(
            insert_at_random(rng, line, " " + rng.choice(VANISHING) + " ")
            if rng.random() < 0.7
            else rng.choice(VANISHING)
            for line in sentences(rng)
        )
    ),
    "combining_marks": lambda rng: _encoded(
        "\n".join(
            insert_at_random(rng, line, rng.choice(COMBINING) * rng.randint(1, 12))
            for line in sentences(rng)
        )
    ),
    "emoji": lambda rng: _encoded(
        "\n".join(insert_at_random(rng, line, rng.choice(EMOJI), 2) for line in sentences(rng))
    ),
    "control_characters": lambda rng: _encoded(
        "\n".join(insert_at_random(rng, line, rng.choice(CONTROL), 2) for line in sentences(rng))
    ),
    "odd_unicode": lambda rng: _encoded(
        "\n".join(
            insert_at_random(rng, line, rng.choice(ODD_UNICODE), 2) for line in sentences(rng)
        )
    ),
    "docstart_lines": lambda rng: _encoded(_mutate_docstart(rng, "\n".join(sentences(rng)))),
    "mixed": lambda rng: mixed(rng, "\n".join(sentences(rng, 2, 8))),
}

# ----------------------------------------------------------------------------- CoNLL files


def conll_text(rng: random.Random, *, documents: bool | None = None) -> str:
    """A well-formed CoNLL file: 2 or 4 columns, IOB2 (or IOB1/IOBES) tags, maybe
    -DOCSTART- lines, sentences separated by one or more blank lines."""
    width = rng.choice([2, 4])
    separator = rng.choice([" ", "\t"])
    scheme = rng.choice(["IOB2", "IOB2", "IOB1", "IOBES"])
    if documents is None:
        documents = rng.random() < 0.4
    blocks: list[str] = []
    for _ in range(rng.randint(1, 3) if documents else 1):
        if documents:
            blocks.append(DOCSTART if width == 4 else "-DOCSTART- O")
        for _ in range(rng.randint(1, 4)):
            words = sentence(rng).split()
            tags = _tags(rng, len(words), scheme)
            middle = ["NNP", "B-NP"] if width == 4 else []
            blocks.append(
                "\n".join(separator.join([w, *middle, t]) for w, t in zip(words, tags, strict=True))
            )
    between = "\n" + "\n" * rng.choice([1, 1, 2])
    return between.join(blocks) + "\n"


def _tags(rng: random.Random, length: int, scheme: str) -> list[str]:
    tags: list[str] = []
    while len(tags) < length:
        if rng.random() < 0.6:
            tags.append("O")
            continue
        kind = rng.choice(ENTITY_TYPES)
        span = min(rng.randint(1, 3), length - len(tags))
        if scheme == "IOBES":
            tags += [f"S-{kind}"] if span == 1 else [f"B-{kind}"] + [f"I-{kind}"] * (span - 2)
            tags += [f"E-{kind}"] if span > 1 else []
        elif scheme == "IOB1":  # B- only right after a chunk of the same type
            first = "B" if tags and tags[-1].endswith(kind) else "I"
            tags += [f"{first}-{kind}"] + [f"I-{kind}"] * (span - 1)
        else:
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (span - 1)
    return tags


def _replace_line(rng: random.Random, text: str, change: Callable[[str], str]) -> str:
    lines = text.split("\n")
    tokens = [i for i, line in enumerate(lines) if line.strip() and "DOCSTART" not in line]
    if tokens:
        i = rng.choice(tokens)
        lines[i] = change(lines[i])
    return "\n".join(lines)


def _wrong_columns(rng: random.Random) -> str:
    def change(line: str) -> str:
        fields = line.split()
        return " ".join(fields[:-1]) if rng.random() < 0.5 else line + " extra"

    return _replace_line(rng, conll_text(rng), change)


def _bad_tag(rng: random.Random) -> str:
    bad = rng.choice(["B-FOO", "X-PER", "b-per", "B-", "-", "O-PER", "PER", "I-PER-", "B-DATE"])
    return _replace_line(rng, conll_text(rng), lambda line: line.rsplit(None, 1)[0] + " " + bad)


def _docstart_variants(rng: random.Random) -> str:
    blocks = [conll_text(rng, documents=False).strip("\n") for _ in range(rng.randint(0, 3))]
    marks = ["-DOCSTART- O", "-DOCSTART-", DOCSTART, "-DOCSTART-\tO", "-DOCSTART-X O"]
    parts: list[str] = []
    for block in [*blocks, ""]:
        for _ in range(rng.randint(0, 2)):
            parts.append(rng.choice(marks))
        if block:
            # sometimes no blank line between a -DOCSTART- line and the sentence before
            parts.append(block + ("\n" + rng.choice(marks) if rng.random() < 0.2 else ""))
    return "\n\n".join(parts) + rng.choice(["\n", ""])


def _conll_whitespace(rng: random.Random) -> str:
    text = conll_text(rng)
    change = rng.choice(
        [
            lambda line: line.replace(" ", "\xa0", 1),  # New\xa0York B-LOC: one token
            lambda line: rng.choice(VANISHING) + " " + line.split()[-1],
            lambda line: line + rng.choice([" ", "\t", " \t", "\u3000"]),
            lambda line: rng.choice([" ", "\t"]) + line,
            lambda line: line.replace(" ", rng.choice(["\u2003", "\u3000", "\x0b"]), 1),
        ]
    )
    text = _replace_line(rng, text, change)
    if rng.random() < 0.5:  # a whitespace-only line between sentences
        text = text.replace("\n\n", "\n" + rng.choice(WHITESPACE) + "\n", 1)
    return text


def _conll_unicode(rng: random.Random) -> str:
    kind = rng.choice([COMBINING, EMOJI, CONTROL, ODD_UNICODE])
    return _replace_line(rng, conll_text(rng), lambda line: rng.choice(kind) + line)


def _conll_empty(rng: random.Random) -> str:
    return rng.choice(["", "\n", "\n\n\n", " \n\t\n", "-DOCSTART- O\n", "-DOCSTART- O\n\n\n"])


def _conll_long_line(rng: random.Random) -> str:
    token = rng.choice(["x", "é"]) * (LONG_LINE_BYTES // 2)
    return conll_text(rng) + "\n" + token + " B-PER\n"


CONLL_KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "conll_plain": lambda rng: _encoded(conll_text(rng)),
    "conll_wrong_columns": lambda rng: _encoded(_wrong_columns(rng)),
    "conll_bad_tags": lambda rng: _encoded(_bad_tag(rng)),
    "conll_docstart": lambda rng: _encoded(_docstart_variants(rng)),
    "conll_whitespace": lambda rng: _encoded(_conll_whitespace(rng)),
    "conll_unicode": lambda rng: _encoded(_conll_unicode(rng)),
    "conll_empty": lambda rng: _encoded(_conll_empty(rng)),
    "conll_crlf": lambda rng: _encoded(conll_text(rng).replace("\n", "\r\n")),
    "conll_lone_cr": lambda rng: _encoded(conll_text(rng).replace("\n", "\r")),
    "conll_bom": lambda rng: b"\xef\xbb\xbf" + _encoded(conll_text(rng)),
    "conll_utf16": lambda rng: conll_text(rng).encode(
        rng.choice(["utf-16", "utf-16-le", "utf-16-be"])
    ),
    "conll_nul": lambda rng: _mutate_nul(rng, _encoded(conll_text(rng))),
    "conll_invalid_utf8": lambda rng: _mutate_invalid_utf8(rng, _encoded(conll_text(rng))),
    "conll_long_line": lambda rng: _encoded(_conll_long_line(rng)),
    "conll_random_bytes": lambda rng: rng.randbytes(rng.randint(1, 400)),
    "conll_mixed": lambda rng: mixed(rng, conll_text(rng)),
}

# ----------------------------------------------------------------------------- parallel files


def _pair(rng: random.Random, count: int | None = None) -> tuple[list[str], list[str]]:
    count = rng.randint(1, 6) if count is None else count
    return [sentence(rng) for _ in range(count)], [sentence(rng) for _ in range(count)]


def _parallel_plain(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _pair(rng)
    return _encoded(join_lines(rng, src)), _encoded(join_lines(rng, tgt))


def _parallel_unequal(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _pair(rng)
    if rng.random() < 0.5:
        tgt = tgt[: rng.randint(0, len(tgt) - 1)]
    else:
        tgt = tgt + [rng.choice(["", sentence(rng)])]
    files = [_encoded(join_lines(rng, src)), _encoded(join_lines(rng, tgt))]
    rng.shuffle(files)
    return files[0], files[1]


def _parallel_empty(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _pair(rng)
    blanks = ["", " ", "\t"]
    choice = rng.randint(0, 3)
    if choice == 0:  # both empty
        return b"", b""
    if choice == 1:  # one empty
        return (
            (b"", _encoded("\n".join(tgt)))
            if rng.random() < 0.5
            else (_encoded("\n".join(src)), b"")
        )
    if choice == 2:  # both blank-only, as many lines
        lines = [rng.choice(blanks) for _ in src]
        return _encoded(join_lines(rng, lines)), _encoded(join_lines(rng, lines[::-1]))
    # every pair has an empty side
    src = [s if i % 2 else rng.choice(blanks) for i, s in enumerate(src)]
    tgt = [rng.choice(blanks) if i % 2 else t for i, t in enumerate(tgt)]
    return _encoded("\n".join(src) + "\n"), _encoded("\n".join(tgt) + "\n")


def _parallel_line_ends(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _pair(rng, rng.randint(2, 6))
    return (
        _encoded(join_lines(rng, src, rng.choice(["\r\n", "\r", "\n"]))),
        _encoded(join_lines(rng, tgt, rng.choice(["\r\n", "\r", "\n"]))),
    )


def _parallel_separators(rng: random.Random) -> tuple[bytes, bytes]:
    """Line and paragraph separators inside lines, which must not split them."""
    src, tgt = _pair(rng, rng.randint(2, 5))
    inside = ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1e"]
    src = [insert_at_random(rng, s, rng.choice(inside)) for s in src]
    return _encoded("\n".join(src) + "\n"), _encoded("\n".join(tgt) + "\n")


def _parallel_encoding(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _parallel_plain(rng)
    mutation = rng.choice(
        [
            _mutate_bom,
            _mutate_nul,
            _mutate_invalid_utf8,
            lambda rng, data: data.decode().encode(rng.choice(["utf-16", "utf-16-le"])),
        ]
    )
    if rng.random() < 0.5:
        return mutation(rng, src), tgt
    return src, mutation(rng, tgt)


def _parallel_long_line(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _pair(rng, 2)
    src[rng.randint(0, 1)] = long_line(rng).split("\n")[0]
    return _encoded("\n".join(src) + "\n"), _encoded("\n".join(tgt) + "\n")


def _parallel_unicode(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _pair(rng)
    kinds = [VANISHING, COMBINING, EMOJI, CONTROL, ODD_UNICODE]
    src = [insert_at_random(rng, s, rng.choice(rng.choice(kinds))) for s in src]
    tgt = [rng.choice(VANISHING) if rng.random() < 0.3 else t for t in tgt]
    return _encoded("\n".join(src) + "\n"), _encoded("\n".join(tgt) + "\n")


def _parallel_mixed(rng: random.Random) -> tuple[bytes, bytes]:
    src, tgt = _pair(rng, rng.randint(2, 6))
    return mixed(rng, "\n".join(src)), mixed(rng, "\n".join(tgt))


PARALLEL_KINDS: dict[str, Callable[[random.Random], tuple[bytes, bytes]]] = {
    "parallel_plain": _parallel_plain,
    "parallel_unequal": _parallel_unequal,
    "parallel_empty": _parallel_empty,
    "parallel_line_ends": _parallel_line_ends,
    "parallel_separators": _parallel_separators,
    "parallel_encoding": _parallel_encoding,
    "parallel_long_line": _parallel_long_line,
    "parallel_unicode": _parallel_unicode,
    "parallel_mixed": _parallel_mixed,
}

# ----------------------------------------------------------------------------- prompts


def _surrogate_escaped(rng: random.Random) -> str:
    """A prompt as Python gets it from an argv with bytes that are not UTF-8."""
    data = _mutate_invalid_utf8(rng, _encoded(sentence(rng, 1, 3)))
    return data.decode("utf-8", "surrogateescape")


PROMPT_KINDS: dict[str, Callable[[random.Random], str]] = {
    "prompt_plain": lambda rng: sentence(rng, 0, 4),
    "prompt_blank": lambda rng: rng.choice(["", " ", "\t", "\n", "\n\n", "\r\n", "\r", " \r "]),
    "prompt_line_ends": lambda rng: _mutate_line_ends(rng, "\n".join(sentences(rng, 2, 3))),
    "prompt_unicode": lambda rng: "".join(
        rng.choice(rng.choice([VANISHING, COMBINING, EMOJI, ODD_UNICODE, WHITESPACE]))
        for _ in range(rng.randint(1, 6))
    ),
    "prompt_control": lambda rng: insert_at_random(
        rng, sentence(rng, 1, 3), rng.choice([*CONTROL, "\0"]), 2
    ),
    "prompt_not_utf8": _surrogate_escaped,
    "prompt_long": lambda rng: sentence(rng, 1500, 2000),
}

GENERATORS: dict[str, Callable[[random.Random], object]] = {
    **TEXT_KINDS,
    **CONLL_KINDS,
    **PARALLEL_KINDS,
    **PROMPT_KINDS,
}


def case_input(kind: str, seed: int):
    """The input of case ``kind-s{seed}``."""
    return GENERATORS[kind](random.Random(seed))


# kinds whose cases are slow (a 200 KB line): one case each, whatever the count asked for
SLOW_KINDS = {"long_line", "conll_long_line", "parallel_long_line", "prompt_long"}


def cases(kinds, per_kind: int, first_seed: int, rounds: int = 1) -> list:
    """pytest params ``(kind, seed)`` with ids ``KIND-sSEED``: ``per_kind`` seeds (one for
    a slow kind) of every kind, numbered from ``first_seed``, ``rounds`` times over."""
    params = []
    for kind_number, kind in enumerate(kinds):
        count = (1 if kind in SLOW_KINDS else per_kind) * rounds
        for i in range(count):
            seed = first_seed + 100 * kind_number + i
            params.append(pytest.param(kind, seed, id=f"{kind}-s{seed}"))
    return params


_LINE_END = re.compile(r"\r\n|\r|\n")


def reference_lines(data: bytes) -> list[str] | None:
    """The lines of a file as the documented rules read it, without their endings; None when
    the file is not UTF-8 (then the only right answer is an error)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = _LINE_END.split(text.removeprefix("\ufeff"))
    if lines[-1] == "":
        lines.pop()  # the end of the last line, not a line
    return lines


def reference_text(data: bytes) -> str | None:
    """The text of a UTF-8 file with a leading BOM dropped; None when it is not UTF-8."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class ConllReading:
    """A CoNLL file as the documented rules read it: per sentence the fields of its token
    lines (split at runs of spaces and tabs) and the index of its document; whether the file
    has -DOCSTART- lines."""

    sentences: list[list[list[str]]]
    documents: list[int]
    marked: bool


def reference_conll(data: bytes) -> ConllReading | None:
    """Sentences are runs of non-blank lines; a -DOCSTART- line is no token and starts a
    document (the sentences before the first one are a document when there are any; a
    document without sentences keeps its index). None when the file is not UTF-8."""
    lines = reference_lines(data)
    if lines is None:
        return None
    sentences: list[list[list[str]]] = []
    documents: list[int] = []
    current: list[list[str]] = []
    document, marked = 0, False

    def end_sentence() -> None:
        if current:
            sentences.append(list(current))
            documents.append(document)
            current.clear()

    for line in lines:
        if line.startswith("-DOCSTART-"):
            end_sentence()
            if marked or sentences:
                document += 1
            marked = True
        elif line.strip():
            current.append(re.split(r"[ \t]+", line.strip(" \t")))
        else:
            end_sentence()
    end_sentence()
    return ConllReading(sentences, documents, marked)


# kinds whose defect is in one line: an error about them must name it (FILE:LINE)
LINE_KINDS = {
    "invalid_utf8", "utf16_bom", "utf16_no_bom", "nul", "random_bytes",
    "conll_wrong_columns", "conll_bad_tags", "conll_utf16", "conll_nul", "conll_invalid_utf8",
    "conll_random_bytes", "parallel_encoding",
}  # fmt: skip


def unreadable(*files: bytes) -> str:
    """Why only an error is right for reading these files, or "": one is not UTF-8, or has a
    NUL byte, which the documented rules (seqlstm.data.readers) make an error naming the line
    - UTF-16 text without a byte-order mark is such a file, and read as UTF-8 it would be
    tagged byte by byte."""
    if any(reference_lines(f) is None for f in files):
        return "the file is not UTF-8"
    if any(b"\0" in f for f in files):
        return "the file has a NUL byte"
    return ""


def parallel_must_fail(src: bytes, tgt: bytes) -> str:
    """Why only an error is right for these parallel files (read_parallel's contract), or ""."""
    if unreadable(src, tgt):
        return unreadable(src, tgt)
    src_lines, tgt_lines = reference_lines(src), reference_lines(tgt)
    if len(src_lines) != len(tgt_lines):
        return f"{len(src_lines)} source lines but {len(tgt_lines)} target lines"
    if not any(s.strip() and t.strip() for s, t in zip(src_lines, tgt_lines, strict=True)):
        return "no pair of non-blank lines"
    return ""
