"""Split raw text into words, with character offsets, the way CoNLL-2003 tokenizes English.

A tagger is trained on pre-tokenized sentences, so raw text has to be cut into words the same
way before tagging. This is a small regular expression, not a trained tokenizer; it reproduces
the Penn-Treebank-like conventions of the CoNLL-2003 data for the common cases:

- dotted abbreviations stay whole: ``U.S.``, ``e.g.``; so does a capital initial before a
  capitalised word (``John F. Kennedy`` -> ``John`` ``F.`` ``Kennedy``);
- numbers keep their inner ``.`` ``,`` ``:`` ``/``: ``3.5``, ``1,000``, ``10:30``, ``1/2``;
- words keep inner hyphens and apostrophes: ``German-born``, ``1996-08-22``, ``O'Neill``;
- English clitics are split off: ``Germany's`` -> ``Germany`` ``'s``, ``don't`` -> ``do``
  ``n't`` (also with the typographic apostrophe ``’``);
- a run of dots is one token (``...``); every other visible character is a token of its own
  (punctuation, symbols).

Whitespace (any Unicode space) only separates tokens. Letters and digits are Unicode-aware
(``\\w``), so ``Zürich`` and ``東京`` are words. Every token satisfies
``text[token.start:token.end] == token.text``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# An English clitic, as a whole token: 's 're 've 'll 'd 'm n't (any case, ' or ’)
_CLITIC = r"(?i:['’](?:s|re|ve|ll|d|m)|n['’]t)(?!\w)"
_TOKEN = re.compile(
    rf"""
      (?:[^\W\d_]\.){{2,}}                 # dotted abbreviations: U.S. e.g.
    | [A-Z]\.(?=\s+[A-Z])                  # an initial: F. in John F. Kennedy
    | \d+(?:[.,:/]\d+)+                    # numbers with inner separators: 3.5 1,000 10:30
    | \w+(?=(?i:n['’]t)(?!\w))              # the word before n't: do in don't
    | {_CLITIC}
    | \w+(?:-\w+|(?!{_CLITIC})['’]\w+)*    # words with inner hyphens and apostrophes
    | \.{{2,}}                              # an ellipsis: ...
    | \S                                   # any other visible character on its own
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class WordToken:
    """A word of the text and where it is: ``text == source[start:end]``."""

    text: str
    start: int
    end: int


def tokenize(text: str) -> list[WordToken]:
    """The words of ``text`` with their character offsets (see the module docstring)."""
    return [WordToken(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
