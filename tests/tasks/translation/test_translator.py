import random

import pytest
import torch
import torch.nn.functional as F

from seqlstm.data import BucketedBatches
from seqlstm.errors import DataError
from seqlstm.layers.decoders import DecoderState
from seqlstm.metrics import corpus_bleu
from seqlstm.tasks.translation.search import beam_search, greedy_search
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslationBatch, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer, TrainerConfig

WORDS = [
    *("red", "blue", "green", "cat", "dog", "bird"),
    *("runs", "sleeps", "eats", "big", "small", "old"),
]


def _sentences(count, low, high, seed):
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))) for _ in range(count)
    ]


@pytest.fixture(scope="module")
def reversal():
    """20 sentence pairs of a word-reversal task and a joint tokenizer (one piece per word)."""
    sources = _sentences(20, 3, 6, seed=0)
    targets = [" ".join(s.split()[::-1]) for s in sources]
    tokenizer = SubwordTokenizer.train(sources + targets, vocab_size=300, hard_vocab_limit=False)
    return sources, targets, tokenizer


def _config(**overrides):
    sizes = dict(embedding_dim=16, encoder_hidden_size=8, decoder_hidden_size=16)
    return TranslatorConfig(**{**sizes, "encoder_layers": 2, "decoder_layers": 2, **overrides})


def _random_model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    return Seq2SeqLSTM(_config(**overrides), tokenizer).eval()


@pytest.fixture(scope="module")
def undertrained(reversal):
    """Models after 20 Adam steps, by attention type: their outputs differ in length."""
    sources, targets, tokenizer = reversal
    models = {}

    def get(attention):
        if attention not in models:
            model = _random_model(tokenizer, attention=attention, input_feeding=attention != "dot")
            batch = TranslationBatch.collate(model.encode_examples(sources, targets))
            optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
            model.train()
            for _ in range(20):
                out = model(batch)
                optimizer.zero_grad()
                (out.loss / out.num_tokens).backward()
                optimizer.step()
            models[attention] = model.eval()
        return models[attention]

    return get


@pytest.fixture(scope="module")
def trained(reversal, tmp_path_factory):
    """A model overfitted on the reversal pairs with the shared Trainer."""
    sources, targets, tokenizer = reversal
    torch.manual_seed(0)
    config = TranslatorConfig(
        embedding_dim=32,
        encoder_hidden_size=32,
        decoder_hidden_size=64,  # != embedding_dim: tying goes through a projection
        encoder_layers=1,
        decoder_layers=1,
        dropout=0.0,
        label_smoothing=0.0,
    )
    model = Seq2SeqLSTM(config, tokenizer)
    examples = model.encode_examples(sources, targets)
    batches = BucketedBatches(
        examples,
        [len(s) + len(t) for s, t in examples],
        lambda batch: TranslationBatch.collate(batch, tokenizer.pad_id),
        max_tokens=10_000,
        shuffle=False,
    )
    trainer_config = TrainerConfig(
        output_dir=str(tmp_path_factory.mktemp("train")),
        max_epochs=None,
        max_steps=100,
        lr=0.02,
        lr_decay_factor=1.0,
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
    )
    Trainer(model, trainer_config, batches).fit()
    return model.eval()


def _pieces(model, sentences, **kwargs):
    return [t.target_pieces for t in model.translate(sentences, return_attention=True, **kwargs)]


def test_overfitted_model_reproduces_the_targets(trained, reversal):
    sources, targets, _ = reversal
    for beam_size in (1, 5):
        hypotheses = trained.translate(sources, beam_size=beam_size, batch_size=7)
        assert hypotheses == targets
        assert corpus_bleu(hypotheses, targets).score == pytest.approx(100.0)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_trained_translation_does_not_depend_on_the_batch(trained, beam_size):
    sentences = _sentences(9, 1, 9, seed=7)
    alone = [_pieces(trained, [s], beam_size=beam_size)[0] for s in sentences]
    for batch_size in (9, 4):
        assert _pieces(trained, sentences, beam_size=beam_size, batch_size=batch_size) == alone


@pytest.mark.parametrize("attention", ["general", "dot", "concat"])
@pytest.mark.parametrize("beam_size", [1, 3])
def test_translation_does_not_depend_on_batch_or_padding(undertrained, attention, beam_size):
    model = undertrained(attention)
    sentences = ["red", "big old dog eats small bird", "cat runs", "green green blue cat dog"]
    sentences += _sentences(6, 1, 8, seed=3)
    ended = set()
    # default limits, and limits that cut some outputs: both depend on each sentence alone
    for ratio, constant in ((None, None), (0.8, 1)):
        options = dict(
            beam_size=beam_size,
            max_length_ratio=ratio,
            max_length_constant=constant,
            return_attention=True,
        )
        alone = [model.translate([s], **options)[0] for s in sentences]
        for batch_size in (10, 3):
            batch = model.translate(sentences, batch_size=batch_size, **options)
            assert [t.target_pieces for t in batch] == [t.target_pieces for t in alone]
            assert [t.score for t in batch] == pytest.approx([t.score for t in alone], abs=1e-4)
        for t in batch:
            assert t.attention.shape == (len(t.target_pieces), len(t.source_pieces))
            torch.testing.assert_close(t.attention.sum(dim=1), torch.ones(len(t.target_pieces)))
            ended.add(t.target_pieces[-1] == "</s>")
        assert len({len(t.target_pieces) for t in alone}) > 2
    assert ended == {True, False}  # outputs that end in EOS and outputs cut at the limit


@pytest.mark.parametrize("attention", ["general", "concat"])
def test_beam_size_one_equals_greedy(undertrained, reversal, attention):
    tokenizer = reversal[2]
    model = undertrained(attention)
    examples = model.encode_examples(_sentences(8, 1, 7, seed=3), ["x"] * 8)
    batch = TranslationBatch.collate(examples, tokenizer.pad_id)
    max_lengths = batch.source_lengths  # tight: some outputs end in EOS, some are cut
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    with torch.no_grad():
        state = model.encode(batch.source, batch.source_lengths)
        greedy = greedy_search(
            model.decode_step, DecoderState.reorder, state, max_lengths, bos, eos
        )
        beam = beam_search(
            model.decode_step, DecoderState.reorder, state, max_lengths, bos, eos, beam_size=1
        )
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    assert [h.log_prob for h in greedy] == pytest.approx([b[0].log_prob for b in beam], abs=1e-5)
    assert {h.tokens[-1] == eos for h in greedy} == {True, False}


def test_loss_is_summed_smoothed_cross_entropy_without_padding(reversal):
    sources, targets, tokenizer = reversal
    model = _random_model(tokenizer, seed=1, label_smoothing=0.2)
    examples = model.encode_examples(sources[:3], targets[:3])
    batch = TranslationBatch.collate(examples, tokenizer.pad_id)
    out = model(batch)
    assert out.num_tokens == sum(len(t) - 1 for _, t in examples)
    # brute force: step the decoder token by token, one example at a time, no padding
    expected = 0.0
    vocab = len(tokenizer)
    for source, target in examples:
        state = model.encode(torch.tensor([source]), torch.tensor([len(source)]))
        for previous, gold in zip(target[:-1], target[1:], strict=True):
            vector, state, _ = model.decoder.step(
                model.target_embedding(torch.tensor([previous])), state
            )
            log_probs = F.log_softmax(model.logits(vector)[0], dim=-1)
            expected -= 0.8 * log_probs[gold] + 0.2 * log_probs.sum() / vocab
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_n_best_hypotheses_are_sorted_and_distinct(trained, reversal):
    sources, targets, _ = reversal
    results = trained.translate(sources[:2], beam_size=4, n_best=3, return_attention=True)
    for translations in results:
        assert len(translations) == 3
        scores = [t.score for t in translations]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(t.target_pieces) for t in translations}) == 3
    texts = trained.translate(sources[:2], beam_size=4, n_best=3)
    assert texts == [[t.text for t in r] for r in results]
    assert [t[0] for t in texts] == targets[:2]


def test_save_and_load_give_identical_translations(trained, tmp_path):
    sentences = ["red cat runs", "big dog sleeps old", "bird"]
    trained.save_pretrained(tmp_path / "model")
    loaded = Seq2SeqLSTM.from_pretrained(tmp_path / "model")
    assert loaded.config == trained.config
    assert loaded.output.weight is loaded.target_embedding.token_embedding.weight
    assert loaded.source_embedding is loaded.target_embedding
    for beam_size in (1, 3):
        before = trained.translate(sentences, beam_size=beam_size, return_attention=True)
        after = loaded.translate(sentences, beam_size=beam_size, return_attention=True)
        assert [t.target_pieces for t in after] == [t.target_pieces for t in before]
        assert [t.score for t in after] == [t.score for t in before]


def test_empty_lines_unknown_characters_and_input_order(trained, reversal):
    sources, targets, _ = reversal
    sentences = ["", sources[0], "   ", sources[1], "ßü 漢字 🙂 red"]
    out = trained.translate(sentences, beam_size=3, batch_size=2)
    assert len(out) == 5 and out[0] == out[2] == ""
    assert out[1] == targets[0] and out[3] == targets[1]
    assert isinstance(out[4], str)
    detailed = trained.translate(["", "dog"], return_attention=True)
    assert detailed[0].text == "" and detailed[0].attention.shape == (0, 0)
    assert detailed[1].source_pieces == ["▁dog", "</s>"]


def test_long_sources_are_truncated_with_a_warning(reversal):
    _, _, tokenizer = reversal
    model = _random_model(tokenizer, max_source_length=4)  # three words and EOS
    long = "red cat runs fast dog old"
    with pytest.warns(UserWarning, match=r"2 of 3 source sentences .* max_source_length=4"):
        out = model.translate([long, "dog", long + " bird"], beam_size=2)
    assert out[0] == out[2] == model.translate(["red cat runs"], beam_size=2)[0]


def test_embedding_tying_and_config_checks(reversal):
    _, _, tokenizer = reversal
    untied = Seq2SeqLSTM(_config(share_embeddings=False, tie_output=False), tokenizer)
    assert untied.source_embedding is not untied.target_embedding
    assert untied.output.weight is not untied.target_embedding.token_embedding.weight
    assert untied.output.in_features == 16
    tied = Seq2SeqLSTM(_config(embedding_dim=12, share_embeddings=False), tokenizer)
    assert tied.output.weight is tied.target_embedding.token_embedding.weight
    assert tied.output_projection.in_features == 16 and tied.output_projection.out_features == 12
    with pytest.raises(ValueError, match="dot attention needs decoder_hidden_size"):
        TranslatorConfig(attention="dot", encoder_hidden_size=8, decoder_hidden_size=12)
    with pytest.raises(ValueError, match="attention must be"):
        TranslatorConfig(attention="additive")
    with pytest.raises(TypeError, match="list of sentences"):
        tied.translate("red cat")
    with pytest.raises(ValueError, match="n_best"):
        tied.translate(["red"], beam_size=2, n_best=3)
    with pytest.raises(DataError, match="2 source sentences but 1 target"):
        tied.encode_examples(["a", "b"], ["c"])
