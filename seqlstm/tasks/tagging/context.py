"""Document context for the tagger: sentences read together with their neighbours.

A word's label often depends on text beyond its sentence: "Leicester 2 Newcastle 1" is a
line of football results only if the lines around it say so, and a name spelled out in one
sentence is abbreviated in the next. With ``TaggerConfig.context_words = c`` the BiLSTM
reads the sentences of a *document* together, each with at least ``c`` words (where the
document has them) of the sentences before and after it, as FLERT (Schweter & Akbik 2020)
does for transformers, while the emission scores and the CRF cover each sentence alone.
The first word of every sentence carries a flag, so the model still knows where sentences
start (sentence-initial capitals say little). Context never crosses a document boundary, and
sentences given without a document are read alone.

Inference reads a document in one pass, in chunks of ``chunk_words`` words each read with
``c`` words of context on each side (seqlstm.tasks.tagging.document_chunks).

Training uses windows of consecutive sentences of one document (:class:`DocumentWindowBatches`):
each word is read once an epoch, as with single sentences, and the CRF scores every word of
the window, so document context costs little extra training time. The window boundaries move
every epoch, so every sentence is seen with context on both sides.

Nothing here knows the model: chunks are word positions, training windows are
:class:`~seqlstm.tasks.tagging.examples.TaggingExample`\\ s joined by :func:`join_examples`,
and the batches are made by the ``collate_fn`` given to :class:`DocumentWindowBatches` (the
tagger's ``collate``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from seqlstm.data.batching import rank_share, resolve_replicas
from seqlstm.tasks.tagging.examples import TaggingExample


def join_examples(
    parts: Sequence[TaggingExample], char_pad_id: int, target: int | None = None
) -> TaggingExample:
    """One example of the words of ``parts`` in order; character rows padded with char_pad_id.

    target: the index of the part whose words are scored (its tags, if it has them, become the
    example's); None: all words are, and the tags are all parts' (None unless all have tags).
    """
    if not parts:
        raise ValueError("join_examples needs at least one part")
    offsets = np.cumsum([0] + [p.length for p in parts]).tolist()
    char_ids = None
    if parts[0].char_ids is not None:
        width = max(max(p.char_ids.shape[1] for p in parts), 1)
        char_ids = torch.cat(
            [F.pad(p.char_ids, (0, width - p.char_ids.shape[1]), value=char_pad_id) for p in parts]
        )
    if target is None:
        tag_ids = None
        if all(p.tag_ids is not None for p in parts):
            tag_ids = torch.cat([p.tag_ids for p in parts])
        target_start, target_length = 0, offsets[-1]
    else:
        tag_ids = parts[target].tag_ids
        target_start, target_length = offsets[target], parts[target].length
    return replace(
        parts[0],
        length=offsets[-1],
        subword_ids=torch.cat([p.subword_ids for p in parts]),
        word_index=torch.cat([p.word_index + o for p, o in zip(parts, offsets, strict=False)]),
        char_ids=char_ids,
        word_ids=None if parts[0].word_ids is None else torch.cat([p.word_ids for p in parts]),
        tag_ids=tag_ids,
        sentence_start=torch.cat([p.sentence_start for p in parts]),
        target_start=target_start,
        target_length=target_length,
    )


def pack_windows(
    lengths: Sequence[int],
    window_words: int,
    first: int,
    document_starts: frozenset[int] = frozenset(),
) -> list[range]:
    """Consecutive sentences grouped into windows of at most ``window_words`` words.

    The first window may hold at most ``first`` words (moving it moves every boundary); a
    sentence longer than a window is a window of its own. Every sentence is in one window,
    and a sentence in ``document_starts`` (the first of a document) starts a new one, so no
    window spans two documents.
    """
    windows, start, words, budget = [], 0, 0, first
    for i, length in enumerate(lengths):
        if i > start and (words + length > budget or i in document_starts):
            windows.append(range(start, i))
            start, words, budget = i, 0, window_words
        words += length
    if lengths:
        windows.append(range(start, len(lengths)))
    return windows


class DocumentWindowBatches:
    """The ``BatchSource`` for a tagger with document context: windows of sentences.

    ``examples`` are ``tagger.encode(rows)`` of the training text's sentences in their order,
    ``documents`` (optional) the document of each, so that no window spans two documents
    (consecutive sentences with equal ids form one, an id None is a document of its own;
    ``documents=None``: the whole text is one document);
    each batch is ``collate_fn`` (the tagger's ``collate``) of a list of windows, each window
    the examples of its sentences joined (character rows padded with ``char_pad_id``, the
    tagger's ``char_pad_id``). Every epoch the sentences are packed into windows of at most
    ``window_words`` words (:func:`pack_windows`, the first window's size drawn at random, so
    the boundaries differ between epochs); the windows are sorted by length, cut into
    ``len(self)`` batches of similar-length windows and shuffled. ``len(self)`` is fixed - the
    total words over ``batch_words`` - so the Trainer's epochs keep their length; each rank of
    ``num_replicas`` gets every ``num_replicas``-th batch (wrapping round so all ranks take the
    same number of steps; ``seqlstm.data.batching.resolve_replicas`` reads them from the
    process group when not given). The order is a pure function of ``(seed, epoch)``.
    """

    def __init__(
        self,
        examples: Sequence[TaggingExample],
        window_words: int,
        batch_words: int,
        collate_fn: Callable[[list[TaggingExample]], Any],
        char_pad_id: int,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        documents: Sequence[Hashable] | None = None,
    ) -> None:
        if window_words < 1 or batch_words < 1:
            raise ValueError("window_words and batch_words must be >= 1")
        if not examples:
            raise ValueError("DocumentWindowBatches needs at least one example")
        if documents is not None and len(documents) != len(examples):
            raise ValueError(f"{len(examples)} examples but {len(documents)} document ids")
        # the sentences that start a document: no window reaches across one
        # (a sentence whose document is None is one of its own)
        self.document_starts = frozenset(
            i
            for i in range(1, len(examples))
            if documents is not None and (documents[i] is None or documents[i] != documents[i - 1])
        )
        self.num_replicas, self.rank = resolve_replicas(num_replicas, rank)
        self.examples = examples
        self.window_words = window_words
        self.collate_fn = collate_fn
        self.char_pad_id = char_pad_id
        self.seed = seed
        self.lengths = [e.length for e in examples]
        # no more batches than there are windows of the fullest packing
        total = max(sum(self.lengths), 1)
        fewest_windows = len(
            pack_windows(self.lengths, window_words, window_words, self.document_starts)
        )
        self._total = min(max(1, -(-total // batch_words)), fewest_windows)

    def __len__(self) -> int:
        return -(-self._total // self.num_replicas)

    def windows(self, epoch: int) -> list[list[range]]:
        """This rank's batches of epoch ``epoch``, each a list of windows (sentence ranges)."""
        rng = np.random.default_rng([self.seed, epoch])
        first = int(rng.integers(1, self.window_words + 1))
        windows = pack_windows(self.lengths, self.window_words, first, self.document_starts)
        sizes = [sum(self.lengths[i] for i in w) for w in windows]
        order = np.lexsort((rng.random(len(windows)), sizes))
        batches = [
            [windows[i] for i in part] for part in np.array_split(order, self._total) if len(part)
        ]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        return rank_share(batches, self.num_replicas, self.rank)

    def epoch(self, epoch: int) -> Iterator[Any]:
        """This rank's batches of epoch ``epoch``: ``collate_fn`` of each batch's windows."""
        for batch in self.windows(epoch):
            windows = [
                join_examples([self.examples[i] for i in w], self.char_pad_id) for w in batch
            ]
            yield self.collate_fn(windows)
