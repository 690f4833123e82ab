"""The language-model recipes end to end: Tiny Shakespeare (real file), WikiText-2 (synthetic)."""

import importlib
import json
import math
import random

import pytest
from locations import ROOT

from seqlstm.data.streams import text_lines
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import parse_recipe_args
from seqlstm.recipes import tinyshakespeare_char_lm, wikitext2_lm
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
from seqlstm.text.tokenizer import normalize

DATA = ROOT.parent / "shared" / "data"
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"


# ----------------------------------------------------------------------------- Tiny Shakespeare


def test_shakespeare_split_and_character_count(tmp_path):
    text = "First Citizen:\nBefore we  proceed\n\nAll:\nSpeak, speak.\n"
    (tmp_path / "input.txt").write_text(text, encoding="utf-8")
    train, valid = tinyshakespeare_char_lm.read_shakespeare(tmp_path / "input.txt", 0.1)
    cut = int(len(text) * 0.9)  # nanoGPT's prepare.py
    assert (train, valid) == (text[:cut], text[cut:])
    # one EOS per newline: the count of characters the model predicts is the text's length,
    # less what normalisation removes (here one of the two spaces of "we  proceed")
    lines = text_lines(text)
    assert lines == ["First Citizen:", "Before we  proceed", "", "All:", "Speak, speak."]
    assert sum(len(normalize(line)) + 1 for line in lines) == len(text) - 1


@pytest.mark.parametrize(
    ("recipe_name", "config_name"),
    [("tinyshakespeare_char_lm", "ShakespeareConfig"), ("wikitext2_lm", "WikiTextConfig")],
)
def test_every_preset_parses_and_budgets_steps_not_minutes(recipe_name, config_name):
    recipe = importlib.import_module(f"seqlstm.recipes.{recipe_name}")
    config_class = getattr(recipe, config_name)
    for preset in recipe.PRESETS:
        args = parse_recipe_args(config_class, recipe.PRESETS, ["--preset", preset])
        assert args.preset == preset
    cpu = parse_recipe_args(config_class, recipe.PRESETS, ["--preset", "cpu"])
    # a budget in steps, not minutes: the same command trains the same model on any load
    for preset in recipe.PRESETS:
        args = parse_recipe_args(config_class, recipe.PRESETS, ["--preset", preset])
        assert args.config.max_time_minutes is None
    assert cpu.config.max_steps is not None and cpu.device == "cpu"


def test_shakespeare_smoke_preset_on_the_real_file(tmp_path):
    if not SHAKESPEARE.is_file():
        pytest.skip(f"{SHAKESPEARE} not present")
    out = tmp_path / "run"
    results = tinyshakespeare_char_lm.main(
        ["--preset", "smoke", "--data-dir", str(SHAKESPEARE.parent), "--out", str(out)]
    )

    text = SHAKESPEARE.read_text(encoding="utf-8")
    valid_text = text[int(len(text) * 0.9) :]
    valid = results["metrics"]["valid"]
    assert set(results["metrics"]) == {"valid"}  # no test split in the 90/10 convention
    # per character of the original validation text, newlines included: no difference at all
    assert valid["characters"] == len(valid_text) == 111540
    assert valid["bits_per_character"] == pytest.approx(valid["nats_per_character"] / math.log(2))
    model = LSTMLanguageModel.from_pretrained(out / "model")
    assert model.tokenizer.model_type == "char"
    # 20 steps already beat a uniform guess over the 65 characters of the text
    assert valid["nats_per_character"] < math.log(65)
    # the saved model is the one the metrics were measured on
    again = model.evaluate(text_lines(valid_text), batch_size=16, bptt=32)
    assert again["nats_per_character"] == pytest.approx(valid["nats_per_character"], rel=1e-5)
    assert json.loads((out / "results.json").read_text())["metrics"]["valid"] == valid
    assert (out / "results.md").read_text().startswith("# char language model")
    assert (out / "sample.txt").read_text(encoding="utf-8").startswith("ROMEO:\n")


# ----------------------------------------------------------------------------- WikiText-2

WORDS = {
    "noun": ["album", "song", "band", "city", "river", "game", "army", "church", "king", "ship"],
    "verb": ["released", "recorded", "built", "won", "crossed", "founded", "played"],
    "adj": ["first", "large", "new", "old", "famous", "second"],
}


def wiki_lines(count, rng):
    """WikiText-like raw lines: headings, blank lines and sentences with spaced punctuation."""
    lines = []
    for i in range(count):
        if i % 10 == 0:
            lines += [" \n", f" = The {rng.choice(WORDS['adj'])} {rng.choice(WORDS['noun'])} = \n"]
            continue
        words = []
        for _ in range(rng.randint(1, 3)):
            words += ["The", rng.choice(WORDS["adj"]), rng.choice(WORDS["noun"])]
            words += ["was", rng.choice(WORDS["verb"]), "in", str(rng.randint(1900, 1999))]
            words += [rng.choice([",", "@-@", "and"])]
        lines.append(" " + " ".join(words) + " . \n")
    return lines


@pytest.fixture(scope="module")
def wikitext_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wikitext-2-raw")
    rng = random.Random(0)
    for split, count in [("train", 300), ("valid", 40), ("test", 40)]:
        (directory / f"wiki.{split}.raw").write_text("".join(wiki_lines(count, rng)), "utf-8")
    return directory


def test_wikitext_smoke_preset_on_a_synthetic_directory(wikitext_dir, tmp_path):
    out = tmp_path / "run"
    results = wikitext2_lm.main(
        ["--preset", "smoke", "--data-dir", str(wikitext_dir), "--out", str(out)]
    )
    metrics = results["metrics"]
    assert set(metrics) == {"valid", "test"}
    test_lines = (wikitext_dir / "wiki.test.raw").read_text("utf-8").splitlines()
    test = metrics["test"]
    # words as the word-level literature counts them: one <eos> per line, blank lines too
    assert test["words"] == sum(len(line.split()) + 1 for line in test_lines)
    assert test["characters"] == sum(len(line.strip()) + 1 for line in test_lines)
    for split in metrics.values():
        total_nll = split["nll"] * split["tokens"]
        assert math.log(split["word_perplexity"]) == pytest.approx(total_nll / split["words"])
        assert math.log(split["perplexity"]) == pytest.approx(split["nll"])
    model = LSTMLanguageModel.from_pretrained(out / "model")
    # 30 steps on this tiny grammar learn a lot: far better than a uniform guess
    assert test["perplexity"] < len(model.tokenizer) / 4
    again = model.evaluate(test_lines, batch_size=10, bptt=16)
    assert again["word_perplexity"] == pytest.approx(test["word_perplexity"], rel=1e-5)
    assert (out / "results.md").read_text().startswith("# language model")


def test_wikitext_recipe_names_a_missing_split(tmp_path):
    (tmp_path / "wiki.train.raw").write_text(" some text \n", "utf-8")
    (tmp_path / "wiki.valid.raw").write_text(" some text \n", "utf-8")
    argv = ["--preset", "smoke", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    with pytest.raises(DataError, match="no test split"):
        wikitext2_lm.main(argv)
    assert not (tmp_path / "o").exists()
