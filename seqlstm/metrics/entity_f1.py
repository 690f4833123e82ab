"""Entity (chunk) precision, recall and F1 exactly as conlleval.pl computes them.

A predicted entity is correct only if an entity with the same (start, end, type) is in the gold
sequence. Scores are in percent, as conlleval prints them; with no predicted entities precision
is 0, with no gold entities recall is 0, and F1 is 0 when both are 0 (conlleval's convention).

Ill-formed sequences are repaired the way conlleval.pl reads them, and this repair rule is what
makes numbers comparable: toolkits that drop ill-formed chunks or treat a stray I- as O report
up to half a point different F1 on the same predictions. The rule (`tag_schemes.tag_chunks`):

    a token continues the current entity only if its tag is I-X (or E-X) and the previous tag
    is B-X or I-X of the same type X; every other B-/I-/E-/S- tag starts a new entity.

So `O I-PER` is one PER entity, `B-PER I-LOC` is two entities (PER, LOC), and a lone `I-X`
is an entity. IOB1 and IOB2 are scored identically (conlleval does not distinguish them).
For IOBES, E- closes and S- is a one-token entity (conlleval.pl knows IOE's E- but not S-, so
it mis-reads IOBES; this is the extension seqeval's default mode makes), which for well-formed
sequences is the same as converting to IOB2 first. Sentence boundaries always end an entity.

`scheme` only decides which prefixes are legal: a tag of another scheme (E-/S- in IOB data)
or anything that is not `O` or `P-TYPE` raises DataError naming the sentence and position.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from seqlstm.errors import DataError
from seqlstm.text.tag_schemes import split_tag, tag_chunks

SCHEMES = ("IOB1", "IOB2", "IOBES")
_PREFIXES = {"IOB1": "BI", "IOB2": "BI", "IOBES": "BIES"}


def _percent(numerator: int, denominator: int) -> float:
    return 100.0 * numerator / denominator if denominator > 0 else 0.0


@dataclass(frozen=True)
class ChunkScores:
    """Entity counts of one type (or all types) and the scores derived from them, in percent."""

    n_gold: int
    n_pred: int
    n_correct: int

    @property
    def precision(self) -> float:
        return _percent(self.n_correct, self.n_pred)

    @property
    def recall(self) -> float:
        return _percent(self.n_correct, self.n_gold)

    @property
    def f1(self) -> float:
        # 2PR/(P+R) written with counts: the same number without the rounding of P and R
        return _percent(2 * self.n_correct, self.n_gold + self.n_pred)


@dataclass(frozen=True)
class EntityScores(ChunkScores):
    """Overall entity scores (the inherited fields), token accuracy and per-type scores."""

    n_tokens: int
    n_correct_tokens: int
    per_type: dict[str, ChunkScores]

    @property
    def accuracy(self) -> float:
        """Percentage of tokens whose predicted tag equals the gold tag exactly."""
        return _percent(self.n_correct_tokens, self.n_tokens)

    def as_dict(self) -> dict[str, float]:
        """Flat metrics for results files, in percent: precision, recall, f1 and (token)
        accuracy overall, then precision_TYPE, recall_TYPE and f1_TYPE per entity type."""
        metrics = {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "accuracy": self.accuracy,
        }
        for name, scores in self.per_type.items():
            metrics[f"precision_{name}"] = scores.precision
            metrics[f"recall_{name}"] = scores.recall
            metrics[f"f1_{name}"] = scores.f1
        return metrics

    def report(self) -> str:
        """The summary conlleval.pl prints (per-type lines end with the predicted count)."""
        lines = [
            f"processed {self.n_tokens} tokens with {self.n_gold} phrases; "
            f"found: {self.n_pred} phrases; correct: {self.n_correct}.",
            f"accuracy: {self.accuracy:6.2f}%; precision: {self.precision:6.2f}%; "
            f"recall: {self.recall:6.2f}%; FB1: {self.f1:6.2f}",
        ]
        for name, s in self.per_type.items():
            lines.append(
                f"{name:>17}: precision: {s.precision:6.2f}%; recall: {s.recall:6.2f}%; "
                f"FB1: {s.f1:6.2f}  {s.n_pred}"
            )
        return "\n".join(lines)


def entity_f1(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str = "IOB2"
) -> EntityScores:
    """Score predicted tag sequences against gold ones, conlleval-style (see module docstring).

    gold, pred: one tag sequence per sentence, e.g. [["B-PER", "I-PER", "O"], ...].
    Raises DataError if the sentence counts differ, a sentence's lengths differ (naming the
    sentence index and both lengths) or a tag is not a tag of `scheme`.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    if len(gold) != len(pred):
        raise DataError(f"gold has {len(gold)} sentences but pred has {len(pred)}")
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_correct: Counter[str] = Counter()
    n_tokens = n_correct_tokens = 0
    for index, (gold_tags, pred_tags) in enumerate(zip(gold, pred, strict=True)):
        if isinstance(gold_tags, str) or isinstance(pred_tags, str):
            # a string is a sequence too, of characters: never what the caller meant
            raise DataError(f"sentence {index}: expected a sequence of tags, got a string")
        if len(gold_tags) != len(pred_tags):
            raise DataError(
                f"sentence {index}: gold has {len(gold_tags)} tags but pred has {len(pred_tags)}"
            )
        gold_chunks = set(_chunks(gold_tags, scheme, f"gold sentence {index}"))
        pred_chunks = set(_chunks(pred_tags, scheme, f"pred sentence {index}"))
        n_gold.update(chunk_type for chunk_type, _, _ in gold_chunks)
        n_pred.update(chunk_type for chunk_type, _, _ in pred_chunks)
        n_correct.update(chunk_type for chunk_type, _, _ in gold_chunks & pred_chunks)
        n_tokens += len(gold_tags)
        n_correct_tokens += sum(g == p for g, p in zip(gold_tags, pred_tags, strict=True))
    per_type = {
        name: ChunkScores(n_gold[name], n_pred[name], n_correct[name])
        for name in sorted(n_gold.keys() | n_pred.keys())
    }
    return EntityScores(
        n_gold=n_gold.total(),
        n_pred=n_pred.total(),
        n_correct=n_correct.total(),
        n_tokens=n_tokens,
        n_correct_tokens=n_correct_tokens,
        per_type=per_type,
    )


def _chunks(tags: Sequence[str], scheme: str, where: str) -> list[tuple[str, int, int]]:
    """(type, start, end) of each entity, end exclusive; DataError names `where` and position."""
    for position, tag in enumerate(tags):
        try:
            prefix, _ = split_tag(tag)
        except DataError as err:
            raise DataError(f"{where}, tag {position}: {err}") from None
        if prefix != "O" and prefix not in _PREFIXES[scheme]:
            raise DataError(
                f"{where}, tag {position}: {tag!r} is not an {scheme} tag "
                f"(allowed prefixes: {'/'.join(_PREFIXES[scheme])})"
            )
    return tag_chunks(tags)
