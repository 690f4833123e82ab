"""Seq2SeqLSTM: attention-based LSTM translation (Luong et al., 2015; Bahdanau et al., 2015).

    source ids [B, S] (text, EOS)
    -> SharedEmbedding                                      [B, S, E]
    -> BiLSTMEncoder over packed sequences                  [B, S, 2H_enc], final states
    -> bridge -> AttentionDecoder, teacher-forced on BOS y  [B, T, H_dec] attentional vectors
    -> projection to E (only when tied and H_dec != E)      [B, T, E]
    -> output layer (optionally tied to the target table)   [B, T, V]
    -> label-smoothed cross-entropy against y EOS, summed over the non-padding targets

Source and target share one SentencePiece tokenizer, so one embedding table can serve the
source, the target and the output layer (`share_embeddings`, `tie_output`). Translation runs
greedy or beam search (`seqlstm.tasks.translation.search`) on batches of sentences sorted by
length; a sentence's translation does not depend on the other sentences of its batch or on padding.

The task protocol (`seqlstm.tasks.base`): rows are `{"source": str, "target": str}`, or keyed
by the language codes `config.source_language` / `config.target_language` when those are set
(the columns `seqlstm.data.load(..., "translation")` makes); `encode(rows)` -> examples,
`collate(examples)` -> TranslationBatch, `forward(batch)` -> StepOutput, `score(rows)` /
`evaluate(rows)` -> sacreBLEU BLEU, chrF and lowercased BLEU of the translations.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlstm.data import lengths_to_mask, pad_sequences
from seqlstm.data.dataset_rows import translation_rows
from seqlstm.errors import DataError
from seqlstm.layers.attention import AttentionType, build_attention
from seqlstm.layers.decoders import AttentionDecoder, DecoderState
from seqlstm.layers.embedding import SharedEmbedding
from seqlstm.layers.encoders import BiLSTMEncoder
from seqlstm.metrics.bleu import SacreScore, translation_scores
from seqlstm.pretrained import PretrainedModel
from seqlstm.tasks.base import Row, StepOutput, evaluating, numbered_rows
from seqlstm.tasks.translation.search import Hypothesis, beam_search, greedy_search
from seqlstm.text.tokenizer import SubwordTokenizer, normalize

# one (source ids, target ids) pair: source is `text EOS`, target is `BOS text EOS`
Example = tuple[list[int], list[int]]

# The most subwords (EOS included) one translation may have, whatever max_length_ratio and
# max_length_constant say: 16 times the longest source the default max_source_length lets
# through, so no real limit reaches it, while a ratio of 1e9 decodes 4096 steps, not forever.
MAX_OUTPUT_LENGTH = 4096


@dataclass
class TranslatorConfig:
    """Sizes, regularisation and decoding limits; lengths count subwords."""

    embedding_dim: int = 256
    encoder_hidden_size: int = 256  # per direction: encoder states are 2x this
    encoder_layers: int = 2
    decoder_hidden_size: int = 512
    decoder_layers: int = 2
    attention: AttentionType = "general"
    attention_hidden_size: int | None = None  # concat only; None: decoder_hidden_size
    input_feeding: bool = True
    bridge: bool = True  # initial decoder state from the encoder's final states (else zeros)
    dropout: float = 0.3
    share_embeddings: bool = True  # one table for source and target
    tie_output: bool = True  # output layer weight = target embedding table
    label_smoothing: float = 0.1
    max_source_length: int = 256  # EOS included; longer sources are truncated
    max_target_length: int = 256  # BOS and EOS included; longer training targets are truncated
    # decoding: at most ratio * source length + constant tokens, and never more than
    # MAX_OUTPUT_LENGTH (whatever the ratio, one output is bounded work)
    max_length_ratio: float = 2.0
    max_length_constant: int = 10
    # language codes of the data (e.g. "en", "de"): rows keyed by them are understood as well
    # as rows with "source" and "target"; model directories saved by 0.1 have neither (None)
    source_language: str | None = None
    target_language: str | None = None

    def __post_init__(self) -> None:
        if self.attention not in ("general", "dot", "concat"):
            raise ValueError(
                f"attention must be 'general', 'dot' or 'concat', got {self.attention!r}"
            )
        if self.attention == "dot" and self.decoder_hidden_size != 2 * self.encoder_hidden_size:
            raise ValueError(
                "dot attention needs decoder_hidden_size == 2 * encoder_hidden_size (the "
                f"bidirectional encoder state), got {self.decoder_hidden_size} and "
                f"2 * {self.encoder_hidden_size}"
            )
        for name in ("encoder_layers", "decoder_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_source_length", "max_target_length"):
            if getattr(self, name) < 2:
                raise ValueError(
                    f"{name} must be >= 2 (a token and EOS), got {getattr(self, name)}"
                )
        for name in ("dropout", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.max_length_ratio < 0 or self.max_length_constant < 0:
            raise ValueError(
                "max_length_ratio and max_length_constant must be >= 0, got "
                f"{self.max_length_ratio} and {self.max_length_constant}"
            )
        languages = (self.source_language, self.target_language)
        if (languages[0] is None) != (languages[1] is None):
            raise ValueError(
                "set both source_language and target_language or neither, got "
                f"{languages[0]!r} and {languages[1]!r}"
            )
        if languages[0] is not None and (
            not all(isinstance(code, str) and code for code in languages)
            or languages[0] == languages[1]
        ):
            raise ValueError(
                "source_language and target_language must be two different non-empty codes, "
                f"got {languages[0]!r} and {languages[1]!r}"
            )


@dataclass
class TranslationBatch:
    """A padded training batch. source: LongTensor[B, S] (text EOS); source_lengths:
    LongTensor[B]; target_input: LongTensor[B, T] (BOS text); target_output: LongTensor[B, T]
    (text EOS); padding is pad_id."""

    source: Tensor
    source_lengths: Tensor
    target_input: Tensor
    target_output: Tensor


@dataclass
class Translation:
    """One translation with what is needed to inspect or plot its attention.

    source_pieces: the source subwords, ending with the EOS piece; target_pieces: the output
    subwords (ending with EOS unless the maximum length cut the output); attention:
    FloatTensor[len(target_pieces), len(source_pieces)] on the CPU, each row summing to one
    (None unless `translate` was asked for it);
    score: the length-normalised log-probability it was ranked by (beam search), or the
    log-probability (greedy).
    """

    text: str
    score: float
    source_pieces: list[str]
    target_pieces: list[str]
    attention: Tensor | None


class Seq2SeqLSTM(PretrainedModel):
    """Bidirectional-LSTM encoder, attention LSTM decoder; see the module docstring.

    encode(rows) -> examples, collate(examples) -> TranslationBatch and
    forward(batch) -> StepOutput(loss=summed label-smoothed cross-entropy,
    num_tokens=non-padding targets), the step the Trainer calls; translate(sentences) for
    predictions, score(rows) / evaluate(rows) for sacreBLEU metrics.
    """

    config_class = TranslatorConfig

    def __init__(self, config: TranslatorConfig, tokenizer: SubwordTokenizer) -> None:
        super().__init__(config, tokenizer)
        dim = config.embedding_dim
        self.source_embedding = SharedEmbedding.from_tokenizer(
            tokenizer, dim, dropout=config.dropout
        )
        self.target_embedding = (
            self.source_embedding
            if config.share_embeddings
            else SharedEmbedding.from_tokenizer(tokenizer, dim, dropout=config.dropout)
        )
        self.encoder = BiLSTMEncoder(
            dim, config.encoder_hidden_size, config.encoder_layers, config.dropout
        )
        attention = build_attention(
            config.attention,
            config.decoder_hidden_size,
            self.encoder.output_size,
            config.attention_hidden_size,
        )
        self.decoder = AttentionDecoder(
            dim,
            config.decoder_hidden_size,
            self.encoder.output_size,
            attention,
            num_layers=config.decoder_layers,
            input_feeding=config.input_feeding,
            bridge=config.bridge,
            dropout=config.dropout,
        )
        output_input = config.decoder_hidden_size
        self.output_projection: nn.Module = nn.Identity()
        if config.tie_output and config.decoder_hidden_size != dim:
            # tying needs the output layer's input to be embedding-sized
            self.output_projection = nn.Linear(config.decoder_hidden_size, dim, bias=False)
            output_input = dim
        self.output = nn.Linear(output_input, len(tokenizer))
        nn.init.zeros_(self.output.bias)
        if config.tie_output:
            self.target_embedding.tie(self.output)

    # ----------------------------------------------------------------------------- training

    def encode(self, rows: Iterable[Row]) -> list[Example]:
        """(source ids + EOS, BOS + target ids + EOS) per row, ready for `collate`.

        rows: Mappings (dicts, or the rows of a `datasets.Dataset`) with string columns
        "source" and "target", or the language-code columns of `config.source_language` and
        `config.target_language` when those are set. Sequences over max_source_length /
        max_target_length are truncated (keeping EOS), with a warning that says how many.
        """
        sources, targets = self._sentence_pairs(rows)
        tok = self.tokenizer
        source_ids = self._truncated(
            tok.encode_batch(sources, add_eos=True), self.config.max_source_length, "source"
        )
        target_ids = self._truncated(
            tok.encode_batch(targets, add_bos=True, add_eos=True),
            self.config.max_target_length,
            "target",
        )
        return list(zip(source_ids, target_ids, strict=True))

    def collate(self, examples: Sequence[Example]) -> TranslationBatch:
        """Pad (source ids, target ids) pairs as `encode` makes them into a TranslationBatch:
        source LongTensor[B, S], source_lengths LongTensor[B], target_input (BOS text) and
        target_output (text EOS) LongTensor[B, T - 1] for targets of up to T ids."""
        pad_id = self.tokenizer.pad_id
        source, source_lengths = pad_sequences([src for src, _ in examples], pad_id)
        target_input, _ = pad_sequences([tgt[:-1] for _, tgt in examples], pad_id)
        target_output, _ = pad_sequences([tgt[1:] for _, tgt in examples], pad_id)
        return TranslationBatch(source, source_lengths, target_input, target_output)

    def forward(self, batch: TranslationBatch) -> StepOutput:
        """Summed label-smoothed cross-entropy of the batch's targets (padding ignored).

        Smoothing is torch's: the target distribution is (1 - eps) on the gold token plus
        eps / V on every token of the vocabulary.
        """
        state = self.encode_source(batch.source, batch.source_lengths)
        vectors, _ = self.decoder(self.target_embedding(batch.target_input), state)
        logits = self.logits(vectors)  # [B, T, V]
        pad_id = self.tokenizer.pad_id
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            batch.target_output.reshape(-1),
            ignore_index=pad_id,
            label_smoothing=self.config.label_smoothing,
            reduction="sum",
        )
        return StepOutput(loss=loss, num_tokens=(batch.target_output != pad_id).sum())

    # ----------------------------------------------------------------------------- pieces

    def encode_source(self, source: Tensor, source_lengths: Tensor) -> DecoderState:
        """Encode source LongTensor[B, S] of lengths LongTensor[B]: the decoder's first state."""
        mask = lengths_to_mask(source_lengths, source.size(1))
        memory, final = self.encoder(self.source_embedding(source), source_lengths)
        return self.decoder.init_state(memory, mask, final)

    def logits(self, vectors: Tensor) -> Tensor:
        """Attentional vectors FloatTensor[..., H_dec] -> vocabulary logits FloatTensor[..., V]."""
        return self.output(self.output_projection(vectors))

    def decode_step(
        self, prev_tokens: Tensor, state: DecoderState
    ) -> tuple[Tensor, DecoderState, Tensor]:
        """The search step: prev_tokens LongTensor[N] -> (log-probs FloatTensor[N, V], new
        state, attention FloatTensor[N, S]). Padding and BOS get probability zero."""
        vector, state, weights = self.decoder.step(self.target_embedding(prev_tokens), state)
        logits = self.logits(vector).float()
        logits[:, [self.tokenizer.pad_id, self.tokenizer.bos_id]] = float("-inf")
        return logits.log_softmax(dim=-1), state, weights

    # ----------------------------------------------------------------------------- translation

    def translate(
        self,
        sentences: Sequence[str],
        beam_size: int = 5,
        length_penalty: float = 1.0,
        max_length_ratio: float | None = None,
        max_length_constant: int | None = None,
        n_best: int = 1,
        batch_size: int = 64,
        return_attention: bool = False,
    ) -> list[str] | list[list[str]] | list[Translation] | list[list[Translation]]:
        """Translate sentences; the results come back in input order.

        beam_size=1 is greedy search. length_penalty is the GNMT alpha (0: none). An output
        has at most int(ratio * source subwords) + constant tokens (config defaults; a finite
        ratio >= 0 and an integer constant >= 0), and never more than MAX_OUTPUT_LENGTH (4096).
        batch_size counts sentences (beam search works on batch_size x beam_size rows).
        Returns one detokenized string per sentence, or with n_best > 1 a list of up to n_best
        strings, best first; with return_attention=True `Translation`s instead of strings.
        An empty (or blank) sentence translates to "". Sources longer than
        config.max_source_length are truncated, with a warning that says how many.
        """
        if isinstance(sentences, str):
            raise TypeError("translate takes a list of sentences, not one string")
        if beam_size < 1 or batch_size < 1:
            raise ValueError(
                f"beam_size and batch_size must be >= 1, got {beam_size}, {batch_size}"
            )
        if not 1 <= n_best <= beam_size:
            raise ValueError(f"n_best must be in 1..beam_size={beam_size}, got {n_best}")
        ratio = self.config.max_length_ratio if max_length_ratio is None else max_length_ratio
        constant = (
            self.config.max_length_constant if max_length_constant is None else max_length_constant
        )
        _check_length_limits(ratio, constant)
        texts = [normalize(sentence) for sentence in sentences]
        todo = [i for i, text in enumerate(texts) if text]
        sources = self._truncated(
            self.tokenizer.encode_batch([texts[i] for i in todo], add_eos=True),
            self.config.max_source_length,
            "source",
        )
        # an empty sentence keeps this placeholder: it is never sent through the model
        results = [
            [Translation("", 0.0, [], [], torch.zeros(0, 0) if return_attention else None)]
            for _ in texts
        ]
        # longest first: similar lengths share a batch, so little of it is padding
        order = sorted(range(len(todo)), key=lambda j: -len(sources[j]))
        device = self.device
        with evaluating(self):
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch_sources = [sources[j] for j in chunk]
                ids, lengths = pad_sequences(batch_sources, self.tokenizer.pad_id)
                state = self.encode_source(ids.to(device), lengths.to(device))
                # the limit depends on the sentence's own length only (EOS not counted)
                max_lengths = torch.tensor(
                    [output_length_limit(ratio, constant, len(s) - 1) for s in batch_sources],
                    device=device,
                )
                hypotheses = self._search(
                    state, max_lengths, beam_size, length_penalty, n_best, return_attention
                )
                for j, source, hyps in zip(chunk, batch_sources, hypotheses, strict=True):
                    results[todo[j]] = [self._translation(h, source) for h in hyps]
        if return_attention:
            return [r[0] for r in results] if n_best == 1 else results
        if n_best == 1:
            return [r[0].text for r in results]
        return [[t.text for t in r] for r in results]

    # ----------------------------------------------------------------------------- metrics

    def score(
        self,
        rows: Iterable[Row],
        beam_size: int = 5,
        batch_size: int = 64,
        length_penalty: float = 1.0,
    ) -> dict[str, SacreScore]:
        """sacreBLEU scores of the translations of the rows' sources against their targets.

        rows as for `encode`, or a `datasets.Dataset` with "source" and "target" columns, the
        columns of config.source_language and target_language, or a "translation" column of
        {language: sentence} dicts (the WMT layout; seqlstm.data.dataset_rows); the targets
        are the references as given (detokenized text). Returns
        `seqlstm.metrics.translation_scores`: "bleu" (cased, 13a), "chrf" (chrF2) and
        "bleu_lowercase", each with its signature. beam_size=1 is greedy search (what
        training's validation uses); batch_size and length_penalty as for `translate`.
        """
        config = self.config
        rows = translation_rows(rows, config.source_language, config.target_language)
        sources, references = self._sentence_pairs(rows)
        hypotheses = self.translate(
            sources, beam_size=beam_size, length_penalty=length_penalty, batch_size=batch_size
        )
        return translation_scores(hypotheses, references)

    def evaluate(
        self,
        rows: Iterable[Row],
        beam_size: int = 5,
        batch_size: int = 64,
        length_penalty: float = 1.0,
    ) -> dict[str, float]:
        """`score`'s numbers alone: {"bleu", "chrf", "bleu_lowercase"} in percent; rows as for
        `score` (a `datasets.Dataset` included)."""
        scores = self.score(rows, beam_size, batch_size, length_penalty)
        return {name: s.score for name, s in scores.items()}

    def _sentence_pairs(self, rows: Iterable[Row]) -> tuple[list[str], list[str]]:
        """The (source sentences, target sentences) of rows; DataError names a bad row."""
        config = self.config
        sources: list[str] = []
        targets: list[str] = []
        for number, row in numbered_rows(rows):
            sources.append(_column(row, number, "source", config.source_language))
            targets.append(_column(row, number, "target", config.target_language))
        return sources, targets

    def _search(
        self,
        state: DecoderState,
        max_lengths: Tensor,
        beam_size: int,
        alpha: float,
        n_best: int,
        return_attention: bool,
    ) -> list[list[Hypothesis]]:
        tok = self.tokenizer
        if beam_size == 1:
            hypotheses = greedy_search(
                self.decode_step,
                DecoderState.reorder,
                state,
                max_lengths,
                tok.bos_id,
                tok.eos_id,
                return_attention=return_attention,
            )
            return [[h] for h in hypotheses]
        return beam_search(
            self.decode_step,
            # the beams of a sentence share one copy of its encoder states
            functools.partial(DecoderState.reorder, group_size=beam_size),
            state,
            max_lengths,
            tok.bos_id,
            tok.eos_id,
            beam_size=beam_size,
            alpha=alpha,
            n_best=n_best,
            return_attention=return_attention,
        )

    def _translation(self, hypothesis: Hypothesis, source: list[int]) -> Translation:
        tok = self.tokenizer
        attention = hypothesis.attention
        if attention is not None:
            attention = attention[:, : len(source)]  # drop the batch's padding columns
        return Translation(
            text=tok.decode(hypothesis.tokens),
            score=hypothesis.score,
            source_pieces=[tok.id_to_piece(i) for i in source],
            target_pieces=[tok.id_to_piece(i) for i in hypothesis.tokens],
            attention=attention,
        )

    @staticmethod
    def _truncated(sequences: list[list[int]], limit: int, what: str) -> list[list[int]]:
        """Cut sequences longer than limit to limit tokens, keeping the final EOS; warn."""
        too_long = sum(len(ids) > limit for ids in sequences)
        if too_long:
            warnings.warn(
                f"{too_long} of {len(sequences)} {what} sentences are longer than "
                f"max_{what}_length={limit} subwords and were truncated",
                stacklevel=3,
            )
        return [ids if len(ids) <= limit else ids[: limit - 1] + ids[-1:] for ids in sequences]


def _column(row: Row, number: int, side: str, language: str | None) -> str:
    """The sentence of one side of a row: its "source"/"target" column, else its language's,
    else its language's in a "translation" dict (the WMT layout)."""
    names = [side] if language is None else [side, language]
    columns: Mapping = row
    pair = row.get("translation")
    if language is not None and isinstance(pair, Mapping) and not any(n in row for n in names):
        columns, names = (
            {f"translation.{language}": pair.get(language)},
            [f"translation.{language}"],
        )
    for name in names:
        if name in columns:
            text = columns[name]
            if not isinstance(text, str):
                raise DataError(
                    f"row {number}: column {name!r} must be a string, got {type(text).__name__}"
                )
            return text
    wanted = " or ".join(repr(name) for name in names)
    raise DataError(f"row {number}: expected a {wanted} column, got columns {list(row)}")


def output_length_limit(ratio: float, constant: int, source_length: int) -> int:
    """The most subwords a translation of ``source_length`` subwords (EOS not counted) may
    have: int(ratio * source_length) + constant, at least 1 and at most MAX_OUTPUT_LENGTH."""
    # capped before int(): ratio * length may be too large for an int64, or infinite
    scaled = min(ratio * source_length, float(MAX_OUTPUT_LENGTH))
    return max(1, min(int(scaled) + constant, MAX_OUTPUT_LENGTH))


def _check_length_limits(ratio: object, constant: object) -> None:
    """ValueError unless ratio is a finite number >= 0 and constant an integer >= 0."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < math.inf:
        raise ValueError(f"max_length_ratio must be a finite number >= 0, got {ratio!r}")
    if isinstance(constant, bool) or not isinstance(constant, int) or constant < 0:
        raise ValueError(f"max_length_constant must be an integer >= 0, got {constant!r}")
