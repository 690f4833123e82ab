"""BiLSTMCRFTagger: sequence labelling (NER, chunking) with a BiLSTM-CRF.

Lample et al. (2016), "Neural Architectures for Named Entity Recognition", with the character
CNN of Ma & Hovy (2016) and the shared SentencePiece subwords of this package:

    the words of a sentence (tokens, or raw text split by seqlstm.text.words)
    -> SharedEmbedding.words, per word:                            [B, W, D]
         its subwords' embeddings, pooled ("first" or "mean")         D_sub
           (optionally the subwords of the lowercased word)
         | a character CNN over its characters                        + F     (optional)
         | a word table over lowercased words, e.g. GloVe             + D_word (optional)
    (+ a sentence-start flag, with document context)                + 1
    -> BiLSTMEncoder over packed sequences                         [B, W, 2H]
    -> linear emission scores                                      [B, W, K]
    -> LinearChainCRF: training loss, constrained Viterbi, n-best, marginals

Tag schemes. Tags go in and come out in ``config.scheme``, the scheme of the user's data (IOB2
by default). Inside, the CRF works in ``config.crf_scheme`` (IOBES by default, which Lample et
al. found slightly better than IOB2) with its transitions constrained to the sequences that
are valid there, so every prediction is well formed in both schemes. The labels are the
CRF-scheme labels of the training data, plus ``O``; a tag whose label training never saw is an
:class:`UnknownLabelError` (a DataError), never a silent miss.

Rows. ``encode``, ``build``, ``evaluate``, ``entity_scores`` and ``check_rows`` take rows
(the task protocol of seqlstm.tasks.base): mappings - dicts, or the rows of a
``datasets.Dataset`` from ``seqlstm.data.load(..., "tagging")`` - with ``tokens`` (a list of
words) and ``tags`` (their tags in ``config.scheme``; optional for ``encode``).

Documents. Sentences are independent unless they come as a document: ``predict``, ``tag``
and ``predict_nbest`` read every sentence alone, ``predict_documents`` and ``tag_documents``
take documents (each a list of sentences) and, with ``config.context_words > 0``, read each
sentence with at least that many words of its neighbours in the same document, never
across documents; ``evaluate`` and ``entity_scores`` read rows with a ``document`` column
(consecutive rows with the same value) as documents. A document is read in one pass
(chunks of ``config.chunk_words`` words plus context, seqlstm.tasks.tagging.document_chunks), and
emissions and CRF cover each sentence alone. A sentence read alone still gets the
sentence-start flag a context-trained model expects.

Confidence. :meth:`BiLSTMCRFTagger.tag` gives every token the marginal probability of its
label (in the CRF's scheme) and every entity the probability that exactly this entity - this
type from this start to this end - is in the sentence: the mass of all tag sequences that
contain it, from a forward pass constrained to the entity's tags. Both are exact under the
model, so an entity's score lies between the probability of the whole best sequence and the
smallest confidence of its tokens.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from seqlstm.data import BucketedBatches, lengths_to_mask, pad_sequences
from seqlstm.data.dataset_rows import tagging_rows
from seqlstm.data.documents import DocumentSource, mark_documents
from seqlstm.data.word_vectors import load_word_vectors
from seqlstm.errors import DataError
from seqlstm.layers.crf import LinearChainCRF
from seqlstm.layers.embedding import SharedEmbedding
from seqlstm.layers.encoders import BiLSTMEncoder
from seqlstm.metrics import EntityScores, entity_f1
from seqlstm.pretrained import PretrainedModel
from seqlstm.tasks.base import Row, StepOutput, evaluating
from seqlstm.tasks.tagging.context import DocumentWindowBatches
from seqlstm.tasks.tagging.document_chunks import DocumentChunk, document_chunks
from seqlstm.tasks.tagging.examples import TaggingBatch, TaggingExample
from seqlstm.tasks.tagging.word_codes import WordCode, WordCoder, word_table_key
from seqlstm.text.tag_schemes import SCHEMES, convert_tags, tag_chunks
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary
from seqlstm.text.words import sentence_words

logger = logging.getLogger(__name__)

# A sentence is raw text (split by seqlstm.text.words) or its list of words; a document is
# a sequence of sentences, read together.
Sentence = str | Sequence[str]
Document = Sequence[Sentence]

# The CRF schemes in which "this entity is in the sentence" is a constraint on single
# positions, which the entity confidence needs (see _path_probabilities).
CRF_SCHEMES = ("IOB2", "IOBES")

# Inference embeds the distinct words of a call in pieces of at most FEATURE_CELLS words x
# characters (so one very long word does not inflate the character CNN's memory), and holds
# the features of GROUP_WORDS words of text at a time (53 MB at the cpu preset's sizes).
GROUP_WORDS = 65536
FEATURE_CELLS = 1 << 17


@dataclass
class TaggerConfig:
    """Sizes and tag schemes. The defaults are the NER recipe's (seqlstm.recipes.conll2003_ner,
    measured in docs/RESULTS.md): Lample et al.'s model with a character CNN, wider, with
    lowercased subwords and document context. A model directory saved without a field loads
    with its ``legacy_defaults`` value, the default it was trained with (seqlstm.pretrained).
    """

    # The defaults before they became the recipe's: what a config.json that lacks the field
    # (saved before the field existed) was trained with
    legacy_defaults: ClassVar[dict[str, Any]] = {
        "lowercase_subwords": False,
        "char_filters": 50,
        "hidden_size": 100,
        "context_words": 0,
    }

    scheme: str = "IOB2"  # the tags given to and returned by the tagger
    crf_scheme: str = "IOBES"  # the tags the CRF is trained and decodes in: IOB2 or IOBES
    subword_dim: int = 100  # subword embeddings, pooled into one vector per word
    # mean pooling and word dropout 0.3 generalised best to unseen words on CoNLL-2003
    # (docs/RESULTS.md has the measurements)
    pooling: Literal["first", "mean"] = "mean"
    # subwords of the lowercased word (train the tokenizer on text of subword_words(...)):
    # "JAPAN" in a headline and "Japan" share their pieces, and the character CNN, which
    # sees the word as written, still tells the model its case (without it, nothing does).
    # Worth +1.1 test F1 on CoNLL-2003 (docs/RESULTS.md). A tokenizer trained on cased text
    # still encodes lowercased words, only in more pieces
    lowercase_subwords: bool = True
    char_embedding_dim: int = 25
    char_filters: int = 100  # character CNN features per word; 0: no character features
    char_kernel_size: int = 3
    word_embedding_dim: int = 0  # word table over lowercased words; 0: none (100 for GloVe 100d)
    # share of words whose subwords and word-table entry are replaced by <unk> in training
    word_dropout: float = 0.3
    hidden_size: int = 200  # BiLSTM units per direction (Lample et al.: 100)
    num_layers: int = 1
    dropout: float = 0.5  # on the word features, on the BiLSTM outputs and between its layers
    # words of the neighbouring sentences of the same document the BiLSTM reads on each side
    # of a sentence (seqlstm.tasks.tagging.context); 0: none. Sentences given without a
    # document are read alone
    context_words: int = 60
    # inference reads a document in chunks of this many words, each between context_words
    # of context (one pass over the text); 0: one sentence per chunk, each sentence read
    # with its own context. Every word sees at least context_words on each side within its
    # document either way, and F1 does not depend on the choice (docs/RESULTS.md); 800
    # reads the text 1.15 times at 60 words of context
    chunk_words: int = 800

    def subword_words(self, words: Sequence[str]) -> Sequence[str]:
        """The words as the subword tokenizer reads them (lowercased with lowercase_subwords):
        train the tokenizer on text made of these."""
        return [w.lower() for w in words] if self.lowercase_subwords else words

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if self.crf_scheme not in CRF_SCHEMES:
            raise ValueError(f"crf_scheme must be one of {CRF_SCHEMES}, got {self.crf_scheme!r}")
        if self.pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', got {self.pooling!r}")
        for name in ("subword_dim", "hidden_size", "num_layers", "char_embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("char_filters", "word_embedding_dim", "context_words", "chunk_words"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns it off), got {getattr(self, name)}")
        for name in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class UnknownLabelError(DataError):
    """A tag whose label the tagger never saw in training: token ``position`` of row (sentence)
    ``sentence``."""

    def __init__(self, message: str, sentence: int, position: int, tag: str) -> None:
        super().__init__(message)
        self.sentence = sentence
        self.position = position
        self.tag = tag


@dataclass(frozen=True)
class Entity:
    """An entity found in a sentence.

    start/end are character offsets (end exclusive) into the raw text that was tagged, or,
    for a list of words, into the words joined by single spaces; ``text`` is that span.
    token_start/token_end index the words (end exclusive). ``score`` is the probability that
    exactly this entity is in the sentence (see the module docstring).
    """

    text: str
    type: str
    start: int
    end: int
    score: float
    token_start: int
    token_end: int


@dataclass
class TaggedSentence:
    """The words of a sentence with their tags, tag confidences and entities."""

    tokens: list[str]
    tags: list[str]  # in config.scheme
    confidences: list[float]  # marginal probability of each token's label (CRF scheme)
    entities: list[Entity]


class BiLSTMCRFTagger(PretrainedModel):
    """BiLSTM-CRF sequence tagger; see the module docstring for the architecture.

    Build a new one from training rows with :meth:`build`, train it with the Trainer on
    ``collate(encode(rows))`` batches (``forward`` returns the StepOutput), score it with
    :meth:`evaluate` / :meth:`entity_scores`, and use :meth:`predict`, :meth:`predict_nbest`,
    :meth:`tag` or :meth:`predict_entities`.
    """

    config_class = TaggerConfig
    vocabulary_names = ("labels", "chars", "words")

    def __init__(
        self,
        config: TaggerConfig,
        tokenizer: SubwordTokenizer,
        labels: Vocabulary,
        chars: Vocabulary | None = None,
        words: Vocabulary | None = None,
    ) -> None:
        super().__init__(config, tokenizer, labels=labels, chars=chars, words=words)
        if labels.pad_token is not None or labels.unk_token is not None:
            raise ValueError("the label vocabulary must have neither pad nor unk")
        if (chars is None) != (config.char_filters == 0):
            raise ValueError("give a character vocabulary exactly when config.char_filters > 0")
        if (words is None) != (config.word_embedding_dim == 0):
            raise ValueError("give a word vocabulary exactly when config.word_embedding_dim > 0")
        self.embedding = SharedEmbedding.from_tokenizer(
            tokenizer,
            config.subword_dim,
            dropout=config.dropout,
            char_vocab_size=None if chars is None else len(chars),
            char_embedding_dim=config.char_embedding_dim,
            char_filters=config.char_filters,
            char_kernel_size=config.char_kernel_size,
            word_vocab_size=None if words is None else len(words),
            word_embedding_dim=config.word_embedding_dim,
            pooling=config.pooling,
            char_pad_id=0 if chars is None else chars.pad_id,
            word_pad_id=0 if words is None else words.pad_id,
        )
        # with context, each word also gets a feature saying whether it starts a sentence
        self.encoder = BiLSTMEncoder(
            self.embedding.word_output_dim + (config.context_words > 0),
            config.hidden_size,
            config.num_layers,
            config.dropout,
        )
        self.emission = nn.Linear(self.encoder.output_size, len(labels))
        self.crf = LinearChainCRF.from_labels(labels.tokens, config.crf_scheme)

    @property
    def char_pad_id(self) -> int:
        """The character padding id (0 for a tagger without the character CNN)."""
        return self.chars.pad_id if self.chars is not None else 0

    @property
    def entity_types(self) -> list[str]:
        """The entity types the tagger knows (from its labels), sorted."""
        return sorted({label.partition("-")[2] for label in self.labels if label != "O"})

    @classmethod
    def build(
        cls,
        config: TaggerConfig,
        tokenizer: SubwordTokenizer,
        rows: Iterable[Row],
        word_vectors: str | os.PathLike | None = None,
    ) -> BiLSTMCRFTagger:
        """A new, untrained tagger with its vocabularies taken from the training rows.

        rows: the training rows, each with ``tokens`` and ``tags`` (config.scheme). The labels
        are those tags in ``config.crf_scheme`` (and O), the characters those of the words,
        and the word table (if ``config.word_embedding_dim``) holds the lowercased words,
        initialised from ``word_vectors`` (a GloVe/word2vec text file) when given. Raises
        DataError naming the row of a malformed row or a tag not of config.scheme.
        """
        sentences, tags, _ = _read_rows(rows, need_tags=True)
        converted = []
        for number, sentence_tags in enumerate(tags):
            try:
                converted.append(convert_tags(sentence_tags, config.scheme, config.crf_scheme))
            except DataError as err:
                raise DataError(f"row {number}, {err}") from None
        # O is always a label, so that every sentence has a valid tag sequence
        labels = Vocabulary.build(converted, pad_token=None, unk_token=None, specials=["O"])
        chars = words = None
        if config.char_filters:
            chars = Vocabulary.build(ch for words in sentences for word in words for ch in word)
        if config.word_embedding_dim:
            words = Vocabulary.build(word_table_key(word) for s in sentences for word in s)
        model = cls(config, tokenizer, labels=labels, chars=chars, words=words)
        if word_vectors is not None:
            if words is None:
                raise ValueError("word_vectors need a word table: set config.word_embedding_dim")
            vectors, found = load_word_vectors(word_vectors, words, config.word_embedding_dim)
            model.embedding.init_word_embedding(vectors)
            logger.info("%s: vectors for %d of %d words", word_vectors, found, len(words))
        return model

    # ----------------------------------------------------------------------------- training

    def encode(self, rows: Iterable[Row]) -> list[TaggingExample]:
        """Encode rows: ``tokens`` (a list of words) and, for training, ``tags`` (config.scheme).

        A row without ``tags`` (or with ``tags`` None) gives an example without tag ids; a
        batch has tags only if all its examples do. Raises DataError naming the row for a
        malformed row, a word that is empty after normalisation or a tag of another scheme,
        UnknownLabelError for a tag whose label training never saw.
        """
        sentences, tags, _ = _read_rows(rows, need_tags=False)
        return self._encode_words(sentences, tags, "row")

    def training_batches(
        self,
        rows: Sequence[Row],
        batch_words: int,
        window_words: int,
        seed: int = 0,
    ) -> BucketedBatches | DocumentWindowBatches:
        """The batch source to train on ``rows`` (sharded by the one replica/rank rule).

        With document context (``config.context_words``): windows of consecutive sentences of
        up to ``window_words`` words that never span two documents (the rows' ``document``
        values, as :meth:`entity_scores` reads them; rows without one are sentences alone),
        about ``batch_words`` words a batch. Without: token-budget batches of single
        sentences, ``batch_words`` padded words each.
        """
        sentences, tags, documents = _read_rows(rows, need_tags=False)
        examples = self._encode_words(sentences, tags, "row")
        if not self.config.context_words:
            lengths = [e.length for e in examples]
            return BucketedBatches(examples, lengths, self.collate, batch_words, seed=seed)
        return DocumentWindowBatches(
            examples,
            window_words,
            batch_words,
            self.collate,
            self.char_pad_id,
            seed,
            documents=documents,
        )

    def check_rows(self, rows: Iterable[Row], what: str) -> None:
        """Check labelled rows before training rather than after: each needs ``tokens`` and
        ``tags`` of as many words, in config.scheme, with labels the tagger knows.

        ``what`` names the rows in the error (e.g. "validation split"): DataError (or its
        UnknownLabelError) "``what``, row N...".
        """
        try:
            self._labelled(rows)
        except UnknownLabelError as err:
            raise UnknownLabelError(f"{what}, {err}", err.sentence, err.position, err.tag) from None
        except DataError as err:
            raise DataError(f"{what}, {err}") from None

    def _labelled(
        self, rows: Iterable[Row]
    ) -> tuple[list[Sequence[str]], list[Sequence[str]], list[Any]]:
        """(words, tags, document ids) of rows that must have tags, every label checked:
        DataError naming the row for a malformed row, UnknownLabelError for a label training
        never saw."""
        sentences, tags, documents = _read_rows(rows, need_tags=True)
        for number, sentence_tags in enumerate(tags):
            self._tag_ids(sentence_tags, number)
        return sentences, tags, documents

    def _encode_words(
        self,
        sentences: Sequence[Sequence[str]],
        tags: Sequence[Sequence[str] | None] | None = None,
        what: str = "sentence",
    ) -> list[TaggingExample]:
        """Encode sentences (lists of words) and their tags (config.scheme; None: untagged),
        checked as :meth:`encode` says; ``what`` names a sentence in errors ("row 3: ...")."""
        # a call repeats most of its words ("the", punctuation, names), so each distinct
        # word is encoded once: a third of the time of tagging a document
        codes, numbers = self.word_coder.distinct_word_codes(sentences, what)
        char_pad = self.char_pad_id
        examples = []
        first = 0  # the sentence's first word in `numbers`
        for number, words in enumerate(sentences):
            sentence_codes = [codes[i] for i in numbers[first : first + len(words)]]
            first += len(words)
            subword_ids = [piece for code in sentence_codes for piece in code[0]]
            word_index = [n for n, code in enumerate(sentence_codes) for _ in code[0]]
            char_rows = [code[1] for code in sentence_codes]
            word_ids = [code[2] for code in sentence_codes]
            char_ids = tag_ids = None
            if self.chars is not None:
                width = max(map(len, char_rows), default=0)
                padded = [row + [char_pad] * (width - len(row)) for row in char_rows]
                char_ids = torch.tensor(padded, dtype=torch.long)
                char_ids = char_ids.view(len(words), width)  # also for an empty sentence
            if tags is not None and tags[number] is not None:
                tag_ids = torch.tensor(self._tag_ids(tags[number], number), dtype=torch.long)
            sentence_start = torch.zeros(len(words), dtype=torch.bool)
            sentence_start[:1] = True
            examples.append(
                TaggingExample(
                    len(words),
                    torch.tensor(subword_ids, dtype=torch.long),
                    torch.tensor(word_index, dtype=torch.long),
                    char_ids,
                    None if self.words is None else torch.tensor(word_ids, dtype=torch.long),
                    tag_ids,
                    sentence_start,
                    target_start=0,
                    target_length=len(words),
                )
            )
        return examples

    @property
    def word_coder(self) -> WordCoder:
        """How this tagger encodes a word (seqlstm.tasks.tagging.word_codes)."""
        return WordCoder(self.tokenizer, self.chars, self.words, self.config.lowercase_subwords)

    def _tag_ids(self, tags: Sequence[str], row: int) -> list[int]:
        """CRF-scheme label ids of a tag sequence in config.scheme.

        Raises UnknownLabelError (naming ``row`` and the token) at the first tag whose label
        training never saw, DataError for a tag that is not one of config.scheme.
        """
        try:
            converted = convert_tags(tags, self.config.scheme, self.config.crf_scheme)
        except DataError as err:
            raise DataError(f"row {row}, {err}") from None
        ids = []
        for position, (tag, label) in enumerate(zip(tags, converted, strict=True)):
            if label not in self.labels:
                raise UnknownLabelError(
                    f"row {row}, token {position}: the tag {tag!r} ({label} in "
                    f"{self.config.crf_scheme}) has a label training never saw; the tagger "
                    f"knows {', '.join(self.labels.tokens)}",
                    row,
                    position,
                    tag,
                )
            ids.append(self.labels.index(label))
        return ids

    def collate(self, examples: Sequence[TaggingExample]) -> TaggingBatch:
        """Pad encoded examples into one batch (tags only if every example has them)."""
        subword_ids, _ = pad_sequences([e.subword_ids for e in examples], self.tokenizer.pad_id)
        word_index, _ = pad_sequences([e.word_index for e in examples], -1)
        lengths = torch.tensor([e.length for e in examples], dtype=torch.long)
        width = int(lengths.max()) if examples else 0
        char_ids = word_ids = tags = None
        if self.chars is not None:
            longest = max((e.char_ids.shape[1] for e in examples), default=0)
            char_ids = torch.full(
                (len(examples), width, max(longest, 1)), self.chars.pad_id, dtype=torch.long
            )
            for row, e in enumerate(examples):
                char_ids[row, : e.length, : e.char_ids.shape[1]] = e.char_ids
        if self.words is not None:
            word_ids, _ = pad_sequences([e.word_ids for e in examples], self.words.pad_id)
        if examples and all(e.tag_ids is not None for e in examples):
            tags, _ = pad_sequences([e.tag_ids for e in examples], 0)
        sentence_start = torch.zeros(len(examples), width, dtype=torch.bool)
        for row, e in enumerate(examples):
            sentence_start[row, : e.length] = e.sentence_start
        return TaggingBatch(
            subword_ids,
            word_index,
            lengths,
            char_ids,
            word_ids,
            tags,
            sentence_start,
            torch.tensor([e.target_start for e in examples], dtype=torch.long),
            torch.tensor([e.target_length for e in examples], dtype=torch.long),
        )

    def forward(self, batch: TaggingBatch) -> StepOutput:
        """Summed CRF negative log-likelihood of the batch's tags, over its number of words."""
        if batch.tags is None:
            raise ValueError("forward needs a batch with tags (encode the sentences with tags)")
        emissions, mask = self.emissions(batch)
        loss = self.crf.neg_log_likelihood(emissions, batch.tags, mask)
        return StepOutput(loss=loss, num_tokens=batch.target_lengths.sum())

    def emissions(self, batch: TaggingBatch) -> tuple[Tensor, Tensor]:
        """Emission scores FloatTensor[B, W', K] (float32) of the targets and their mask
        BoolTensor[B, W']."""
        lengths = batch.lengths
        width = int(lengths.max()) if lengths.numel() else 0
        mask = lengths_to_mask(lengths, width)
        target_width = int(batch.target_lengths.max()) if lengths.numel() else 0
        target_mask = lengths_to_mask(batch.target_lengths, target_width)
        if target_width == 0:  # nothing to score: empty sentences
            empty = torch.zeros(len(lengths), 0, len(self.labels), device=self.device)
            return empty, target_mask
        subword_ids, word_ids = batch.subword_ids, batch.word_ids
        if self.training and self.config.word_dropout > 0:
            # A dropped word is <unk> in the tables that know words by their identity (its
            # subwords, the word table), so the tagger learns to label words it has never seen
            # - most test entities - from their characters and context, and the <unk> rows,
            # which the training words never use otherwise, get trained.
            drop = torch.rand(mask.shape, device=mask.device) < self.config.word_dropout
            drop &= mask
            in_dropped_word = drop.gather(1, batch.word_index.clamp(min=0))
            in_dropped_word &= batch.word_index >= 0
            subword_ids = subword_ids.masked_fill(in_dropped_word, self.tokenizer.unk_id)
            if word_ids is not None:
                word_ids = word_ids.masked_fill(drop, self.words.unk_id)
        features = self.embedding.words(
            subword_ids, batch.word_index, width, batch.char_ids, word_ids
        )
        scores = self._emission_scores(features, batch.sentence_start, lengths)
        if target_width == width and not batch.target_start.any():
            return scores, mask
        positions = batch.target_start.unsqueeze(1) + torch.arange(
            target_width, device=scores.device
        )
        positions = positions.clamp(max=width - 1).unsqueeze(-1).expand(-1, -1, scores.shape[-1])
        return scores.gather(1, positions), target_mask

    def _emission_scores(self, features: Tensor, sentence_start: Tensor, lengths: Tensor) -> Tensor:
        """Word features [B, W, D] of texts of ``lengths`` words, their sentence-start flags
        BoolTensor[B, W] -> emission scores FloatTensor[B, W, K] (float32)."""
        if self.config.context_words:
            features = torch.cat([features, sentence_start.unsqueeze(-1).to(features.dtype)], -1)
        # an empty sentence among others runs one step over zero features; the mask drops it
        outputs, _ = self.encoder(features, lengths.clamp(min=1))
        # the CRF's sums of many scores want float32 also under mixed precision
        return self.emission(outputs).float()

    # ----------------------------------------------------------------------------- prediction

    def predict(self, sentences: Sequence[Sentence], batch_size: int = 64) -> list[list[str]]:
        """The best tag sequence (config.scheme) of each sentence, each read alone, in input
        order (for sentences with document context: :meth:`predict_documents`).

        A sentence is a list of words or a raw string (split by seqlstm.text.words); an
        empty one gets []. Sequences are always valid in config.scheme.
        """
        words, _ = self._split(sentences)
        return self._predict(words, None, batch_size)

    def predict_documents(
        self, documents: Sequence[Document], batch_size: int = 64
    ) -> list[list[list[str]]]:
        """:meth:`predict` for documents: each sentence read with its neighbours in its own
        document (``config.context_words`` words on each side at least), never across
        documents. Returns one list of tag sequences per document."""
        words, _, sizes = self._split_documents(documents)
        return _regroup(self._predict(words, sizes, batch_size), sizes)

    def _predict(
        self, words: Sequence[Sequence[str]], sizes: Sequence[int] | None, batch_size: int
    ) -> list[list[str]]:
        results: list[list[str]] = [[] for _ in words]
        with evaluating(self):
            for indices, emissions, mask in self._scored_batches(words, sizes, batch_size):
                for i, path in zip(indices, self.crf.decode(emissions, mask), strict=True):
                    results[i] = self._output_tags(path)
        return results

    def predict_nbest(
        self, sentences: Sequence[Sentence], k: int = 5, batch_size: int = 64
    ) -> list[list[tuple[list[str], float]]]:
        """The k most probable tag sequences of each sentence, best first, with probabilities.

        A sentence with fewer than k valid sequences gets them all (an empty sentence has
        exactly one, [], with probability 1).
        """
        words, _ = self._split(sentences)
        results: list[list[tuple[list[str], float]]] = [[] for _ in words]
        with evaluating(self):
            for indices, emissions, mask in self._scored_batches(words, None, batch_size):
                paths, scores = self.crf.nbest(emissions, mask, k)  # [B, k, W], [B, k]
                log_z = self.crf.log_partition(emissions, mask)
                probabilities = (scores - log_z.unsqueeze(1)).exp().clamp(max=1.0).tolist()
                exists = scores.isfinite().tolist()  # -inf: fewer than k valid sequences
                for row, i in enumerate(indices):
                    n = len(words[i])
                    results[i] = [
                        (self._output_tags(paths[row, rank, :n].tolist()), probability)
                        for rank, probability in enumerate(probabilities[row])
                        if exists[row][rank]
                    ]
        return results

    def tag(self, sentences: Sequence[Sentence], batch_size: int = 64) -> list[TaggedSentence]:
        """Best tags with token confidences and scored entities (see the module docstring),
        each sentence read alone (with document context: :meth:`tag_documents`)."""
        words, offsets = self._split(sentences)
        return self._tag(sentences, words, offsets, None, batch_size)

    def tag_documents(
        self, documents: Sequence[Document], batch_size: int = 64
    ) -> list[list[TaggedSentence]]:
        """:meth:`tag` for documents, each sentence read with its neighbours in its own
        document; one list of tagged sentences per document."""
        words, offsets, sizes = self._split_documents(documents)
        sentences = [sentence for document in documents for sentence in document]
        return _regroup(self._tag(sentences, words, offsets, sizes, batch_size), sizes)

    def _tag(
        self,
        sentences: Sequence[Sentence],
        words: Sequence[Sequence[str]],
        offsets: list[list[tuple[int, int]]],
        sizes: Sequence[int] | None,
        batch_size: int,
    ) -> list[TaggedSentence]:
        by_index: dict[int, TaggedSentence] = {}
        with evaluating(self):
            for indices, emissions, mask in self._scored_batches(words, sizes, batch_size):
                paths, _ = self.crf.viterbi(emissions, mask)  # [B, W], -1 on padding
                labels = [
                    self.labels.decode(row[: len(words[i])])
                    for row, i in zip(paths.tolist(), indices, strict=True)
                ]
                chunks = [tag_chunks(sentence_labels) for sentence_labels in labels]
                confidences, scores = self._path_probabilities(emissions, mask, paths, chunks)
                for row, i in enumerate(indices):
                    n = len(words[i])
                    entities = [
                        _entity(sentences[i], words[i], offsets[i], chunk, score)
                        for chunk, score in zip(chunks[row], scores[row], strict=True)
                    ]
                    by_index[i] = TaggedSentence(
                        list(words[i]),
                        convert_tags(labels[row], self.config.crf_scheme, self.config.scheme),
                        confidences[row][:n],
                        entities,
                    )
        return [by_index[i] for i in range(len(words))]

    def predict_entities(self, text: Sentence) -> list[Entity]:
        """The entities of one text (or list of words), each with its probability.

        The whole text is tagged as one sentence; split long documents into sentences first.
        """
        if not isinstance(text, str | Sequence):
            raise TypeError(f"predict_entities takes a str or a list of words, not {type(text)}")
        return self.tag([text])[0].entities

    def entity_scores(
        self,
        rows: Iterable[Row],
        batch_size: int = 64,
        *,
        tokens_column: str | int | None = None,
        tags_column: str | int | None = None,
        documents: DocumentSource = "marked",
    ) -> EntityScores:
        """Entity precision/recall/F1 (conlleval) of the predictions against the rows' tags.

        rows: dicts with ``tokens`` and ``tags`` (config.scheme), or a ``datasets.Dataset``
        as the hub gives it (``tagger.evaluate(ds["test"])``): its words and tags are found
        by name (``tokens``/``words``, ``tags``/``ner_tags``/``labels``) or named by
        ``tokens_column``/``tags_column``, ClassLabel ids are read through the data set's own
        label names, and its chunk scheme is converted to config.scheme
        (seqlstm.data.dataset_rows.tagging_rows). Rows with a ``document`` value are read as
        documents (consecutive rows with the same value form one, as
        :meth:`predict_documents` reads them), rows without one alone; ``documents`` sets the
        rule (seqlstm.data.documents): ``"marked"`` (the default) as just said,
        ``"whole-split"`` reads all the rows as one document in their order - what the NER
        recipe does with CoNLL-2003 splits, whose documents are in order but unmarked (the
        hub's ``eriktks/conll2003`` has no document column) - and ``"none"`` every row alone.
        ``.report()`` of the
        result is conlleval's report. Raises UnknownLabelError if a gold tag has a label
        training never saw, DataError naming the row for a malformed row, one whose tags are
        integers without names, a DatasetDict or one column of a Dataset; TypeError for words
        and tags given apart (``evaluate(ds["tokens"], ds["ner_tags"])``).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(
                f"batch_size must be an int, got {type(batch_size).__name__}: pass the rows as "
                "one argument - a datasets.Dataset (tagger.evaluate(ds['test'])) or dicts with "
                "'tokens' and 'tags' - not the words and the tags apart"
            )
        rows = tagging_rows(
            rows, self.config.scheme, tokens_column=tokens_column, tags_column=tags_column
        )
        if documents != "marked":  # "marked": the rows' own document values, as they are
            rows, _ = mark_documents(list(rows), documents)
        sentences, tags, document_ids = self._labelled(rows)
        predicted = self._predict(sentences, _document_sizes(document_ids), batch_size)
        return entity_f1(tags, predicted, scheme=self.config.scheme)

    def evaluate(
        self,
        rows: Iterable[Row],
        batch_size: int = 64,
        *,
        tokens_column: str | int | None = None,
        tags_column: str | int | None = None,
        documents: DocumentSource = "marked",
    ) -> dict[str, float]:
        """The metrics of :meth:`entity_scores` (``EntityScores.as_dict``), in percent:
        precision, recall, f1 and (token) accuracy overall, then precision_TYPE, recall_TYPE
        and f1_TYPE per entity type, types in sorted order. rows as for :meth:`entity_scores`
        (a ``datasets.Dataset`` included) and ``documents``."""
        scores = self.entity_scores(
            rows,
            batch_size,
            tokens_column=tokens_column,
            tags_column=tags_column,
            documents=documents,
        )
        return scores.as_dict()

    # ----------------------------------------------------------------------------- internals

    def _split(
        self, sentences: Sequence[Sentence]
    ) -> tuple[list[Sequence[str]], list[list[tuple[int, int]]]]:
        """Words of each sentence and their character offsets (seqlstm.text.words.sentence_words:
        raw text, words, or a row standing for its ``tokens``)."""
        if isinstance(sentences, str):
            raise TypeError("pass a list of sentences, not one string (use [text])")
        words, offsets = [], []
        for number, sentence in enumerate(sentences):
            tokens, spans = sentence_words(sentence, number)
            words.append(tokens)
            offsets.append(spans)
        return words, offsets

    def _split_documents(
        self, documents: Sequence[Document]
    ) -> tuple[list[Sequence[str]], list[list[tuple[int, int]]], list[int]]:
        """Words and offsets of every sentence of the documents in order (see :meth:`_split`),
        and the number of sentences of each document."""
        if isinstance(documents, str) or any(isinstance(d, str) for d in documents):
            raise TypeError("pass a list of documents, each a list of sentences (str or words)")
        words, offsets = self._split([sentence for document in documents for sentence in document])
        return words, offsets, [len(document) for document in documents]

    def _scored_batches(
        self, words: Sequence[Sequence[str]], sizes: Sequence[int] | None, batch_size: int
    ) -> Iterator[tuple[list[int], Tensor, Tensor]]:
        """(sentence indices, emissions [B, W, K], mask [B, W]) for batches of sentences of
        similar length, ``batch_size`` at a time.

        ``sizes``: the sentences form consecutive documents of these numbers of sentences,
        each read in one pass with ``config.context_words`` of context
        (seqlstm.tasks.tagging.document_chunks); None, or a model without context:
        every sentence is read alone. A word's features do not depend on its neighbours, so
        each distinct word of the call is embedded once (:meth:`_word_table`), also for the
        words chunks read as context; the BiLSTM then reads the chunks in batches of similar
        length, and the emissions are cut per sentence, so the CRF decodes each sentence.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = self.device
        lengths = [len(sentence) for sentence in words]
        starts = np.cumsum([0, *lengths]).tolist()  # the first word of each sentence
        table, word_numbers = self._word_table(words, device)
        flags = torch.zeros(starts[-1] + 1, dtype=torch.bool, device=device)
        flags[starts[:-1]] = True  # the sentence starts (and one past the end, never read)
        context, chunk_words = self.config.context_words, self.config.chunk_words
        if sizes is None or not context:  # every sentence alone, and whole
            sizes, chunk_words = [1] * len(words), 0
        chunks = document_chunks(lengths, sizes, context, chunk_words)
        # the emission scores of every word of the call, each from the chunk that targets it
        word_emissions = torch.zeros(starts[-1], len(self.labels), device=device)
        for group in _chunk_groups(chunks, GROUP_WORDS):
            offset = group[0].start
            # the features of the group's span of text, one row of the table per word
            features = table[word_numbers[offset : group[-1].stop].to(device)]
            by_length = sorted(group, key=lambda chunk: chunk.stop - chunk.start)
            for begin in range(0, len(by_length), batch_size):
                part = by_length[begin : begin + batch_size]
                scores = self._emission_scores(
                    pad_sequence(
                        [features[c.start - offset : c.stop - offset] for c in part],
                        batch_first=True,
                    ),
                    pad_sequence([flags[c.start : c.stop] for c in part], batch_first=True),
                    torch.tensor([c.stop - c.start for c in part], device=device),
                )
                for row, c in enumerate(part):
                    word_emissions[c.target_start : c.target_stop] = scores[
                        row, c.target_start - c.start : c.target_stop - c.start
                    ]
        order = sorted(range(len(words)), key=lambda i: lengths[i])
        for begin in range(0, len(order), batch_size):
            indices = order[begin : begin + batch_size]
            # padding emissions are zero, as the CRF expects
            emissions = pad_sequence(
                [word_emissions[starts[i] : starts[i + 1]] for i in indices], batch_first=True
            )
            sentence_lengths = torch.tensor([lengths[i] for i in indices], device=device)
            yield indices, emissions, lengths_to_mask(sentence_lengths, emissions.shape[1])

    def _word_table(
        self, sentences: Sequence[Sequence[str]], device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """The features of each distinct word of the sentences, FloatTensor[V, D] as
        :meth:`emissions` computes them in eval mode, and the row of every word of the
        sentences, one after another, LongTensor[N].

        Words are embedded in pieces of similar length, each at most FEATURE_CELLS words x
        characters of its longest word, which bounds the character CNN's memory.
        """
        codes, numbers = self.word_coder.distinct_word_codes(sentences)
        table = torch.zeros(len(codes), self.embedding.word_output_dim, device=device)
        piece: list[int] = []  # words by length, so a piece pads its characters little
        for i in sorted(range(len(codes)), key=lambda i: len(codes[i][1])):
            if piece and (len(piece) + 1) * max(len(codes[i][1]), 1) > FEATURE_CELLS:
                table[piece] = self._embed_words([codes[j] for j in piece], device)
                piece = []
            piece.append(i)
        if piece:
            table[piece] = self._embed_words([codes[j] for j in piece], device)
        return table, torch.tensor(numbers, dtype=torch.long)

    def _embed_words(self, codes: Sequence[WordCode], device: torch.device) -> Tensor:
        """Features FloatTensor[W, D] of words given by their codes (:meth:`word_coder`), each read
        alone (SharedEmbedding.words of them as one text: its features are per word)."""
        subword_ids = [piece for code in codes for piece in code[0]]
        word_index = [n for n, code in enumerate(codes) for _ in code[0]]
        char_ids = word_ids = None
        if self.chars is not None:
            width = max(max(len(code[1]) for code in codes), 1)
            pad = self.char_pad_id
            char_ids = torch.tensor(
                [[code[1] + [pad] * (width - len(code[1])) for code in codes]], device=device
            )
        if self.words is not None:
            word_ids = torch.tensor([[code[2] for code in codes]], device=device)
        return self.embedding.words(
            torch.tensor([subword_ids], device=device),
            torch.tensor([word_index], device=device),
            len(codes),
            char_ids,
            word_ids,
        )[0]

    def _output_tags(self, path: Sequence[int]) -> list[str]:
        """CRF label ids -> tags in config.scheme."""
        labels = self.labels.decode(path)
        return convert_tags(labels, self.config.crf_scheme, self.config.scheme)

    def _path_probabilities(
        self,
        emissions: Tensor,
        mask: Tensor,
        paths: Tensor,
        chunks: list[list[tuple[str, int, int]]],
    ) -> tuple[list[list[float]], list[list[float]]]:
        """The marginal probability of each tag of each sentence's best path (``paths``
        [B, T], -1 on padding), and P(exactly this chunk is in the sentence) for each of its
        ``chunks`` (type, start, end), from one forward-backward pass over the batch.

        A token's confidence is exp(alpha_t(y_t) + beta_t(y_t) - log Z). In IOB2 and IOBES a
        chunk (type X, start s, end e) is present iff the tags of s..e-1 are its tags on the
        path and, in IOB2, the tag at e is not I-X (IOBES closes a chunk with E-/S-, after
        which the constraints forbid I-X). So the chunk's probability is Z(allowed) / Z, and
        Z(allowed) is the forward score of the chunk's first tag at s (every prefix), plus the
        path's own steps inside the chunk, plus the backward score of its last tag at e-1
        (every continuation; in IOB2 those whose tag at e is not I-X): O(1) work per chunk
        after the pass, so memory [B, T, K] and time stay linear in the text however many
        chunks a long sentence has. In float64 where the device has it: the scores of a
        sentence of 10,000 words reach 1e5, where float32 keeps two decimals.
        """
        lengths = mask.sum(dim=1).tolist()
        if emissions.shape[1] == 0:  # empty sentences only
            return [[] for _ in chunks], [[] for _ in chunks]
        dtype = torch.float32 if emissions.device.type == "mps" else torch.float64
        emissions = emissions.to(dtype)
        transitions, alphas, betas, log_z = _forward_backward(self.crf, emissions, mask)
        tags = paths.clamp(min=0)
        on_path = (alphas + betas).gather(2, tags.unsqueeze(2)).squeeze(2) - log_z.unsqueeze(1)
        marginals = on_path.exp().clamp(0.0, 1.0).tolist()
        confidences = [row[:n] for row, n in zip(marginals, lengths, strict=True)]
        rows = [b for b, sentence in enumerate(chunks) for _ in sentence]
        if not rows:
            return confidences, [[] for _ in chunks]
        device = emissions.device
        # the path's score of each step t >= 1: transition into its tag and its emission
        steps = transitions[tags[:, :-1], tags[:, 1:]] + emissions[:, 1:].gather(
            2, tags[:, 1:].unsqueeze(2)
        ).squeeze(2)
        inside = torch.nn.functional.pad(steps, (1, 0)).cumsum(dim=1)  # [B, T], 0 at t = 0
        excluded, starts, ends, constrained = [], [], [], []
        for b, sentence in enumerate(chunks):
            for chunk_type, start, end in sentence:
                continuation = f"I-{chunk_type}"
                closes = (
                    self.config.crf_scheme == "IOB2"
                    and end < lengths[b]
                    and continuation in self.labels
                )
                excluded.append(self.labels.index(continuation) if closes else 0)
                starts.append(start)
                ends.append(end)
                constrained.append(closes)
        row = torch.tensor(rows, device=device)
        start = torch.tensor(starts, device=device)
        last = torch.tensor(ends, device=device) - 1
        first_tag, last_tag = tags[row, start], tags[row, last]
        log_allowed = alphas[row, start, first_tag] + inside[row, last] - inside[row, start]
        after = betas[row, last, last_tag]
        closes = torch.tensor(constrained, device=device)
        if closes.any():
            # the continuations whose tag at e is not I-X (a chunk that ends the sentence
            # has none to leave out: `closes` is false there)
            following = (last + 1).clamp(max=emissions.shape[1] - 1)
            continuing = transitions[last_tag] + emissions[row, following] + betas[row, following]
            not_inside = continuing.scatter(
                1, torch.tensor(excluded, device=device).unsqueeze(1), -math.inf
            )
            after = torch.where(closes, torch.logsumexp(not_inside, dim=1), after)
        log_p = log_allowed + after - log_z[row]
        probabilities = iter(log_p.exp().clamp(0.0, 1.0).tolist())
        return confidences, [[next(probabilities) for _ in sentence] for sentence in chunks]


def _read_rows(
    rows: Iterable[Row], need_tags: bool
) -> tuple[list[Sequence[str]], list[Sequence[str] | None], list[Any]]:
    """The words, tags (None where a row has none) and ``document`` values (None where a row
    has none) of tagging rows, read in one pass and checked.

    Raises DataError naming the row: not a mapping, no ``tokens`` list of str words, ``tags``
    missing (when ``need_tags``), not a list of str, or not one tag per word.
    """
    if isinstance(rows, str | Mapping):
        raise DataError(
            "expected an iterable of rows ({'tokens': [...], 'tags': [...]}), "
            f"got a {type(rows).__name__}"
        )
    sentences: list[Sequence[str]] = []
    tags: list[Sequence[str] | None] = []
    documents: list[Any] = []
    for number, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataError(
                f"row {number}: expected a mapping with 'tokens' (a list of words) and 'tags', "
                f"got {type(row).__name__}"
            )
        words = _strings(row.get("tokens"), f"row {number}: 'tokens'", "words")
        sentence_tags = row.get("tags")
        if sentence_tags is None:
            if need_tags:
                raise DataError(f"row {number}: no 'tags' (expected a list of tags, one a word)")
        else:
            sentence_tags = _strings(sentence_tags, f"row {number}: 'tags'", "tags")
            if len(sentence_tags) != len(words):
                raise DataError(f"row {number}: {len(words)} words but {len(sentence_tags)} tags")
        sentences.append(words)
        tags.append(sentence_tags)
        documents.append(row.get("document"))
    return sentences, tags, documents


def _document_sizes(ids: Sequence[Any]) -> list[int] | None:
    """How many consecutive rows each document has, from the rows' ``document`` values
    ``ids``; a row without one (None) is a document of its own. None when no row has one.

    Raises DataError naming the row where a document's id comes back after another
    document: the rows of a document must be consecutive.
    """
    if all(document is None for document in ids):
        return None
    sizes: list[int] = []
    finished: set[Any] = set()
    previous: Any = None
    for number, document in enumerate(ids):
        if document is not None and document == previous:
            sizes[-1] += 1
            continue
        if document is not None and document in finished:
            raise DataError(
                f"row {number}: document {document!r} comes back after other documents; the "
                "rows of one document must be consecutive"
            )
        finished.add(previous)
        sizes.append(1)
        previous = document
    return sizes


def _chunk_groups(chunks: Sequence[DocumentChunk], words: int) -> Iterator[list[DocumentChunk]]:
    """Consecutive chunks whose span of text (first start to last stop) has at most ``words``
    words (a longer chunk alone): the features of one group are held at a time."""
    group: list[DocumentChunk] = []
    for chunk in chunks:
        if group and chunk.stop - group[0].start > words:
            yield group
            group = []
        group.append(chunk)
    if group:
        yield group


def _forward_backward(
    crf: LinearChainCRF, emissions: Tensor, mask: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The CRF's sum-product scores in the emissions' dtype: (transitions [K, K], alphas
    [B, T, K]: log-sum of the scores of every prefix ending in tag k at t, its emission
    included; betas [B, T, K]: of every continuation after tag k at t, the end score
    included; log Z [B]), as LinearChainCRF.marginals computes them (forbidden steps score
    -1e4). Emissions are zero on padding; T >= 1."""
    # LinearChainCRF keeps its recursions internal; these are the ones marginals runs
    start, transitions, end = (score.to(emissions.dtype) for score in crf._scores(-1e4))
    alphas = crf._alphas(emissions, mask, start, transitions)
    batch, steps, num_tags = emissions.shape
    beta = end.expand(batch, num_tags)
    betas = [beta]
    for t in range(steps - 1, 0, -1):
        step = torch.logsumexp(transitions + (emissions[:, t] + beta).unsqueeze(1), dim=2)
        beta = torch.where(mask[:, t].unsqueeze(1), step, end)  # t == length: last token
        betas.append(beta)
    log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)
    return transitions, alphas, torch.stack(betas[::-1], dim=1), log_z


def _regroup(items: list[Any], sizes: Sequence[int]) -> list[list[Any]]:
    """Consecutive runs of ``items`` of the given sizes."""
    groups, start = [], 0
    for size in sizes:
        groups.append(items[start : start + size])
        start += size
    return groups


def _strings(value: Any, where: str, what: str) -> Sequence[str]:
    """value if it is a list (or tuple) of str, else DataError "``where`` must be ..."."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        got = "nothing" if value is None else type(value).__name__
        if isinstance(value, list | tuple):
            got = "a list with a non-str item"
            if (
                what == "tags"
                and value
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                # the ClassLabel ids of a hub data set's rows, read without their names
                raise DataError(
                    f"{where} must be a list of str {what}, got integers (ClassLabel ids?): "
                    "pass the datasets.Dataset itself (e.g. tagger.evaluate(ds['test'])), "
                    "whose features name the labels, or the label names"
                )
        raise DataError(f"{where} must be a list of str {what}, got {got}")
    return value


def _entity(
    sentence: Sentence,
    words: Sequence[str],
    offsets: list[tuple[int, int]],
    chunk: tuple[str, int, int],
    score: float,
) -> Entity:
    chunk_type, first, end = chunk
    start, stop = offsets[first][0], offsets[end - 1][1]
    text = sentence[start:stop] if isinstance(sentence, str) else " ".join(words[first:end])
    return Entity(text, chunk_type, start, stop, score, first, end)
