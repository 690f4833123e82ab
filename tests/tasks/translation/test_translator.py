import json
import random

import pytest
import sacrebleu
import torch
import torch.nn.functional as F
from datasets import Dataset
from locations import FIXTURES

from seqlstm.data import BucketedBatches, load
from seqlstm.errors import DataError
from seqlstm.layers.decoders import DecoderState
from seqlstm.metrics import corpus_bleu
from seqlstm.tasks.translation.search import beam_search, greedy_search
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
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


def _rows(sources, targets):
    return [{"source": s, "target": t} for s, t in zip(sources, targets, strict=True)]


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
            batch = model.collate(model.encode(_rows(sources, targets)))
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
    examples = model.encode(_rows(sources, targets))
    batches = BucketedBatches(
        examples,
        [len(s) + len(t) for s, t in examples],
        model.collate,
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
    batch = model.collate(model.encode(_rows(_sentences(8, 1, 7, seed=3), ["x"] * 8)))
    max_lengths = batch.source_lengths  # tight: some outputs end in EOS, some are cut
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    with torch.no_grad():
        state = model.encode_source(batch.source, batch.source_lengths)
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
    examples = model.encode(_rows(sources[:3], targets[:3]))
    batch = model.collate(examples)
    out = model(batch)
    assert out.num_tokens == sum(len(t) - 1 for _, t in examples)
    # brute force: step the decoder token by token, one example at a time, no padding
    expected = 0.0
    vocab = len(tokenizer)
    for source, target in examples:
        state = model.encode_source(torch.tensor([source]), torch.tensor([len(source)]))
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
    with pytest.raises(ValueError, match="both source_language and target_language or neither"):
        TranslatorConfig(source_language="en")
    with pytest.raises(ValueError, match="two different non-empty codes"):
        TranslatorConfig(source_language="en", target_language="en")


def test_encode_frames_and_collate_pads_by_hand(reversal):
    sources, targets, tokenizer = reversal
    model = _random_model(tokenizer)
    rows = _rows(sources[:3], targets[:3])
    examples = model.encode(rows)
    bos, eos, pad = tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id
    for (source, target), row in zip(examples, rows, strict=True):
        assert source == tokenizer.encode(row["source"]) + [eos]
        assert target == [bos, *tokenizer.encode(row["target"]), eos]
    batch = model.collate(examples)
    longest_source = max(len(s) for s, _ in examples)
    longest_target = max(len(t) for _, t in examples)
    assert batch.source.shape == (3, longest_source)
    assert batch.target_input.shape == batch.target_output.shape == (3, longest_target - 1)
    assert batch.source_lengths.tolist() == [len(s) for s, _ in examples]
    for i, (source, target) in enumerate(examples):
        padding = [pad] * (longest_target - len(target))
        assert batch.source[i].tolist() == source + [pad] * (longest_source - len(source))
        assert batch.target_input[i].tolist() == target[:-1] + padding
        assert batch.target_output[i].tolist() == target[1:] + padding


def test_encode_reads_language_code_rows_and_datasets(reversal, tmp_path):
    sources, targets, tokenizer = reversal
    plain = _random_model(tokenizer)
    coded = _random_model(tokenizer, source_language="en", target_language="de")
    expected = plain.encode(_rows(sources, targets))
    by_language = [{"en": s, "de": t} for s, t in zip(sources, targets, strict=True)]
    assert coded.encode(by_language) == expected
    # "source"/"target" rows keep working when the languages are set
    assert coded.encode(_rows(sources, targets)) == expected
    assert coded.encode(Dataset.from_dict({"de": targets, "en": sources})) == expected
    assert plain.encode(Dataset.from_dict({"source": sources, "target": targets})) == expected
    # what seqlstm.data.load makes of {split}.{language} files
    for language, sentences in (("en", sources), ("de", targets)):
        (tmp_path / f"train.{language}").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    assert coded.encode(load(tmp_path, "translation")["train"]) == expected
    # the language columns are the model's, not whichever two columns a row has
    reversed_direction = _random_model(tokenizer, source_language="de", target_language="en")
    assert reversed_direction.encode(by_language) == plain.encode(_rows(targets, sources))


def test_encode_names_the_bad_row(reversal):
    _, _, tokenizer = reversal
    plain = _random_model(tokenizer)
    coded = _random_model(tokenizer, source_language="en", target_language="de")
    good = {"source": "red cat", "target": "cat red"}
    with pytest.raises(DataError, match=r"row 1: expected a 'target' column, got columns \['sou"):
        plain.encode([good, {"source": "red", "target_text": "der"}])
    with pytest.raises(DataError, match=r"row 2: expected a 'source' or 'en' column"):
        coded.encode([{"en": "red", "de": "rot"}, good, {"fr": "rouge", "de": "rot"}])
    with pytest.raises(DataError, match=r"row 0: expected a 'source' column"):
        plain.encode([{"en": "red", "de": "rot"}])  # no languages set: codes mean nothing
    with pytest.raises(DataError, match=r"row 1: column 'target' must be a string, got list"):
        plain.encode([good, {"source": "red", "target": ["cat"]}])
    with pytest.raises(DataError, match=r"row 0: expected a mapping of columns, got tuple"):
        plain.encode([("red", "cat")])
    with pytest.raises(DataError, match=r"not one dict"):
        plain.encode(good)
    with pytest.raises(DataError, match=r"row 0: expected a 'source' column"):
        plain.evaluate([{"target": "cat"}])


@pytest.mark.parametrize(("beam_size", "batch_size"), [(1, 64), (3, 2)])
def test_score_and_evaluate_equal_sacrebleu_on_the_translations(
    undertrained, reversal, beam_size, batch_size
):
    sources, targets, _ = reversal
    model = undertrained("general")
    hypotheses = model.translate(sources, beam_size=beam_size)
    # references: the model's own output, the same capitalised, or the reversal's target, so
    # that cased BLEU, lowercased BLEU and 100 all differ
    references = [
        (h, h.capitalize(), t)[i % 3]
        for i, (h, t) in enumerate(zip(hypotheses, targets, strict=True))
    ]
    rows = _rows(sources, references)
    scores = model.score(rows, beam_size=beam_size, batch_size=batch_size)
    metrics = {
        "bleu": sacrebleu.BLEU(),
        "chrf": sacrebleu.CHRF(),
        "bleu_lowercase": sacrebleu.BLEU(lowercase=True),
    }
    assert scores.keys() == metrics.keys()
    for name, metric in metrics.items():
        theirs = metric.corpus_score(hypotheses, [references])
        assert scores[name].score == theirs.score, name
        assert scores[name].summary == str(theirs)
        assert scores[name].signature == str(metric.get_signature())
    assert 0 < scores["bleu"].score < scores["bleu_lowercase"].score < 100
    assert "case:lc" in scores["bleu_lowercase"].signature
    assert "tok:13a" in scores["bleu"].signature and "case:mixed" in scores["bleu"].signature
    evaluated = model.evaluate(rows, beam_size=beam_size, batch_size=batch_size)
    assert evaluated == {name: s.score for name, s in scores.items()}


def test_length_penalty_reaches_the_search(undertrained, reversal):
    sources, targets, _ = reversal
    model = undertrained("concat")
    outputs = []
    for alpha in (0.0, 2.0):
        hypotheses = model.translate(sources, beam_size=4, length_penalty=alpha)
        bleu = model.score(_rows(sources, targets), beam_size=4, length_penalty=alpha)["bleu"]
        assert bleu.score == sacrebleu.BLEU().corpus_score(hypotheses, [targets]).score
        outputs.append(hypotheses)
    assert outputs[0] != outputs[1]  # the penalty changes which beams win


def test_overfitted_model_evaluates_to_100(trained, reversal):
    sources, targets, _ = reversal
    for name, value in trained.evaluate(_rows(sources, targets), beam_size=1).items():
        assert value == pytest.approx(100.0), name


def test_model_directory_without_language_fields_loads(tmp_path):
    directory = FIXTURES / "models_0_1" / "translator"
    assert "source_language" not in json.loads((directory / "config.json").read_text())["config"]
    model = Seq2SeqLSTM.from_pretrained(directory)
    assert model.config.source_language is None and model.config.target_language is None
    # with languages set they are saved and come back
    model.config.source_language, model.config.target_language = "en", "de"
    model.save_pretrained(tmp_path / "coded")
    loaded = Seq2SeqLSTM.from_pretrained(tmp_path / "coded")
    assert (loaded.config.source_language, loaded.config.target_language) == ("en", "de")
    sentences = ["a dog runs", "two men"]
    assert loaded.translate(sentences, beam_size=2) == model.translate(sentences, beam_size=2)
