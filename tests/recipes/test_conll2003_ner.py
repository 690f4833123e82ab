import json

import pytest
from locations import ROOT

from recipes import conll2003_ner
from seqlstm.data import read_conll
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
from seqlstm.text.tag_schemes import is_valid_sequence

CONLL = ROOT.parent / "shared" / "data" / "conll2003"


@pytest.fixture(scope="module")
def recipe():
    return conll2003_ner


def test_presets_parse_and_name_only_config_fields(recipe):
    args = recipe.parse_recipe_args(recipe.NERConfig, recipe.PRESETS, ["--preset", "cpu"])
    # a budget in epochs, not minutes: the same command trains the same model on any load
    assert args.config.max_time_minutes is None and args.config.max_epochs == 40
    assert args.device == "cpu" and args.config.word_vectors is None
    full = recipe.parse_recipe_args(recipe.NERConfig, recipe.PRESETS, ["--hidden-size", "50"])
    assert full.preset == "full" and full.config.hidden_size == 50


def test_vectors_dimension(recipe, tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2 0.3\n")
    word2vec = tmp_path / "w2v.txt"
    word2vec.write_text("1 5\nthe 1 2 3 4 5\n")
    assert recipe.vectors_dimension(glove) == 3
    assert recipe.vectors_dimension(word2vec) == 5


@pytest.mark.skipif(not CONLL.is_dir(), reason="needs ../shared/data/conll2003")
def test_smoke_preset_runs_end_to_end_on_the_real_data(recipe, tmp_path):
    out = tmp_path / "run"
    results = recipe.main(["--preset", "smoke", "--data-dir", str(CONLL), "--out", str(out)])

    assert json.loads((out / "results.json").read_text()) == results
    assert (out / "results.md").is_file() and (out / "train.log").is_file()
    assert results["task"] == "named-entity recognition" and len(results["data_sha256"]) == 64
    for split in ("valid", "test"):
        metrics = results["metrics"][split]
        for name in ("precision", "recall", "f1"):
            for suffix in ("", "_PER", "_LOC", "_ORG", "_MISC"):
                assert 0.0 <= metrics[name + suffix] <= 100.0
    # 300 sentences and two epochs are enough to find some entities (test F1 ~60)
    assert results["metrics"]["test"]["f1"] > 20
    # the saved model is the one that was scored: its test F1 is the reported one
    model = BiLSTMCRFTagger.from_pretrained(out / "model")
    test = read_conll(CONLL / "test.txt")[: results["config"]["max_eval_sentences"]]
    sentences, tags = [e["tokens"] for e in test], [e["tags"] for e in test]
    scores = model.evaluate(sentences, tags)
    assert scores.f1 == pytest.approx(results["metrics"]["test"]["f1"])
    assert all(is_valid_sequence(p, "IOB2") for p in model.predict(sentences))
