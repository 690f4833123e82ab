"""from_pretrained("owner/name") and push_to_hub (seqlstm.model_hub), offline.

The hub is a folder (tests/fake_hub.py) standing in for huggingface_hub.snapshot_download and
HfApi.create_repo/create_branch/upload_folder; the offline tests run the real
snapshot_download against an empty cache.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch
from fake_hub import FakeHub
from huggingface_hub.utils import filter_repo_objects
from locations import FIXTURES

from seqlstm import BiLSTMCRFTagger, LSTMClassifier, LSTMLanguageModel, Seq2SeqLSTM, model_hub
from seqlstm.data import load, loading
from seqlstm.errors import CheckpointError, DataError
from seqlstm.hub_connection import OFFLINE_VARIABLES, hub_offline_mode, offline_by_setting

MODELS = FIXTURES / "models_0_1"
EXPECTED = json.loads((MODELS / "expected.json").read_text())
TAGGER_FILES = [
    "config.json",
    "model.safetensors",
    "tokenizer/spm.model",
    "tokenizer/tokenizer.json",
    "vocab/chars.json",
    "vocab/labels.json",
]


def predictions(model) -> object:
    """What each kind of model says about the inputs of expected.json, deterministically."""
    if isinstance(model, BiLSTMCRFTagger):
        tagged = model.tag([" ".join(s) for s in EXPECTED["tagger_sentences"]])
        return [(t.tags, t.confidences) for t in tagged]
    if isinstance(model, Seq2SeqLSTM):
        return model.translate(EXPECTED["translator_sources"], beam_size=3)
    if isinstance(model, LSTMLanguageModel):
        return model.generate(EXPECTED["lm_prompt"], max_new_tokens=40, temperature=0.0)
    with torch.no_grad():
        return model.logits(torch.tensor(EXPECTED["classifier_inputs"])).tolist()


@pytest.fixture
def hub(tmp_path, monkeypatch) -> FakeHub:
    return FakeHub(tmp_path).install(monkeypatch)


@pytest.fixture
def offline_off(monkeypatch):
    """No offline setting from the machine that runs the tests."""
    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.mark.parametrize(
    ("model_class", "directory"),
    [
        (BiLSTMCRFTagger, "tagger"),
        (Seq2SeqLSTM, "translator"),
        (LSTMLanguageModel, "char_lm"),
        (LSTMClassifier, "classifier"),
    ],
)
def test_push_then_from_pretrained_predicts_identically(hub, model_class, directory):
    model = model_class.from_pretrained(MODELS / directory)
    url = model.push_to_hub("owner/model", commit_message="first")
    assert url == "https://huggingface.co/owner/model/commit/1"
    expected_files = sorted(
        [
            "README.md",
            *(
                p.relative_to(MODELS / directory).as_posix()
                for p in (MODELS / directory).rglob("*")
                if p.is_file()
            ),
        ]
    )
    assert hub.files("owner/model") == expected_files
    assert hub.commits[0]["commit_message"] == "first"
    assert hub.created == [{"repo_id": "owner/model", "private": False, "exist_ok": True}]

    loaded = model_class.from_pretrained("owner/model")
    assert predictions(loaded) == predictions(model)
    assert len(hub.downloads) == 1 and hub.downloads[0]["local_files_only"] is False
    saved = dict(model.state_dict())
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name


def test_push_a_directory_sends_only_the_model_files_and_a_generated_card(hub, tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(MODELS / "tagger", directory)
    # what else may lie in a directory: never uploaded
    for junk in ["pytorch_model.bin", "notes.txt", "vocab/extra.pkl", "tokenizer/x.pt"]:
        (directory / junk).write_bytes(b"\x80\x04junk")
    (directory / "README.md").write_text("an old card\n")
    model_hub.push_to_hub(directory, "owner/tagger", private=True)
    assert hub.files("owner/tagger") == sorted(["README.md", *TAGGER_FILES])
    assert hub.created[0]["private"] is True
    card = (hub.repo("owner/tagger") / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: seqlstm" in card
    assert 'BiLSTMCRFTagger.from_pretrained("owner/tagger")' in card


def test_a_second_push_deletes_model_files_the_first_had_and_this_one_lacks(hub, tmp_path):
    first = tmp_path / "first"
    shutil.copytree(MODELS / "tagger", first)
    (first / "vocab" / "words.json").write_text('{"tokens": []}\n')
    model_hub.push_to_hub(first, "owner/tagger")
    assert "vocab/words.json" in hub.files("owner/tagger")
    hub.put("owner/tagger", _folder(tmp_path / "other", {"results/keep.txt": "not ours"}))
    model_hub.push_to_hub(MODELS / "tagger", "owner/tagger")
    assert hub.files("owner/tagger") == sorted(["README.md", "results/keep.txt", *TAGGER_FILES])


def _folder(path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


PICKLES = [
    "pytorch_model.bin",
    "training_args.bin",
    "optimizer.pt",
    "checkpoint.pth",
    "trainer/last.ckpt",
    "tokenizer/evil.pkl",
    "tokenizer/tokenizer.pickle",
    "tokenizer/sub/model.bin",
    "vocab/labels.pkl",
    "vocab/x.npy",
    "model.joblib",
]


def test_downloads_are_the_model_files_and_never_a_pickle(hub, tmp_path):
    hub.put("owner/tagger", MODELS / "tagger")
    hub.put("owner/tagger", _folder(tmp_path / "extra", {name: "x" for name in PICKLES}))
    (hub.repo("owner/tagger") / "README.md").write_text("card\n")
    (hub.repo("owner/tagger") / ".gitattributes").write_text("*.bin filter=lfs\n")

    model = BiLSTMCRFTagger.from_pretrained("owner/tagger")
    assert predictions(model) == predictions(BiLSTMCRFTagger.from_pretrained(MODELS / "tagger"))
    snapshot = Path(huggingface_hub.snapshot_download("owner/tagger", **_patterns()))
    got = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    assert got == sorted(["README.md", *TAGGER_FILES])
    # the patterns themselves, through huggingface_hub's own filter
    kept = list(filter_repo_objects([*PICKLES, *TAGGER_FILES], **_patterns()))
    assert kept == TAGGER_FILES
    download = hub.downloads[0]
    assert download["allow_patterns"] == list(model_hub.MODEL_FILE_PATTERNS)
    assert download["ignore_patterns"] == list(model_hub.PICKLE_PATTERNS)


def _patterns() -> dict:
    return {
        "allow_patterns": list(model_hub.MODEL_FILE_PATTERNS),
        "ignore_patterns": list(model_hub.PICKLE_PATTERNS),
    }


def test_the_offline_setting_with_an_empty_cache_fails_at_once_in_one_line(
    tmp_path, monkeypatch, offline_off
):
    def probe(endpoint, timeout=None):
        raise AssertionError("HF_HUB_OFFLINE is set: no request")

    monkeypatch.setattr(model_hub, "hub_reachable", probe)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(CheckpointError) as raised:  # the real snapshot_download
        BiLSTMCRFTagger.from_pretrained("seqlstm-tests/not-cached", cache_dir=tmp_path / "c")
    assert time.monotonic() - started < 3
    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        "seqlstm-tests/not-cached: the Hugging Face hub is off (HF_HUB_OFFLINE is set) and the "
        "model is not in the local Hugging Face cache; pass a local model directory instead"
    )


def test_a_hub_that_does_not_answer_fails_at_once_in_one_line(tmp_path, monkeypatch, offline_off):
    closed = socket.socket()  # a port nobody listens on: the real probe gets no answer
    closed.bind(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    try:
        started = time.monotonic()
        with pytest.raises(CheckpointError) as raised:
            Seq2SeqLSTM.from_pretrained(
                "seqlstm-tests/not-cached", revision="v2", cache_dir=tmp_path / "c"
            )
        assert time.monotonic() - started < 3
    finally:
        closed.close()
    assert str(raised.value) == (
        f"seqlstm-tests/not-cached: the Hugging Face hub ({endpoint}) is unreachable and the "
        "model at revision 'v2' is not in the local Hugging Face cache; pass a local model "
        "directory instead"
    )


def test_an_unreachable_hub_loads_the_cached_copy(hub, monkeypatch):
    hub.put("owner/lm", MODELS / "char_lm")
    online = LSTMLanguageModel.from_pretrained("owner/lm")
    monkeypatch.setattr(model_hub, "hub_reachable", lambda endpoint, timeout=None: False)
    shutil.rmtree(hub.root)  # the hub is gone; the cache is not
    offline = LSTMLanguageModel.from_pretrained("owner/lm")
    assert [d["local_files_only"] for d in hub.downloads] == [False, True]
    assert predictions(offline) == predictions(online) == EXPECTED["lm_generate_greedy"]


def test_revision_cache_dir_and_token_reach_the_download(hub, tmp_path):
    tagger = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger")
    tagger.push_to_hub("owner/tagger")
    lm = LSTMLanguageModel.from_pretrained(MODELS / "char_lm")
    lm.push_to_hub("owner/tagger", revision="lm-branch")  # another model on a branch
    assert hub.commits[1]["revision"] == "lm-branch"
    loaded = LSTMLanguageModel.from_pretrained(
        "owner/tagger", revision="lm-branch", cache_dir=tmp_path / "cache", token="hf_secret"
    )
    assert predictions(loaded) == EXPECTED["lm_generate_greedy"]
    download = hub.downloads[-1]
    assert (download["revision"], download["cache_dir"], download["token"]) == (
        "lm-branch",
        tmp_path / "cache",
        "hf_secret",
    )
    with pytest.raises(CheckpointError, match="holds a BiLSTMCRFTagger, not a LSTMLanguageModel"):
        LSTMLanguageModel.from_pretrained("owner/tagger")  # main holds the tagger
    with pytest.raises(ValueError, match="revision='v1' is for hub ids"):
        BiLSTMCRFTagger.from_pretrained(MODELS / "tagger", revision="v1")


def test_hub_errors_are_one_line_checkpoint_errors(hub):
    with pytest.raises(CheckpointError) as raised:
        BiLSTMCRFTagger.from_pretrained("owner/missing")
    assert str(raised.value) == (
        "could not download the model 'owner/missing' from the Hugging Face hub, and there is "
        "no local directory 'owner/missing': 404 Client Error.; Repository Not Found for url: "
        "owner/missing"
    )


def test_a_name_that_is_neither_a_directory_nor_a_repo_id(monkeypatch, offline_off):
    monkeypatch.setattr(model_hub, "hub_reachable", lambda endpoint, timeout=None: True)
    # the real snapshot_download checks the id before any request
    with pytest.raises(CheckpointError, match=r"^my model: no such model directory, and not a"):
        BiLSTMCRFTagger.from_pretrained("my model")


# Sources that do not exist: a hub id for both loaders, or a missing path for both.
MISSING = [
    ("owner/not-here", True),
    ("name-only", True),
    ("./owner/not-here", False),
    ("../owner", False),
    ("owner/name/deeper", False),
    ("~/seqlstm-no-such-model", False),
    ("/no/such/model", False),
    ("owner\\name", False),
]


@pytest.mark.parametrize(("source", "is_hub_id"), MISSING)
def test_missing_sources_are_hub_ids_exactly_when_data_load_says_so(
    hub, monkeypatch, tmp_path, source, is_hub_id
):
    monkeypatch.chdir(tmp_path)
    datasets_asked: list[str] = []

    def load_dataset(name, config=None):
        datasets_asked.append(name)
        raise FileNotFoundError(f"{name} is not on the hub")

    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: True)
    monkeypatch.setattr(loading.datasets, "load_dataset", load_dataset)
    with pytest.raises(DataError):
        load(source, "tagging")
    with pytest.raises(CheckpointError) as raised:
        BiLSTMCRFTagger.from_pretrained(source)
    models_asked = [d["repo_id"] for d in hub.downloads]
    assert (datasets_asked == [source]) is is_hub_id
    assert (models_asked == [source]) is is_hub_id
    if not is_hub_id:
        assert str(raised.value).endswith("no such model directory")


def test_an_existing_local_directory_wins_over_the_hub_id_it_spells(hub, monkeypatch, tmp_path):
    hub.put("owner/name", MODELS / "char_lm")  # on the hub: a language model
    monkeypatch.chdir(tmp_path)
    shutil.copytree(MODELS / "tagger", tmp_path / "owner" / "name")  # here: a tagger
    tagger = BiLSTMCRFTagger.from_pretrained("owner/name")
    assert hub.downloads == []
    assert predictions(tagger) == predictions(BiLSTMCRFTagger.from_pretrained(MODELS / "tagger"))


def test_push_fails_at_once_offline_and_sends_nothing(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as raised:
        model_hub.push_to_hub(MODELS / "tagger", "owner/tagger")
    assert str(raised.value) == (
        f"cannot push {MODELS / 'tagger'} to owner/tagger: the Hugging Face hub is off "
        "(HF_HUB_OFFLINE is set)"
    )
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(model_hub, "hub_reachable", lambda endpoint, timeout=None: False)
    with pytest.raises(CheckpointError, match=r"\) is unreachable$"):
        model_hub.push_to_hub(MODELS / "tagger", "owner/tagger")
    assert hub.created == [] and hub.commits == []


def test_push_refuses_what_is_not_a_model_directory(hub, tmp_path):
    with pytest.raises(CheckpointError, match="not a seqlstm model directory"):
        model_hub.push_to_hub(tmp_path, "owner/x")
    shutil.copytree(MODELS / "tagger", tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="incomplete: missing model.safetensors"):
        model_hub.push_to_hub(tmp_path / "model", "owner/x")
    assert hub.created == []


def test_offline_settings_are_read_from_the_environment_and_the_libraries(monkeypatch, offline_off):
    assert not offline_by_setting()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "yes")
    assert offline_by_setting()
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    with hub_offline_mode(True):
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True
        assert offline_by_setting()
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False
    assert not offline_by_setting()


def test_the_hub_modules_import_neither_torch_nor_datasets():
    code = (
        "import sys, seqlstm.hub_connection, seqlstm.model_hub, seqlstm.model_card; "
        "print('torch' in sys.modules, 'datasets' in sys.modules); "
        "import seqlstm.pretrained; print('datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
