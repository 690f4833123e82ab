import math

import pytest

from seqlstm.metrics import bits_per_character, perplexity, perplexity_per_word


def test_perplexity_of_uniform_model_is_vocabulary_size():
    # a uniform model over 50 symbols pays log(50) nats per token
    assert perplexity(10 * math.log(50), 10) == pytest.approx(50.0)
    assert perplexity(0.0, 3) == 1.0
    # mean nll 2 nats: e^2
    assert perplexity(8.0, 4) == pytest.approx(7.38905609893065)


def test_bits_per_character():
    # a fair coin per character costs exactly one bit
    assert bits_per_character(7 * math.log(2), 7) == pytest.approx(1.0)
    assert bits_per_character(3.0, 2) == pytest.approx(1.5 / 0.6931471805599453)


def test_perplexity_per_word_renormalises_subword_nll():
    # 12 subwords for 4 words with total nll 6 nats: per subword e^0.5, per word e^1.5
    total_nll, n_subwords, n_words = 6.0, 12, 4
    assert perplexity(total_nll, n_subwords) == pytest.approx(math.exp(0.5))
    assert perplexity_per_word(total_nll, n_words) == pytest.approx(math.exp(1.5))
    assert perplexity_per_word(total_nll, n_words) == pytest.approx(
        perplexity(total_nll, n_subwords) ** (n_subwords / n_words)
    )


def test_diverged_model_gives_inf_not_overflow():
    assert perplexity(1e6, 1) == math.inf


@pytest.mark.parametrize("function", [perplexity, perplexity_per_word, bits_per_character])
def test_zero_count_is_an_error(function):
    with pytest.raises(ValueError, match="must be positive, got 0"):
        function(1.0, 0)
