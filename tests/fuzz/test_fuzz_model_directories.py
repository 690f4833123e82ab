"""Fuzz cases of tampered model directories: ``from_pretrained`` of each task and
``seqlstm tag/translate/generate --model`` give a model that works (a small inference
within the time limit) or a CheckpointError / exit status 2 naming the directory or its file
(and the config key where one is at fault); never another exception, never a hang, never a
large allocation (fuzz_outcomes caps the address space a case may add).

A case is ``TASK-TAMPER-sSEED``: the seed picks the config field, the tensor, the bytes.
Tampers where only an error is right say why (`Tampered.must_fail`): a size that is not
a whole number in range, NaN, a value of the wrong type, a missing or corrupt file, weights
that are not finite or do not fit the config; the others (a missing or unknown key, a huge
decoding limit) may load, but the model must then work.
"""

import dataclasses
import json
import math
import os
import random
import shutil
import struct
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from fuzz_inputs import ROUNDS
from fuzz_outcomes import CommandRun, Expected, command_case, library_case, run_command
from safetensors.torch import load_file, save_file

from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
from seqlstm.tasks.translation.translator import Seq2SeqLSTM

CLASSES = {
    "tagger": BiLSTMCRFTagger,
    "translator": Seq2SeqLSTM,
    "language_model": LSTMLanguageModel,
}
COMMANDS = {"tagger": "tag", "translator": "translate", "language_model": "generate"}


@dataclass
class Tampered:
    must_fail: str = ""  # why only an error is right; empty: a working model is fine too
    keys: tuple[str, ...] = ()  # what the error must name besides the directory


def _header(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text("utf-8"))


def _write_header(directory: Path, header: dict) -> None:
    (directory / "config.json").write_text(json.dumps(header), "utf-8")


def _fields(task: str, kind: type) -> list[str]:
    """The config fields of ``task`` typed exactly ``kind`` (not optional), in the file."""
    config_class = CLASSES[task].config_class
    hints = typing.get_type_hints(config_class)
    return [f.name for f in dataclasses.fields(config_class) if hints[f.name] is kind]


# ----------------------------------------------------------------------------- config.json

# a value that no whole-number size may take, as JSON text (NaN and Infinity as Python's
# json writes them, 1e400 and a 31-digit integer as a hand-edited file may hold them)
BAD_INTEGERS = {
    "1e9": "1000000000.0",
    "2**31": str(2**31),
    "2**40": str(2**40),
    "10**30": str(10**30),
    "16.5": "16.5",
    "nan": "NaN",
    "inf": "Infinity",
    "1e400": "1e400",
    "-1": "-1",
    "true": "true",
    "string": '"100"',
    "null": "null",
    "list": "[16]",
    "object": '{"size": 16}',
}
BAD_FLOATS = {
    "nan": "NaN",
    "inf": "Infinity",
    "-1": "-1.0",
    "1e9": "1e9",
    "string": '"0.5"',
    "true": "true",
    "null": "null",
}


def _set_raw(directory: Path, field: str, text: str) -> None:
    """config[field] = the JSON text ``text``, written as it is."""
    header = _header(directory)
    header["config"][field] = "@@VALUE@@"
    raw = json.dumps(header).replace('"@@VALUE@@"', text)
    (directory / "config.json").write_text(raw, "utf-8")


def bad_integer(label: str) -> Callable:
    def tamper(directory: Path, rng: random.Random, task: str) -> Tampered:
        field = rng.choice(_fields(task, int))
        _set_raw(directory, field, BAD_INTEGERS[label])
        return Tampered(f"{field} = {BAD_INTEGERS[label]} is no size", (field,))

    return tamper


def bad_float(label: str) -> Callable:
    def tamper(directory: Path, rng: random.Random, task: str) -> Tampered:
        field = rng.choice(_fields(task, float))
        _set_raw(directory, field, BAD_FLOATS[label])
        return Tampered(f"{field} = {BAD_FLOATS[label]} is no rate or ratio", (field,))

    return tamper


def missing_key(directory, rng, task):
    header = _header(directory)
    del header["config"][rng.choice(sorted(header["config"]))]
    _write_header(directory, header)
    return Tampered()


def unknown_key(directory, rng, task):
    header = _header(directory)
    where = header["config"] if rng.random() < 0.5 else header
    where[rng.choice(["fuzz", "__class__", "hidden", "model_class_"])] = rng.choice([1, "x", None])
    _write_header(directory, header)
    return Tampered()


def wrong_model_class(directory, rng, task):
    header = _header(directory)
    others = [cls.__name__ for name, cls in CLASSES.items() if name != task]
    header["model_class"] = rng.choice([*others, "os.system", "", "PretrainedModel"])
    _write_header(directory, header)
    return Tampered("it holds another model class")


def header_shape(directory, rng, task):
    header = _header(directory)
    change = rng.choice(["config", "vocabularies", "whole", "model_class"])
    if change == "whole":
        _write_header(directory, rng.choice([[], [header], "config", 1, None]))
    else:  # (an empty list is what a model without vocabularies lists)
        header[change] = rng.choice(
            ["x", 5, None, [1, 2]] + ([] if change == "vocabularies" else [[]])
        )
        _write_header(directory, header)
    return Tampered(f"{change} is not what a header holds")


def deeply_nested(directory, rng, task):
    depth = rng.choice([1_000, 100_000])
    _set_raw(directory, rng.choice(_fields(task, int)), "[" * depth + "]" * depth)
    return Tampered("a nested list is no size")


def huge_config(directory, rng, task):
    header = _header(directory)
    header["padding"] = "x" * (5 << 20)
    _write_header(directory, header)
    return Tampered()  # a large file may be refused or read, but quickly


def not_json(directory, rng, task):
    path = directory / "config.json"
    text = path.read_bytes()
    path.write_bytes(
        rng.choice(
            [
                b"",
                rng.randbytes(rng.randint(1, 200)),
                text[: rng.randint(1, len(text) - 1)],
                b"\xef\xbb\xbf" + text.replace(b'"', b"'"),
                text.replace(b"{", b"[", 1),
            ]
        )
    )
    return Tampered("config.json is not a JSON object")


def config_not_a_file(directory, rng, task):
    path = directory / "config.json"
    path.unlink()
    choice = rng.choice(["directory", "dev_zero", "fifo", "missing", "dangling"])
    if choice == "fifo" and not hasattr(os, "mkfifo"):
        choice = "directory"
    if choice == "directory":
        path.mkdir()
    elif choice == "dev_zero":
        path.symlink_to("/dev/zero")
    elif choice == "fifo":
        os.mkfifo(path)
    elif choice == "dangling":
        path.symlink_to(directory / "nowhere.json")
    return Tampered(f"config.json is {choice.replace('_', ' ')}")


def tokenizer_flag(directory, rng, task):
    header = _header(directory)
    header["tokenizer"] = rng.choice([False, False, 1, "true", None])
    _write_header(directory, header)
    return Tampered(f'"tokenizer": {json.dumps(header["tokenizer"])}, but the model needs one')


def vocabularies_listed(directory, rng, task):
    header = _header(directory)
    names = header["vocabularies"]
    if names and rng.random() < 0.5:
        names.remove(rng.choice(names))
    else:
        names.append(rng.choice(["labels", "words", "missing", "../config"]))
    _write_header(directory, header)
    return Tampered("the vocabularies listed are not the model's files")


def large_valid_numbers(directory, rng, task):
    """Numbers within the config's range but large: a decoding limit or a context length may
    load (then decoding and tagging must stay bounded); a layer size that the weights do not
    have must be refused before anything of that size is allocated."""
    choices = {
        "translator": [
            ("max_length_ratio", 1e9),
            ("max_length_ratio", 1e6),
            ("max_length_constant", 2**24),
            ("decoder_hidden_size", 2**24),
        ],
        "tagger": [("context_words", 2**24), ("chunk_words", 2**24), ("hidden_size", 2**24)],
        "language_model": [("hidden_size", 2**24), ("embedding_dim", 2**24)],
    }[task]
    field, value = rng.choice(choices)
    header = _header(directory)
    header["config"][field] = value
    _write_header(directory, header)
    if field.endswith(("_size", "_dim")):
        return Tampered(f"{field} = {value} does not fit the weights", (field,))
    return Tampered()


# ----------------------------------------------------------------------------- other files


def _file_garbage(path: Path, rng: random.Random) -> str:
    data = path.read_bytes() if path.is_file() else b""
    choice = rng.choice(["missing", "empty", "random", "truncated", "directory"])
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    if choice == "empty":
        path.write_bytes(b"")
    elif choice == "random":
        path.write_bytes(rng.randbytes(rng.randint(1, 2000)))
    elif choice == "truncated":
        path.write_bytes(data[: rng.randint(0, max(0, len(data) - 1))])
    elif choice == "directory":
        path.mkdir()
    return f"{path.name} is {choice}"


def vocabulary_file(directory, rng, task):
    files = sorted((directory / "vocab").glob("*.json")) if (directory / "vocab").is_dir() else []
    if not files:  # the task has no vocabulary: its tokenizer's settings instead
        files = [directory / "tokenizer" / "tokenizer.json"]
    path = rng.choice(files)
    if rng.random() < 0.5:
        return Tampered(_file_garbage(path, rng))
    # a value of another type or size: refused, or the model still works
    data = json.loads(path.read_text("utf-8"))
    key = rng.choice(sorted(data))
    data[key] = rng.choice([None, 5, [], "x", [1, 2], {"a": 1}, -1, 2**40])
    path.write_text(json.dumps(data), "utf-8")
    return Tampered()


def tokenizer_files(directory, rng, task):
    path = directory / "tokenizer" / rng.choice(["spm.model", "spm.model", "tokenizer.json", ""])
    return Tampered(_file_garbage(path, rng))


def weights_bytes(directory, rng, task):
    path = directory / "model.safetensors"
    data = path.read_bytes()
    choice = rng.choice(["garbage", "header_length", "header_json", "truncated", "file"])
    if choice == "file":
        return Tampered(_file_garbage(path, rng))
    if choice == "truncated":
        path.write_bytes(data[: rng.randint(0, len(data) - 1)])
    elif choice == "header_length":
        length = rng.choice([2**63 - 1, 2**40, len(data), 0])
        path.write_bytes(struct.pack("<Q", length) + data[8:])
    elif choice == "header_json":
        (size,) = struct.unpack("<Q", data[:8])
        header = bytearray(data[8 : 8 + size])
        for _ in range(rng.randint(1, 4)):
            header[rng.randrange(size)] = rng.randrange(256)
        path.write_bytes(data[:8] + bytes(header) + data[8 + size :])
    else:
        path.write_bytes(rng.randbytes(len(data)))
    return Tampered(f"model.safetensors: {choice}")


def _float_tensor(tensors: dict, rng: random.Random) -> str:
    return rng.choice(sorted(k for k, v in tensors.items() if v.is_floating_point()))


def weights_values(directory, rng, task):
    path = directory / "model.safetensors"
    tensors = load_file(path)
    name = _float_tensor(tensors, rng)
    value = rng.choice([math.nan, math.inf, -math.inf])
    flat = tensors[name].flatten()
    flat[rng.randrange(flat.numel())] = value
    tensors[name] = flat.reshape(tensors[name].shape)
    save_file(tensors, path)
    return Tampered(f"{name} holds {value}", (name,))


def weights_shapes(directory, rng, task):
    path = directory / "model.safetensors"
    tensors = load_file(path)
    name = _float_tensor(tensors, rng)
    tensor = tensors[name]
    choice = rng.choice(["grown", "shrunk", "flattened", "int32", "missing"])
    if choice == "grown":
        tensors[name] = torch.zeros([tensor.shape[0] + 1, *tensor.shape[1:]])
    elif choice == "shrunk":
        tensors[name] = tensor[: max(0, tensor.shape[0] - 1)].clone()
    elif choice == "flattened":
        tensors[name] = tensor.flatten().clone() if tensor.dim() > 1 else tensor[None].clone()
    elif choice == "int32":
        tensors[name] = tensor.to(torch.int32)
    else:
        del tensors[name]
    save_file(tensors, path)
    return Tampered(f"{name} is {choice}", (name,))


def weights_extra(directory, rng, task):
    path = directory / "model.safetensors"
    tensors = load_file(path)
    tensors[rng.choice(["fuzz.extra", "encoder.rnn.weight_ih_l9"])] = torch.zeros(2, 2)
    save_file(tensors, path)
    return Tampered()


TAMPERS: dict[str, Callable] = {
    **{f"int_{label}": bad_integer(label) for label in BAD_INTEGERS},
    **{f"float_{label}": bad_float(label) for label in BAD_FLOATS},
    "missing_key": missing_key,
    "unknown_key": unknown_key,
    "wrong_model_class": wrong_model_class,
    "header_shape": header_shape,
    "deeply_nested": deeply_nested,
    "huge_config": huge_config,
    "not_json": not_json,
    "config_not_a_file": config_not_a_file,
    "tokenizer_flag": tokenizer_flag,
    "vocabularies_listed": vocabularies_listed,
    "large_valid_numbers": large_valid_numbers,
    "vocabulary_file": vocabulary_file,
    "tokenizer_files": tokenizer_files,
    "weights_bytes": weights_bytes,
    "weights_values": weights_values,
    "weights_shapes": weights_shapes,
    "weights_extra": weights_extra,
}
# tampers whose outcome depends much on the seed: more cases
REPEATED = {
    "not_json": 2,
    "config_not_a_file": 3,
    "vocabulary_file": 3,
    "tokenizer_files": 2,
    "weights_bytes": 3,
    "weights_values": 2,
    "weights_shapes": 3,
    "header_shape": 2,
    "large_valid_numbers": 2,
}


def tamper_cases(first_seed: int) -> list:
    params = []
    for task_number, task in enumerate(CLASSES):
        for tamper_number, tamper in enumerate(TAMPERS):
            for i in range(REPEATED.get(tamper, 1) * ROUNDS):
                seed = first_seed + 10_000 * task_number + 100 * tamper_number + i
                params.append(pytest.param(task, tamper, seed, id=f"{task}-{tamper}-s{seed}"))
    return params


def tampered_copy(fuzz_models, task: str, tamper: str, seed: int, tmp_path: Path):
    directory = Path(shutil.copytree(fuzz_models[task], tmp_path / "model"))
    tampered = TAMPERS[tamper](directory, random.Random(seed), task)
    expected = Expected([str(directory)], keys=tampered.keys, must_fail=tampered.must_fail)
    return directory, expected


# what a loaded model must do within the time limit
SENTENCES = [["Peter", "met", "Paris", "."], []]


def works(task: str, model) -> None:
    if task == "tagger":
        tags = model.predict(SENTENCES, batch_size=2)
        assert [len(t) for t in tags] == [4, 0], f"tags {tags}"
    elif task == "translator":
        translations = model.translate(["Peter met Paris .", ""], beam_size=2)
        assert len(translations) == 2 and translations[1] == "", translations
    else:
        assert isinstance(model.generate("Peter", 5, seed=0), str)


@pytest.mark.parametrize(("task", "tamper", "seed"), tamper_cases(20_000))
def test_from_pretrained(task, tamper, seed, fuzz_models, tmp_path, request):
    directory, expected = tampered_copy(fuzz_models, task, tamper, seed, tmp_path)
    library_case(
        request,
        f"{CLASSES[task].__name__}.from_pretrained",
        lambda: CLASSES[task].from_pretrained(directory),
        expected,
        lambda model: works(task, model),
    )


def command_works(task: str, done: CommandRun) -> None:
    lines = done.out.split("\n")
    if task == "tagger":  # "Peter met Paris ." then an empty sentence: 4 words, 2 blank lines
        words = [line.split(" ")[0] for line in lines[:4]]
        assert words == SENTENCES[0] and lines[4:] == ["", "", ""], lines
    elif task == "translator":
        assert len(lines) == 3 and lines[1:] == ["", ""], lines
    else:
        assert done.out.endswith("\n"), done.out


@pytest.mark.parametrize(("task", "tamper", "seed"), tamper_cases(50_000))
def test_command_model(task, tamper, seed, fuzz_models, tmp_path, monkeypatch, capsys, request):
    directory, expected = tampered_copy(fuzz_models, task, tamper, seed, tmp_path)
    command = COMMANDS[task]
    argv = [command, "--model", str(directory)]
    if task == "language_model":
        argv += ["--prompt", "Peter", "--max-new-tokens", "5", "--seed", "0"]
    stdin = b"Peter met Paris .\n\n"
    command_case(
        request,
        f"{command} --model",
        command,
        lambda: run_command(argv, monkeypatch, capsys, stdin),
        expected,
        lambda done: command_works(task, done),
    )
