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
a crash never leaves a half-written model where a complete one was.

Loading treats the directory as untrusted input and allocates nothing before it has checked
it: each file is read only if it is a regular file within a size limit, and the config's
values are checked against the type hints of its dataclass (seqlstm.model_directory_checks);
the tokenizer flag and the vocabularies against the constructor's signature; the model is then
planned on the meta device and its tensors compared with the weights file's header, so every
size that shapes a tensor is bounded by the file itself (seqlstm.weights_file_checks). Only
then is the model built and the weights copied in - strictly, each finite. Any problem is a
CheckpointError that names the file, the key or tensor, and what was expected.

int8: `from_pretrained(directory, quantize="int8")` quantizes the loaded float model
(seqlstm.quantization: dynamic int8 LSTM and Linear layers, CPU only). A model directory
always holds the float weights; a quantized model is not saved (see `save_pretrained`).

The hub: `from_pretrained("owner/name")` downloads a model directory's files from the Hugging
Face hub (or reads them from its cache) and loads them the same way; `model.push_to_hub(
"owner/name")` uploads one with a model card (seqlstm.model_hub, seqlstm.model_card).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from seqlstm.atomic_files import refuse_foreign_directory, staged_directory
from seqlstm.errors import CheckpointError
from seqlstm.model_directory_checks import (
    MAX_CONFIG_BYTES,
    check_config_values,
    check_model_inputs,
    read_json,
)
from seqlstm.model_hub import push_to_hub, resolve_model_directory
from seqlstm.quantization import check_quantization, is_quantized, quantize_int8
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary
from seqlstm.weights_file_checks import (
    PlanTooLarge,
    TensorInfo,
    TensorProblem,
    build_budget,
    check_finite,
    config_keys_shaping,
    keys_beyond_tensors,
    planned_tensors,
    read_tensor_infos,
    tensor_info,
    tensor_problems,
)

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

    def check_loaded_weights(self, path: Path) -> None:
        """Called by `from_pretrained` once the weights of ``path`` are in: a model whose
        saved tensors must agree with its config beyond their shapes (an index buffer)
        raises CheckpointError naming ``path`` here. The base class has nothing to check."""

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

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        token: str | None = None,
        commit_message: str | None = None,
        revision: str | None = None,
    ) -> str:
        """Save the model to a temporary directory and upload it to hub repo `repo_id` with a
        model card; returns the commit's URL. See `seqlstm.model_hub.push_to_hub`, which
        pushes a saved directory - from a recipe run's OUT/model its card also has the run's
        data, metrics and command; from here it has what config.json holds.
        """
        with tempfile.TemporaryDirectory(prefix="seqlstm-save-") as staging:
            directory = self.save_pretrained(Path(staging) / "model")
            return push_to_hub(
                directory,
                repo_id,
                private=private,
                token=token,
                commit_message=commit_message,
                revision=revision,
            )

    @classmethod
    def from_pretrained(
        cls: type[M],
        directory: str | os.PathLike,
        map_location: str | torch.device = "cpu",
        quantize: str | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
    ) -> M:
        """Rebuild a model saved by `save_pretrained`, on `map_location`, in eval mode.

        `directory` is a model directory or a Hugging Face hub repo id ("owner/name"), read
        by the rule of `seqlstm.data.load`: an existing path wins; a missing one that looks
        local (absolute, "./", "~", more than one "/") is a missing directory; anything else
        is downloaded - config.json, model.safetensors, tokenizer/, vocab/*.json only, never
        a pickle - at `revision` into the hub cache (`cache_dir`), with `token` for private
        repos (seqlstm.model_hub). Offline (HF_HUB_OFFLINE, or no answer from the hub within
        2 s) only the cache is read, and without a cached copy the CheckpointError says so
        at once.

        quantize="int8": with its LSTM and Linear layers dynamically quantized to int8
        (seqlstm.quantization), for faster inference on the CPU; the model is then for
        inference only and cannot be saved. A ValueError names what was expected for any
        other value than None and "int8", for a map_location other than the CPU, and where
        torch has no quantized engine.
        """
        check_quantization(quantize, map_location)
        directory = resolve_model_directory(
            directory, revision=revision, cache_dir=cache_dir, token=token
        )
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: no such model directory")
        config_path = directory / CONFIG_FILE
        # exists, not is_file: a directory or FIFO named config.json is refused by name
        header = _read_header(config_path) if config_path.exists() else None
        if header is not None and header["model_class"] != cls.__name__:
            raise CheckpointError(
                f"{directory} holds a {header['model_class']}, not a {cls.__name__}"
            )
        saved_vocabularies = header["vocabularies"] if header is not None else []
        # directories written before the "tokenizer" flag existed always have one
        has_tokenizer = header is None or header.get("tokenizer", True)
        unknown = set(saved_vocabularies) - set(cls.vocabulary_names)
        if unknown:
            raise CheckpointError(
                f"{config_path}: vocabularies {sorted(unknown)} are not used by {cls.__name__} "
                f"(it takes {list(cls.vocabulary_names)})"
            )
        expected = [CONFIG_FILE, WEIGHTS_FILE]
        if has_tokenizer:
            expected.append(TOKENIZER_DIR + "/")
        expected += [f"{VOCAB_DIR}/{name}.json" for name in saved_vocabularies]
        missing = [name for name in expected if not (directory / name).exists()]
        if missing:
            raise CheckpointError(f"{directory} is incomplete: missing {', '.join(missing)}")
        check_model_inputs(cls, has_tokenizer, saved_vocabularies, config_path)
        config = _config_from_dict(cls.config_class, header["config"], config_path)
        weights_path = directory / WEIGHTS_FILE
        file_tensors = read_tensor_infos(weights_path)
        tokenizer = SubwordTokenizer.load(directory / TOKENIZER_DIR) if has_tokenizer else None
        vocabularies = {
            name: Vocabulary.load(directory / VOCAB_DIR / f"{name}.json")
            for name in saved_vocabularies
        }
        # nothing is allocated before the planned model is known to fit the file
        _check_plan(cls, config, tokenizer, vocabularies, file_tensors, config_path, weights_path)
        model = cls(config, tokenizer, **vocabularies).to(map_location)
        _load_weights(model, weights_path, map_location)
        model.check_loaded_weights(weights_path)
        model.eval()
        if quantize == "int8":
            quantize_int8(model)
        return model


def _read_header(path: Path) -> dict[str, Any]:
    header = read_json(path, MAX_CONFIG_BYTES)
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
    """The config dataclass from its JSON form; JSON lists go back to tuples where declared.

    A field the JSON lacks was saved before the field existed (or before its default
    changed): it takes the value of the class's ``legacy_defaults`` (a ClassVar mapping, when
    the class has one) - the value such a model was trained with - and only then the current
    default. So changing a config default never changes a model saved before.
    """
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    unknown = values.keys() - fields.keys()
    if unknown:
        raise CheckpointError(
            f"{path}: config has fields {sorted(unknown)} that {config_class.__name__} lacks"
        )
    legacy = getattr(config_class, "legacy_defaults", {})
    values = {**{name: legacy[name] for name in legacy.keys() - values.keys()}, **values}
    values = check_config_values(config_class, values, path)
    try:
        return config_class(**values)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: not a valid {config_class.__name__} ({err})") from None


def _check_plan(
    cls: type[PretrainedModel],
    config: Any,
    tokenizer: SubwordTokenizer | None,
    vocabularies: dict[str, Vocabulary],
    file_tensors: dict[str, TensorInfo],
    config_path: Path,
    weights_path: Path,
) -> None:
    """CheckpointError unless the model that config, tokenizer and vocabularies describe has
    the tensors of the weights file, found by planning it on the meta device within its
    budget of work (seqlstm.weights_file_checks); the message names the tensors and the
    config keys that shape them. A model whose constructor cannot run on the meta device
    (it reads a tensor's values) is not planned: its weights are compared once it is built.
    """
    budget = build_budget(file_tensors)

    def plan(variant: Any) -> list:
        return planned_tensors(lambda: cls(variant, tokenizer, **vocabularies), budget)

    try:
        planned = plan(config)
    except PlanTooLarge as err:
        # varying keys costs a plan each: quick where the registrations ran out, not the calls
        keys = (
            config_keys_shaping(config, plan, set(), None)
            if err.registrations
            else keys_beyond_tensors(config, file_tensors)
        )
        raise CheckpointError(
            f"{config_path}: the {cls.__name__} this config and its vocabularies describe does "
            f"not fit {weights_path.name} ({len(file_tensors)} tensors): building it would "
            f"take {err}" + (f"; the keys that make it so: {', '.join(keys)}" if keys else "")
        ) from None
    except Exception as err:
        if isinstance(err, NotImplementedError) or (
            isinstance(err, RuntimeError) and "meta" in str(err).lower()
        ):
            return
        raise CheckpointError(
            f"{config_path}: no {cls.__name__} can be built from this config, tokenizer and "
            f"vocabularies ({type(err).__name__}: {err})"
        ) from None
    problems = tensor_problems(planned, file_tensors)
    if problems:
        names = {name for problem in problems for name in problem.names}
        keys = config_keys_shaping(config, plan, names, planned)
        shaped_by = f" (config keys that shape these tensors: {', '.join(keys)})" if keys else ""
        raise CheckpointError(
            f"{weights_path} does not fit the {cls.__name__} of {config_path.name}{shaped_by}:"
            "\n  " + _listed(problems)
        )


def _load_weights(model: nn.Module, path: Path, map_location: str | torch.device) -> None:
    """Copy the file's tensors into the model's, in place, so tied parameters stay tied;
    CheckpointError for a tensor of another name, shape or dtype, or one that is not finite."""
    try:
        # a safetensors file is a JSON header plus raw bytes: loading it runs no code
        saved = load_file(path, device=str(map_location))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    own = model.state_dict()
    # checked again on the tensors read: the file may have changed since its header was read
    problems = tensor_problems(
        [[(name, tensor_info(own[name])) for name in names] for names in _alias_groups(own)],
        {name: tensor_info(tensor) for name, tensor in saved.items()},
    )
    if problems:
        raise CheckpointError(
            f"{path} does not fit {type(model).__name__}:\n  " + _listed(problems)
        )
    check_finite(saved, path)
    model.load_state_dict(saved, strict=False)


def _listed(problems: list[TensorProblem], shown: int = 20) -> str:
    """The problems, one a line, the first ``shown`` of them (a message stays readable)."""
    lines = [problem.text for problem in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"... and {len(problems) - shown} more")
    return "\n  ".join(lines)


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
