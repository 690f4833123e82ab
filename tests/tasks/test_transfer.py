"""transfer_from_language_model copies exactly the tensors it names, and nothing else."""

import pytest
import torch
from torch import nn

import seqlstm.layers.lstm
from seqlstm.layers.embedding import SharedEmbedding
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.tasks.transfer import transfer_from_language_model
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary

TEXTS = ["the quick brown fox jumps over the lazy dog", "pack my box with five dozen jugs"]
LAYER = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(TEXTS, vocab_size=300, model_type="char")


@pytest.fixture(scope="module")
def lm(tokenizer):
    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_dim=12, hidden_size=20, num_layers=2)
    return LSTMLanguageModel(config, tokenizer)


class StandIn(nn.Module):
    """A target as the transfer sees it: a tokenizer, a SharedEmbedding and an LSTM encoder."""

    def __init__(self, tokenizer, embedding_dim=12, hidden_size=20, lstm_class=nn.LSTM, **lstm):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding = SharedEmbedding(len(tokenizer), embedding_dim)
        self.encoder = lstm_class(
            embedding_dim, hidden_size, num_layers=2, bidirectional=True, batch_first=True, **lstm
        )
        self.head = nn.Linear(2 * hidden_size, 3)


def snapshot(module):
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def changed(before, module):
    return {name for name, t in module.state_dict().items() if not torch.equal(t, before[name])}


def aliases(module, names):
    """names plus every state_dict name that views the same memory (tied weights)."""
    state = module.state_dict()
    pointers = {state[name].data_ptr() for name in names}
    return {name for name, tensor in state.items() if tensor.data_ptr() in pointers}


def check_copies(target, lm, report):
    """Every "copied" line's tensor equals the LM's; nothing outside the report changed."""
    lm_state, target_state = lm.state_dict(), target.state_dict()
    copied = []
    for line in report:
        kind, target_name, _, lm_name = line.split()[:4]
        lm_name = lm_name.rstrip(":")
        if kind == "copied":
            assert torch.equal(target_state[target_name], lm_state[lm_name])
            copied.append(target_name)
    return copied


def test_copies_the_embedding_and_the_forward_first_layer(tokenizer, lm):
    torch.manual_seed(1)
    target = StandIn(tokenizer)
    before = snapshot(target)
    report = transfer_from_language_model(target, lm)
    assert report == [
        "copied embedding.token_embedding.weight <- embedding.token_embedding.weight "
        f"[{len(tokenizer)}, 12]",
        "copied encoder.weight_ih_l0 <- layers.0.lstm.weight_ih_l0 [80, 12]",
        "copied encoder.weight_hh_l0 <- layers.0.lstm.weight_hh_l0 [80, 20]",
        "copied encoder.bias_ih_l0 <- layers.0.lstm.bias_ih_l0 [80]",
        "copied encoder.bias_hh_l0 <- layers.0.lstm.bias_hh_l0 [80]",
    ]
    copied = check_copies(target, lm, report)
    # the backward direction, the second layer and the head are untouched
    assert changed(before, target) == set(copied)
    # copies, not shared tensors: training the target leaves the LM alone
    assert target.embedding.token_embedding.weight is not lm.embedding.token_embedding.weight


def test_tensors_of_other_shapes_are_skipped_and_named(tokenizer, lm):
    torch.manual_seed(2)
    target = StandIn(tokenizer, embedding_dim=10)  # hidden size 20 still matches
    before = snapshot(target)
    report = transfer_from_language_model(target, lm)
    assert report[0] == (
        "skipped embedding.token_embedding.weight <- embedding.token_embedding.weight: shape "
        f"[{len(tokenizer)}, 10] in the target, [{len(tokenizer)}, 12] in the language model"
    )
    assert report[1] == (
        "skipped encoder.weight_ih_l0 <- layers.0.lstm.weight_ih_l0: shape [80, 10] in the "
        "target, [80, 12] in the language model"
    )
    assert [line.split()[0] for line in report[2:]] == ["copied"] * 3
    assert changed(before, target) == set(check_copies(target, lm, report))
    assert changed(before, target) == {f"encoder.{name}" for name in LAYER[1:]}

    other_size = StandIn(tokenizer, hidden_size=8)
    report = transfer_from_language_model(other_size, lm)
    assert [line.split()[0] for line in report] == ["copied"] + ["skipped"] * 4


def test_an_lstm_without_biases_and_the_equations_lstm(tokenizer, lm):
    target = StandIn(tokenizer, bias=False)
    report = transfer_from_language_model(target, lm)
    assert report[3] == "skipped encoder.bias_ih_l0 <- layers.0.lstm.bias_ih_l0: not in the target"
    assert [line.split()[0] for line in report] == ["copied"] * 3 + ["skipped"] * 2

    ours = StandIn(tokenizer, lstm_class=seqlstm.layers.lstm.LSTM)
    before = snapshot(ours)
    report = transfer_from_language_model(ours, lm)
    assert changed(before, ours) == set(check_copies(ours, lm, report))
    assert len(check_copies(ours, lm, report)) == 5


def test_explicit_module_paths_and_missing_modules(tokenizer, lm):
    target = StandIn(tokenizer)
    report = transfer_from_language_model(target, lm, embeddings=[], lstm="encoder")
    assert [line.split()[1] for line in report] == [f"encoder.{name}" for name in LAYER]
    with pytest.raises(ValueError, match="no submodule 'decoder'"):
        transfer_from_language_model(target, lm, lstm="decoder")
    with pytest.raises(ValueError, match="'head' is a Linear, not a torch.nn.LSTM or seqlstm"):
        transfer_from_language_model(target, lm, lstm="head")
    bare = nn.Module()
    bare.tokenizer = tokenizer
    with pytest.raises(ValueError, match="Module has no SharedEmbedding to transfer into"):
        transfer_from_language_model(bare, lm)
    bare.embedding = SharedEmbedding(len(tokenizer), 12)
    with pytest.raises(
        ValueError, match="has no torch.nn.LSTM or seqlstm.layers.lstm.LSTM to transfer"
    ):
        transfer_from_language_model(bare, lm)


def test_a_different_tokenizer_is_refused(tokenizer, lm):
    other = SubwordTokenizer.train(["the quick brown fox"], vocab_size=300, model_type="char")
    with pytest.raises(ValueError, match="tokenizers differ: the language model has"):
        transfer_from_language_model(StandIn(other), lm)
    # same number of pieces, different pieces
    a = SubwordTokenizer.train(["abc"], vocab_size=300, model_type="char")
    b = SubwordTokenizer.train(["abd"], vocab_size=300, model_type="char")
    assert len(a) == len(b)
    lm_a = LSTMLanguageModel(LanguageModelConfig(embedding_dim=12, hidden_size=20), a)
    with pytest.raises(ValueError, match="tokenizers differ at id"):
        transfer_from_language_model(StandIn(b), lm_a)
    with pytest.raises(ValueError, match="no tokenizer attribute"):
        transfer_from_language_model(nn.LSTM(2, 2), lm)


# ----------------------------------------------------------------------------- real models


@pytest.mark.parametrize("share_embeddings", [True, False])
def test_translator(tokenizer, lm, share_embeddings):
    torch.manual_seed(3)
    config = TranslatorConfig(
        embedding_dim=12,
        encoder_hidden_size=20,
        encoder_layers=1,
        decoder_hidden_size=16,
        decoder_layers=1,
        share_embeddings=share_embeddings,
    )
    translator = Seq2SeqLSTM(config, tokenizer)
    before = snapshot(translator)
    report = transfer_from_language_model(translator, lm)
    tables = ["source_embedding"] if share_embeddings else ["source_embedding", "target_embedding"]
    assert [line.split()[1] for line in report] == [
        *(f"{table}.token_embedding.weight" for table in tables),
        *(f"encoder.rnn.{name}" for name in LAYER),
    ]
    copied = check_copies(translator, lm, report)
    assert len(copied) == len(report)
    # the tied output layer views the target table, so it moves with it, and only it
    assert changed(before, translator) == aliases(translator, copied)
    assert "output.weight" in aliases(translator, copied)


@pytest.mark.parametrize("char_filters", [0, 6])
def test_tagger(tokenizer, lm, char_filters):
    torch.manual_seed(4)
    labels = Vocabulary.build(
        ["O", "B-PER", "I-PER", "E-PER", "S-PER"], pad_token=None, unk_token=None
    )
    chars = Vocabulary.build(list("abcdefghij")) if char_filters else None
    # no document context: the encoder's input sizes below have no sentence-start flag
    config = TaggerConfig(
        subword_dim=12, hidden_size=20, char_filters=char_filters, context_words=0
    )
    tagger = BiLSTMCRFTagger(config, tokenizer, labels=labels, chars=chars)
    before = snapshot(tagger)
    report = transfer_from_language_model(tagger, lm)
    copied = check_copies(tagger, lm, report)
    assert changed(before, tagger) == set(copied)
    expected = {"embedding.token_embedding.weight", *(f"encoder.rnn.{name}" for name in LAYER)}
    if char_filters:  # the encoder reads subwords + character features: 18 inputs, not 12
        assert "skipped encoder.rnn.weight_ih_l0" in report[1]
        assert "shape [80, 18] in the target" in report[1]
        expected.remove("encoder.rnn.weight_ih_l0")
    assert set(copied) == expected
