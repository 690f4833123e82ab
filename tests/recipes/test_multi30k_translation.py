import json

import pytest
from locations import ROOT

from seqlstm.errors import DataError
from seqlstm.experiment.run import data_fingerprint
from seqlstm.metrics import corpus_bleu, corpus_chrf
from seqlstm.recipes import multi30k_translation
from seqlstm.tasks.translation.translator import Seq2SeqLSTM

MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"

pytestmark = pytest.mark.skipif(not MULTI30K.is_dir(), reason="shared data not present")


@pytest.fixture(scope="module")
def recipe():
    return multi30k_translation


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_smoke_preset_end_to_end_on_multi30k(recipe, tmp_path):
    out = tmp_path / "run"
    argv = ["--preset", "smoke", "--data-dir", str(MULTI30K), "--out", str(out)]
    returned = recipe.main(argv)

    results = json.loads((out / "results.json").read_text())
    assert results == returned
    assert results["task"] == "translation en->de" and results["dataset"] == str(MULTI30K)
    assert set(results) >= {"config", "seed", "wall_time_s", "device", "data_sha256"}
    assert results["config"]["train_pairs"] == 400 and results["config"]["test_beam_size"] == 3
    names = {"bleu", "chrf", "bleu_lowercase"}
    assert set(results["metrics"]["valid"]) == names == set(results["metrics"]["test"])
    signatures = results["signatures"]
    assert signatures["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert signatures["bleu_lowercase"].startswith("nrefs:1|case:lc|eff:no|tok:13a|")
    assert signatures["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|")
    markdown = (out / "results.md").read_text()  # "|" escaped in a table cell
    assert all(signature.replace("|", "\\|") in markdown for signature in signatures.values())
    # the fingerprint is of the pairs read, as rows of the language columns
    files = {"train": ("train", 400), "validation": ("val", 40), "test": ("test_2016_flickr", 40)}
    pairs = {}
    for split, (name, count) in files.items():
        sides = (_lines(MULTI30K / f"{name}.{language}")[:count] for language in ("en", "de"))
        pairs[split] = [{"en": en, "de": de} for en, de in zip(*sides, strict=True)]
    assert results["data_sha256"] == data_fingerprint(pairs)
    assert (out / "train.log").read_text().count(" valid bleu ") == 2  # steps 8 and 16

    # the scores are those of the saved translations against the first 40 test references
    hypotheses = _lines(out / "test.hyp")
    references = _lines(MULTI30K / "test_2016_flickr.de")[:40]
    assert len(hypotheses) == 40
    test = results["metrics"]["test"]
    assert test["bleu"] == pytest.approx(corpus_bleu(hypotheses, references).score)
    assert test["chrf"] == pytest.approx(corpus_chrf(hypotheses, references).score)
    lowercase = corpus_bleu(hypotheses, references, lowercase=True).score
    assert test["bleu_lowercase"] == pytest.approx(lowercase)

    # the saved model is the one that translated the test set
    model = Seq2SeqLSTM.from_pretrained(out / "model")
    sources = _lines(MULTI30K / "test_2016_flickr.en")[:3]
    assert model.translate(sources, beam_size=3) == hypotheses[:3]


def test_a_language_without_files_is_a_data_error_before_anything_is_written(recipe, tmp_path):
    out = tmp_path / "run"
    argv = ["--preset", "smoke", "--tgt", "cs", "--data-dir", str(MULTI30K), "--out", str(out)]
    with pytest.raises(DataError, match="cs"):
        recipe.main(argv)
    assert not out.exists()
