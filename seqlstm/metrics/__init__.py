"""Evaluation metrics: conlleval entity F1, sacreBLEU BLEU/chrF, perplexity and bits per char."""

from seqlstm.metrics.bleu import SacreScore, corpus_bleu, corpus_chrf, translation_scores
from seqlstm.metrics.entity_f1 import ChunkScores, EntityScores, entity_f1
from seqlstm.metrics.perplexity import bits_per_character, perplexity, perplexity_per_word

__all__ = [
    "ChunkScores",
    "EntityScores",
    "SacreScore",
    "bits_per_character",
    "corpus_bleu",
    "corpus_chrf",
    "entity_f1",
    "perplexity",
    "perplexity_per_word",
    "translation_scores",
]
