"""seqlstm.tasks.language_modeling.tbptt: the window loss and the evaluation of a stream."""

import math

import pytest
import torch

import seqlstm.data.batching
from seqlstm.data.streams import IGNORE_INDEX, encode_stream
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.language_modeling.tbptt import detach_hidden, evaluate_stream, token_nll
from seqlstm.text.tokenizer import SubwordTokenizer

BOS = 2
TEXTS = ["the cat sat on the mat", "", "a dog ran after the cat", "the end"]


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(TEXTS, vocab_size=300, model_type="char")


def tiny_model(tokenizer):
    torch.manual_seed(0)
    dropouts = dict(
        dropout_embedding=0.1, dropout_input=0.2, dropout_hidden=0.2, dropout_output=0.2
    )
    config = LanguageModelConfig(
        embedding_dim=12, hidden_size=16, num_layers=2, weight_drop=0.3, **dropouts
    )
    return LSTMLanguageModel(config, tokenizer)


def test_token_nll_sums_the_scored_targets_by_hand():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]]))
    out = token_nll(logits, torch.tensor([[0, IGNORE_INDEX]]))
    assert float(out.loss) == pytest.approx(-math.log(0.5))
    assert int(out.num_tokens) == 1
    out = token_nll(logits, torch.tensor([[2, 1]]))
    assert float(out.loss) == pytest.approx(-math.log(0.25) - math.log(0.8))
    assert int(out.num_tokens) == 2


def test_detach_hidden_cuts_the_graph_and_keeps_the_values():
    h = torch.ones(1, 2, 3, requires_grad=True) * 2
    (dh, dc) = detach_hidden([(h, h + 1)])[0]
    assert not dh.requires_grad and not dc.requires_grad
    assert torch.equal(dh, h.detach()) and torch.equal(dc, h.detach() + 1)


def test_evaluate_stream_does_not_depend_on_bptt(tokenizer):
    model = tiny_model(tokenizer)
    model.train()
    stream = encode_stream(tokenizer, TEXTS)
    results = [evaluate_stream(model, stream, batch_size=3, bptt=b) for b in (1, 4, 1000)]
    assert model.training  # the mode is restored
    num_scored = sum(1 for t in stream[1:].tolist() if t != BOS)
    for total_nll, num_tokens in results:
        assert num_tokens == num_scored
        assert total_nll == pytest.approx(results[0][0], rel=1e-5)


def test_evaluate_stream_reads_the_whole_stream_inside_a_process_group(tokenizer, monkeypatch):
    """Under DDP rank 0 evaluates alone: it must not read only its training share."""
    model = tiny_model(tokenizer)
    stream = encode_stream(tokenizer, TEXTS)
    alone = evaluate_stream(model, stream, batch_size=2, bptt=5)
    dist = seqlstm.data.batching.dist
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    assert evaluate_stream(model, stream, batch_size=2, bptt=5) == alone
