"""End-to-end tagging throughput of BiLSTMCRFTagger on the CoNLL-2003 English test set, CPU.

Sentences (and words) per second of the whole path a user calls - encoding the words into
subwords and characters, padding, the character CNN and BiLSTM, and CRF decoding back to tags
- for the 3,453 test sentences (46,435 words) given as lists of words, at one torch thread:

- `predict` at batch sizes 1, 32 and 256 (the best tag sequence of each sentence);
- `tag` at batch size 256, which adds each token's marginal confidence and each entity's
  probability (a constrained forward pass per entity), i.e. `predict_entities` in bulk,
  and how many times the CPU time of `predict` at the same batch size it takes;
- the speed-up of `predict` at batch 256 over batch 1. To keep the run short, batch 1 times
  only the first 500 test sentences (`batch1_sentences`); those are shorter than the average
  test sentence (`batch1_mean_words` against `mean_words`), so the speed-up is the ratio of
  words per second, which does not depend on the sentences' lengths the way sentences per
  second does.

The model matters: speed depends on its sizes, and a random one would not show that the numbers
are those of a tagger that works. The full benchmark loads a trained model directory -
$SEQLSTM_TAGGER_MODEL if set, else runs/ner_cpu_seed1/model, written by `seqlstm train ner
--config cpu --data-dir ../shared/data/conll2003 --seed 1 --out runs/ner_cpu_seed1` (40 epochs,
about 36 minutes on one core) - and reports its parameter count, its config and the entity F1
(conlleval, as `model.evaluate` computes it) of the batch-256 predictions on the test set, as a
check that it is a real one. `predict` and `tag` read every sentence alone, also with a tagger
trained with document context (`config_context_words`): documents are timed by bench_documents.
Batching must not change the predictions: `predict_batch_disagreements` counts the timed
sentences whose tags differ from those at batch 256 of the same sentences (expected 0). --quick
builds a tiny random tagger on the first 64 test sentences (its tokenizer trained on the first
300) and only checks that everything runs, in seconds and without a trained model.

Timing: each setting gets one untimed warm-up batch, then the best of REPEATS runs over the
sentences. The machine may be shared (two cores), so rates are per second of wall time and
per second of this process's CPU time (`_per_cpu_s`), which other processes disturb less at
one thread, and the one-minute load average is recorded before and after.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from benchmarks.timing import best_of, one_thread
from seqlstm.data import read_conll
from seqlstm.metrics import entity_f1
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.text.tokenizer import SubwordTokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "conll2003" / "test.txt"
MODEL_ENV = "SEQLSTM_TAGGER_MODEL"
DEFAULT_MODEL = ROOT / "runs" / "ner_cpu_seed1" / "model"
TRAIN_COMMAND = (
    "seqlstm train ner --config cpu --data-dir ../shared/data/conll2003 "
    "--seed 1 --out runs/ner_cpu_seed1"
)
PREDICT_BATCH_SIZES = (1, 32, 256)
TAG_BATCH_SIZE = 256
BATCH1_SENTENCES = 500  # batch 1 times only these first test sentences, to keep the run short
REPEATS = 3
QUICK_SENTENCES = 64
QUICK_TOKENIZER_SENTENCES = 300


def run(quick: bool) -> dict:
    if not DATA.is_file():
        raise FileNotFoundError(f"{DATA}: the CoNLL-2003 test file (column format) is needed")
    with one_thread():
        if quick:
            rows = read_conll(DATA)
            model, results = _tiny_random_model(rows)
            rows = rows[:QUICK_SENTENCES]
        else:
            model, results = _trained_model()
            rows = read_conll(DATA, scheme_to=model.config.scheme)
        results.update(_measure(model, rows, repeats=1 if quick else REPEATS, score=not quick))
    return results


def _measure(model: BiLSTMCRFTagger, rows: list[dict], repeats: int, score: bool) -> dict:
    sentences = [row["tokens"] for row in rows]
    batch1 = sentences[:BATCH1_SENTENCES]
    results: dict = {
        "torch_threads": torch.get_num_threads(),
        "sentences": len(sentences),
        "words": _words(sentences),
        "mean_words": round(_words(sentences) / len(sentences), 2),
        "batch1_sentences": len(batch1),
        "batch1_words": _words(batch1),
        "batch1_mean_words": round(_words(batch1) / len(batch1), 2),
        "repeats": repeats,
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    predictions, rates = {}, {}
    for batch_size in PREDICT_BATCH_SIZES:
        timed = batch1 if batch_size == 1 else sentences
        predictions[batch_size], rates[batch_size] = _time(
            model.predict, timed, batch_size, repeats
        )
        results.update(_rates(f"predict_batch{batch_size}", rates[batch_size]))
    # in words per second: the batch-1 sentences are shorter than the average (docstring)
    largest = PREDICT_BATCH_SIZES[-1]
    for suffix, name in (("", "words_per_s"), ("_cpu", "words_per_cpu_s")):
        speedup = rates[largest][name] / rates[1][name]
        results[f"predict_batch{largest}_over_batch1_speedup{suffix}"] = round(speedup, 2)
    # batch 1 only tags the first sentences, so its reference is those sentences at batch 256
    reference = predictions[largest]
    references = {len(sentences): reference, len(batch1): model.predict(batch1, largest)}
    results["predict_batch_disagreements"] = sum(
        tags != references[len(batch_tags)][i]
        for batch_tags in predictions.values()
        for i, tags in enumerate(batch_tags)
    )

    tagged, tag_rates = _time(model.tag, sentences, TAG_BATCH_SIZE, repeats)
    results.update(_rates(f"tag_batch{TAG_BATCH_SIZE}", tag_rates))
    results["tag_entities"] = sum(len(t.entities) for t in tagged)
    # how many times the CPU time of predict at the same batch size tag takes
    cost = rates[TAG_BATCH_SIZE]["words_per_cpu_s"] / tag_rates["words_per_cpu_s"]
    results[f"tag_batch{TAG_BATCH_SIZE}_cpu_cost_vs_predict"] = round(cost, 2)
    if score:
        gold = [row["tags"] for row in rows]
        scores = entity_f1(gold, reference, scheme=model.config.scheme)
        results["test_entity_precision"] = round(scores.precision, 2)
        results["test_entity_recall"] = round(scores.recall, 2)
        results["test_entity_f1"] = round(scores.f1, 2)
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    return results


def _time(
    method: Callable, sentences: Sequence[Sequence[str]], batch_size: int, repeats: int
) -> tuple[list, dict[str, float]]:
    """(outputs of `method(sentences, batch_size=...)`, its rates): one untimed warm-up batch,
    then the best wall time and the best CPU time of `repeats` runs over all `sentences`."""
    method(sentences[:batch_size], batch_size=batch_size)  # warm-up
    outputs, wall, cpu = best_of(lambda: method(sentences, batch_size=batch_size), repeats)
    count, words = len(sentences), _words(sentences)
    return outputs, {
        "sentences_per_s": count / wall,
        "sentences_per_cpu_s": count / cpu,
        "words_per_s": words / wall,
        "words_per_cpu_s": words / cpu,
    }


def _rates(prefix: str, rates: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{name}": round(value, 1) for name, value in rates.items()}


def _words(sentences: Sequence[Sequence[str]]) -> int:
    return sum(len(words) for words in sentences)


def _model_info(model: BiLSTMCRFTagger) -> dict:
    info = {
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "model_subword_pieces": len(model.tokenizer),
        "model_labels": len(model.labels),
    }
    info.update({f"config_{name}": value for name, value in asdict(model.config).items()})
    return info


def _trained_model() -> tuple[BiLSTMCRFTagger, dict]:
    """The model of $SEQLSTM_TAGGER_MODEL, else of DEFAULT_MODEL."""
    if os.environ.get(MODEL_ENV):
        directory = Path(os.environ[MODEL_ENV])
        if not directory.is_dir():
            raise FileNotFoundError(f"${MODEL_ENV}={directory}: no such model directory")
    elif DEFAULT_MODEL.is_dir():
        directory = DEFAULT_MODEL
    else:
        raise FileNotFoundError(
            f"no trained tagger: set ${MODEL_ENV} to a model directory, or train one into "
            f"{DEFAULT_MODEL} with `{TRAIN_COMMAND}` (about 36 minutes on one core)"
        )
    model = BiLSTMCRFTagger.from_pretrained(directory)
    info = {"model": "trained (seqlstm/recipes/conll2003_ner.py)", "model_dir": str(directory)}
    recorded = directory.parent / "results.json"
    if recorded.is_file():  # the recipe's own test score, to compare with test_entity_f1
        metrics = json.loads(recorded.read_text(encoding="utf-8")).get("metrics", {})
        if "f1" in metrics.get("test", {}):
            info["model_recorded_test_f1"] = round(metrics["test"]["f1"], 2)
    return model, {**info, **_model_info(model)}


def _tiny_random_model(rows: list[dict]) -> tuple[BiLSTMCRFTagger, dict]:
    texts = [" ".join(row["tokens"]) for row in rows[:QUICK_TOKENIZER_SENTENCES]]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=500, hard_vocab_limit=False, num_threads=1)
    torch.manual_seed(0)
    config = TaggerConfig(subword_dim=16, char_embedding_dim=8, char_filters=16, hidden_size=16)
    model = BiLSTMCRFTagger.build(config, tokenizer, rows[:QUICK_SENTENCES]).eval()
    return model, {"model": "tiny, randomly initialised (quick)", **_model_info(model)}
