"""Taggers and their exports, shared by the tests of seqlstm.onnx_tagger.

Exporting takes seconds (torch.export and the ONNX translation, per graph), so each tagger is
exported once a session: the 0.1 fixture tagger (character CNN, 60 words of document context,
mean pooling, one layer, IOBES CRF) and a fresh random one with what the fixture lacks (a
word table and no character CNN, "first" pooling, two layers, IOB1 tags over an IOB2 CRF,
lowercased subwords).
"""

from pathlib import Path

import pytest
import torch
from locations import FIXTURES

from seqlstm.data import read_conll
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.text.tokenizer import SubwordTokenizer

TRAIN_FILE = FIXTURES / "ner_train.txt"


def export(tagger: BiLSTMCRFTagger, directory: Path) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from seqlstm.onnx_tagger.export import export_onnx

    return export_onnx(tagger, directory)


@pytest.fixture(scope="session")
def fixture_tagger() -> BiLSTMCRFTagger:
    return BiLSTMCRFTagger.from_pretrained(FIXTURES / "models_0_1" / "tagger")


@pytest.fixture(scope="session")
def fixture_export(fixture_tagger, tmp_path_factory) -> Path:
    return export(fixture_tagger, tmp_path_factory.mktemp("onnx") / "fixture_tagger")


@pytest.fixture(scope="session")
def tiny_tagger() -> BiLSTMCRFTagger:
    rows = read_conll(TRAIN_FILE, scheme_to="IOB1")
    tokenizer = SubwordTokenizer.train(
        [" ".join(row["tokens"]).lower() for row in rows], 300, hard_vocab_limit=False
    )
    config = TaggerConfig(
        scheme="IOB1",
        crf_scheme="IOB2",
        subword_dim=8,
        pooling="first",
        lowercase_subwords=True,
        char_filters=0,
        word_embedding_dim=6,
        hidden_size=8,
        num_layers=2,
    )
    torch.manual_seed(0)
    tagger = BiLSTMCRFTagger.build(config, tokenizer, rows)
    # a trained CRF's scores are of order one, not pytorch-crf's initial 0.1
    for parameter in tagger.crf.parameters():
        torch.nn.init.normal_(parameter)
    return tagger.eval()


@pytest.fixture(scope="session")
def tiny_export(tiny_tagger, tmp_path_factory) -> Path:
    return export(tiny_tagger, tmp_path_factory.mktemp("onnx") / "tiny_tagger")
