"""Corpus BLEU and chrF through sacreBLEU, with the signature that makes a score reproducible.

Scores are computed on detokenized text (sacreBLEU tokenizes itself, "13a" by default), so
they are comparable with published sacreBLEU numbers; always report the signature with them.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF

from seqlstm.errors import DataError


@dataclass(frozen=True)
class SacreScore:
    """A corpus score in percent (0-100), sacreBLEU's signature and its one-line summary."""

    score: float
    signature: str
    summary: str


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    lowercase: bool = False,
    tokenize: str = "13a",
) -> SacreScore:
    """Corpus BLEU of one hypothesis per segment.

    references: one reference string per hypothesis, or a list of such reference streams
    (each as long as `hypotheses`) for multiple references per segment.
    """
    bleu = BLEU(lowercase=lowercase, tokenize=tokenize)
    score = bleu.corpus_score(list(hypotheses), _reference_streams(hypotheses, references))
    return SacreScore(score.score, str(bleu.get_signature()), str(score))


def corpus_chrf(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    lowercase: bool = False,
    word_order: int = 0,
) -> SacreScore:
    """Corpus chrF (word_order=0) or chrF++ (word_order=2); references as for `corpus_bleu`."""
    chrf = CHRF(lowercase=lowercase, word_order=word_order)
    score = chrf.corpus_score(list(hypotheses), _reference_streams(hypotheses, references))
    return SacreScore(score.score, str(chrf.get_signature()), str(score))


def translation_scores(
    hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
) -> dict[str, SacreScore]:
    """The translation task's scores of detokenized hypotheses, one per segment.

    "bleu": cased BLEU with the 13a tokenizer; "chrf": chrF2 (character 6-grams, beta 2, no
    word n-grams); "bleu_lowercase": BLEU of the lowercased text. references as for
    `corpus_bleu`.
    """
    return {
        "bleu": corpus_bleu(hypotheses, references),
        "chrf": corpus_chrf(hypotheses, references),
        "bleu_lowercase": corpus_bleu(hypotheses, references, lowercase=True),
    }


def _reference_streams(
    hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
) -> list[list[str]]:
    """sacreBLEU's layout: a list of streams, each with one reference per hypothesis."""
    if isinstance(hypotheses, str):
        raise DataError("hypotheses must be a list of strings, one per segment, not one string")
    if isinstance(references, str):
        raise DataError("references must be a list of strings, one per segment, not one string")
    if not references:
        raise DataError(f"no references given for {len(hypotheses)} hypotheses")
    streams = (
        [list(references)] if isinstance(references[0], str) else [list(s) for s in references]
    )
    for number, stream in enumerate(streams):
        if len(stream) != len(hypotheses):
            raise DataError(
                f"reference stream {number} has {len(stream)} lines but there are "
                f"{len(hypotheses)} hypotheses"
            )
        for line, text in enumerate(stream):
            if not isinstance(text, str):
                raise DataError(
                    f"reference stream {number}, line {line}: expected a string, "
                    f"got {type(text).__name__}"
                )
    return streams
