"""Tagging documents on the CPU: one pass per document against per-sentence context, and spaCy.

The CoNLL-2003 English test set (3,453 sentences, 46,435 words) has no ``-DOCSTART-`` lines,
so, as the NER recipe does, the file is read as one document. A tagger with document context
(``config.context_words`` = c) must read every sentence with c words of its neighbours:

- **per sentence** (``config.chunk_words = 0``, what seqlstm did before documents were
  explicit): every sentence is read between c words on each side, so with c = 60 the BiLSTM
  reads about nine times as many words as the text has;
- **one pass** (``TaggerConfig.chunk_words``, the library's default, 800): the document is
  cut into chunks of that many words, each read once with c words of context on each side,
  and each distinct word is embedded once.

Both give every sentence at least c words of context, so their entity F1 must agree
(target: within 0.1); the one pass should be much faster (target: >= 4x words per second).

The peer is spaCy's NER in its "efficiency" configuration (``spacy init config --pipeline ner
--optimize efficiency``: a hash-embedding CNN tok2vec and the transition-based NER), given the
same pre-tokenized sentences as ``Doc`` objects and initialised on the same four entity
types. It is untrained - its speed does not depend on its weights - so its predictions are not
scored. Target: seqlstm's one pass tags at least as many words per second as spaCy.

All at one thread (torch, and BLAS through threadpoolctl), in the same process, one after the
other, each after an untimed warm-up and as the best of REPEATS runs; the one-minute load
average is recorded before and after. The model is a trained one, as in bench_tagging:
$SEQLSTM_TAGGER_MODEL, else runs/ner_cpu_seed1/model. --quick uses a tiny random tagger with
4 words of context on the first 200 test sentences and only checks that everything runs.
spaCy is the optional extra ``pip install -e ".[bench]"``; without it its part is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from benchmarks.bench_tagging import (
    DATA,
    _model_info,
    _trained_model,
    _words,
)
from benchmarks.timing import best_of, one_thread
from seqlstm.data import read_conll
from seqlstm.metrics import entity_f1
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.text.tokenizer import SubwordTokenizer

BATCH_SIZE = 32  # chunks or sentences per BiLSTM batch
REPEATS = 3
QUICK_SENTENCES = 200


def run(quick: bool) -> dict:
    if not DATA.is_file():
        raise FileNotFoundError(f"{DATA}: the CoNLL-2003 test file (column format) is needed")
    with one_thread():
        model, rows, results = context_model_and_rows(quick)
        results.update(_measure(model, rows, 1 if quick else REPEATS))
    return results


def context_model_and_rows(quick: bool) -> tuple[BiLSTMCRFTagger, list[dict], dict]:
    """(the model, the CoNLL-2003 test rows, its description): the trained model with all
    test sentences, or with --quick a tiny random one with the first QUICK_SENTENCES."""
    if quick:
        rows = read_conll(DATA)[:QUICK_SENTENCES]
        model, results = _tiny_context_model(rows)
        return model, rows, results
    model, results = _trained_model()
    return model, read_conll(DATA, scheme_to=model.config.scheme), results


def _measure(model: BiLSTMCRFTagger, rows: list[dict], repeats: int) -> dict:
    sentences = [row["tokens"] for row in rows]
    gold = [row["tags"] for row in rows]
    words = _words(sentences)
    results: dict = {
        "sentences": len(sentences),
        "words": words,
        "documents": 1,
        "batch_size": BATCH_SIZE,
        "repeats": repeats,
        "context_words": model.config.context_words,
        "load_average_before": round(os.getloadavg()[0], 2),
    }
    chunk_words = TaggerConfig.chunk_words  # the default, also for a model saved with another
    tags = {}
    for name, chunk in (("per_sentence", 0), ("one_pass", chunk_words)):
        model.config.chunk_words = chunk
        tags[name], rate = _rate(lambda: model.predict_documents([sentences], BATCH_SIZE), words)
        tags[name] = tags[name][0]
        results[f"{name}_chunk_words"] = chunk
        results[f"{name}_words_per_s"] = round(rate, 1)
        f1 = entity_f1(gold, tags[name], scheme=model.config.scheme).f1
        results[f"{name}_test_entity_f1"] = round(f1, 2)
    results["one_pass_over_per_sentence_speedup"] = round(
        results["one_pass_words_per_s"] / results["per_sentence_words_per_s"], 2
    )
    results["f1_difference"] = round(
        results["one_pass_test_entity_f1"] - results["per_sentence_test_entity_f1"], 2
    )
    results["sentences_with_other_tags"] = sum(
        a != b for a, b in zip(tags["one_pass"], tags["per_sentence"], strict=True)
    )
    alone, rate = _rate(lambda: model.predict(sentences, BATCH_SIZE), words)
    results["sentences_alone_words_per_s"] = round(rate, 1)
    results["sentences_alone_test_entity_f1"] = round(
        entity_f1(gold, alone, scheme=model.config.scheme).f1, 2
    )
    results.update(_spacy(sentences, model.entity_types, words, repeats))
    if "spacy_words_per_s" in results:
        results["one_pass_over_spacy"] = round(
            results["one_pass_words_per_s"] / results["spacy_words_per_s"], 2
        )
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    return results


def _rate(call, words: int, repeats: int = REPEATS) -> tuple[list, float]:
    """(the output of ``call()``, words per second of wall time): a warm-up, then best of."""
    call()
    output, wall, _ = best_of(call, repeats)
    return output, words / wall


def _spacy(
    sentences: Sequence[Sequence[str]], labels: Sequence[str], words: int, repeats: int
) -> dict:
    """spaCy's efficiency NER on the same sentences (module docstring); {} without spaCy."""
    try:
        import spacy
        from spacy.cli.init_config import init_config
        from spacy.tokens import Doc
    except ImportError:
        return {"spacy": "not installed (pip install -e '.[bench]')"}
    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    for label in labels:
        nlp.get_pipe("ner").add_label(label)
    nlp.initialize()

    def tag() -> list:
        docs = (Doc(nlp.vocab, words=list(words)) for words in sentences)
        return [doc.ents for doc in nlp.pipe(docs)]

    _, rate = _rate(tag, words, repeats)
    return {
        "spacy_version": spacy.__version__,
        "spacy_pipeline": " + ".join(nlp.pipe_names),
        "spacy_words_per_s": round(rate, 1),
    }


def _tiny_context_model(rows: list[dict]) -> tuple[BiLSTMCRFTagger, dict]:
    texts = [" ".join(row["tokens"]) for row in rows]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=500, hard_vocab_limit=False, num_threads=1)
    torch.manual_seed(0)
    config = TaggerConfig(
        subword_dim=16, char_embedding_dim=8, char_filters=16, hidden_size=16, context_words=4
    )
    model = BiLSTMCRFTagger.build(config, tokenizer, rows).eval()
    return model, {"model": "tiny, randomly initialised (quick)", **_model_info(model)}
