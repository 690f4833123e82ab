"""Library config defaults are the recipes' recommended settings, and a model directory saved
before a default changed still loads as it was saved (``legacy_defaults``)."""

import dataclasses
import json
import shutil

import pytest
import torch
from locations import FIXTURES

from seqlstm.data import read_conll
from seqlstm.errors import CheckpointError
from seqlstm.recipes.conll2003_ner import NERConfig
from seqlstm.recipes.multi30k_translation import Multi30kConfig
from seqlstm.recipes.wikitext2_lm import WikiTextConfig
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.tasks.translation.translator import TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer

# library config -> the recipe whose full (recommended) settings its defaults are. The char LM
# recipe is the exception LanguageModelConfig's docstring explains: it sets its own sizes.
RECIPE_OF = {
    TaggerConfig: NERConfig,
    TranslatorConfig: Multi30kConfig,
    LanguageModelConfig: WikiTextConfig,
}


def defaults(config_class) -> dict:
    return {
        field.name: field.default
        for field in dataclasses.fields(config_class)
        if field.default is not dataclasses.MISSING
    }


@pytest.mark.parametrize("library", list(RECIPE_OF))
def test_library_defaults_are_the_recipes_settings(library):
    own, recipe = defaults(library), defaults(RECIPE_OF[library])
    shared = own.keys() & recipe.keys()
    assert len(shared) >= 6  # the model's sizes at least
    assert {name: own[name] for name in shared} == {name: recipe[name] for name in shared}


@pytest.mark.parametrize("library", list(RECIPE_OF))
def test_legacy_defaults_name_fields_whose_default_changed(library):
    legacy = getattr(library, "legacy_defaults", {})
    own = defaults(library)
    for name, value in legacy.items():
        assert name in own and own[name] != value, name
    assert "legacy_defaults" not in {field.name for field in dataclasses.fields(library)}


def strip_config_keys(directory, names) -> None:
    """Make a model directory look saved before the fields ``names`` existed."""
    path = directory / "config.json"
    header = json.loads(path.read_text())
    for name in names:
        del header["config"][name]
    path.write_text(json.dumps(header, indent=2))


def test_an_old_tagger_directory_loads_with_the_defaults_it_was_trained_with(tmp_path, monkeypatch):
    rows = read_conll(FIXTURES / "ner_train.txt")
    tokenizer = SubwordTokenizer.train(
        [" ".join(row["tokens"]) for row in rows], 400, hard_vocab_limit=False
    )
    # a tagger as TaggerConfig() made it before its defaults became the NER recipe's
    old = dict(lowercase_subwords=False, char_filters=50, hidden_size=100, context_words=0)
    assert TaggerConfig.legacy_defaults == old
    torch.manual_seed(0)
    config = TaggerConfig(subword_dim=8, char_embedding_dim=8, **old)
    model = BiLSTMCRFTagger.build(config, tokenizer, rows).eval()
    directory = model.save_pretrained(tmp_path / "old")
    strip_config_keys(directory, [*old, "chunk_words"])

    loaded = BiLSTMCRFTagger.from_pretrained(directory)
    assert loaded.config == dataclasses.replace(config, chunk_words=800)  # never the new ones
    sentences = [row["tokens"] for row in rows]
    assert loaded.predict(sentences) == model.predict(sentences)
    # "JAPAN" stays cased for its subwords, as the model was trained
    assert loaded.config.subword_words(["JAPAN"]) == ["JAPAN"]

    # without the legacy values the current defaults would build another model
    monkeypatch.setattr(TaggerConfig, "legacy_defaults", {})
    with pytest.raises(CheckpointError, match="has shape"):
        BiLSTMCRFTagger.from_pretrained(directory)


def test_an_old_language_model_directory_keeps_its_hidden_dropout(tmp_path):
    directory = tmp_path / "char_lm"
    shutil.copytree(FIXTURES / "models_0_1" / "char_lm", directory)
    strip_config_keys(directory, ["dropout_hidden"])
    loaded = LSTMLanguageModel.from_pretrained(directory)
    assert loaded.config.dropout_hidden == 0.3 != LanguageModelConfig().dropout_hidden
    # a directory that has the field keeps its own value
    fixture = LSTMLanguageModel.from_pretrained(FIXTURES / "models_0_1" / "char_lm")
    assert fixture.config.dropout_hidden == 0.25
