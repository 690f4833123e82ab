"""Language-model metrics from a summed negative log-likelihood (in nats).

The models report the SUM of -log p over the predicted tokens of a corpus (natural log), so
every metric here is that sum divided by a count of units and then rescaled:

    perplexity          = exp(total_nll / n_tokens)       per subword/token actually predicted
    perplexity_per_word = exp(total_nll / n_words)        per word of the same text
    bits_per_character  = total_nll / (n_chars * ln 2)    per character of the same text

The last two make models with different tokenizers comparable. A subword model's total
nll is -log p(text) for its (deterministic) segmentation, a quantity that does not depend on
how finely the text was cut; only the divisor does. Re-normalising by words gives
perplexity_per_word = perplexity ** (n_tokens / n_words), the number a word-level model
on the same text reports. Count the units that the model was made to predict: if it scored an
end-of-sentence token after every line, count one extra word (and one extra character, the
newline) per line, as the PTB and enwik8 conventions do.
"""

import math


def _check_count(count: int, name: str) -> None:
    if count <= 0:
        raise ValueError(f"{name} must be positive, got {count}: no units to average over")


def _exp(x: float) -> float:
    # a diverged model's mean nll can exceed what a float can exponentiate; report inf, not crash
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def perplexity(total_nll: float, n_tokens: int) -> float:
    """exp(mean negative log-likelihood in nats) over n_tokens predicted tokens."""
    _check_count(n_tokens, "n_tokens")
    return _exp(total_nll / n_tokens)


def perplexity_per_word(total_nll: float, n_words: int) -> float:
    """Word-level perplexity of a (subword) model's total nll over a text of n_words words."""
    _check_count(n_words, "n_words")
    return _exp(total_nll / n_words)


def bits_per_character(total_nll: float, n_chars: int) -> float:
    """Mean negative log2-likelihood per character: nats / n_chars / ln 2."""
    _check_count(n_chars, "n_chars")
    return total_nll / n_chars / math.log(2)
