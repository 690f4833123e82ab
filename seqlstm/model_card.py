"""The model card (README.md) that ``push_to_hub`` uploads with a model directory.

A card is written from what the directory and its run recorded, never from guesses:

- the model directory's config.json (seqlstm.pretrained): the model class, its config, the
  seqlstm version, and the label vocabulary (a tagger's entity types); model.safetensors's
  header gives the number of weights and their bytes;
- when the directory is a recipe run's OUT/model, the run's OUT/results.json beside it
  (seqlstm.experiment.run): the task, the data set and the fingerprint of the data read, the
  metrics per split (a tagger's conlleval scores per entity type, a translator's sacreBLEU
  signatures, a language model's perplexity and bits per character), the training config, seed
  and device, and the command that trained it when the run recorded one.

Without results.json the card says that no evaluation was recorded; it invents no numbers.
The YAML front matter (``library_name: seqlstm``, the pipeline tag, tags, data sets,
metrics, languages) is what the hub indexes. This module reads files only: no torch, no
network.
"""

from __future__ import annotations

import json
import shlex
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlstm.errors import CheckpointError
from seqlstm.hub_connection import looks_local

RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class CardTask:
    """What a card says about one model class: the hub's names for its task and how to use it.

    pipeline_tag: the hub's task (None where no hub task fits); card_metrics: the metrics that
    go into the front matter when the run measured them, main one first; python: lines that
    use the loaded model ``model``; cli: a ``seqlstm`` command line with ``{repo}`` for the id.
    """

    description: str
    pipeline_tag: str | None
    tags: tuple[str, ...]
    card_metrics: tuple[str, ...]
    python: str
    cli: str | None


TASKS: dict[str, CardTask] = {
    "BiLSTMCRFTagger": CardTask(
        "BiLSTM-CRF sequence tagger",
        "token-classification",
        ("bilstm-crf", "ner"),
        ("f1", "precision", "recall", "accuracy"),
        'model.tag(["Peter Blackburn visited Brussels on Monday."])  # tags, entities, offsets',
        'echo "Peter Blackburn visited Brussels on Monday." | seqlstm tag --model {repo}',
    ),
    "Seq2SeqLSTM": CardTask(
        "sequence-to-sequence LSTM translator with attention",
        "translation",
        ("seq2seq", "attention"),
        ("bleu", "chrf"),
        'model.translate(["A man is riding a bicycle."], beam_size=5)',
        "seqlstm translate --model {repo} --input sentences.txt",
    ),
    "LSTMLanguageModel": CardTask(
        "LSTM language model",
        "text-generation",
        ("language-model",),
        ("perplexity", "bits_per_character"),
        'model.generate("ROMEO:", max_new_tokens=200, temperature=0.8)',
        'seqlstm generate --model {repo} --prompt "ROMEO:"',
    ),
    "LSTMClassifier": CardTask(
        "LSTM sequence classifier",
        None,
        ("classification",),
        ("accuracy",),
        "model.predict(inputs)  # inputs: FloatTensor[B, T, F] or LongTensor[B, T] of token ids",
        None,
    ),
    "LSTMForecaster": CardTask(
        "LSTM time-series forecaster",
        "time-series-forecasting",
        ("forecasting",),
        ("mae", "rmse"),
        'model.predict([{"window": window}])  # window: [W, F] numbers -> forecasts [1, H, K]',
        None,
    ),
}

# the order of the results table: main metrics first, the others after in their own order
_METRIC_ORDER = ("f1", "precision", "recall", "accuracy", "bleu", "chrf", "bleu_lowercase")


def read_model_header(model_dir: Path) -> dict[str, Any]:
    """The JSON object of ``model_dir/config.json`` with at least model_class and config;
    CheckpointError naming the file otherwise."""
    path = model_dir / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{model_dir}: not a seqlstm model directory (no config.json)")
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not (
        isinstance(header, dict)
        and isinstance(header.get("model_class"), str)
        and isinstance(header.get("config"), dict)
    ):
        raise CheckpointError(
            f"{path}: expected a JSON object with model_class (a string) and config (an object)"
        )
    return header


def run_results(model_dir: Path) -> dict[str, Any] | None:
    """The results.json of the recipe run whose OUT/model ``model_dir`` is, or None.

    A run saves its model to OUT/model and its results to OUT/results.json, so the results
    are read only for a directory named ``model`` with a results.json beside it. A results
    file that is not a JSON object with ``metrics`` is a CheckpointError naming it: a card
    with half its numbers would mislead.
    """
    path = model_dir.parent / RESULTS_FILE
    if model_dir.name != "model" or not path.is_file():
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not (isinstance(results, dict) and isinstance(results.get("metrics"), dict)):
        raise CheckpointError(f"{path}: expected the JSON object of a run, with metrics")
    return results


def weights_size(path: Path) -> tuple[int, int]:
    """(number of values, bytes) of the tensors in a safetensors file, from its header.

    The format: 8 bytes (little-endian u64) giving the header's length, then a JSON object
    of ``name: {"dtype", "shape", "data_offsets": [start, end]}`` (and ``__metadata__``).
    A tied tensor is stored once, so it counts once.
    """
    try:
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(length))
    except (OSError, ValueError, struct.error) as error:
        raise CheckpointError(f"{path}: not a readable safetensors header ({error})") from None
    values = size = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dimension in tensor["shape"]:
            count *= dimension
        values += count
        start, end = tensor["data_offsets"]
        size += end - start
    return values, size


def model_card(model_dir: str | Path, repo_id: str) -> str:
    """The README.md for ``model_dir`` pushed as ``repo_id``: YAML front matter, then the task,
    model, training data, metrics with their signatures, config, training command and usage.

    Reads config.json, model.safetensors's header, vocab/labels.json (taggers) and, for a
    run's OUT/model, OUT/results.json (``run_results``). Raises CheckpointError for a
    directory that is not a model directory.
    """
    model_dir = Path(model_dir)
    header = read_model_header(model_dir)
    results = run_results(model_dir)
    model_class = header["model_class"]
    task = TASKS.get(model_class)
    values, size = weights_size(model_dir / "model.safetensors")
    languages = _languages(header, results)
    lines = [_front_matter(task, results, languages), f"# {repo_id}", ""]
    what = task.description if task is not None else "seqlstm model"
    purpose = f" for {results['task']}" if results and results.get("task") else ""
    version = header.get("seqlstm_version", "unknown")
    lines += [
        f"A {what} (`{model_class}`, seqlstm {version}){purpose}: {values:,} weights, "
        f"{size / 1e6:.1f} MB in model.safetensors. It loads without pickle: the weights are "
        "safetensors and everything else is JSON.",
        "",
    ]
    lines += _model_details(model_dir, header, languages)
    lines += _training_data(results)
    lines += _results_section(results)
    lines += _config_section(header, results)
    lines += _command_section(results)
    lines += _usage_section(model_class, task, repo_id)
    return "\n".join(lines).rstrip("\n") + "\n"


def _front_matter(
    task: CardTask | None, results: Mapping[str, Any] | None, languages: Sequence[str]
) -> str:
    from huggingface_hub import ModelCardData

    tags = ["seqlstm", "lstm", "pytorch", "safetensors", *(task.tags if task else ())]
    fields: dict[str, Any] = {"library_name": "seqlstm", "tags": tags}
    if task is not None and task.pipeline_tag is not None:
        fields["pipeline_tag"] = task.pipeline_tag
    dataset = _hub_dataset(results)
    if dataset is not None:
        fields["datasets"] = [dataset]
    measured = {name for split in _splits(results).values() for name in split}
    metrics = [name for name in (task.card_metrics if task else ()) if name in measured]
    if metrics:
        fields["metrics"] = metrics
    if languages:
        fields["language"] = list(languages)
    return "---\n" + ModelCardData(**fields).to_yaml() + "\n---\n"


def _splits(results: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    if results is None:
        return {}
    return {str(k): v for k, v in results["metrics"].items() if isinstance(v, dict)}


def _hub_dataset(results: Mapping[str, Any] | None) -> str | None:
    """The run's data set when it is a hub id (a local path names no hub data set)."""
    dataset = results.get("dataset") if results else None
    if not isinstance(dataset, str) or not dataset or looks_local(dataset):
        return None
    return dataset


def _languages(header: Mapping[str, Any], results: Mapping[str, Any] | None) -> list[str]:
    """A translator's source and target language codes, from its config or its run's."""
    config = header["config"]
    pair = [config.get("source_language"), config.get("target_language")]
    if not all(isinstance(code, str) for code in pair) and results is not None:
        run_config = results.get("config") or {}
        pair = [run_config.get("src"), run_config.get("tgt")]
    if header["model_class"] == "Seq2SeqLSTM" and all(isinstance(code, str) for code in pair):
        return list(dict.fromkeys(pair))
    return []


def _model_details(
    model_dir: Path, header: Mapping[str, Any], languages: Sequence[str]
) -> list[str]:
    lines: list[str] = []
    config = header["config"]
    if header["model_class"] == "BiLSTMCRFTagger":
        types = _entity_types(model_dir / "vocab" / "labels.json")
        scheme = config.get("scheme")
        if types:
            lines.append(f"Entity types: {', '.join(types)}.")
        if scheme:
            crf = config.get("crf_scheme")
            lines.append(
                f"Tags are written in {scheme}" + (f" (the CRF decodes {crf})." if crf else ".")
            )
        lines = [" ".join(lines)] if lines else []
    if languages:
        lines.append(f"Translates {' -> '.join(languages)}.")
    return [*lines, ""] if lines else []


def _entity_types(path: Path) -> list[str]:
    """The entity types of a label vocabulary (``B-PER`` -> ``PER``), sorted."""
    try:
        tokens = json.loads(path.read_text(encoding="utf-8")).get("tokens", [])
    except (OSError, ValueError, AttributeError):
        return []
    return sorted({t.split("-", 1)[1] for t in tokens if isinstance(t, str) and "-" in t})


def _training_data(results: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Training data", ""]
    if results is None:
        return [
            *lines,
            "Not recorded: this directory was not pushed from a recipe run's OUT/model, so "
            "no results.json described its data.",
            "",
        ]
    dataset = results.get("dataset")
    if _hub_dataset(results) is not None:
        lines.append(f"- data set: [`{dataset}`](https://huggingface.co/datasets/{dataset})")
    elif isinstance(dataset, str) and dataset:
        # the name only: a local path says nothing to a reader and may name a user's home
        lines.append(f"- data set: local files `{Path(dataset).name}`")
    if results.get("data_sha256"):
        lines.append(
            f"- data fingerprint: SHA-256 `{results['data_sha256']}` of the rows the run read "
            "(`seqlstm.experiment.run.data_fingerprint`: the same rows from the hub or from "
            "local files give the same value)"
        )
    for key, name in (("seed", "seed"), ("device", "device")):
        if key in results:
            lines.append(f"- {name}: {results[key]}")
    if isinstance(results.get("wall_time_s"), int | float):
        lines.append(f"- training time: {results['wall_time_s'] / 60:.1f} minutes")
    documents = results.get("documents")
    if isinstance(documents, dict):
        reading = ", ".join(
            f"{split}: {info.get('rule')} (documents: {info.get('documents')})"
            for split, info in documents.items()
            if isinstance(info, dict)
        )
        lines.append(f"- documents: {reading}")
    return [*lines, ""]


def _results_section(results: Mapping[str, Any] | None) -> list[str]:
    splits = _splits(results)
    if not splits:
        return ["## Results", "", "No evaluation was recorded with this model directory.", ""]
    lines = ["## Results", ""]
    names = list(dict.fromkeys(n for metrics in splits.values() for n in metrics))
    # a tagger's conlleval scores per entity type: precision_TYPE, recall_TYPE, f1_TYPE
    per_type = [n for n in names if n.startswith(("precision_", "recall_", "f1_"))]
    overall = sorted(
        (n for n in names if n not in per_type),
        key=lambda n: _METRIC_ORDER.index(n) if n in _METRIC_ORDER else len(_METRIC_ORDER),
    )
    lines += ["| metric | " + " | ".join(splits) + " |", "| --- |" + " --- |" * len(splits)]
    for name in overall:
        cells = [_number(metrics.get(name)) for metrics in splits.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    if per_type:
        types = sorted({n.partition("_")[2] for n in per_type})
        lines += [
            "Per entity type (conlleval: exact span and type match):",
            "",
            "| split | type | precision | recall | F1 |",
            "| --- | --- | --- | --- | --- |",
        ]
        for split, metrics in splits.items():
            for kind in types:
                cells = [_number(metrics.get(f"{m}_{kind}")) for m in ("precision", "recall", "f1")]
                lines.append(f"| {split} | {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    signatures = results.get("signatures") if results else None
    if isinstance(signatures, dict) and signatures:
        lines += [
            "sacreBLEU signatures (detokenized output against the references):",
            "",
            "| metric | signature |",
            "| --- | --- |",
        ]
        lines += [f"| {name} | `{signature}` |" for name, signature in signatures.items()]
        lines.append("")
    return lines


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4g}"
    return str(value)


def _config_section(header: Mapping[str, Any], results: Mapping[str, Any] | None) -> list[str]:
    lines = [
        "## Configuration",
        "",
        f"Model (`{header['model_class']}` config, as in config.json):",
        "",
        "```json",
        json.dumps(header["config"], indent=2, ensure_ascii=False),
        "```",
        "",
    ]
    if results is not None and isinstance(results.get("config"), dict):
        lines += [
            "Training run (the recipe's settings, from results.json):",
            "",
            "```json",
            json.dumps(results["config"], indent=2, ensure_ascii=False),
            "```",
            "",
        ]
    return lines


def _command_section(results: Mapping[str, Any] | None) -> list[str]:
    command = results.get("command") if results else None
    if isinstance(command, list) and all(isinstance(part, str) for part in command):
        command = shlex.join(command)
    if not isinstance(command, str) or not command:
        why = "its run recorded none" if results is not None else "no run results came with it"
        return ["## Training command", "", f"Not recorded ({why}).", ""]
    return ["## Training command", "", "```bash", command, "```", ""]


def _usage_section(model_class: str, task: CardTask | None, repo_id: str) -> list[str]:
    lines = [
        "## How to use",
        "",
        "```bash",
        "pip install seqlstm",
        "```",
        "",
        "```python",
        f"from seqlstm import {model_class}",
        "",
        f'model = {model_class}.from_pretrained("{repo_id}")',
    ]
    if task is not None:
        lines.append(task.python)
    lines += ["```", ""]
    if task is not None and task.cli is not None:
        lines += ["```bash", task.cli.format(repo=repo_id), "```", ""]
    lines += [
        "Only config.json, model.safetensors, tokenizer/ and vocab/*.json are downloaded; "
        "nothing is unpickled. Offline (`HF_HUB_OFFLINE=1`) the model loads from the local "
        "Hugging Face cache.",
        "",
    ]
    return lines
