"""The model card (seqlstm.model_card) of a tagger, a translator and a language model.

Cards are written for model directories laid out as a recipe run leaves them (OUT/model beside
OUT/results.json); the results files here are hand-written in the shape that
seqlstm.experiment.run writes, and every number a card shows is checked against them. The
front matter is read back with huggingface_hub's own ModelCard parser.
"""

import json
import shutil

import pytest
from huggingface_hub import ModelCard
from locations import FIXTURES
from safetensors import safe_open

from seqlstm.errors import CheckpointError
from seqlstm.model_card import model_card, weights_size

MODELS = FIXTURES / "models_0_1"
SHA = "7c41134f2620717602f6edc818781326edb021a103ebe5d0c4ab129a7e238097"

NER_RESULTS = {
    "task": "named-entity recognition",
    "dataset": "eriktks/conll2003",
    "metrics": {
        "valid": {"precision": 92.0336, "recall": 92.1575, "f1": 92.0955, "accuracy": 98.4775,
                  "precision_LOC": 93.6296, "recall_LOC": 95.2096, "f1_LOC": 94.413,
                  "precision_PER": 94.5474, "recall_PER": 94.1368, "f1_PER": 94.3417},
        "test": {"precision": 86.326, "recall": 86.7387, "f1": 86.5318, "accuracy": 97.1982,
                 "precision_LOC": 88.3518, "recall_LOC": 90.9472, "f1_LOC": 89.6307,
                 "precision_PER": 91.672, "recall_PER": 89.1775, "f1_PER": 90.4075},
    },
    "config": {"max_epochs": 40, "hidden_size": 200, "lr": 0.002, "batch_words": 400},
    "seed": 1,
    "wall_time_s": 1768.625,
    "device": "cpu",
    "data_sha256": SHA,
    "command": ["seqlstm", "train", "ner", "--config", "ner cpu.yaml", "--seed", "1"],
}  # fmt: skip

MT_RESULTS = {
    "task": "translation en->de",
    "dataset": "/home/someone/data/multi30k",
    "metrics": {
        "valid": {"bleu": 35.5786, "chrf": 59.8572, "bleu_lowercase": 35.7002},
        "test": {"bleu": 36.3386, "chrf": 61.7984, "bleu_lowercase": 36.7122},
    },
    "config": {"src": "en", "tgt": "de", "vocab_size": 8000, "max_steps": 1320},
    "seed": 1,
    "wall_time_s": 3984.383,
    "device": "cpu",
    "data_sha256": "8169022af02934ec76e060eeb26ec3db21ebcf30affa41d9c1ef28bee8e71818",
    "signatures": {
        "bleu": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
        "chrf": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
        "bleu_lowercase": "nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:2.6.0",
    },
    "command": "python -m seqlstm.recipes.multi30k_translation --preset cpu --seed 1",
}

LM_RESULTS = {
    "task": "char language model",
    "dataset": "karpathy/tiny_shakespeare",
    "metrics": {
        "valid": {"nll": 1.45255, "perplexity": 4.273999, "bits_per_character": 2.16202,
                  "nats_per_character": 1.498598, "tokens": 115076, "characters": 111540},
    },
    "config": {"bptt": 100, "batch_size": 32},
    "seed": 1,
    "wall_time_s": 3310.275,
    "device": "cuda",
    "data_sha256": "49ecf172ba7edd2874cfc8b806e5259ae45753d6169fbb99d0e13881fef2f470",
}  # fmt: skip


def run_directory(tmp_path, fixture: str, results: dict | None):
    """OUT/model (a copy of a fixture model) with OUT/results.json beside it."""
    out = tmp_path / "run"
    shutil.copytree(MODELS / fixture, out / "model")
    if results is not None:
        (out / "results.json").write_text(json.dumps(results, indent=2))
    return out / "model"


def front_matter(card: str) -> dict:
    return ModelCard(card).data.to_dict()


def test_tagger_card_has_conlleval_scores_per_type_data_and_command(tmp_path):
    card = model_card(run_directory(tmp_path, "tagger", NER_RESULTS), "owner/ner")
    assert front_matter(card) == {
        "library_name": "seqlstm",
        "pipeline_tag": "token-classification",
        "tags": ["seqlstm", "lstm", "pytorch", "safetensors", "bilstm-crf", "ner"],
        "datasets": ["eriktks/conll2003"],
        "metrics": ["f1", "precision", "recall", "accuracy"],
    }
    body = card.split("\n---\n", 1)[1]
    assert "# owner/ner\n" in body
    assert "(`BiLSTMCRFTagger`, seqlstm 0.1.0) for named-entity recognition" in body
    # the fixture's labels.json holds S-/B-/I-/E- tags of these four types
    assert "Entity types: LOC, MISC, ORG, PER." in body
    for row in [
        "| metric | valid | test |",
        "| f1 | 92.10 | 86.53 |",
        "| precision | 92.03 | 86.33 |",
        "| recall | 92.16 | 86.74 |",
        "| accuracy | 98.48 | 97.20 |",
        "| split | type | precision | recall | F1 |",
        "| valid | LOC | 93.63 | 95.21 | 94.41 |",
        "| test | PER | 91.67 | 89.18 | 90.41 |",
    ]:
        assert row + "\n" in body, row
    assert "| f1_LOC |" not in body  # per-type scores only in their own table
    assert "[`eriktks/conll2003`](https://huggingface.co/datasets/eriktks/conll2003)" in body
    assert f"SHA-256 `{SHA}`" in body
    assert "- seed: 1\n" in body and "- training time: 29.5 minutes\n" in body
    # the argv list, quoted for a shell
    assert "```bash\nseqlstm train ner --config 'ner cpu.yaml' --seed 1\n```" in body
    assert '"batch_words": 400' in body and '"crf_scheme": "IOBES"' in body
    assert 'model = BiLSTMCRFTagger.from_pretrained("owner/ner")' in body
    assert "| seqlstm tag --model owner/ner" in body


def test_translator_card_has_the_sacrebleu_signatures_and_languages(tmp_path):
    card = model_card(run_directory(tmp_path, "translator", MT_RESULTS), "owner/mt")
    data = front_matter(card)
    assert data["pipeline_tag"] == "translation"
    assert data["language"] == ["en", "de"]
    assert data["metrics"] == ["bleu", "chrf"]
    assert "datasets" not in data  # a local path names no hub data set
    assert "/home/someone" not in card
    assert "- data set: local files `multi30k`" in card
    for row in [
        "| bleu | 35.58 | 36.34 |",
        "| chrf | 59.86 | 61.80 |",
        "| bleu_lowercase | 35.70 | 36.71 |",
        "| bleu | `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0` |",
        "| chrf | `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0` |",
        "| bleu_lowercase | `nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:2.6.0` |",
    ]:
        assert row + "\n" in card, row
    assert "Translates en -> de." in card
    assert (
        "```bash\npython -m seqlstm.recipes.multi30k_translation --preset cpu --seed 1\n```" in card
    )
    assert "seqlstm translate --model owner/mt" in card


def test_language_model_card_has_perplexity_and_bits_per_character(tmp_path):
    card = model_card(run_directory(tmp_path, "char_lm", LM_RESULTS), "owner/lm")
    data = front_matter(card)
    assert data["pipeline_tag"] == "text-generation"
    assert data["metrics"] == ["perplexity", "bits_per_character"]
    assert data["datasets"] == ["karpathy/tiny_shakespeare"]
    for row in [
        "| metric | valid |",
        "| perplexity | 4.27 |",
        "| bits_per_character | 2.16 |",
        "| nats_per_character | 1.50 |",
        "| tokens | 115,076 |",
    ]:
        assert row + "\n" in card, row
    assert "- device: cuda\n" in card
    assert "## Training command\n\nNot recorded (its run recorded none).\n" in card
    assert 'seqlstm generate --model owner/lm --prompt "ROMEO:"' in card


def test_without_a_run_the_card_says_so_and_invents_no_numbers(tmp_path):
    # a directory not named "model" is no run's OUT/model, even with a results.json beside it
    out = tmp_path / "run"
    shutil.copytree(MODELS / "tagger", out / "tagger-copy")
    (out / "results.json").write_text(json.dumps(NER_RESULTS))
    card = model_card(out / "tagger-copy", "owner/ner")
    assert "metrics" not in front_matter(card) and "datasets" not in front_matter(card)
    assert "No evaluation was recorded with this model directory." in card
    assert "## Training command\n\nNot recorded (no run results came with it).\n" in card
    assert "92.10" not in card and SHA not in card
    assert '"hidden_size"' in card  # the model's own config is always there


def test_the_weight_count_is_every_stored_value_once(tmp_path):
    path = MODELS / "translator" / "model.safetensors"  # tied embeddings: stored once
    with safe_open(str(path), framework="numpy") as file:
        tensors = [file.get_tensor(name) for name in file.keys()]  # noqa: SIM118
    values, size = weights_size(path)
    assert values == sum(t.size for t in tensors)
    assert size == sum(t.nbytes for t in tensors)
    card = model_card(MODELS / "translator", "owner/mt")
    assert f"{values:,} weights, {size / 1e6:.1f} MB in model.safetensors" in card


def test_bad_files_are_checkpoint_errors_naming_them(tmp_path):
    model = run_directory(tmp_path, "char_lm", None)
    (model.parent / "results.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"results\.json: not valid JSON"):
        model_card(model, "owner/lm")
    (model.parent / "results.json").write_text("[]")
    with pytest.raises(CheckpointError, match="expected the JSON object of a run, with metrics"):
        model_card(model, "owner/lm")
    with pytest.raises(CheckpointError, match="not a seqlstm model directory"):
        model_card(tmp_path, "owner/lm")
