"""The tagger's encoded examples and padded batches.

Both the tagger (which makes them: ``BiLSTMCRFTagger.encode`` / ``collate``) and the document
context (which cuts and joins examples: ``seqlstm.tasks.tagging.context``) use these, so they
live here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class TaggingExample:
    """One encoded sentence of W words and T subwords (`BiLSTMCRFTagger.encode`), or several
    sentences joined (`seqlstm.tasks.tagging.context`), of which words target_start to
    target_start + target_length are scored."""

    length: int  # W
    subword_ids: Tensor  # LongTensor[T]
    word_index: Tensor  # LongTensor[T]: the word each subword belongs to
    char_ids: Tensor | None  # LongTensor[W, C]: each word's characters, then padding
    word_ids: Tensor | None  # LongTensor[W]: word-table ids of the lowercased words
    tag_ids: Tensor | None  # LongTensor[target_length]: CRF-scheme label ids; None: untagged
    sentence_start: Tensor  # BoolTensor[W]: the first word of each sentence
    target_start: int
    target_length: int


@dataclass
class TaggingBatch:
    """Padded examples (`BiLSTMCRFTagger.collate`); W is the longest example of the batch,
    W' its longest target."""

    subword_ids: Tensor  # LongTensor[B, T], the tokenizer's pad_id on padding
    word_index: Tensor  # LongTensor[B, T], -1 on padding
    lengths: Tensor  # LongTensor[B]: words per example (0 for an empty one)
    char_ids: Tensor | None  # LongTensor[B, W, C], the character pad id on padding
    word_ids: Tensor | None  # LongTensor[B, W], the word pad id on padding
    tags: Tensor | None  # LongTensor[B, W'], 0 on padding (the CRF ignores it)
    sentence_start: Tensor  # BoolTensor[B, W], False on padding
    target_start: Tensor  # LongTensor[B]: the first scored word
    target_lengths: Tensor  # LongTensor[B]: scored words (all of them, without context)
