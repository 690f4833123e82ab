import json

import pytest
from locations import ROOT

from seqlstm import cli
from seqlstm.data import read_conll
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import parse_recipe_args
from seqlstm.recipes import conll2003_ner
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
from seqlstm.text.tag_schemes import is_valid_sequence

CONLL = ROOT.parent / "shared" / "data" / "conll2003"


@pytest.fixture(scope="module")
def recipe():
    return conll2003_ner


@pytest.fixture(scope="module")
def smoke(recipe, tmp_path_factory):
    """(results, OUT) of the smoke preset run through the recipe's main, once per module."""
    if not CONLL.is_dir():
        pytest.skip("needs ../shared/data/conll2003")
    out = tmp_path_factory.mktemp("smoke") / "run"
    return recipe.main(["--preset", "smoke", "--data-dir", str(CONLL), "--out", str(out)]), out


def test_presets_parse_and_name_only_config_fields(recipe):
    args = parse_recipe_args(recipe.NERConfig, recipe.PRESETS, ["--preset", "cpu"])
    # a budget in epochs, not minutes: the same command trains the same model on any load
    assert args.config.max_time_minutes is None and args.config.max_epochs == 40
    assert args.device == "cpu" and args.config.word_vectors is None
    full = parse_recipe_args(recipe.NERConfig, recipe.PRESETS, ["--hidden-size", "50"])
    assert full.preset == "full" and full.config.hidden_size == 50


def test_smoke_preset_runs_end_to_end_on_the_real_data(smoke):
    results, out = smoke
    assert json.loads((out / "results.json").read_text()) == results
    assert (out / "results.md").is_file() and (out / "train.log").is_file()
    # two epochs of 45 steps, shorter than log_every_steps: each evaluation logs the loss too
    log = (out / "train.log").read_text()
    assert log.count(" train_loss ") == 2 and log.count(" valid f1 ") == 2
    assert results["task"] == "named-entity recognition" and len(results["data_sha256"]) == 64
    for split in ("valid", "test"):
        metrics = results["metrics"][split]
        for name in ("precision", "recall", "f1"):
            for suffix in ("", "_PER", "_LOC", "_ORG", "_MISC"):
                assert 0.0 <= metrics[name + suffix] <= 100.0
    # 300 sentences and two epochs are enough to find some entities (test F1 ~60)
    assert results["metrics"]["test"]["f1"] > 20
    # the files mark no documents, so each split was read as one, and results.json says so
    assert results["documents"] == {
        split: {"rule": "whole-split", "documents": 1} for split in ("train", "validation", "test")
    }
    # the saved model is the one that was scored: its test F1 is the reported one
    model = BiLSTMCRFTagger.from_pretrained(out / "model")
    test = read_conll(CONLL / "test.txt")[: results["config"]["max_eval_sentences"]]
    one_document = [dict(row, document=0) for row in test]
    assert model.evaluate(one_document) == pytest.approx(results["metrics"]["test"])
    predictions = model.predict([row["tokens"] for row in test])
    assert all(is_valid_sequence(p, "IOB2") for p in predictions)


def test_a_label_that_training_never_saw_fails_before_training(recipe, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("EU B-ORG\nrejects O\n\nPeter B-PER\n")
    (data / "valid.txt").write_text("Bonn B-LOC\n")
    (data / "test.txt").write_text("Peter B-PER\n")
    out = tmp_path / "run"
    with pytest.raises(DataError, match="validation split, row 0"):
        recipe.main(["--preset", "smoke", "--data-dir", str(data), "--out", str(out)])
    assert not (out / "trainer").exists() and not (out / "model").exists()


def test_seqlstm_train_with_a_printed_config_reproduces_the_smoke_metrics(smoke, tmp_path, capsys):
    results, _ = smoke
    out = tmp_path / "cli"
    options = ["--config", "smoke", "--data-dir", str(CONLL), "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "ner", *options, "--print-config"])
    assert exit_info.value.code == 0 and not out.exists()  # printing trains nothing
    config = tmp_path / "smoke.yaml"
    config.write_text(capsys.readouterr().out, encoding="utf-8")

    assert cli.main(["train", "ner", "--config", str(config)]) == 0
    again = json.loads((out / "results.json").read_text())
    # the same run: the same settings and data, and exactly the same numbers
    assert again["config"] == results["config"]
    assert again["data_sha256"] == results["data_sha256"]
    assert again["metrics"] == results["metrics"]
    # OUT/config.yaml holds the effective config, the file the run was given
    assert (out / "config.yaml").read_text(encoding="utf-8") == config.read_text(encoding="utf-8")
