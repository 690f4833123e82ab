"""A ``datasets.Dataset`` as the hub gives it, where the task models take rows: the tagger's
evaluate/entity_scores (ClassLabel tags, other schemes, other column names), the translator's
evaluate (a translation column, language columns) and the language model's (a text column).
Each is checked against the same data given as plain rows, or against seqeval."""

import pytest
import seqeval.metrics as seqeval
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from locations import FIXTURES

from seqlstm.data import BucketedBatches, read_conll
from seqlstm.errors import DataError
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig, UnknownLabelError
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tag_schemes import convert_tags
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer, TrainerConfig

TRAIN = read_conll(FIXTURES / "ner_train.txt")  # IOB2
SENTENCES = [row["tokens"] for row in TRAIN]
TAGS = [row["tags"] for row in TRAIN]
# the label names of eriktks/conll2003, in its order
CONLL_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def gold_tags():
    """TAGS with known differences, so that a tagger that reproduces TAGS scores a mix of
    right, wrong, missed and spurious entities (as in tests/tasks/tagging/test_tagger.py)."""
    gold = [list(tags) for tags in TAGS]
    gold[0][0] = "B-LOC"  # a wrong type
    gold[0][6] = "O"  # a spurious entity
    gold[1] = ["O"] * len(gold[1])  # every predicted entity spurious
    gold[2][0] = "B-PER"  # a missed entity
    gold[3][6] = "O"  # a shorter span
    return gold


def hub_dataset(tags, scheme="IOB2", names=None):
    """A DatasetDict shaped like datasets.load_dataset("eriktks/conll2003"): columns id,
    tokens, pos_tags, ner_tags, the tags as ClassLabel ids (of ``names``, in ``scheme``)."""
    tags = [convert_tags(sentence, "IOB2", scheme) for sentence in tags]
    if names is None:
        names = CONLL_NAMES if scheme == "IOB2" else sorted({t for s in tags for t in s})
    features = Features(
        {
            "id": Value("string"),
            "tokens": Sequence(Value("string")),
            "pos_tags": Sequence(ClassLabel(names=["NN", "NNP"])),
            "ner_tags": Sequence(ClassLabel(names=names)),
        }
    )
    data = {
        "id": [str(number) for number in range(len(SENTENCES))],
        "tokens": SENTENCES,
        "pos_tags": [[1] * len(words) for words in SENTENCES],
        "ner_tags": [[names.index(tag) for tag in sentence] for sentence in tags],
    }
    test = Dataset.from_dict(data, features=features)
    return DatasetDict({"train": test.select(range(2)), "test": test})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny tagger (IOB2, no document context) trained to reproduce TAGS, saved."""
    tokenizer = SubwordTokenizer.train(
        [" ".join(s) for s in SENTENCES], 400, hard_vocab_limit=False
    )
    torch.manual_seed(0)
    config = TaggerConfig(
        subword_dim=16,
        char_embedding_dim=8,
        char_filters=16,
        hidden_size=16,
        dropout=0.0,
        word_dropout=0.0,
        context_words=0,
        lowercase_subwords=False,
    )
    model = BiLSTMCRFTagger.build(config, tokenizer, TRAIN)
    examples = model.encode(TRAIN)
    batches = BucketedBatches(examples, [e.length for e in examples], model.collate, 10_000)
    directory = tmp_path_factory.mktemp("tagger")
    trainer_config = TrainerConfig(
        output_dir=str(directory / "trainer"),
        max_epochs=None,
        max_steps=60,
        lr=0.05,
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
    )
    Trainer(model, trainer_config, batches).fit()
    assert model.eval().predict(SENTENCES) == TAGS
    return model.save_pretrained(directory / "model")


@pytest.fixture(scope="module")
def tagger(model_dir):
    return BiLSTMCRFTagger.from_pretrained(model_dir)


def test_the_readme_evaluation_of_a_hub_dataset(model_dir):
    ds = hub_dataset(gold_tags())  # stands in for datasets.load_dataset("eriktks/conll2003")
    tagger = BiLSTMCRFTagger.from_pretrained(model_dir)
    metrics = tagger.evaluate(ds["test"])
    gold, predicted = gold_tags(), TAGS
    assert 0 < metrics["f1"] < 100
    assert metrics["precision"] == pytest.approx(100 * seqeval.precision_score(gold, predicted))
    assert metrics["recall"] == pytest.approx(100 * seqeval.recall_score(gold, predicted))
    assert metrics["f1"] == pytest.approx(100 * seqeval.f1_score(gold, predicted))
    assert metrics["accuracy"] == pytest.approx(100 * seqeval.accuracy_score(gold, predicted))
    report = seqeval.classification_report(gold, predicted, output_dict=True, zero_division=0)
    for name in ("LOC", "MISC", "ORG", "PER"):
        assert metrics[f"f1_{name}"] == pytest.approx(100 * report[name]["f1-score"])
    rows = [{"tokens": w, "tags": t} for w, t in zip(SENTENCES, gold, strict=True)]
    assert tagger.entity_scores(ds["test"]).report() == tagger.entity_scores(rows).report()


@pytest.mark.parametrize("scheme", ["IOB1", "IOBES"])
def test_the_datasets_own_scheme_is_converted_to_the_taggers(tagger, scheme):
    expected = tagger.evaluate(hub_dataset(gold_tags())["test"])
    converted = hub_dataset(gold_tags(), scheme)["test"]
    assert converted.features["ner_tags"].feature.names != CONLL_NAMES
    # token accuracy compares tags one by one: read unconverted, IOB1's I- at an entity's
    # start would count as wrong, and an IOBES tag is no IOB2 tag at all
    assert tagger.evaluate(converted) == expected


def test_other_column_names_are_found_or_named(tagger):
    expected = tagger.evaluate(hub_dataset(gold_tags())["test"])
    ds = hub_dataset(gold_tags())["test"]
    words = ds.rename_columns({"tokens": "words", "ner_tags": "labels"})
    assert tagger.evaluate(words) == expected
    odd = ds.rename_columns({"tokens": "form", "ner_tags": "entities"})
    with pytest.raises(DataError, match=r"no tokens column: none of 'tokens', 'words'"):
        tagger.evaluate(odd)
    assert tagger.evaluate(odd, tokens_column="form", tags_column="entities") == expected
    # the POS tags only when named, and they are no chunk tags
    with pytest.raises(DataError, match=r"row 0, token 0: 'NNP' is not a chunk tag"):
        tagger.evaluate(ds, tags_column="pos_tags")
    # plain rows under other names, when named
    rows = [{"form": w, "gold": t} for w, t in zip(SENTENCES, gold_tags(), strict=True)]
    assert tagger.evaluate(rows, tokens_column="form", tags_column="gold") == expected


def test_a_document_column_of_a_dataset_groups_its_rows(tagger):
    ds = hub_dataset(gold_tags())["test"]
    with_documents = ds.add_column("document", [n // 2 for n in range(len(ds))])
    rows = [
        {"tokens": w, "tags": t, "document": n // 2}
        for n, (w, t) in enumerate(zip(SENTENCES, gold_tags(), strict=True))
    ]
    assert tagger.evaluate(with_documents) == tagger.evaluate(rows)
    back = ds.add_column("document", [0, 1, 0] + list(range(2, len(ds) - 1)))
    with pytest.raises(DataError, match="row 2: document 0 comes back"):
        tagger.evaluate(back)


def test_what_would_be_read_wrong_is_a_clear_error(tagger):
    ds = hub_dataset(gold_tags())
    with pytest.raises(TypeError, match=r"pass the rows as one argument - a datasets.Dataset"):
        tagger.evaluate(ds["test"]["tokens"], ds["test"]["ner_tags"])
    with pytest.raises(DataError, match=r"the column 'tokens' of a data set where rows are"):
        tagger.evaluate(ds["test"]["tokens"])
    with pytest.raises(DataError, match=r"DatasetDict of the splits \['train', 'test'\]"):
        tagger.evaluate(ds)
    with pytest.raises(DataError, match=r"got a streamed IterableDataset: pass a datasets"):
        tagger.evaluate(ds["test"].to_iterable_dataset())
    # hub rows read without their features: integers, not names
    ids = [{"tokens": row["tokens"], "tags": row["ner_tags"]} for row in ds["test"]]
    with pytest.raises(DataError, match=r"row 0: 'tags' .* got integers \(ClassLabel ids\?\)"):
        tagger.entity_scores(ids)
    # a label the tagger never saw, under the data set's own names
    dated = [list(tags) for tags in gold_tags()]
    dated[1][0] = "B-DATE"
    with pytest.raises(UnknownLabelError, match=r"row 1, token 0: the tag 'B-DATE'"):
        tagger.evaluate(hub_dataset(dated, names=[*CONLL_NAMES, "B-DATE"])["test"])


def test_predict_reads_a_dataset_by_its_tokens_or_says_what_is_missing(tagger):
    ds = hub_dataset(gold_tags())["test"]
    assert tagger.predict(ds) == TAGS
    with pytest.raises(TypeError, match=r"sentence 0 is a mapping .* without a 'tokens' column"):
        tagger.predict(ds.rename_column("tokens", "words"))


# ---------------------------------------------------------------- translation

PAIRS = [
    ("a red cat runs", "eine rote Katze rennt"),
    ("the dog sleeps", "der Hund schläft"),
    ("a small bird eats", "ein kleiner Vogel frisst"),
]


def translator(languages=("en", "de")):
    tokenizer = SubwordTokenizer.train(
        [text for pair in PAIRS for text in pair] * 4, vocab_size=400, hard_vocab_limit=False
    )
    torch.manual_seed(0)
    config = TranslatorConfig(
        embedding_dim=16,
        encoder_hidden_size=8,
        encoder_layers=1,
        decoder_hidden_size=16,
        decoder_layers=1,
        source_language=languages[0] if languages else None,
        target_language=languages[1] if languages else None,
    )
    return Seq2SeqLSTM(config, tokenizer).eval()


def test_the_translator_reads_a_translation_column_or_language_columns(monkeypatch):
    model = translator()
    rows = [{"source": en, "target": de} for en, de in PAIRS]
    expected = model.score(rows, beam_size=1)
    wmt = Dataset.from_dict({"translation": [{"de": de, "en": en} for en, de in PAIRS]})
    columns = Dataset.from_dict(
        {"id": ["0", "1", "2"], "de": [de for _, de in PAIRS], "en": [en for en, _ in PAIRS]}
    )
    translated = []
    translate = model.translate
    monkeypatch.setattr(
        model,
        "translate",
        lambda sources, **kw: translated.append(sources) or translate(sources, **kw),
    )
    for data in (wmt, columns, list(wmt)):
        scores = model.score(data, beam_size=1)
        assert {k: s.score for k, s in scores.items()} == {k: s.score for k, s in expected.items()}
        assert translated.pop() == [en for en, _ in PAIRS]  # the English side is the source
    assert model.evaluate(wmt, beam_size=1) == model.evaluate(rows, beam_size=1)


def test_the_translator_needs_its_languages_for_language_columns():
    columns = Dataset.from_dict({"de": ["Hallo"], "en": ["Hello"]})
    with pytest.raises(DataError, match=r"the model does not name its languages"):
        translator(None).evaluate(columns)
    with pytest.raises(DataError, match=r"no column for \['en'\]"):
        translator().evaluate(columns.remove_columns("en"))
    with pytest.raises(DataError, match=r"DatasetDict of the splits \['test'\]"):
        translator().evaluate(DatasetDict({"test": columns}))


# ---------------------------------------------------------------- language model

TEXTS = ["to be or not to be", "", "that is the question"]


def language_model():
    tokenizer = SubwordTokenizer.train(TEXTS * 4, vocab_size=400, model_type="char")
    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_dim=8, hidden_size=16, num_layers=1, tie_weights=False)
    return LSTMLanguageModel(config, tokenizer).eval()


def test_the_language_model_reads_a_text_column():
    model = language_model()
    expected = model.evaluate(TEXTS, bptt=5)
    assert model.evaluate(Dataset.from_dict({"id": [1, 2, 3], "text": TEXTS}), bptt=5) == expected
    content = Dataset.from_dict({"content": TEXTS})
    assert model.evaluate(content, bptt=5, text_column="content") == expected
    with pytest.raises(DataError, match=r"no text column 'text'; the columns are \['content'\]"):
        model.evaluate(content)


def test_the_language_model_refuses_what_it_would_read_as_other_texts():
    model = language_model()
    splits = DatasetDict({"train": Dataset.from_dict({"text": TEXTS})})
    # before, its split names were read as the texts
    with pytest.raises(DataError, match=r"DatasetDict of the splits \['train'\]"):
        model.evaluate(splits)
    with pytest.raises(DataError, match=r"got one str; pass a list of them"):
        model.evaluate("to be or not to be")  # before, every character a text


def test_documents_chooses_how_the_rows_of_a_dataset_are_read():
    """A tagger with document context: ``documents="whole-split"`` reads the data set as one
    document (as the NER recipe reads the unmarked CoNLL-2003 splits), ``"none"`` and the
    default ``"marked"`` (no document column here) read each row alone - each checked against
    the predictions of the same reading, scored by seqeval."""
    tokenizer = SubwordTokenizer.train(
        [" ".join(s) for s in SENTENCES], 400, hard_vocab_limit=False
    )
    torch.manual_seed(1)
    config = TaggerConfig(subword_dim=16, char_filters=8, hidden_size=16, context_words=8)
    model = BiLSTMCRFTagger.build(config, tokenizer, TRAIN).eval()
    ds, gold = hub_dataset(gold_tags())["test"], gold_tags()
    whole = model.predict_documents([SENTENCES])[0]
    alone = model.predict(SENTENCES)
    assert whole != alone  # with context the reading changes the predictions
    for documents, predicted in (("whole-split", whole), ("none", alone), ("marked", alone)):
        f1 = model.evaluate(ds, documents=documents)["f1"]
        assert f1 == pytest.approx(100 * seqeval.f1_score(gold, predicted)), documents
    with pytest.raises(ValueError, match="documents must be one of"):
        model.evaluate(ds, documents="whole-file")
