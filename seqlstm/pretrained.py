"""save_pretrained / from_pretrained: a model as a directory that can be loaded without pickle.

Every seqlstm model is built as `cls(config, tokenizer, **vocabularies)` from a config
dataclass, the shared SubwordTokenizer (None for models of numbers, such as the classifier
and the forecaster) and the label/word/character vocabularies it needs, so those inputs plus
the weights are the whole model. A model directory holds

    config.json          {"model_class", "seqlstm_version", "config": {...}, "tokenizer": bool,
                          "vocabularies": [...]}
    model.safetensors    the state_dict; a tied tensor (e.g. output layer = embedding) once
    tokenizer/           SubwordTokenizer.save, unless the model has no tokenizer
    vocab/NAME.json      Vocabulary.save, for each vocabulary the model was given

Saving writes everything into a temporary sibling directory and renames it into place, so
a crash never leaves a half-written model where a complete one was. Loading checks the files,
the class name and the config, rebuilds the model and copies the weights in strictly; any
problem is a CheckpointError that names the file and what does not match.

int8: `from_pretrained(directory, quantize="int8")` quantizes the loaded float model
(seqlstm.quantization: dynamic int8 LSTM and Linear layers, CPU only). A model directory
always holds the float weights; a quantized model is not saved (see `save_pretrained`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import types
import typing
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from seqlstm.atomic_files import refuse_foreign_directory, staged_directory
from seqlstm.errors import CheckpointError
from seqlstm.quantization import check_quantization, is_quantized, quantize_int8
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
VOCAB_DIR = "vocab"

M = TypeVar("M", bound="PretrainedModel")


def seqlstm_version() -> str:
    try:
        return version("seqlstm")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


class PretrainedModel(nn.Module):
    """Base class of models that save to and load from a model directory.

    A subclass sets `config_class` (its config dataclass) and `vocabulary_names` (the keyword
    arguments of its constructor that take a Vocabulary, or None where optional), and its
    constructor takes `(config, tokenizer, **vocabularies)` and calls
    `super().__init__(config, tokenizer, **vocabularies)`, which keeps them as `self.config`,
    `self.tokenizer` and one attribute per vocabulary name. A model that reads numbers, not
    text, passes `tokenizer=None`.
    """

    config_class: ClassVar[type]
    vocabulary_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, config: Any, tokenizer: SubwordTokenizer | None, **vocabularies: Vocabulary | None
    ) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        unknown = vocabularies.keys() - set(self.vocabulary_names)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} takes the vocabularies {self.vocabulary_names}, "
                f"not {sorted(unknown)}"
            )
        self.config = config
        self.tokenizer = tokenizer
        for name in self.vocabulary_names:
            setattr(self, name, vocabularies.get(name))

    @property
    def device(self) -> torch.device:
        """The device of the model's tensors.

        Read from the first parameter or buffer, not from a given layer's weight: quantized
        layers (seqlstm.quantization) have none, and a model whose every weight is quantized
        - int8 runs on the CPU only - is on the CPU.
        """
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the model directory (replacing an older model there); returns its path.

        Refuses (CheckpointError) to replace a non-empty directory that is not a model
        directory, so a wrong path never deletes other files.

        Refuses (ValueError) to save a quantized model: save the float model and quantize at
        load, `from_pretrained(directory, quantize="int8")`. Quantizing takes well under a
        second for these models, and keeping it out of the directory keeps the format what
        it is - float tensors in safetensors plus JSON, loadable without pickle and by any
        torch >= 2.2 - rather than tying it to the packed weights of torch.ao.quantization
        (opaque objects, not tensors, in its state_dict; an API torch is moving to torchao).
        """
        if is_quantized(self):
            raise ValueError(
                f"this {type(self).__name__} is quantized, and a model directory holds float "
                "weights only: save the float model and quantize at load, with "
                "from_pretrained(directory, quantize='int8')"
            )
        directory = Path(directory)
        refuse_foreign_directory(directory, CONFIG_FILE, "a seqlstm model directory")
        vocabularies = {
            name: getattr(self, name)
            for name in self.vocabulary_names
            if getattr(self, name) is not None
        }
        header = {
            "model_class": type(self).__name__,
            "seqlstm_version": seqlstm_version(),
            "config": dataclasses.asdict(self.config),
            "tokenizer": self.tokenizer is not None,
            "vocabularies": sorted(vocabularies),
        }
        with staged_directory(directory) as staging:
            (staging / CONFIG_FILE).write_text(json.dumps(header, indent=2) + "\n", "utf-8")
            save_file(_tensors_to_save(self), str(staging / WEIGHTS_FILE), {"format": "pt"})
            if self.tokenizer is not None:
                self.tokenizer.save(staging / TOKENIZER_DIR)
            for name, vocabulary in vocabularies.items():
                vocabulary.save(staging / VOCAB_DIR / f"{name}.json")
        return directory

    @classmethod
    def from_pretrained(
        cls: type[M],
        directory: str | os.PathLike,
        map_location: str | torch.device = "cpu",
        quantize: str | None = None,
    ) -> M:
        """Rebuild a model saved by `save_pretrained`, on `map_location`, in eval mode.

        quantize="int8": with its LSTM and Linear layers dynamically quantized to int8
        (seqlstm.quantization), for faster inference on the CPU; the model is then for
        inference only and cannot be saved. A ValueError names what was expected for any
        other value than None and "int8", for a map_location other than the CPU, and where
        torch has no quantized engine.
        """
        check_quantization(quantize, map_location)
        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: no such model directory")
        config_path = directory / CONFIG_FILE
        header = _read_header(config_path) if config_path.is_file() else None
        if header is not None and header["model_class"] != cls.__name__:
            raise CheckpointError(
                f"{directory} holds a {header['model_class']}, not a {cls.__name__}"
            )
        saved_vocabularies = header["vocabularies"] if header is not None else []
        # directories written before the "tokenizer" flag existed always have one
        has_tokenizer = header is None or header.get("tokenizer", True)
        expected = [CONFIG_FILE, WEIGHTS_FILE]
        if has_tokenizer:
            expected.append(TOKENIZER_DIR + "/")
        expected += [f"{VOCAB_DIR}/{name}.json" for name in saved_vocabularies]
        missing = [name for name in expected if not (directory / name).exists()]
        if missing:
            raise CheckpointError(f"{directory} is incomplete: missing {', '.join(missing)}")
        unknown = set(saved_vocabularies) - set(cls.vocabulary_names)
        if unknown:
            raise CheckpointError(
                f"{config_path}: vocabularies {sorted(unknown)} are not used by {cls.__name__} "
                f"(it takes {list(cls.vocabulary_names)})"
            )
        config = _config_from_dict(cls.config_class, header["config"], config_path)
        tokenizer = SubwordTokenizer.load(directory / TOKENIZER_DIR) if has_tokenizer else None
        vocabularies = {
            name: Vocabulary.load(directory / VOCAB_DIR / f"{name}.json")
            for name in saved_vocabularies
        }
        model = cls(config, tokenizer, **vocabularies).to(map_location)
        _load_weights(model, directory / WEIGHTS_FILE, map_location)
        model.eval()
        if quantize == "int8":
            quantize_int8(model)
        return model


def _read_header(path: Path) -> dict[str, Any]:
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not (
        isinstance(header, dict)
        and isinstance(header.get("model_class"), str)
        and isinstance(header.get("config"), dict)
        and isinstance(header.get("tokenizer", True), bool)
        and isinstance(header.get("vocabularies"), list)
        and all(isinstance(name, str) for name in header["vocabularies"])
    ):
        raise CheckpointError(
            f"{path}: expected a JSON object with model_class (a string), config (an object), "
            "tokenizer (true or false) and vocabularies (a list of names)"
        )
    return header


def _config_from_dict(config_class: type, values: dict[str, Any], path: Path) -> Any:
    """The config dataclass from its JSON form; JSON lists go back to tuples where declared."""
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    unknown = values.keys() - fields.keys()
    if unknown:
        raise CheckpointError(
            f"{path}: config has fields {sorted(unknown)} that {config_class.__name__} lacks"
        )
    hints = typing.get_type_hints(config_class)
    values = {
        name: tuple(value) if isinstance(value, list) and _is_tuple_type(hints[name]) else value
        for name, value in values.items()
    }
    try:
        return config_class(**values)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: not a valid {config_class.__name__} ({err})") from None


def _is_tuple_type(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_tuple_type(arg) for arg in typing.get_args(hint))
    return hint is tuple or origin is tuple


def _load_weights(model: nn.Module, path: Path, map_location: str | torch.device) -> None:
    """Copy the file's tensors into the model's, in place, so tied parameters stay tied."""
    try:
        # a safetensors file is a JSON header plus raw bytes: loading it runs no code
        saved = load_file(path, device=str(map_location))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    own = model.state_dict()
    problems = [f"unexpected tensor {name!r}" for name in sorted(saved.keys() - own.keys())]
    for names in _alias_groups(own):
        if not any(name in saved for name in names):
            problems.append(f"missing tensor {' = '.join(repr(name) for name in names)}")
    for name in sorted(saved.keys() & own.keys()):
        if saved[name].shape != own[name].shape:
            problems.append(
                f"{name!r} has shape {tuple(saved[name].shape)} in the file but "
                f"{tuple(own[name].shape)} in the model"
            )
    if problems:
        raise CheckpointError(
            f"{path} does not fit {type(model).__name__}:\n  " + "\n  ".join(problems)
        )
    model.load_state_dict(saved, strict=False)


def _tensors_to_save(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict with each tied tensor once, as CPU tensors that own their memory.

    Own memory, because safetensors refuses views into a larger buffer - which is what
    cuDNN makes of an LSTM's weights on a GPU (one flat buffer for all of them).
    """
    state = model.state_dict()
    return {
        names[0]: state[names[0]].detach().to("cpu", copy=True).contiguous()
        for names in _alias_groups(state)
    }


def _alias_groups(state: dict[str, torch.Tensor]) -> list[list[str]]:
    """Names of the state_dict grouped by the memory they view (one group per tied tensor)."""
    groups: dict[tuple, list[str]] = {}
    for name, tensor in state.items():
        if tensor.numel() == 0:  # empty tensors can share a null pointer without being tied
            key: tuple = (name,)
        else:
            key = (
                tensor.device,
                tensor.untyped_storage().data_ptr(),
                tensor.storage_offset(),
                tuple(tensor.shape),
                tensor.stride(),
            )
        groups.setdefault(key, []).append(name)
    return list(groups.values())
