"""`seqlstm push`, and `--model OWNER/NAME` on the commands that load a model, offline.

The hub is a folder (tests/fake_hub.py): `seqlstm push` uploads into it and `--model
owner/name` downloads from it, through the substituted huggingface_hub calls.
"""

import io
import json
import shutil
import sys

import pytest
from fake_hub import FakeHub
from locations import FIXTURES

from seqlstm import cli

MODELS = FIXTURES / "models_0_1"
EXPECTED = json.loads((MODELS / "expected.json").read_text())
RESULTS = {
    "task": "named-entity recognition",
    "dataset": "eriktks/conll2003",
    "metrics": {"test": {"precision": 86.326, "recall": 86.7387, "f1": 86.5318, "f1_PER": 90.4}},
    "config": {"max_epochs": 40},
    "seed": 1,
    "wall_time_s": 60.0,
    "device": "cpu",
    "data_sha256": "ab" * 32,
    "command": "seqlstm train ner --config ner.yaml",
}


@pytest.fixture
def hub(tmp_path, monkeypatch) -> FakeHub:
    return FakeHub(tmp_path).install(monkeypatch)


@pytest.fixture
def run_dir(tmp_path):
    """A recipe run's OUT: the fixture tagger as OUT/model, and OUT/results.json."""
    out = tmp_path / "runs" / "ner"
    shutil.copytree(MODELS / "tagger", out / "model")
    (out / "results.json").write_text(json.dumps(RESULTS))
    (out / "trainer").mkdir()
    (out / "trainer" / "last.pt").write_bytes(b"\x80\x04 a checkpoint, not a model file")
    return out


def run(argv, capsys, monkeypatch=None, stdin: str | None = None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_push_uploads_the_run_model_with_a_card_from_its_results(hub, run_dir, capsys):
    argv = ["push", "--model", str(run_dir / "model"), "--repo-id", "owner/ner", "--private"]
    status, out, err = run([*argv, "--revision", "v1", "--commit-message", "NER, seed 1"], capsys)
    assert (status, err) == (0, "")
    assert (
        out
        == f"pushed {run_dir / 'model'} to owner/ner: https://huggingface.co/owner/ner/commit/1\n"
    )
    assert hub.created == [{"repo_id": "owner/ner", "private": True, "exist_ok": True}]
    assert hub.commits[0]["revision"] == "v1"
    assert hub.commits[0]["commit_message"] == "NER, seed 1"
    assert hub.files("owner/ner", "v1") == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer/spm.model",
        "tokenizer/tokenizer.json",
        "vocab/chars.json",
        "vocab/labels.json",
    ]
    card = (hub.repo("owner/ner", "v1") / "README.md").read_text()
    assert "| f1 | 86.53 |" in card and "| test | PER | - | - | 90.40 |" in card
    assert "```bash\nseqlstm train ner --config ner.yaml\n```" in card
    assert "seqlstm tag --model owner/ner" in card


def test_tag_translate_and_generate_take_a_hub_id(hub, capsys, monkeypatch):
    for repo, directory in [("owner/ner", "tagger"), ("owner/mt", "translator")]:
        hub.put(repo, MODELS / directory)
    hub.put("owner/lm", MODELS / "char_lm")
    text = "\n".join(" ".join(s) for s in EXPECTED["tagger_sentences"]) + "\n"
    for hub_id, local, extra, stdin in [
        ("owner/ner", "tagger", ["tag"], text),
        ("owner/mt", "translator", ["translate", "--beam", "3"], "A man is riding a bike.\n"),
        ("owner/lm", "char_lm", ["generate", "--prompt", "ROMEO:", "--temperature", "0"], None),
    ]:
        command, *options = extra
        from_hub = run([command, "--model", hub_id, *options], capsys, monkeypatch, stdin)
        from_disk = run(
            [command, "--model", str(MODELS / local), *options], capsys, monkeypatch, stdin
        )
        assert from_hub[0] == 0 and from_hub[2] == ""
        assert from_hub == from_disk
    assert [d["repo_id"] for d in hub.downloads] == ["owner/ner", "owner/mt", "owner/lm"]
    tags = run(["tag", "--model", "owner/ner"], capsys, monkeypatch, text)[1]
    first = [line.split()[-1] for line in tags.split("\n\n")[0].splitlines()]
    assert first == EXPECTED["tagger_predict_alone"][0]


def test_evaluate_takes_a_hub_id(hub, capsys, tmp_path):
    hub.put("owner/ner", MODELS / "tagger")
    data = tmp_path / "test.txt"
    rows = zip(EXPECTED["tagger_sentences"][0], EXPECTED["tagger_predict_alone"][0], strict=True)
    data.write_text("".join(f"{word} {tag}\n" for word, tag in rows))
    status, out, err = run(
        ["evaluate", "--task", "ner", "--model", "owner/ner", "--data", str(data)], capsys
    )
    assert (status, err) == (0, "")
    assert "accuracy: 100.00%" in out  # the gold tags are the model's own


def test_a_path_that_looks_local_is_never_a_hub_request(hub, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    hub.put("owner/ner", MODELS / "tagger")  # on the hub, but ./ says: here
    status, out, err = run(["tag", "--model", "./owner/ner"], capsys, monkeypatch, "EU\n")
    assert status == 2 and out == ""
    assert err == "seqlstm tag: error: owner/ner: no such model directory\n"
    assert hub.downloads == []


def test_serve_takes_a_hub_id(hub, capsys, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    hub.put("owner/ner", MODELS / "tagger")
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(options))
    status, _, err = run(["serve", "--model", "owner/ner", "--port", "0"], capsys)
    assert status == 0 and len(served) == 1
    snapshot = hub.cache / "owner--ner" / "snapshots" / "main"
    assert err.splitlines()[0] == f"seqlstm serve: POST /tag: {snapshot}"


def test_push_errors_are_one_line_with_status_2(hub, run_dir, capsys, monkeypatch, tmp_path):
    status, out, err = run(["push", "--model", str(tmp_path), "--repo-id", "owner/x"], capsys)
    assert status == 2 and out == ""
    assert (
        err == f"seqlstm push: error: {tmp_path}: not a seqlstm model directory (no config.json)\n"
    )
    status, out, err = run(["push", "--model", str(run_dir), "--repo-id", "owner/x"], capsys)
    assert err == (
        f"seqlstm push: error: {run_dir} is a run directory, not a model directory: push "
        f"{run_dir / 'model'}\n"
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["push", "--model", str(MODELS / "tagger"), "--repo-id", "owner/x"]
    status, out, err = run(argv, capsys)
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith("seqlstm push: error: cannot push ") and "HF_HUB_OFFLINE is set" in err
    assert hub.created == []
