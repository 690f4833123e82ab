"""The run skeleton: one data fingerprint, the results files, recording on rank 0 only."""

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value
from recipe_worker import ROWS, ToyConfig
from torchrun_launch import run_two_processes

from seqlstm.data import load, loading
from seqlstm.errors import CheckpointError, DataError
from seqlstm.experiment.recipe_args import config_from, parse_recipe_args
from seqlstm.experiment.run import (
    RecipeRun,
    RunRecorder,
    data_fingerprint,
    evaluate_on,
    run_recipe,
    split_rows,
    trainer_config,
)
from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier
from seqlstm.training import TrainerConfig

WORKER = Path(__file__).with_name("recipe_worker.py")
SPLITS = {"train": None, "validation": None, "test": None}
RESULT_KEYS = {
    "task", "dataset", "metrics", "config", "seed", "wall_time_s", "device", "data_sha256",
    "command",
}  # fmt: skip

# ----------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_the_sha256_of_canonical_json():
    canonical = '{"a":[null,true,3],"b":["ü",1.5]}'
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert data_fingerprint({"b": ("ü", 1.5), "a": [None, True, np.int64(3)]}) == expected
    assert data_fingerprint({"a": [None, True, 3], "b": ["ü", 1.5]}) == expected
    assert data_fingerprint({"a": [None, True, 3], "b": ["u", 1.5]}) != expected
    with pytest.raises(TypeError, match="cannot read a object"):
        data_fingerprint({"a": object()})


def test_fingerprint_of_arrays_is_of_their_values_dtype_and_shape():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    digest = hashlib.sha256(array.tobytes()).hexdigest()
    canonical = f'{{"x":{{"dtype":"float32","sha256":"{digest}","shape":[2,3]}}}}'  # keys sorted
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert data_fingerprint({"x": array}) == expected
    assert data_fingerprint({"x": torch.from_numpy(array)}) == expected
    assert data_fingerprint({"x": array.astype(">f4")}) == expected  # byte order is canonical
    assert data_fingerprint({"x": array.T.copy().T}) == expected  # so is the memory layout
    assert data_fingerprint({"x": array.reshape(3, 2)}) != expected
    assert data_fingerprint({"x": array.astype(np.float64)}) != expected


LINES = {
    "train": [" = Valkyria = \n", " \n", " The song was released in 1996 . \n"],
    "validation": [" The band crossed the river . \n"],
    "test": [" = Ships = \n", " The ship was built ü . \n"],
}
FILES = {"train": "wiki.train.raw", "validation": "wiki.valid.raw", "test": "wiki.test.raw"}
TAGGED = {
    "train": [(["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"]), (["Peter"], ["B-PER"])],
    "validation": [(["BRUSSELS"], ["B-LOC"])],
    "test": [(["Smith", "said"], ["B-PER", "O"])],
}
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def fake_hub(monkeypatch, data: DatasetDict) -> list[str]:
    requested: list[str] = []

    def load_dataset(source, config=None):
        requested.append(source)
        return data

    monkeypatch.setattr(loading.datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: True)  # no real probe
    return requested


def test_fingerprint_is_the_same_for_the_hub_and_local_files(tmp_path, monkeypatch):
    text_dir, conll_dir = tmp_path / "wikitext", tmp_path / "conll"
    text_dir.mkdir()
    conll_dir.mkdir()
    for split, lines in LINES.items():
        (text_dir / FILES[split]).write_text("".join(lines), encoding="utf-8")
    for split, sentences in TAGGED.items():
        blocks = ["\n".join(map(" ".join, zip(*sentence, strict=True))) for sentence in sentences]
        (conll_dir / f"{split}.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    text_hub = DatasetDict({s: Dataset.from_dict({"text": lines}) for s, lines in LINES.items()})
    features = Features(
        {"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=NER_LABELS))}
    )
    tagging_hub = DatasetDict(
        {
            split: Dataset.from_dict(
                {
                    "tokens": [words for words, _ in sentences],
                    "ner_tags": [[NER_LABELS.index(t) for t in tags] for _, tags in sentences],
                },
                features=features,
            )
            for split, sentences in TAGGED.items()
        }
    )

    def fingerprint(source, task):
        return data_fingerprint(split_rows(load(source, task), source, SPLITS))

    requested = fake_hub(monkeypatch, text_hub)
    assert fingerprint("someone/wikitext", "text") == fingerprint(text_dir, "text")
    fake_hub(monkeypatch, tagging_hub)
    assert fingerprint("someone/conll", "tagging") == fingerprint(conll_dir, "tagging")
    assert requested == ["someone/wikitext"]
    # and it is a fingerprint of the content: one changed word changes it
    before = fingerprint(text_dir, "text")
    (text_dir / FILES["test"]).write_text(" = Ships = \n The ship was built u . \n", "utf-8")
    assert fingerprint(text_dir, "text") != before


def test_split_rows_cuts_each_split_and_names_the_missing_ones():
    dataset = DatasetDict({s: Dataset.from_dict({"text": lines}) for s, lines in LINES.items()})
    rows = split_rows(dataset, "src", {"test": 1, "train": None})
    assert list(rows) == ["test", "train"]  # in the order asked for
    assert rows == {
        "test": [{"text": LINES["test"][0]}],
        "train": [{"text": t} for t in LINES["train"]],
    }
    del dataset["test"]
    with pytest.raises(DataError, match=r"src: no test split \(it has train, validation\)"):
        split_rows(dataset, "src", SPLITS)


# ----------------------------------------------------------------------------- results files


@dataclass
class RecipeConfig:
    hidden_size: int = 256
    lr: float = 1e-3
    layers: tuple[int, ...] = (2, 3)
    vectors: Path | None = None


def test_run_recorder_writes_results_and_log(tmp_path, capsys):
    config = RecipeConfig(hidden_size=32, vectors=Path("v.txt"))
    root_handlers = list(logging.getLogger().handlers)
    recorder = RunRecorder(tmp_path / "run", "ner", "conll2003", config, 3, torch.device("cpu"))
    logging.getLogger("seqlstm.test").info("epoch 1 done")
    metrics = {
        "valid": {"f1": 91.23456, "loss": torch.tensor(0.5)},
        "test": {"f1": np.float32(88.0), "n_sentences": 3453},
    }
    signatures = {"bleu": "nrefs:1|case:mixed"}
    results = recorder.finish(metrics, "abc123", {"signatures": signatures})

    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written == results
    assert list(written) == [*RESULT_KEYS_ORDER, "signatures"]
    assert written["metrics"] == {
        "valid": {"f1": 91.23456, "loss": 0.5},
        "test": {"f1": 88.0, "n_sentences": 3453},
    }
    assert isinstance(written["metrics"]["test"]["n_sentences"], int)
    assert written["config"] == json.loads(json.dumps(asdict(config), default=str))
    assert (written["task"], written["dataset"], written["seed"]) == ("ner", "conll2003", 3)
    assert written["device"] == "cpu" and written["data_sha256"] == "abc123"
    assert written["signatures"] == signatures and written["wall_time_s"] >= 0

    markdown = (tmp_path / "run" / "results.md").read_text()
    assert markdown.startswith("# ner on conll2003\n")
    assert "| metric | valid | test |" in markdown
    assert "| f1 | 91.2346 | 88.0000 |" in markdown
    assert "| loss | 0.5000 | - |" in markdown
    assert "| n_sentences | - | 3453 |" in markdown
    assert "| hidden_size | 32 |" in markdown and "| lr | 0.001 |" in markdown
    assert "| layers | [2, 3] |" in markdown and '| vectors | "v.txt" |' in markdown
    # a table of its own for the extra field; "|" escaped, as a table cell needs it
    assert "| signatures | |\n| --- | --- |\n| bleu | `nrefs:1\\|case:mixed` |" in markdown
    assert markdown in capsys.readouterr().out

    log = (tmp_path / "run" / "train.log").read_text()
    assert "epoch 1 done" in log and "results written to" in log
    assert logging.getLogger().handlers == root_handlers  # detached after finish

    again = RunRecorder(tmp_path / "again", "ner", "x", config, 3, "cpu")
    with pytest.raises(ValueError, match=r"\['seed'\] are standard fields"):
        again.finish(metrics, "abc123", {"seed": 4})


RESULT_KEYS_ORDER = ["task", "dataset", "metrics", "config", "seed", "wall_time_s", "device"]
RESULT_KEYS_ORDER += ["data_sha256", "command"]


def test_trainer_config_adds_what_every_recipe_trains_with(tmp_path):
    @dataclass
    class TrainingRecipeConfig:
        lr: float = 1e-3
        hidden_size: int = 4

    presets = {"full": {}, "cpu": {"lr": 0.01}}
    argv = ["--preset", "cpu", "--out", str(tmp_path), "--seed", "7"]
    args = parse_recipe_args(TrainingRecipeConfig, presets, argv, default_out="runs/test")
    config = trainer_config(args, torch.device("cpu"), metric="f1")
    expected = TrainerConfig(
        output_dir=str(tmp_path / "trainer"),
        lr=0.01,  # from the preset
        seed=7,
        device="cpu",
        metric="f1",
        load_best_at_end=True,
        keep_last=1,
        progress_bar=False,
    )
    assert config == expected

    @dataclass
    class WithSeed:
        seed: int = 1

    # a recipe whose config has a field that trainer_config sets itself is refused
    with_seed = parse_recipe_args(WithSeed, {}, ["--out", str(tmp_path)])
    with pytest.raises(TypeError, match=r"\['seed'\] are options of WithSeed"):
        trainer_config(with_seed, torch.device("cpu"))


def test_evaluate_on_calls_the_models_own_evaluate():
    class Model:
        def evaluate(self, rows, **options):
            return {"rows": len(rows), **options}

    assert evaluate_on([1, 2, 3], beam_size=1)(Model()) == {"rows": 3, "beam_size": 1}


# ----------------------------------------------------------------------------- the run


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_run_in_one_process_records_trains_saves_and_writes_results(tmp_path, threads):
    argv = ["--out", str(tmp_path / "run"), "--device", "cpu", "--seed", "5"]
    run = RecipeRun.start(ToyConfig, {"full": {"threads": 2}}, argv, None, "runs/toy")
    assert (run.config, run.seed, run.device, run.is_main) == (
        ToyConfig(threads=2),
        5,
        torch.device("cpu"),
        True,
    )
    assert run.source("hub/id") == "hub/id" and not (tmp_path / "run").exists()
    run.begin("toy classification", "rows", ROWS)
    assert torch.get_num_threads() == 2
    drawn = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(3))  # begin seeded the generators with --seed

    model = LSTMClassifier(config_from(ClassifierConfig, run.config, num_classes=2, input_size=1))
    examples = model.encode(ROWS)
    batches = [model.collate(examples[i : i + 4]) for i in range(0, 16, 4)]

    class Batches:
        def __len__(self):
            return len(batches)

        def epoch(self, epoch):
            return iter(batches)

    def evaluate(m):
        return {**m.evaluate(ROWS), "examples": len(ROWS)}

    with pytest.raises(TypeError, match="Linear does not follow"):
        run.fit(torch.nn.Linear(1, 1), Batches(), evaluate)
    best = run.fit(model, Batches(), evaluate, metric="accuracy", metric_mode="max")
    assert best["examples"] == 16 and isinstance(best["examples"], int)  # a count stays one
    run.write_text("notes.txt", "a\n")
    results = run.finish({"valid": best})

    out = tmp_path / "run"
    assert set(results) == RESULT_KEYS
    assert json.loads((out / "results.json").read_text()) == results
    assert results["data_sha256"] == data_fingerprint(ROWS)
    assert results["metrics"]["valid"] == best and results["seed"] == 5
    assert (out / "notes.txt").read_text() == "a\n"
    assert "LSTMClassifier with" in (out / "train.log").read_text()
    # the saved model is the one whose metrics are reported
    saved = LSTMClassifier.from_pretrained(out / "model")
    assert saved.evaluate(ROWS)["accuracy"] == best["accuracy"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_the_machine_lacks_fails_at_start(tmp_path):
    with pytest.raises(ValueError, match="CUDA"):
        RecipeRun.start(ToyConfig, {}, ["--device", "cuda"], None, str(tmp_path))


def test_under_torchrun_rank_0_records_and_each_rank_trains_on_its_own_rows(tmp_path):
    run_two_processes(WORKER, tmp_path, timeout=180)
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))

    assert first["recorded"] and not second["recorded"]
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written == first["results"]
    # every rank returns the same results, though only rank 0 writes them
    for key in RESULT_KEYS - {"wall_time_s"}:
        assert second["results"][key] == written[key], key
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    # the batches were built after begin joined the process group: each rank read its half
    assert sorted(first["seen"] + second["seen"]) == list(range(16))
    assert len(first["seen"]) == len(second["seen"]) == 8
    assert first["group_left"] and second["group_left"]


@pytest.mark.parametrize(
    "error",
    [
        DataError("train.txt, line 3: expected 2 columns\n  got 3"),
        CheckpointError("runs/x/model: config.json is missing"),
    ],
)
def test_run_recipe_turns_bad_input_into_one_line_and_status_2(error, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["recipes/some_recipe.py", "--preset", "smoke"])
    seen = []

    def main(argv):
        seen.append(argv)
        raise error

    assert run_recipe(main) == 2
    assert seen == [None]  # main reads sys.argv itself, as argparse does
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "some_recipe.py: error: " + "; ".join(s.strip() for s in str(error).splitlines())
    ]


def test_run_recipe_returns_0_and_keeps_bugs_loud():
    assert run_recipe(lambda argv: {"metrics": {}}, ["--seed", "1"]) == 0
    with pytest.raises(ZeroDivisionError):
        run_recipe(lambda argv: 1 / 0)
