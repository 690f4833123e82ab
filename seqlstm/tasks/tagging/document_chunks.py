"""The chunks in which the tagger reads documents at inference (no torch: the ONNX runtime
shares them).

A tagger with ``context_words = c`` reads every sentence of a document with at least ``c``
words of its neighbours on each side (seqlstm.tasks.tagging.context). Inference reads a
document in one pass: its words are cut into chunks of ``chunk_words`` words, and each chunk
is read once with ``c`` words of context on each side, so the BiLSTM reads the text about
(1 + 2c / chunk_words) times instead of once per sentence with its context. With
``chunk_words = 0`` every sentence is its own chunk: each sentence read between ``c`` words
of its neighbours, the per-sentence way. Either way every word is read with at least ``c``
words on each side where its document has them. Chunks are word positions; the reader cuts
its features out of those of the whole text.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DocumentChunk:
    """A span of a document that the BiLSTM reads in one pass, as word positions in the text
    of all sentences of a call one after another: it reads words ``start`` to ``stop`` and
    scores words ``target_start`` to ``target_stop``; the words around those are context."""

    start: int
    stop: int
    target_start: int
    target_stop: int


def document_chunks(
    lengths: Sequence[int], sizes: Sequence[int], context_words: int, chunk_words: int
) -> list[DocumentChunk]:
    """The chunks in which the BiLSTM reads a call's documents (see the module docstring).

    ``lengths`` are the words of every sentence, documents one after another; ``sizes`` the
    sentences of each document. Each document's words are cut into targets of
    ``chunk_words`` words (the last one shorter; ``chunk_words = 0``: one sentence each), and
    each target is read between up to ``context_words`` words of its document on each side,
    so every word is scored once, with at least that much context on both sides where its
    document has it, and no chunk reaches into another document. With ``chunk_words > 0`` a
    chunk at either end of a document reads more context on its inner side, so that every
    chunk of a long document has the same length, which the BiLSTM reads fastest.
    Chunks come in text order; a document without words has none.
    """
    if sum(sizes) != len(lengths):
        raise ValueError(f"the documents hold {sum(sizes)} sentences, lengths gives {len(lengths)}")
    starts = np.cumsum([0, *lengths]).tolist()  # the first word of each sentence
    chunks, first = [], 0
    for size in sizes:
        begin, end = starts[first], starts[first + size]  # the document's words
        if chunk_words > 0:
            cuts = [*range(begin, end, chunk_words), end]
        else:
            cuts = sorted(set(starts[first : first + size + 1]))
        for target_start, target_stop in itertools.pairwise(cuts):
            start = max(begin, target_start - context_words)
            stop = min(end, target_stop + context_words)
            if chunk_words > 0:  # the first and last chunks read more context instead
                span = chunk_words + 2 * context_words
                stop = min(end, max(stop, start + span))
                start = max(begin, min(start, stop - span))
            chunks.append(DocumentChunk(start, stop, target_start, target_stop))
        first += size
    return chunks
