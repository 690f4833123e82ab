import json

import pytest
from locations import ROOT

from recipes import multi30k_translation
from seqlstm.errors import DataError
from seqlstm.metrics import corpus_bleu, corpus_chrf
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
    markdown = (out / "results.md").read_text()
    assert all(signature in markdown for signature in signatures.values())
    assert (out / "train.log").read_text().count("valid {'bleu'") == 2  # steps 8 and 16

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


def test_data_fingerprint_is_of_the_pairs(recipe):
    config = recipe.Multi30kConfig(train_pairs=5, valid_pairs=2, test_pairs=2)
    pairs = recipe.read_pairs(MULTI30K, config)
    assert [len(pairs[split][0]) for split in recipe.SPLITS] == [5, 2, 2]
    assert pairs["test"][1][0] == _lines(MULTI30K / "test_2016_flickr.de")[0]
    changed = {**pairs, "test": (pairs["test"][0], ["x", pairs["test"][1][1]])}
    assert recipe.data_fingerprint(pairs) != recipe.data_fingerprint(changed)
    assert recipe.data_fingerprint(pairs) == recipe.data_fingerprint(dict(pairs))


def test_language_without_files_is_a_data_error(recipe):
    config = recipe.Multi30kConfig(src="en", tgt="cs")
    with pytest.raises(DataError, match="cs"):
        recipe.read_pairs(MULTI30K, config)
