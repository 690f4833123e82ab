"""Tagging with the ONNX export (onnxruntime, no torch) against the PyTorch tagger, on the CPU.

The same trained tagger tags the CoNLL-2003 English test set (3,453 sentences, 46,435 words),
given as lists of words, twice each way, in the same process, one after the other:

- **sentences alone**: ``predict`` of BiLSTMCRFTagger and of seqlstm.onnx_tagger.OnnxTagger;
- **documents**: ``predict_documents`` with the file read as one document, as the NER recipe
  reads it (the test file has no ``-DOCSTART-`` lines), for a tagger with document context.

Both at their default batch size (64), at one thread: torch through ``timing.one_thread()``,
onnxruntime through ``intra_op_num_threads=1``. Words per second of wall time and of this
process's CPU time, the ratio ONNX / PyTorch, and the number of sentences whose tags differ
between the two (expected 0: the export's emission scores are within float32 noise of
PyTorch's, and both decode them with the same constrained Viterbi), with the entity F1 of
both as a check that the model is a real one. The export itself is timed once, and its
check (the largest difference of emission scores on its check sentences) recorded.

The model is a trained one, as in bench_tagging: $SEQLSTM_TAGGER_MODEL, else
runs/ner_cpu_seed1/model. --quick exports a tiny random tagger with 4 words of context
(bench_documents') on the first 200 test sentences and only checks that everything runs.
Needs ``pip install -e ".[onnx]"`` (onnxruntime, onnx, onnxscript).

Timing: each call gets one untimed warm-up, then the best of REPEATS runs; the one-minute
load average is recorded before and after.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnxruntime

from benchmarks.bench_documents import context_model_and_rows
from benchmarks.bench_tagging import DATA, _words
from benchmarks.timing import best_of, one_thread
from seqlstm.metrics import entity_f1
from seqlstm.onnx_tagger import OnnxTagger
from seqlstm.onnx_tagger.directory import read_header
from seqlstm.onnx_tagger.export import export_onnx
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger

REPEATS = 3


def run(quick: bool) -> dict:
    if not DATA.is_file():
        raise FileNotFoundError(f"{DATA}: the CoNLL-2003 test file (column format) is needed")
    with one_thread(), tempfile.TemporaryDirectory() as scratch:
        model, rows, results = context_model_and_rows(quick)
        start = time.perf_counter()
        directory = export_onnx(model, Path(scratch) / "onnx")
        results["export_s"] = round(time.perf_counter() - start, 2)
        check = read_header(directory).export_check
        results["export_check_max_abs_difference"] = check["max_abs_difference"]
        results["onnx_bytes"] = sum(p.stat().st_size for p in directory.glob("*.onnx"))
        results["onnxruntime"] = onnxruntime.__version__
        onnx_model = OnnxTagger.load(directory, threads=1)
        results.update(_measure(model, onnx_model, rows, 1 if quick else REPEATS))
    return results


def _measure(
    model: BiLSTMCRFTagger, onnx_model: OnnxTagger, rows: list[dict], repeats: int
) -> dict:
    sentences = [row["tokens"] for row in rows]
    gold = [row["tags"] for row in rows]
    words = _words(sentences)
    results: dict = {
        "sentences": len(sentences),
        "words": words,
        "context_words": model.config.context_words,
        "chunk_words": model.config.chunk_words,
        "batch_size": 64,
        "repeats": repeats,
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    ways: dict[str, tuple[Callable, Callable]] = {
        "alone": (lambda: model.predict(sentences), lambda: onnx_model.predict(sentences)),
    }
    if model.config.context_words:
        ways["documents"] = (
            lambda: model.predict_documents([sentences])[0],
            lambda: onnx_model.predict_documents([sentences])[0],
        )
    for way, (torch_call, onnx_call) in ways.items():
        tags = {}
        for runtime, call in (("torch", torch_call), ("onnx", onnx_call)):
            call()  # warm-up
            tags[runtime], wall, cpu = best_of(call, repeats)
            results[f"{way}_{runtime}_words_per_s"] = round(words / wall, 1)
            results[f"{way}_{runtime}_words_per_cpu_s"] = round(words / cpu, 1)
            f1 = entity_f1(gold, tags[runtime], scheme=model.config.scheme).f1
            results[f"{way}_{runtime}_test_entity_f1"] = round(f1, 2)
        for suffix in ("words_per_s", "words_per_cpu_s"):
            ratio = results[f"{way}_onnx_{suffix}"] / results[f"{way}_torch_{suffix}"]
            results[f"{way}_onnx_over_torch_{suffix}"] = round(ratio, 2)
        results[f"{way}_sentences_with_other_tags"] = sum(
            a != b for a, b in zip(tags["torch"], tags["onnx"], strict=True)
        )
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    return results
