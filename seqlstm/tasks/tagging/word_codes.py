"""How the tagger encodes a word, torch-free (the ONNX runtime, seqlstm.onnx_tagger, shares it).

A word's code is what the tagger's word features are computed from, and depends on the word
alone: its subword ids (of the lowercased word with ``lowercase_subwords``: "JAPAN" in a
headline and "Japan" share their pieces, while the character CNN still sees the case), its
character ids as written, and its row in the word table, which is over lowercased words
(GloVe's common vectors are lowercase). Inference encodes each distinct word of a call once
(:meth:`WordCoder.distinct_word_codes`): a call repeats most of its words.
"""

from __future__ import annotations

from collections.abc import Sequence

from seqlstm.errors import DataError
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary

# (subword ids, character ids, word-table id or -1 without a word table)
WordCode = tuple[list[int], list[int], int]


def word_table_key(word: str) -> str:
    """The word table's entry for a word: the word lowercased."""
    return word.lower()


class WordCoder:
    """Encodes words as a tagger of these vocabularies and this subword rule does."""

    def __init__(
        self,
        tokenizer: SubwordTokenizer,
        chars: Vocabulary | None,
        words: Vocabulary | None,
        lowercase_subwords: bool,
    ) -> None:
        self.tokenizer = tokenizer
        self.chars = chars
        self.words = words
        self.lowercase_subwords = lowercase_subwords

    def code(self, word: str, where: str) -> WordCode:
        """The code of one word; ``where`` names it ("sentence 3: word 1") in the DataError
        for a word that is empty after normalisation (it could not get a subword)."""
        try:
            subword_ids = self.tokenizer.encode_word(
                word.lower() if self.lowercase_subwords else word
            )
        except DataError as err:
            raise DataError(f"{where}: {err}") from None
        char_ids = [] if self.chars is None else self.chars.encode(word)
        word_id = -1 if self.words is None else self.words.index(word_table_key(word))
        return subword_ids, char_ids, word_id

    def distinct_word_codes(
        self, sentences: Sequence[Sequence[str]], what: str = "sentence"
    ) -> tuple[list[WordCode], list[int]]:
        """The code of each distinct word of the sentences, in order of first appearance, and
        the index into those of every word of the sentences, one after another; ``what``
        names a sentence in errors."""
        rows: dict[str, int] = {}
        codes: list[WordCode] = []
        numbers: list[int] = []
        for number, sentence in enumerate(sentences):
            for position, word in enumerate(sentence):
                row = rows.get(word)
                if row is None:
                    row = rows[word] = len(codes)
                    codes.append(self.code(word, f"{what} {number}: word {position}"))
                numbers.append(row)
        return codes, numbers
