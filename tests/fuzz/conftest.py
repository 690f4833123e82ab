"""The fuzz suite (issue 18, item 5): generated awkward input through the loaders,
``from_pretrained`` and the command line; every case must give a result or a clear error.

Inputs: tests/fuzz/fuzz_inputs.py (a case ``KIND-sSEED`` is reproducible from its id alone).
Outcomes and guards: tests/fuzz/fuzz_outcomes.py. The models are tiny and untrained, one per
task, built and saved once per session; the commands run in this process
(``seqlstm.cli.main`` with stdin and stdout substituted), a handful in a subprocess for
stdin and argv bytes as a shell gives them.

Environment:
- ``SEQLSTM_FUZZ_ROUNDS=N`` runs N times as many seeds per kind (default 1: several hundred
  cases in well under a minute); the extra seeds are new cases, the first ones unchanged.
- ``SEQLSTM_FUZZ_REPORT=FILE`` writes every case's outcome as JSON to FILE.

The end of the run prints how many cases of each entry point gave a result, a clear error
or a failure.
"""

import json
import logging
import os
import random
from pathlib import Path

import pytest
import torch
from fuzz_inputs import ENTITY_TYPES, WORDS
from fuzz_outcomes import RECORDS, TALLY


def _tagging_rows() -> list[dict]:
    """Training rows with entities of every type and length 1 to 3, so that the model has
    every label (B-, I-, E-, S- of its IOBES CRF) and no well-formed input surprises it."""
    rng = random.Random(0)
    rows = []
    for kind in ENTITY_TYPES:
        for length in (1, 2, 3):
            words = [rng.choice(WORDS) for _ in range(length + 2)]
            rows.append(
                {"tokens": words, "tags": ["O", f"B-{kind}", *[f"I-{kind}"] * (length - 1), "O"]}
            )
    return rows


@pytest.fixture(scope="session")
def fuzz_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny untrained model of each task, saved: ``tagger`` (with document context, so
    that ``--documents`` reads neighbours), ``translator``, ``language_model``."""
    from seqlstm.tasks.language_modeling.language_model import (
        LanguageModelConfig,
        LSTMLanguageModel,
    )
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
    from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
    from seqlstm.text.tokenizer import SubwordTokenizer

    root = tmp_path_factory.mktemp("fuzz_models")
    texts = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=400, hard_vocab_limit=False)
    torch.manual_seed(0)
    rows = _tagging_rows()
    tagger_config = TaggerConfig(
        subword_dim=8,
        char_embedding_dim=4,
        char_filters=8,
        hidden_size=8,
        dropout=0.0,
        word_dropout=0.0,
        context_words=4,
    )
    BiLSTMCRFTagger.build(tagger_config, tokenizer, rows).save_pretrained(root / "tagger")
    translator_config = TranslatorConfig(
        embedding_dim=8,
        encoder_hidden_size=8,
        encoder_layers=1,
        decoder_hidden_size=8,
        decoder_layers=1,
        max_length_constant=2,
    )
    Seq2SeqLSTM(translator_config, tokenizer).save_pretrained(root / "translator")
    lm_config = LanguageModelConfig(embedding_dim=8, hidden_size=8, num_layers=2, tie_weights=True)
    LSTMLanguageModel(lm_config, tokenizer).save_pretrained(root / "language_model")
    return {name: root / name for name in ("tagger", "translator", "language_model")}


@pytest.fixture(scope="session")
def tagger_tags(fuzz_models) -> set[str]:
    """The tags the fuzz tagger may output: O and B-/I- of the types it was built with."""
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger

    types = BiLSTMCRFTagger.from_pretrained(fuzz_models["tagger"]).entity_types
    assert sorted(types) == sorted(ENTITY_TYPES)
    return {"O"} | {f"{prefix}-{kind}" for prefix in "BI" for kind in types}


def pytest_terminal_summary(terminalreporter) -> None:
    if not TALLY:
        return
    entries = sorted({entry for entry, _ in TALLY})
    outcomes = ("result", "clear error", "failure")
    width = max(len(entry) for entry in entries)
    write = terminalreporter.write_line
    terminalreporter.section("fuzz cases: outcome per entry point")
    write(f"{'entry point':<{width}}  " + "  ".join(f"{o:>11}" for o in outcomes) + "      all")
    for entry in [*entries, "all"]:
        counts = [
            sum(n for (e, o), n in TALLY.items() if o == outcome and entry in (e, "all"))
            for outcome in outcomes
        ]
        write(f"{entry:<{width}}  " + "  ".join(f"{c:>11}" for c in counts) + f"  {sum(counts):>7}")
    report = os.environ.get("SEQLSTM_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(RECORDS, indent=1, ensure_ascii=False), "utf-8")


@pytest.fixture(autouse=True)
def _no_stale_log_handlers():
    """Another test file may leave a root-logger handler on a stream pytest has since closed
    (a recipe run's stderr handler); logging to it prints "--- Logging error ---", which the
    suite would take for a traceback of the case. Such handlers are removed first."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        stream = getattr(handler, "stream", None)
        if stream is not None and getattr(stream, "closed", False):
            root.removeHandler(handler)
    yield
