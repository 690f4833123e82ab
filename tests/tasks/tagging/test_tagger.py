import dataclasses
import itertools
import json
import math
import subprocess
import sys

import pytest
import seqeval.metrics as seqeval
import torch
from datasets import Dataset
from locations import FIXTURES, ROOT

from seqlstm.data import BucketedBatches, load, read_conll
from seqlstm.errors import CheckpointError, DataError
from seqlstm.metrics import entity_f1
from seqlstm.tasks.tagging.context import (
    DocumentWindowBatches,
    join_examples,
    pack_windows,
)
from seqlstm.tasks.tagging.document_chunks import document_chunks
from seqlstm.tasks.tagging.examples import TaggingExample
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig, UnknownLabelError
from seqlstm.text.tag_schemes import convert_tags, is_valid_sequence, tag_chunks
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.words import tokenize
from seqlstm.training import Trainer, TrainerConfig

TRAIN = read_conll(FIXTURES / "ner_train.txt")  # rows: {"tokens": [...], "tags": [...]}
SENTENCES = [example["tokens"] for example in TRAIN]
TAGS = [example["tags"] for example in TRAIN]
TINY = dict(
    subword_dim=16,
    char_embedding_dim=8,
    char_filters=16,
    hidden_size=16,
    dropout=0.0,
    word_dropout=0.0,
)


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train([" ".join(s) for s in SENTENCES], 400, hard_vocab_limit=False)


def rows(sentences, tags=None):
    """Tagging rows of sentences (lists of words) and, if given, their tags."""
    if tags is None:
        return [{"tokens": words} for words in sentences]
    return [{"tokens": w, "tags": t} for w, t in zip(sentences, tags, strict=True)]


def train(model, out, steps=60, lr=0.05, batches=None):
    examples = model.encode(TRAIN)
    if batches is None:
        batches = BucketedBatches(examples, [e.length for e in examples], model.collate, 10_000)
    config = TrainerConfig(
        output_dir=str(out),
        max_epochs=None,
        max_steps=steps,
        lr=lr,
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
        log_every_steps=1000,
    )
    Trainer(model, config, batches).fit()
    return model.eval()


@pytest.fixture(scope="module")
def trained(tokenizer, tmp_path_factory):
    torch.manual_seed(0)
    config = TaggerConfig(**TINY, word_embedding_dim=8)
    model = BiLSTMCRFTagger.build(config, tokenizer, TRAIN)
    return train(model, tmp_path_factory.mktemp("train"))


def untrained(tokenizer, seed=0, scale=3.0, **overrides):
    """A random tagger whose emissions are spread out, so no probability is close to 1."""
    torch.manual_seed(seed)
    # cased subwords and no context: the settings these tests were written for (TaggerConfig's
    # defaults are now the NER recipe's)
    settings = {**TINY, "lowercase_subwords": False, "context_words": 0, **overrides}
    model = BiLSTMCRFTagger.build(TaggerConfig(**settings), tokenizer, TRAIN)
    with torch.no_grad():
        model.emission.weight.mul_(scale)
        model.crf.crf.transitions.normal_()
    return model.eval()


def test_overfits_the_fixture_to_entity_f1_100(trained):
    scores = trained.entity_scores(TRAIN)
    assert scores.n_gold == 32 and scores.f1 == 100.0
    assert trained.predict(SENTENCES) == TAGS
    assert set(scores.per_type) == {"LOC", "MISC", "ORG", "PER"}
    metrics = trained.evaluate(TRAIN)
    assert metrics["f1"] == metrics["accuracy"] == metrics["f1_PER"] == 100.0
    # two adjacent PER entities stay two entities (IOB2 B-PER B-PER)
    assert trained.predict([["He", "told", "Anna", "Mary", "the", "news", "."]]) == [
        ["O", "O", "B-PER", "B-PER", "O", "O", "O"]
    ]


def test_labels_come_from_the_data_in_the_crf_scheme(trained):
    labels = set(trained.labels.tokens)
    assert trained.labels[0] == "O"
    expected = {"O"} | {
        label for tags in TAGS for label in convert_tags(tags, "IOB2", "IOBES") if label != "O"
    }
    assert labels == expected
    assert "S-MISC" in labels and "E-MISC" not in labels  # MISC is never longer than one word
    assert trained.entity_types == ["LOC", "MISC", "ORG", "PER"]


def test_save_and_load_give_identical_predictions(trained, tmp_path):
    trained.save_pretrained(tmp_path / "model")
    loaded = BiLSTMCRFTagger.from_pretrained(tmp_path / "model")
    assert loaded.config == trained.config
    assert loaded.labels == trained.labels and loaded.chars == trained.chars
    assert loaded.words == trained.words
    for name, tensor in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    texts = ["Peter Blackburn visited Paris .", "Reuters met Bill Clinton in New York City"]
    assert loaded.tag(texts) == trained.tag(texts)
    assert loaded.predict(SENTENCES) == trained.predict(SENTENCES)


@pytest.mark.parametrize("missing", ["vocab/labels.json", "vocab/chars.json", "model.safetensors"])
def test_a_model_directory_with_a_missing_file_names_it(trained, tmp_path, missing):
    trained.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / missing).unlink()
    with pytest.raises(CheckpointError, match=missing):
        BiLSTMCRFTagger.from_pretrained(tmp_path / "model")


@pytest.mark.parametrize(
    ("scheme", "crf_scheme"), [("IOB2", "IOBES"), ("IOB2", "IOB2"), ("IOB1", "IOBES")]
)
def test_predictions_are_always_valid_sequences(tokenizer, scheme, crf_scheme):
    tags = [convert_tags(t, "IOB2", scheme) for t in TAGS]
    torch.manual_seed(0)
    config = TaggerConfig(**TINY, scheme=scheme, crf_scheme=crf_scheme)
    model = BiLSTMCRFTagger.build(config, tokenizer, rows(SENTENCES, tags)).eval()
    with torch.no_grad():  # random emissions favour invalid sequences: O -> I-X everywhere
        model.emission.weight.normal_(std=3.0)
        model.crf.crf.transitions.normal_(std=3.0)
    generator = torch.Generator().manual_seed(1)
    vocabulary = sorted({word for sentence in SENTENCES for word in sentence})
    sentences = [
        [vocabulary[i] for i in torch.randint(len(vocabulary), (n,), generator=generator)]
        for n in torch.randint(1, 12, (60,), generator=generator).tolist()
    ]
    predictions = model.predict(sentences, batch_size=7)
    assert any(tag != "O" for tags in predictions for tag in tags)
    for words, predicted in zip(sentences, predictions, strict=True):
        assert len(predicted) == len(words)
        assert is_valid_sequence(predicted, scheme), predicted
    for nbest in model.predict_nbest(sentences[:10], k=4):
        assert len(nbest) == 4
        assert all(is_valid_sequence(tags, scheme) for tags, _ in nbest)


def test_empty_one_word_and_long_sentences(trained):
    assert trained.predict([]) == []
    assert trained.predict([[]]) == [[]]
    assert trained.predict(["", "   "]) == [[], []]
    mixed = trained.predict([[], ["Rome"], [], SENTENCES[1]])
    assert mixed == [[], ["B-LOC"], [], TAGS[1]]
    long = (SENTENCES[1] + SENTENCES[8]) * 30  # 540 words
    (predicted,) = trained.predict([long])
    assert len(predicted) == len(long)
    assert predicted[: len(SENTENCES[1])] == TAGS[1]
    (tagged,) = trained.tag([long])
    assert len(tagged.confidences) == len(long)
    assert trained.predict_nbest([[]], k=3) == [[([], 1.0)]]
    empty = trained.tag([""])[0]
    assert (empty.tokens, empty.tags, empty.confidences, empty.entities) == ([], [], [], [])


def test_a_sentence_is_tagged_the_same_in_any_batch(trained):
    alone = [trained.predict_nbest([s], k=3)[0] for s in SENTENCES]
    together = trained.predict_nbest(SENTENCES, k=3, batch_size=5)
    for a, b in zip(alone, together, strict=True):
        assert [tags for tags, _ in a] == [tags for tags, _ in b]
        # exp(score - log Z) of float32 scores in the hundreds: one rounding step of the
        # scores is ~2e-5 of the probability; a padding leak moves it far more
        assert [p for _, p in a] == pytest.approx([p for _, p in b], rel=1e-4)


def test_unseen_words_and_characters(trained):
    sentence = ["Ωmega", "☃☃", "visited", "Qxzvbnq", "東京", "\U0001f600"]
    (predicted,) = trained.predict([sentence])
    assert len(predicted) == len(sentence)
    assert is_valid_sequence(predicted, "IOB2")
    with pytest.raises(DataError, match="empty after normalisation"):
        trained.predict([["Peter", " "]])


def test_raw_text_is_split_with_offsets(trained):
    text = "  Peter Blackburn visited Paris, then met Bill Clinton ."
    words = [token.text for token in tokenize(text)]
    assert words == [
        "Peter",
        "Blackburn",
        "visited",
        "Paris",
        ",",
        "then",
        "met",
        "Bill",
        "Clinton",
        ".",
    ]
    assert trained.predict([text]) == trained.predict([words])
    entities = trained.predict_entities(text)
    assert [(e.text, e.type) for e in entities] == [
        ("Peter Blackburn", "PER"),
        ("Paris", "LOC"),
        ("Bill Clinton", "PER"),
    ]
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
        assert entity.text.split() == words[entity.token_start : entity.token_end]
    assert (entities[0].start, entities[0].end) == (2, 17)
    # a list of words: offsets into the words joined by single spaces
    joined = " ".join(words)
    for entity in trained.predict_entities(words):
        assert joined[entity.start : entity.end] == entity.text
    with pytest.raises(TypeError):
        trained.predict("Peter Blackburn")  # one string, not a list of sentences


def brute_force(model, words):
    """Every CRF-scheme label sequence of the sentence with its probability under the model."""
    batch = model.collate(model.encode(rows([words])))
    with torch.no_grad():
        emissions, mask = model.emissions(batch)
        num_labels = len(model.labels)
        sequences = torch.tensor(list(itertools.product(range(num_labels), repeat=len(words))))
        many = emissions.expand(len(sequences), -1, -1)
        scores = model.crf.sequence_score(many, sequences, mask.expand(len(sequences), -1))
        log_z = model.crf.log_partition(emissions, mask)
    probabilities = (scores - log_z).exp()
    return [model.labels.decode(s) for s in sequences.tolist()], probabilities.tolist()


@pytest.mark.parametrize("crf_scheme", ["IOBES", "IOB2"])
def test_confidences_match_brute_force_enumeration(tokenizer, crf_scheme):
    model = untrained(tokenizer, crf_scheme=crf_scheme, scale=6.0)
    words = ["Peter", "Blackburn", "visited", "New"]
    label_sequences, probabilities = brute_force(model, words)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    ranked = sorted(zip(probabilities, label_sequences, strict=True), reverse=True)

    (nbest,) = model.predict_nbest([words], k=5)
    expected = [
        (convert_tags(labels, crf_scheme, "IOB2"), p) for p, labels in ranked[:5] if p > 1e-6
    ]
    assert [tags for tags, _ in nbest] == [tags for tags, _ in expected]
    assert [p for _, p in nbest] == pytest.approx([p for _, p in expected], abs=1e-5)

    (tagged,) = model.tag([words])
    assert tagged.tags == nbest[0][0]
    best = ranked[0][1]
    for position, confidence in enumerate(tagged.confidences):
        marginal = sum(
            p
            for p, labels in zip(probabilities, label_sequences, strict=True)
            if labels[position] == best[position]
        )
        assert confidence == pytest.approx(marginal, abs=1e-5)
        assert 0.0 <= confidence <= 1.0
    assert tagged.entities, "the random model should find some entity"
    for entity in tagged.entities:
        chunk = (entity.type, entity.token_start, entity.token_end)
        exact = sum(
            p
            for p, labels in zip(probabilities, label_sequences, strict=True)
            if chunk in tag_chunks(labels)
        )
        assert entity.score == pytest.approx(exact, abs=1e-5)
        # the entity is in the best sequence and implies the label of each of its tokens
        span = tagged.confidences[entity.token_start : entity.token_end]
        assert nbest[0][1] - 1e-6 <= entity.score <= min(span) + 1e-6


def test_training_data_errors(tokenizer):
    config = TaggerConfig(**TINY)
    with pytest.raises(DataError, match="row 1: 2 words but 1 tags"):
        BiLSTMCRFTagger.build(config, tokenizer, rows([["a"], ["b", "c"]], [["O"], ["O"]]))
    with pytest.raises(DataError, match="row 0, tag 1: 'E-PER' is not an IOB2 tag"):
        BiLSTMCRFTagger.build(config, tokenizer, rows([["a", "b"]], [["B-PER", "E-PER"]]))
    with pytest.raises(DataError, match="row 1: no 'tags'"):
        BiLSTMCRFTagger.build(
            config, tokenizer, [{"tokens": ["a"], "tags": ["O"]}, {"tokens": ["b"]}]
        )


def test_an_unknown_label_is_an_error_naming_sentence_and_token(trained):
    gold = [list(tags) for tags in TAGS[:3]]
    gold[2][4] = "B-DATE"
    with pytest.raises(UnknownLabelError, match="row 2, token 4: the tag 'B-DATE'") as info:
        trained.evaluate(rows(SENTENCES[:3], gold))
    assert (info.value.sentence, info.value.position, info.value.tag) == (2, 4, "B-DATE")
    with pytest.raises(UnknownLabelError):
        trained.entity_scores(rows(SENTENCES[:3], gold))
    with pytest.raises(UnknownLabelError):
        trained.encode(rows(SENTENCES[:3], gold))


def test_pretrained_word_vectors_fill_the_word_table(tokenizer, tmp_path):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("peter 1 2 3 4\nparis 0.5 0.5 0.5 0.5\nunrelated 9 9 9 9\n")
    config = TaggerConfig(**TINY, word_embedding_dim=4)
    model = BiLSTMCRFTagger.build(config, tokenizer, TRAIN, word_vectors=vectors)
    table = model.embedding.word_embedding.weight
    assert table[model.words.index("peter")].tolist() == [1, 2, 3, 4]  # "Peter", lowercased
    assert table[model.words.index("paris")].tolist() == [0.5] * 4
    assert "unrelated" not in model.words
    with pytest.raises(ValueError, match="word_embedding_dim"):
        BiLSTMCRFTagger.build(TaggerConfig(**TINY), tokenizer, TRAIN, vectors)


def test_lowercase_subwords_share_pieces_but_keep_the_case_in_the_characters(tokenizer, tmp_path):
    model = untrained(tokenizer, lowercase_subwords=True)
    upper, lower = model.encode(rows([["PETER", "BLACKBURN"], ["peter", "blackburn"]]))
    assert upper.subword_ids.tolist() == lower.subword_ids.tolist()
    assert upper.subword_ids.tolist() == tokenizer.encode_words(["peter", "blackburn"])[0]
    assert upper.char_ids.tolist() != lower.char_ids.tolist()
    cased = untrained(tokenizer).encode(rows([["PETER", "BLACKBURN"]]))[0]
    assert cased.subword_ids.tolist() != upper.subword_ids.tolist()
    model.save_pretrained(tmp_path)
    loaded = BiLSTMCRFTagger.from_pretrained(tmp_path)
    assert loaded.config.lowercase_subwords
    reloaded = loaded.encode(rows([["PETER"]]))[0]
    assert reloaded.subword_ids.tolist() == tokenizer.encode_words(["peter"])[0]
    # a model saved before the option existed has no such field: it loads with it off
    config_file = tmp_path / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["config"]["lowercase_subwords"]
    config_file.write_text(json.dumps(saved))
    older = BiLSTMCRFTagger.from_pretrained(tmp_path)
    assert (
        older.encode(rows([["PETER"]]))[0].subword_ids.tolist()
        == tokenizer.encode_words(["PETER"])[0]
    )


def test_forward_returns_the_summed_loss_over_words(tokenizer):
    model = untrained(tokenizer).train()
    examples = model.encode(rows(SENTENCES[:4] + [[]], TAGS[:4] + [[]]))
    with torch.no_grad():
        output = model(model.collate(examples))
        separate = sum(float(model(model.collate([e])).loss) for e in examples)
    assert output.num_tokens == sum(len(s) for s in SENTENCES[:4])
    assert float(output.loss) == pytest.approx(separate, rel=1e-5)
    assert math.isfinite(float(output.loss)) and float(output.loss) > 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("EU rejects German call.", ["EU", "rejects", "German", "call", "."]),
        ("Germany's U.S. envoy", ["Germany", "'s", "U.S.", "envoy"]),
        ("don't CAN’T O'Neill", ["do", "n't", "CA", "N’T", "O'Neill"]),
        ("John F. Kennedy, e.g. here", ["John", "F.", "Kennedy", ",", "e.g.", "here"]),
        (
            "3.5% of 1,000 on 1996-08-22 at 10:30",
            ["3.5", "%", "of", "1,000", "on", "1996-08-22"] + ["at", "10:30"],
        ),
        ("Wait... (Zürich)\u3000東京!", ["Wait", "...", "(", "Zürich", ")", "東", "京", "!"]),
        ("German-born 'quoted'", ["German-born", "'", "quoted", "'"]),
        (" \t\n", []),
    ],
)
def test_word_tokenizer(text, words):
    tokens = tokenize(text)
    assert [t.text for t in tokens] == words
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert all(a.end <= b.start for a, b in itertools.pairwise(tokens))
    # nothing but whitespace is left out
    covered = set().union(*(range(t.start, t.end) for t in tokens))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


def test_word_dropout_makes_whole_words_unknown(tokenizer, monkeypatch):
    model = untrained(tokenizer, word_dropout=0.5, word_embedding_dim=8).train()
    batch = model.collate(model.encode(TRAIN[:3]))
    lengths = batch.lengths
    width = int(lengths.max())
    # the random draw drops every odd-numbered word
    draw = torch.ones(len(lengths), width)
    draw[:, 1::2] = 0.0
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: draw.clone())
    dropped, mask = model.emissions(batch)

    # by hand: those words' subwords and word-table ids replaced by <unk>, padding untouched
    odd_subword = (batch.word_index % 2 == 1) & (batch.word_index >= 0)
    odd_word = (torch.arange(width) % 2 == 1) & mask
    by_hand = dataclasses.replace(
        batch,
        subword_ids=batch.subword_ids.masked_fill(odd_subword, tokenizer.unk_id),
        word_ids=batch.word_ids.masked_fill(odd_word, model.words.unk_id),
    )
    model.eval()  # no dropout of any kind (TINY has dropout 0)
    expected, _ = model.emissions(by_hand)
    untouched, _ = model.emissions(batch)
    assert torch.allclose(dropped[mask], expected[mask], atol=1e-6)
    assert not torch.allclose(dropped[mask], untouched[mask], atol=1e-3)


# ---------------------------------------------------------------- rows (the task protocol)


def test_encode_and_build_read_the_rows_of_a_dataset(tokenizer):
    dataset = load(FIXTURES / "ner_train.txt", "tagging")["train"]
    assert isinstance(dataset, Dataset) and len(dataset) == len(TRAIN)
    torch.manual_seed(0)
    from_dataset = BiLSTMCRFTagger.build(
        TaggerConfig(**TINY, word_embedding_dim=8), tokenizer, dataset
    )
    torch.manual_seed(0)
    from_dicts = BiLSTMCRFTagger.build(TaggerConfig(**TINY, word_embedding_dim=8), tokenizer, TRAIN)
    assert from_dataset.labels == from_dicts.labels and from_dataset.chars == from_dicts.chars
    assert from_dataset.words == from_dicts.words
    for name, tensor in from_dicts.state_dict().items():
        assert torch.equal(from_dataset.state_dict()[name], tensor), name
    encoded, expected = from_dicts.encode(dataset), from_dicts.encode(TRAIN)
    assert len(encoded) == len(expected) == len(TRAIN)
    for a, b in zip(encoded, expected, strict=True):
        assert_same_example(a, b)
    assert encoded[0].tag_ids is not None
    # without tags (a column of None, or no column): examples without tag ids, as predict uses
    untagged = from_dicts.encode(dataset.remove_columns("tags"))
    assert all(e.tag_ids is None for e in untagged)
    assert from_dicts.collate(untagged).tags is None
    assert torch.equal(untagged[3].subword_ids, expected[3].subword_ids)
    assert from_dicts.evaluate(dataset) == from_dicts.evaluate(TRAIN)


def test_evaluate_agrees_with_seqeval(trained):
    # the trained tagger reproduces TAGS; gold rows that differ from them in known ways give
    # a mix of right, wrong, missed and spurious entities of every type
    gold = [list(tags) for tags in TAGS]
    gold[0][0] = "B-LOC"  # ORG predicted: a wrong type
    gold[0][6] = "O"  # a spurious MISC
    gold[1] = ["O"] * len(gold[1])  # every predicted entity spurious
    gold[2][0] = "B-PER"  # a missed entity
    assert TAGS[3][5:7] == ["B-ORG", "I-ORG"]
    gold[3][6] = "O"  # a shorter span: the gold ORG is missed, the predicted one wrong
    metrics = trained.evaluate(rows(SENTENCES, gold))
    predicted = trained.predict(SENTENCES)
    assert predicted == TAGS and gold != TAGS
    assert 0 < metrics["precision"] < 100 and 0 < metrics["recall"] < 100
    assert metrics["precision"] == pytest.approx(100 * seqeval.precision_score(gold, predicted))
    assert metrics["recall"] == pytest.approx(100 * seqeval.recall_score(gold, predicted))
    assert metrics["f1"] == pytest.approx(100 * seqeval.f1_score(gold, predicted))
    assert metrics["accuracy"] == pytest.approx(100 * seqeval.accuracy_score(gold, predicted))
    report = seqeval.classification_report(gold, predicted, output_dict=True, zero_division=0)
    types = sorted(name for name in report if not name.endswith(" avg"))
    assert types == ["LOC", "MISC", "ORG", "PER"]
    expected = ["precision", "recall", "f1", "accuracy"]
    for name in types:
        expected += [f"precision_{name}", f"recall_{name}", f"f1_{name}"]
        assert metrics[f"precision_{name}"] == pytest.approx(100 * report[name]["precision"])
        assert metrics[f"recall_{name}"] == pytest.approx(100 * report[name]["recall"])
        assert metrics[f"f1_{name}"] == pytest.approx(100 * report[name]["f1-score"])
    assert list(metrics) == expected  # the order results files show them in
    scores = trained.entity_scores(rows(SENTENCES, gold))
    assert scores.f1 == metrics["f1"] and scores.report().startswith("processed 118 tokens")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["Peter", "O"], r"row 1: expected a mapping with 'tokens' .* got list"),
        ({"tokens": "Peter"}, r"row 1: 'tokens' must be a list of str words, got str"),
        ({"words": ["Peter"]}, r"row 1: 'tokens' must be a list of str words, got nothing"),
        ({"tokens": ["Peter", 3]}, r"row 1: 'tokens' .* got a list with a non-str item"),
        ({"tokens": ["Peter"]}, r"row 1: no 'tags'"),
        ({"tokens": ["Peter"], "tags": "B-PER"}, r"row 1: 'tags' must be a list of str tags"),
        ({"tokens": ["Peter"], "tags": ["B-PER", "O"]}, r"row 1: 1 words but 2 tags"),
        ({"tokens": ["Peter"], "tags": ["E-PER"]}, r"row 1, tag 0: 'E-PER' is not an IOB2 tag"),
    ],
)
def test_check_rows_names_the_rows_and_the_row(trained, bad, message):
    trained.check_rows(TRAIN, "training data")  # good rows pass
    with pytest.raises(DataError, match=f"^validation split, {message}"):
        trained.check_rows([TRAIN[0], bad], "validation split")


def test_check_rows_finds_labels_training_never_saw(trained):
    gold = [dict(row) for row in TRAIN[:3]]
    gold[2] = {"tokens": gold[2]["tokens"], "tags": list(gold[2]["tags"])}
    gold[2]["tags"][4] = "B-DATE"
    with pytest.raises(
        UnknownLabelError, match="^test split, row 2, token 4: the tag 'B-DATE'"
    ) as info:
        trained.check_rows(gold, "test split")
    assert (info.value.sentence, info.value.position, info.value.tag) == (2, 4, "B-DATE")


def test_encode_errors_name_the_row(trained):
    with pytest.raises(DataError, match="row 1: 'tokens' must be a list of str words"):
        trained.encode([TRAIN[0], {"tokens": "Peter Blackburn"}])
    with pytest.raises(DataError, match="row 1: word 1: .* is empty after normalisation"):
        trained.encode([TRAIN[0], {"tokens": ["Peter", " "]}])
    with pytest.raises(DataError, match="expected an iterable of rows .* got a dict"):
        trained.encode({"tokens": ["Peter"], "tags": ["B-PER"]})
    with pytest.raises(DataError, match="expected an iterable of rows .* got a DatasetDict"):
        trained.encode(load(FIXTURES / "ner_train.txt", "tagging"))
    # a row may leave out its tags, or give None, and still be encoded
    assert trained.encode([{"tokens": ["Rome"], "tags": None}])[0].tag_ids is None


# ---------------------------------------------------------------- document context


def build(tokenizer, context_words=4, seed=0):
    torch.manual_seed(seed)
    config = TaggerConfig(**TINY, word_embedding_dim=8, context_words=context_words)
    return BiLSTMCRFTagger.build(config, tokenizer, TRAIN).eval()


def assert_same_example(a, b, check_starts=True):
    assert a.length == b.length
    for name in ("subword_ids", "word_index", "char_ids", "word_ids", "tag_ids"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    if check_starts:
        assert torch.equal(a.sentence_start, b.sentence_start)
    assert (a.target_start, a.target_length) == (b.target_start, b.target_length)


def test_joined_sentences_equal_the_encoding_of_their_words(tokenizer):
    model = build(tokenizer)
    parts = model.encode(TRAIN[:3])
    joined = join_examples(parts, model.chars.pad_id)
    whole = model.encode(rows([sum(SENTENCES[:3], [])], [sum(TAGS[:3], [])]))[0]
    assert_same_example(joined, whole, check_starts=False)
    lengths = [len(s) for s in SENTENCES[:3]]
    starts = torch.zeros(sum(lengths), dtype=torch.bool)
    starts[[0, lengths[0], lengths[0] + lengths[1]]] = True
    assert torch.equal(joined.sentence_start, starts)


def spans(chunks):
    return [(c.start, c.target_start, c.target_stop, c.stop) for c in chunks]


def test_each_sentence_is_read_between_its_neighbours_words():
    lengths = [3, 6, 2, 5]  # sentences at words 0, 3, 9, 11 and 16
    chunks = document_chunks(lengths, [4], 4, 0)  # one sentence a chunk, 4 words each side
    assert spans(chunks) == [(0, 0, 3, 7), (0, 3, 9, 13), (5, 9, 11, 15), (7, 11, 16, 16)]


def test_chunks_never_reach_into_another_document():
    lengths = [3, 6, 2, 5, 0, 4]  # documents of words 0-9, 9-11 and 11-20
    per_sentence = document_chunks(lengths, [2, 1, 3], 4, 0)
    expected = [(0, 0, 3, 7), (0, 3, 9, 9), (9, 9, 11, 11), (11, 11, 16, 20), (12, 16, 20, 20)]
    assert spans(per_sentence) == expected  # the empty sentence has no chunk
    # targets of 4 words, each read with 4 words each side, and 12 words wherever the
    # document has them (the first and last chunks read more on their inner side)
    assert spans(document_chunks(lengths, [2, 1, 3], 4, 4)) == [
        (0, 0, 4, 9),
        (0, 4, 8, 9),
        (0, 8, 9, 9),
        (9, 9, 11, 11),
        (11, 11, 15, 20),
        (11, 15, 19, 20),
        (11, 19, 20, 20),
    ]
    one = document_chunks(lengths, [2, 1, 3], 4, 20)  # a chunk per document
    assert spans(one) == [(0, 0, 9, 9), (9, 9, 11, 11), (11, 11, 20, 20)]
    assert document_chunks([0, 0], [2], 4, 8) == []
    with pytest.raises(ValueError, match="the documents hold 5 sentences"):
        document_chunks(lengths, [2, 3], 4, 8)


@pytest.mark.parametrize(
    "lengths, budget, first, expected",
    [
        ([3, 3, 3, 3], 6, 6, [[0, 1], [2, 3]]),
        ([3, 3, 3, 3], 6, 3, [[0], [1, 2], [3]]),
        ([3, 10, 2, 2], 6, 6, [[0], [1], [2, 3]]),  # a long sentence is a window of its own
        ([0, 4, 0], 4, 4, [[0, 1, 2]]),
        ([], 4, 4, []),
    ],
)
def test_pack_windows(lengths, budget, first, expected):
    assert [list(w) for w in pack_windows(lengths, budget, first)] == expected


def test_window_batches_cover_every_word_once_an_epoch(tokenizer):
    model = build(tokenizer)
    examples = model.encode(TRAIN)
    batches = DocumentWindowBatches(
        examples,
        20,
        batch_words=40,
        collate_fn=model.collate,
        char_pad_id=model.char_pad_id,
        seed=3,
    )
    total = sum(len(s) for s in SENTENCES)
    layouts = []
    for epoch in range(4):
        windows = [w for batch in batches.windows(epoch) for w in batch]
        assert sorted(i for w in windows for i in w) == list(range(len(SENTENCES)))
        assert all(list(w) == list(range(w.start, w.stop)) for w in windows)
        layouts.append(sorted((w.start, w.stop) for w in windows))
        collated = list(batches.epoch(epoch))
        assert len(collated) == len(batches) == -(-total // 40)
        assert sum(int(b.target_lengths.sum()) for b in collated) == total
        assert all(
            b.tags.shape == b.target_lengths.shape + (int(b.lengths.max()),) for b in collated
        )
    assert len(set(map(tuple, layouts))) > 1  # the boundaries move between epochs


def test_window_batches_split_over_ranks(tokenizer):
    model = build(tokenizer)
    examples = model.encode(TRAIN)
    pad = model.char_pad_id
    ranks = [
        DocumentWindowBatches(examples, 20, 40, model.collate, pad, seed=1, num_replicas=3, rank=r)
        for r in range(3)
    ]
    single = DocumentWindowBatches(
        examples, 20, 40, model.collate, pad, seed=1, num_replicas=1, rank=0
    )
    assert len({len(r) for r in ranks}) == 1 and 3 * len(ranks[0]) >= len(single)
    seen = [w for r in ranks for batch in r.windows(2) for w in batch]
    everything = [w for batch in single.windows(2) for w in batch]
    assert set(seen) == set(everything)


def test_window_batches_need_no_model():
    # hand-made examples of 1..3 words with character rows of different widths
    lengths = [2, 3, 1, 2, 3, 1]
    examples = [
        TaggingExample(
            length=n,
            subword_ids=torch.arange(n) + 10 * i,
            word_index=torch.arange(n),
            char_ids=torch.full((n, i + 1), i),
            word_ids=None,
            tag_ids=torch.full((n,), i),
            sentence_start=torch.arange(n) == 0,
            target_start=0,
            target_length=n,
        )
        for i, n in enumerate(lengths)
    ]
    batches = DocumentWindowBatches(examples, 4, 5, collate_fn=list, char_pad_id=99, seed=2)
    assert len(batches) == 3  # 12 words over batches of 5
    joined = [window for batch in batches.epoch(0) for window in batch]
    windows = [w for batch in batches.windows(0) for w in batch]
    assert len(joined) == len(windows)
    for example, window in zip(joined, windows, strict=True):
        parts = [examples[i] for i in window]
        assert example.length == example.target_length == sum(p.length for p in parts)
        assert example.tag_ids.tolist() == [t for p in parts for t in p.tag_ids.tolist()]
        width = max(p.char_ids.shape[1] for p in parts)
        row = 0
        for p in parts:  # each part's characters, then the given pad id
            assert torch.equal(
                example.char_ids[row : row + p.length, : p.char_ids.shape[1]], p.char_ids
            )
            assert (example.char_ids[row : row + p.length, p.char_ids.shape[1] : width] == 99).all()
            row += p.length
    assert sorted(i for w in windows for i in w) == list(range(len(examples)))


def test_the_context_module_does_not_import_the_tagger():
    code = (
        "import sys, seqlstm.tasks.tagging.context\n"
        "assert 'seqlstm.tasks.tagging.tagger' not in sys.modules, 'the import loop is back'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_predictions_read_the_neighbouring_sentences_of_a_document_only(tokenizer):
    model = build(tokenizer, context_words=4)
    model.config.chunk_words = 0  # per-sentence windows: context exactly context_words wide
    sentence = SENTENCES[1]
    alone = model.tag([sentence])[0].confidences
    in_text = model.tag_documents([[SENTENCES[0], sentence, SENTENCES[2]]])[0][1].confidences
    assert alone != pytest.approx(in_text)  # the context changes the scores
    # unrelated sentences passed together are read alone: nothing leaks between them
    assert model.tag([SENTENCES[0], sentence, SENTENCES[2]])[1].confidences == pytest.approx(
        alone, abs=1e-6
    )
    assert model.predict(SENTENCES[:3]) == [model.predict([s])[0] for s in SENTENCES[:3]]
    # ...nor between documents
    two = model.tag_documents([[SENTENCES[0]], [sentence, SENTENCES[2]]])
    one = model.tag_documents([[sentence, SENTENCES[2]]])
    assert two[1][0].confidences == pytest.approx(one[0][0].confidences, abs=1e-6)
    # ...and only within context_words: words further away do not
    assert len(SENTENCES[0]) >= 4
    far = ["Far", "away", "words", "here", "."] + SENTENCES[0]
    other = ["Other", "words"] + SENTENCES[0]
    assert model.tag_documents([[far, sentence]])[0][1].confidences == pytest.approx(
        model.tag_documents([[other, sentence]])[0][1].confidences, abs=1e-6
    )
    # without context, neighbours make no difference
    plain = build(tokenizer, context_words=0)
    assert plain.tag([sentence])[0].confidences == pytest.approx(
        plain.tag_documents([[SENTENCES[0], sentence]])[0][1].confidences, abs=1e-6
    )


def test_one_pass_equals_per_sentence_windows_when_the_context_covers_the_document(tokenizer):
    model = build(tokenizer, context_words=100)  # wider than the whole document
    document = SENTENCES[:5]
    one_pass = model.tag_documents([document])[0]  # chunk_words 200: the document in one piece
    model.config.chunk_words = 0
    per_sentence = model.tag_documents([document])[0]
    assert [s.tags for s in one_pass] == [s.tags for s in per_sentence]
    for a, b in zip(one_pass, per_sentence, strict=True):
        assert a.confidences == pytest.approx(b.confidences, abs=1e-5)


def test_long_documents_are_read_in_chunks_with_full_context_on_both_sides(tokenizer):
    lengths = [len(sentence) for sentence in SENTENCES[:6]]
    total = sum(lengths)
    chunks = document_chunks(lengths, [6], 4, 8)
    # every word is scored by exactly one chunk, in order, and read with 4 words each side
    assert [w for c in chunks for w in range(c.target_start, c.target_stop)] == list(range(total))
    assert total > 16
    for c in chunks:
        assert c.start <= max(0, c.target_start - 4) and c.stop >= min(total, c.target_stop + 4)
        assert c.target_stop - c.target_start == min(8, total - c.target_start)
        assert c.stop - c.start == 16  # 8 + 2 x 4, also at the ends of the document
    # the tags do not depend on where the chunks are cut when every word sees its context
    model = build(tokenizer, context_words=4)
    model.config.chunk_words = 8
    cut = model.predict_documents([SENTENCES[:6]])
    model.config.chunk_words = 0
    assert cut == model.predict_documents([SENTENCES[:6]])


@pytest.mark.parametrize("chunk_words", [0, 8, 200])
def test_inference_scores_equal_those_of_the_chunks_read_as_training_reads_them(
    tokenizer, chunk_words
):
    """Inference embeds each word once and cuts its chunks out of the features; training
    embeds each window as one example. Both give a word the same emission scores."""
    model = build(tokenizer, context_words=4)
    model.config.chunk_words = chunk_words
    document = SENTENCES[:7]
    lengths = [len(sentence) for sentence in document]
    starts = [sum(lengths[:i]) for i in range(len(document) + 1)]
    words = [word for sentence in document for word in sentence]
    expected = torch.full((len(words), len(model.labels)), math.nan)
    for c in document_chunks(lengths, [len(document)], 4, chunk_words):
        text = model.encode(rows([words[c.start : c.stop]]))[0]
        # every sentence that starts in the chunk is flagged, also one read as context
        flags = torch.tensor([p in starts for p in range(c.start, c.stop)])
        text = dataclasses.replace(text, sentence_start=flags)
        with torch.no_grad():
            scores, _ = model.emissions(model.collate([text]))
        expected[c.target_start : c.target_stop] = scores[
            0, c.target_start - c.start : c.target_stop - c.start
        ]
    assert not expected.isnan().any()
    with torch.no_grad():
        for indices, emissions, mask in model._scored_batches(document, [7], batch_size=3):
            for row, i in enumerate(indices):
                assert mask[row].sum() == lengths[i]
                torch.testing.assert_close(
                    emissions[row, : lengths[i]],
                    expected[starts[i] : starts[i + 1]],
                    atol=1e-5,
                    rtol=0,
                )


def test_evaluate_reads_rows_with_a_document_column_as_documents(tokenizer):
    model = build(tokenizer, context_words=4)
    model.config.chunk_words = 0
    labelled = [dict(row, document=number // 3) for number, row in enumerate(TRAIN[:6])]
    by_document = model.predict_documents([SENTENCES[:3], SENTENCES[3:6]])
    expected = entity_f1(TAGS[:6], by_document[0] + by_document[1])
    assert model.entity_scores(labelled).as_dict() == expected.as_dict()
    alone = entity_f1(TAGS[:6], model.predict(SENTENCES[:6]))
    assert model.entity_scores(TRAIN[:6]).as_dict() == alone.as_dict()
    with pytest.raises(DataError, match="row 3: document 0 comes back"):
        model.evaluate([dict(row, document=[0, 1, 1, 0][i]) for i, row in enumerate(TRAIN[:4])])


def test_window_batches_never_span_two_documents(tokenizer):
    model = build(tokenizer)
    examples = model.encode(TRAIN)
    documents = [number // 4 for number in range(len(examples))]
    batches = DocumentWindowBatches(
        examples, 1000, 40, list, model.char_pad_id, seed=1, documents=documents
    )
    for epoch in range(3):
        for batch in batches.windows(epoch):
            for window in batch:
                assert len({documents[i] for i in window}) == 1
    assert pack_windows([1, 1, 1, 1], 10, 10, frozenset({2})) == [range(0, 2), range(2, 4)]


def test_target_scores_are_the_windows_scores_at_its_words(tokenizer):
    model = build(tokenizer, context_words=4)
    before, after = SENTENCES[0][-4:], SENTENCES[2][:4]
    whole = model.encode(rows([before + SENTENCES[1] + after]))[0]
    target = dataclasses.replace(whole, target_start=len(before), target_length=len(SENTENCES[1]))
    with torch.no_grad():
        scores, mask = model.emissions(model.collate([target, whole]))
    start, n = target.target_start, target.target_length
    assert mask[0].sum() == n
    assert torch.allclose(scores[0, :n], scores[1, start : start + n])


def test_context_predictions_do_not_depend_on_the_batch(tokenizer):
    model = build(tokenizer, context_words=4)
    assert model.predict(SENTENCES, batch_size=1) == model.predict(SENTENCES, batch_size=64)
    assert model.predict([[], SENTENCES[0], []]) == [[], model.predict([SENTENCES[0]])[0], []]
    model.config.chunk_words = 10
    one = model.predict_documents([SENTENCES[:9], SENTENCES[9:]], batch_size=1)
    assert one == model.predict_documents([SENTENCES[:9], SENTENCES[9:]], batch_size=64)
    model.config.chunk_words = 10
    one = model.predict_documents([SENTENCES[:9], SENTENCES[9:]], batch_size=1)
    assert one == model.predict_documents([SENTENCES[:9], SENTENCES[9:]], batch_size=64)


def test_a_context_tagger_overfits_and_survives_save_and_load(tokenizer, tmp_path):
    model = build(tokenizer, context_words=4).train()
    windows = DocumentWindowBatches(
        model.encode(TRAIN), 30, 10_000, model.collate, model.char_pad_id
    )
    train(model, tmp_path / "train", batches=windows)
    assert model.evaluate(TRAIN)["f1"] == 100.0
    model.save_pretrained(tmp_path / "model")
    loaded = BiLSTMCRFTagger.from_pretrained(tmp_path / "model")
    assert loaded.config.context_words == 4
    assert loaded.tag(SENTENCES) == model.tag(SENTENCES)


def test_empty_documents_empty_sentences_and_a_5000_word_sentence(tokenizer):
    model = build(tokenizer, context_words=4)
    assert model.predict_documents([]) == []
    assert model.predict_documents([[], [[]], [[], SENTENCES[0]]]) == [
        [],
        [[]],
        [[], model.predict_documents([[SENTENCES[0]]])[0][0]],
    ]
    assert model.predict([[], ["EU", "rejects"]], batch_size=64)[0] == []
    long = (SENTENCES[0] * 1000)[:5000]
    (tags,) = model.predict_documents([[long]])[0]
    assert len(tags) == 5000
    with pytest.raises(TypeError, match="list of documents"):
        model.predict_documents(["a document is not a string"])


def test_training_batches_follow_the_documents_of_the_rows(tokenizer):
    model = build(tokenizer, context_words=4)
    labelled = [dict(row, document=number // 4) for number, row in enumerate(TRAIN)]
    batches = model.training_batches(labelled, batch_words=40, window_words=1000, seed=1)
    assert isinstance(batches, DocumentWindowBatches)
    for batch in batches.windows(0):
        for window in batch:
            assert len({i // 4 for i in window}) == 1
    alone = model.training_batches([dict(r, document=None) for r in TRAIN], 40, 1000, seed=1)
    assert all(len(window) == 1 for batch in alone.windows(0) for window in batch)
    plain = build(tokenizer, context_words=0).training_batches(TRAIN, 40, 1000)
    assert isinstance(plain, BucketedBatches)


def test_rows_and_a_dataset_given_as_sentences_are_read_as_their_tokens(tokenizer):
    model = build(tokenizer, context_words=0)
    expected = model.predict(SENTENCES[:4])
    rows_with_ids = [
        {"id": str(i), "tokens": words, "ner_tags": [0] * len(words)}
        for i, words in enumerate(SENTENCES[:4])
    ]
    assert model.predict(rows_with_ids) == expected  # not the tags of "id", "tokens", ...
    assert model.predict(Dataset.from_list(rows_with_ids)) == expected
    assert [s.tags for s in model.tag(rows_with_ids)] == expected
    with pytest.raises(TypeError, match=r"sentence 0 is a mapping .* without a 'tokens' column"):
        model.predict([{"words": SENTENCES[0]}])


@pytest.mark.parametrize("crf_scheme", ["IOBES", "IOB2"])
def test_entity_scores_of_a_batch_match_brute_force_enumeration(tokenizer, crf_scheme):
    # sentences of different lengths in one batch: padding, and (IOB2) chunks that end at
    # a sentence's end or before an I- tag of another type
    model = untrained(tokenizer, crf_scheme=crf_scheme, scale=6.0, seed=3)
    sentences = [["Peter", "Blackburn", "visited", "New"], ["EU", "rejects"], ["a", "b", "c"]]
    tagged = model.tag(sentences, batch_size=3)
    assert sum(len(t.entities) for t in tagged) >= 3, "the random model should find entities"
    for words, sentence in zip(sentences, tagged, strict=True):
        label_sequences, probabilities = brute_force(model, words)
        for entity in sentence.entities:
            chunk = (entity.type, entity.token_start, entity.token_end)
            exact = sum(
                p
                for p, labels in zip(probabilities, label_sequences, strict=True)
                if chunk in tag_chunks(labels)
            )
            assert entity.score == pytest.approx(exact, abs=1e-5)


def test_entity_scores_of_a_long_sentence_take_linear_memory(tokenizer):
    # One constrained forward pass per entity over the whole sentence held [entities, T, K]:
    # 0.13 GB at 2,000 words, 15 GB of RSS at 10,000. A forward-backward pass holds [T, K]
    # and the Viterbi back-pointers [T, K, K] (4 bytes each), whatever the entity count.
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class LargestTensor(TorchDispatchMode):
        nbytes = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in tree_leaves(out):
                if isinstance(tensor, torch.Tensor):
                    self.nbytes = max(self.nbytes, tensor.untyped_storage().nbytes())
            return out

    model = untrained(tokenizer, scale=6.0)
    words = (SENTENCES[0] + SENTENCES[1] + SENTENCES[8]) * 200
    with LargestTensor() as largest:
        (tagged,) = model.tag([words])
    assert len(tagged.entities) > 300
    assert largest.nbytes <= 16 * len(words) * len(model.labels) ** 2
    assert all(0.0 <= entity.score <= 1.0 for entity in tagged.entities)
