"""A model directory is checked before anything is built from it (issue 18, item 2).

Each test starts from a small saved model of each task (the 0.1 fixtures, saved again by this
seqlstm), tampers with one of its files and asserts a CheckpointError that names the file,
the key or tensor and what was expected - raised before the model is built for real (the
`builds` fixture records the device each model constructor runs on: "meta" is the plan of
seqlstm.weights_file_checks, which allocates nothing).
"""

import cProfile
import dataclasses
import functools
import json
import math
import os
import pstats
import re
import shutil
import sys
import threading
import time
import typing
from pathlib import Path
from typing import Literal

import pytest
import torch
from locations import FIXTURES
from safetensors.torch import load_file, save_file
from torch import nn

from seqlstm import cli
from seqlstm.errors import CheckpointError
from seqlstm.model_directory_checks import (
    MAX_CONFIG_BYTES,
    MAX_CONFIG_NUMBER,
    check_config_values,
    check_model_inputs,
    read_json,
)
from seqlstm.onnx_tagger.directory import read_crf, read_header
from seqlstm.pretrained import PretrainedModel
from seqlstm.tasks.classic.classifier import LSTMClassifier
from seqlstm.tasks.classic.forecaster import LSTMForecaster
from seqlstm.tasks.language_modeling.language_model import MAX_NEW_TOKENS, LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
from seqlstm.tasks.translation.translator import (
    MAX_OUTPUT_LENGTH,
    Seq2SeqLSTM,
    output_length_limit,
)
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.text.vocabulary import Vocabulary
from seqlstm.weights_file_checks import PlanBudget, PlanTooLarge, planned_tensors

CLASSES = {
    "tagger": BiLSTMCRFTagger,
    "translator": Seq2SeqLSTM,
    "char_lm": LSTMLanguageModel,
    "classifier": LSTMClassifier,
    "forecaster": LSTMForecaster,
}
INTEGER_RANGE = f"an integer in [0, {MAX_CONFIG_NUMBER}]"
NUMBER_RANGE = f"a finite number in [0, {MAX_CONFIG_NUMBER}]"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """The model directory of each task, as this seqlstm saves it."""
    root = tmp_path_factory.mktemp("saved")
    for name, cls in CLASSES.items():
        cls.from_pretrained(FIXTURES / "models_0_1" / name).save_pretrained(root / name)
    return root


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The default device of each model construction, in order ("meta": a plan)."""
    devices: list[str] = []
    for cls in CLASSES.values():
        original = cls.__init__

        @functools.wraps(original)
        def recorded(self, *args, __original=original, **kwargs):
            devices.append(torch.empty(0).device.type)  # where factories put tensors
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", recorded)
    return devices


def copy(saved: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(saved / name, tmp_path / name))


def edit_header(directory: Path, change) -> None:
    path = directory / "config.json"
    header = json.loads(path.read_text())
    change(header)
    path.write_text(json.dumps(header))


def set_config(directory: Path, **values) -> None:
    edit_header(directory, lambda header: header["config"].update(values))


def refused(cls, directory: Path, *fragments: str) -> str:
    """The message of the CheckpointError that loading raises; it holds every fragment."""
    with pytest.raises(CheckpointError) as error:
        cls.from_pretrained(directory)
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def fields_of(config_class, kind) -> list[str]:
    """The fields whose type is ``kind`` or ``kind | None``."""
    hints = typing.get_type_hints(config_class)
    return [
        field.name
        for field in dataclasses.fields(config_class)
        if hints[field.name] is kind or kind in typing.get_args(hints[field.name])
    ]


def optional(config_class, name: str) -> bool:
    return type(None) in typing.get_args(typing.get_type_hints(config_class)[name])


# ----------------------------------------------------------------------------- config values


BAD_INTEGERS = [1e9, 2**31, 2**40, 16.5, math.nan, math.inf, -1, True, "100", None, [16]]


@pytest.mark.parametrize("name", CLASSES)
def test_every_integer_field_refuses_bad_values_before_building(saved, tmp_path, builds, name):
    cls = CLASSES[name]
    directory = copy(saved, tmp_path, name)
    config_path = directory / "config.json"
    names = fields_of(cls.config_class, int)
    assert len(names) >= 4
    original = json.loads(config_path.read_text())["config"]
    for field in names:
        for value in BAD_INTEGERS:
            if value is None and optional(cls.config_class, field):
                continue
            set_config(directory, **{field: value})
            shown = json.dumps(value)
            refused(cls, directory, f"{config_path}: config.{field} must be ", INTEGER_RANGE, shown)
        set_config(directory, **{field: original[field]})
    assert builds == []


@pytest.mark.parametrize("name", CLASSES)
def test_numbers_flags_and_choices_of_the_wrong_kind_are_refused(saved, tmp_path, builds, name):
    cls = CLASSES[name]
    directory = copy(saved, tmp_path, name)
    config_path = directory / "config.json"
    cases = [
        (field, NUMBER_RANGE, [math.nan, -math.inf, -0.5, 2.0**40, True, "0.1", None])
        for field in fields_of(cls.config_class, float)
    ]
    cases += [
        (field, "true or false", [1, 0, "true", None])
        for field in fields_of(cls.config_class, bool)
    ]
    hints = typing.get_type_hints(cls.config_class)
    cases += [
        (field, "one of ", ["other", 1, None])
        for field in hints
        if typing.get_origin(hints[field]) is Literal
    ]
    assert len(cases) >= 2
    original = json.loads(config_path.read_text())["config"]
    for field, expected, values in cases:
        for value in values:
            if value is None and optional(cls.config_class, field):
                continue
            set_config(directory, **{field: value})
            refused(cls, directory, f"{config_path}: config.{field} must be {expected}")
        set_config(directory, **{field: original[field]})
    assert builds == []


def test_finer_rules_are_the_config_class_own(saved, tmp_path, builds):
    directory = copy(saved, tmp_path, "tagger")
    set_config(directory, dropout=1.0)
    refused(BiLSTMCRFTagger, directory, "not a valid TaggerConfig (dropout must be in [0, 1)")
    set_config(directory, dropout=0.5, hidden_size=0)
    refused(BiLSTMCRFTagger, directory, "hidden_size must be >= 1, got 0")
    set_config(directory, hidden_size=16, scheme="BILOU")
    refused(BiLSTMCRFTagger, directory, "scheme must be one of")
    forecaster = copy(saved, tmp_path, "forecaster")
    for value, fragment in (([0, -1], "config.target_features must be "), ([3], "indices in")):
        set_config(forecaster, target_features=value)
        refused(LSTMForecaster, forecaster, fragment)
    assert builds == []


def test_a_huge_size_fails_at_once_without_building(saved, tmp_path, builds):
    for name, field in (
        ("tagger", "hidden_size"),
        ("translator", "decoder_hidden_size"),
        ("translator", "decoder_layers"),
        ("char_lm", "hidden_size"),
        ("char_lm", "output_size"),
    ):
        directory = copy(saved, tmp_path, name)
        set_config(directory, **{field: 2**40})
        start = time.perf_counter()
        refused(CLASSES[name], directory, f"config.{field} must be {INTEGER_RANGE}", f"{2**40}")
        assert time.perf_counter() - start < 1.0
        shutil.rmtree(directory)
    assert builds == []


def test_sizes_that_disagree_with_the_weights_are_refused_by_planning(saved, tmp_path, builds):
    for name, field, value, tensor in (
        ("tagger", "hidden_size", 17, "'encoder.rnn.weight_hh_l0' has shape (64, 16) in the file"),
        ("tagger", "char_filters", 20, "in the file but"),
        ("translator", "decoder_hidden_size", 33, "in the file but"),
        ("translator", "decoder_layers", 2, "missing tensor"),
        ("char_lm", "hidden_size", 31, "in the file but"),
        ("classifier", "num_classes", 11, "'head.weight' has shape (10, 32) in the file"),
        ("forecaster", "horizon", 13, "'head.weight' has shape (12, 16) in the file"),
    ):
        directory = copy(saved, tmp_path, name)
        set_config(directory, **{field: value})
        message = refused(
            CLASSES[name], directory, f"{directory / 'model.safetensors'} does not fit", tensor
        )
        assert f"{field}={value}" in message  # named among the keys that shape the tensors
        shutil.rmtree(directory)
    assert builds and set(builds) == {"meta"}


def test_a_layer_count_far_beyond_the_weights_is_refused_in_a_moment(saved, tmp_path, builds):
    for name, field in (
        ("tagger", "num_layers"),
        ("translator", "encoder_layers"),
        ("translator", "decoder_layers"),
        ("char_lm", "num_layers"),
        ("classifier", "num_layers"),
        ("forecaster", "num_layers"),
    ):
        directory = copy(saved, tmp_path, name)
        set_config(directory, **{field: 10**6})
        start = time.perf_counter()
        refused(CLASSES[name], directory, "parameters and buffers", f"{field}=1000000")
        assert time.perf_counter() - start < 5.0
        shutil.rmtree(directory)
    assert set(builds) == {"meta"}


def test_a_vocabulary_far_beyond_the_weights_is_refused_in_a_moment(saved, tmp_path, builds):
    # the CRF walks every pair of labels: 3,000 labels would be 9 million pairs
    directory = copy(saved, tmp_path, "tagger")
    labels = ["O"] + [f"{prefix}-X{i}" for i in range(750) for prefix in "BIES"]
    Vocabulary(labels, pad_token=None, unk_token=None).save(directory / "vocab" / "labels.json")
    start = time.perf_counter()
    refused(BiLSTMCRFTagger, directory, "function calls")
    assert time.perf_counter() - start < 10.0
    assert set(builds) == {"meta"}


def test_the_plan_budget_counts_calls_and_registrations():
    with pytest.raises(PlanTooLarge, match="more than 100 parameters and buffers"):
        planned_tensors(lambda: nn.LSTM(4, 4, num_layers=1000), PlanBudget(10**9, 100))

    def slow_linear() -> nn.Linear:
        for i in range(10**6):
            abs(i)  # a call each
        return nn.Linear(2, 2)

    with pytest.raises(PlanTooLarge, match="more than 1000 function calls"):
        planned_tensors(slow_linear, PlanBudget(1000, 100))
    planned = planned_tensors(lambda: nn.LSTM(4, 8), PlanBudget(10**6, 100))
    shapes = {name: info.shape for group in planned for name, info in group}
    assert shapes["weight_hh_l0"] == (32, 8) and shapes["bias_ih_l0"] == (32,)


# ----------------------------------------------------------------------------- model inputs


@pytest.mark.parametrize("name", ["tagger", "translator", "char_lm"])
def test_a_text_model_without_its_tokenizer_is_refused(saved, tmp_path, builds, name):
    directory = copy(saved, tmp_path, name)
    edit_header(directory, lambda header: header.update(tokenizer=False))
    refused(CLASSES[name], directory, '"tokenizer" is false', "needs a tokenizer")
    assert builds == []


def test_a_forecaster_with_a_tokenizer_is_refused(saved, tmp_path):
    directory = copy(saved, tmp_path, "forecaster")
    shutil.copytree(saved / "char_lm" / "tokenizer", directory / "tokenizer")
    edit_header(directory, lambda header: header.update(tokenizer=True))
    refused(LSTMForecaster, directory, '"tokenizer" is true, but a LSTMForecaster takes none')


def test_missing_or_mislisted_vocabularies_are_refused(saved, tmp_path, builds):
    directory = copy(saved, tmp_path, "tagger")
    (directory / "vocab" / "labels.json").unlink()
    refused(BiLSTMCRFTagger, directory, "incomplete: missing vocab/labels.json")
    edit_header(directory, lambda header: header.update(vocabularies=["chars"]))
    refused(BiLSTMCRFTagger, directory, "vocabularies lacks 'labels', which a BiLSTMCRFTagger")
    directory = copy(saved, tmp_path / "2", "tagger")
    edit_header(directory, lambda header: header.update(vocabularies=["labels"]))
    refused(BiLSTMCRFTagger, directory, "no BiLSTMCRFTagger can be built", "character vocabulary")
    edit_header(directory, lambda header: header.update(vocabularies=["labels", "labels"]))
    refused(BiLSTMCRFTagger, directory, "vocabularies lists ['labels'] more than once")
    edit_header(directory, lambda header: header.update(vocabularies=["../../secret"]))
    refused(BiLSTMCRFTagger, directory, "vocabularies ['../../secret'] are not used")
    assert set(builds) <= {"meta"}


def test_unknown_keys_and_another_model_class_are_refused(saved, tmp_path):
    directory = copy(saved, tmp_path, "translator")
    set_config(directory, beam=5)
    refused(Seq2SeqLSTM, directory, "config has fields ['beam'] that TranslatorConfig lacks")
    refused(BiLSTMCRFTagger, directory, "holds a Seq2SeqLSTM, not a BiLSTMCRFTagger")


# ----------------------------------------------------------------------------- config.json itself


def _returns_within(seconds: float, function) -> BaseException | None:
    """Run function in a thread; the exception it raised (None if none). Fails if it hangs."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            function()
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still running after {seconds} s"
    return outcome[0]


def test_config_json_that_is_no_regular_small_json_object(saved, tmp_path):
    directory = copy(saved, tmp_path, "tagger")
    path = directory / "config.json"
    original = path.read_bytes()
    cases = {
        "[" * 100_000 + "]" * 100_000: "nested too deeply",
        "[]": "expected a JSON object with model_class",
        "null": "expected a JSON object with model_class",
        '{"model_class": "BiLSTMCRFTagger"}': "expected a JSON object with model_class",
        "{not json": "not valid JSON",
    }
    for text, fragment in cases.items():
        path.write_text(text)
        refused(BiLSTMCRFTagger, directory, f"{path}: ", fragment)
    path.write_bytes(b"\xff\xfe{}")
    refused(BiLSTMCRFTagger, directory, f"{path}: not valid JSON")
    header = json.loads(original)
    header["config"]["scheme"] = "x" * MAX_CONFIG_BYTES  # over the size limit: not even read
    path.write_text(json.dumps(header))
    refused(BiLSTMCRFTagger, directory, f"{path}: ", f"more than the {MAX_CONFIG_BYTES}")
    path.unlink()
    path.mkdir()
    refused(BiLSTMCRFTagger, directory, f"{path}: not a regular file (a directory)")
    path.rmdir()
    path.symlink_to("/dev/zero")
    refused(BiLSTMCRFTagger, directory, f"{path}: not a regular file (a device)")
    path.unlink()
    os.mkfifo(path)
    error = _returns_within(10, lambda: BiLSTMCRFTagger.from_pretrained(directory))
    assert isinstance(error, CheckpointError) and "not a regular file (a FIFO)" in str(error)


def test_files_reached_through_symlinks_load(saved, tmp_path):
    # the hub's cache keeps a model directory's files as symlinks into its blob store
    directory = tmp_path / "linked"
    directory.mkdir()
    for entry in (saved / "char_lm").iterdir():
        (directory / entry.name).symlink_to(entry)
    model = LSTMLanguageModel.from_pretrained(directory)
    assert model.config == LSTMLanguageModel.from_pretrained(saved / "char_lm").config


# ----------------------------------------------------------------------------- weights


def _rewrite_weights(directory: Path, change) -> None:
    path = directory / "model.safetensors"
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_weights_that_are_not_finite_are_refused_naming_the_tensor(saved, tmp_path, value):
    directory = copy(saved, tmp_path, "translator")
    name = "decoder.attention.key_layer.weight"
    assert name in load_file(directory / "model.safetensors")
    _rewrite_weights(directory, lambda tensors: tensors[name].view(-1).__setitem__(7, value))
    refused(Seq2SeqLSTM, directory, f"tensor {name!r} holds 1 NaN or infinite values")


def test_a_forecasters_target_indices_must_be_its_configs(saved, tmp_path):
    """The ``targets`` buffer has the config's shape but other values: it would index the
    scaler out of range at forecast, so loading refuses it (check_loaded_weights)."""
    directory = copy(saved, tmp_path, "forecaster")
    targets = load_file(directory / "model.safetensors")["targets"].tolist()
    _rewrite_weights(directory, lambda tensors: tensors["targets"].fill_(10**6))
    refused(LSTMForecaster, directory, "'targets' holds", f"target features are {targets}")


def test_weights_of_another_shape_or_dtype_are_refused_naming_tensor_and_sizes(saved, tmp_path):
    directory = copy(saved, tmp_path, "classifier")
    weights = directory / "model.safetensors"
    original = load_file(weights)
    _rewrite_weights(
        directory, lambda t: t.update({"head.weight": t["head.weight"][:, :5].contiguous()})
    )
    refused(LSTMClassifier, directory, "'head.weight' has shape (10, 5) in the file but (10, 32)")
    save_file({**original, "head.weight": original["head.weight"].int()}, weights)
    refused(LSTMClassifier, directory, "'head.weight' has dtype int32 in the file but float32")
    save_file({**original, "extra": torch.zeros(2)}, weights)
    refused(LSTMClassifier, directory, "unexpected tensor 'extra'")
    save_file({k: v for k, v in original.items() if k != "head.bias"}, weights)
    refused(LSTMClassifier, directory, "missing tensor 'head.bias'")
    # a float tensor takes another float dtype, cast as load_state_dict casts
    save_file({k: v.half() for k, v in original.items()}, weights)
    loaded = LSTMClassifier.from_pretrained(directory)
    assert loaded.head.weight.dtype == torch.float32
    assert torch.equal(loaded.head.weight, original["head.weight"].half().float())
    forecaster = copy(saved, tmp_path, "forecaster")  # an integer buffer needs its own dtype
    _rewrite_weights(forecaster, lambda t: t.update(targets=t["targets"].float()))
    refused(LSTMForecaster, forecaster, "'targets' has dtype float32 in the file but int64")


def test_a_weights_file_that_is_not_one(saved, tmp_path):
    directory = copy(saved, tmp_path, "char_lm")
    path = directory / "model.safetensors"
    path.write_bytes(path.read_bytes()[:50])
    refused(LSTMLanguageModel, directory, f"{path}: not a readable safetensors file")
    path.unlink()
    path.symlink_to("/dev/zero")
    refused(LSTMLanguageModel, directory, f"{path}: not a regular file (a device)")
    path.unlink()
    os.mkfifo(path)
    error = _returns_within(10, lambda: LSTMLanguageModel.from_pretrained(directory))
    assert isinstance(error, CheckpointError) and "not a regular file (a FIFO)" in str(error)


@dataclasses.dataclass
class ReadingConfig:
    size: int = 3


class ReadsItsTensors(PretrainedModel):
    """A model whose constructor reads a tensor's value: it cannot be planned on the meta
    device, so it is built for real and its weights compared after."""

    config_class = ReadingConfig

    def __init__(self, config: ReadingConfig, tokenizer: None = None) -> None:
        super().__init__(config, tokenizer)
        self.linear = nn.Linear(2, config.size)
        self.scale = float(torch.ones(1).sum().item())


def test_a_model_that_cannot_be_planned_is_checked_once_built(tmp_path):
    ReadsItsTensors(ReadingConfig()).save_pretrained(tmp_path / "model")
    assert ReadsItsTensors.from_pretrained(tmp_path / "model").linear.out_features == 3
    set_config(tmp_path / "model", size=4)
    refused(ReadsItsTensors, tmp_path / "model", "'linear.weight' has shape (3, 2) in the file")


# ----------------------------------------------------------------------- tokenizer, vocabularies


def test_a_tampered_tokenizer_is_refused_naming_the_file(saved, tmp_path):
    directory = copy(saved, tmp_path, "char_lm")
    model_file, config_file = (
        directory / "tokenizer" / "spm.model",
        directory / "tokenizer" / "tokenizer.json",
    )
    original = config_file.read_text()
    model_file.write_bytes(b"\x00garbage" * 100)
    refused(LSTMLanguageModel, directory, f"{model_file}: not a SentencePiece model")
    model_file.write_bytes(b"")
    refused(LSTMLanguageModel, directory, f"{model_file}: empty file")
    model_file.unlink()
    refused(LSTMLanguageModel, directory, f"tokenizer file missing: {model_file}")
    model_file.mkdir()
    refused(LSTMLanguageModel, directory, f"{model_file}: not a regular file (a directory)")
    for text, fragment in (
        ("[]", "expected a JSON object"),
        ("{}", "no 'format_version'"),
        ("{" * 10**5, "not valid JSON"),
    ):
        config_file.write_text(text)
        refused(LSTMLanguageModel, directory, f"{config_file}: ", fragment)
    shutil.rmtree(directory / "tokenizer")
    shutil.copytree(saved / "char_lm" / "tokenizer", directory / "tokenizer")
    config_file.write_text(json.dumps({**json.loads(original), "vocab_size": "100"}))
    refused(LSTMLanguageModel, directory, f"does not match {config_file}")


def test_vocabulary_files_of_the_wrong_types_are_refused_naming_the_file(saved, tmp_path):
    directory = copy(saved, tmp_path, "tagger")
    path = directory / "vocab" / "chars.json"
    data = json.loads(path.read_text())
    for change, fragment in (
        ({"tokens": "abc"}, "'tokens' and 'specials' must be lists"),
        ({"tokens": [1, 2]}, "not a valid vocabulary (token 0 is a int"),
        ({"pad_token": ["<pad>"]}, "'pad_token' must be a string or null, not a list"),
        ({"unk_token": 3}, "'unk_token' must be a string or null, not a int"),
        ({"specials": [{}]}, "'specials' must be a list of strings"),
        ({"format_version": "1"}, "format_version 1 is not supported"),
        ({"pad_token": "missing"}, "pad_token 'missing' is not one of the tokens"),
    ):
        path.write_text(json.dumps({**data, **change}))
        refused(BiLSTMCRFTagger, directory, f"{path}: ", fragment)
    for text in ("[]", '"tokens"', "{}"):
        path.write_text(text)
        refused(BiLSTMCRFTagger, directory, f"{path}: not a valid vocabulary file")
    path.unlink()
    os.mkfifo(path)
    error = _returns_within(10, lambda: Vocabulary.load(path))
    assert isinstance(error, CheckpointError) and "not a regular file (a FIFO)" in str(error)


# ----------------------------------------------------------------------------- decoding limits


def test_the_output_length_limit_is_bounded_whatever_the_ratio():
    assert output_length_limit(2.0, 10, 20) == 50  # ratio * length + constant
    assert output_length_limit(0.0, 0, 20) == 1  # at least one token (EOS)
    assert output_length_limit(1e9, 10, 20) == MAX_OUTPUT_LENGTH
    assert output_length_limit(1e300, 10**30, 10**6) == MAX_OUTPUT_LENGTH


def test_translation_length_is_bounded_and_its_arguments_checked(saved, tmp_path, monkeypatch):
    directory = copy(saved, tmp_path, "translator")
    set_config(directory, max_length_ratio=1e9)
    refused(
        Seq2SeqLSTM, directory, f"config.max_length_ratio must be {NUMBER_RANGE}, got 1000000000.0"
    )
    set_config(directory, max_length_ratio=1e6)  # within the range: decoding caps it
    model = Seq2SeqLSTM.from_pretrained(directory)
    limits = []
    search = model._search

    def spy(state, max_lengths, *args):
        limits.extend(max_lengths.tolist())
        return search(state, torch.ones_like(max_lengths), *args)  # one step: a quick test

    monkeypatch.setattr(model, "_search", spy)
    model.translate(["a man is sitting on a bench", "two dogs"], beam_size=1)
    model.translate(["a dog"], beam_size=2, max_length_ratio=1e300)
    assert limits == [MAX_OUTPUT_LENGTH] * 3
    for ratio in (math.nan, math.inf, -1.0, True, "2"):
        with pytest.raises(ValueError, match="max_length_ratio must be a finite number >= 0"):
            model.translate(["a dog"], max_length_ratio=ratio)
    for constant in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_length_constant must be an integer >= 0"):
            model.translate(["a dog"], max_length_constant=constant)


def test_generation_length_is_bounded_and_its_arguments_checked(saved):
    model = LSTMLanguageModel.from_pretrained(saved / "char_lm")
    for tokens in (MAX_NEW_TOKENS + 1, 10**9, -1, 2.5, True):
        start = time.perf_counter()
        with pytest.raises(ValueError, match="max_new_tokens must be an integer in"):
            model.generate("the", tokens)
        assert time.perf_counter() - start < 1.0
    for temperature in (math.nan, math.inf, -1.0):
        with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
            model.generate("the", 5, temperature=temperature)
    assert model.generate("the", 3, temperature=0).startswith("the")


# ------------------------------------------------------------------------- the checks themselves


@dataclasses.dataclass
class Inner:
    depth: int = 1
    kind: Literal["a", "b"] = "a"


@dataclasses.dataclass
class Everything:
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[int, str] = (1, "x")
    rates: list[float] = dataclasses.field(default_factory=list)
    names: dict[str, int] = dataclasses.field(default_factory=dict)
    inner: Inner = dataclasses.field(default_factory=Inner)
    maybe: int | None = None
    offset: int = dataclasses.field(default=0, metadata={"range": (-5, 5)})
    anything: typing.Any = None


def test_values_are_checked_and_converted_by_their_type_hints(tmp_path):
    path = tmp_path / "config.json"
    values = {
        "sizes": [3, 4],
        "pair": [2, "y"],
        "rates": [0, 0.5],
        "names": {"a": 1},
        "inner": {"depth": 2, "kind": "b"},
        "maybe": None,
        "offset": -5,
        "anything": {"x": [1]},
        "unknown": "left to the caller",
    }
    checked = check_config_values(Everything, values, path)
    assert checked["sizes"] == (3, 4) and checked["pair"] == (2, "y")
    assert checked["rates"] == [0.0, 0.5] and isinstance(checked["rates"][0], float)
    assert checked["inner"] == Inner(2, "b") and "unknown" not in checked
    for key, value, fragment in (
        ("sizes", [1, -1], "a list, each item an integer in [0, 16777216]"),
        ("sizes", 3, "a list, each item"),
        ("pair", [1, 2], "a list of 2 values: an integer in [0, 16777216], a string"),
        ("pair", [1, "x", 3], "a list of 2 values"),
        ("rates", [math.nan], "a list, each item a finite number"),
        ("names", {"a": "1"}, "an object, each value an integer"),
        ("maybe", 1.5, "an integer in [0, 16777216] or null"),
        ("offset", 6, "an integer in [-5, 5]"),
        ("offset", -6, "an integer in [-5, 5]"),
    ):
        with pytest.raises(CheckpointError, match=re.escape(f"config.{key} must be {fragment}")):
            check_config_values(Everything, {key: value}, path)
    with pytest.raises(CheckpointError, match=r"config\.inner\.kind must be one of \"a\", \"b\""):
        check_config_values(Everything, {"inner": {"kind": "c"}}, path)
    with pytest.raises(CheckpointError, match=r"config.inner must be an object of the fields"):
        check_config_values(Everything, {"inner": {"width": 1}}, path)
    with pytest.raises(CheckpointError, match=r"got \[0, 0, 0.*\.\.\.$"):  # a long value is cut
        check_config_values(Everything, {"sizes": [0] * 10**5 + [-1]}, path)


class NeedsText(nn.Module):
    vocabulary_names = ("labels", "chars")

    def __init__(
        self,
        config,
        tokenizer: SubwordTokenizer,
        labels: Vocabulary,
        chars: Vocabulary | None = None,
    ) -> None:
        super().__init__()


class TakesAnything(nn.Module):
    vocabulary_names = ("labels",)

    def __init__(self, config, tokenizer, labels=None):
        super().__init__()


def test_model_inputs_are_checked_against_the_constructor_signature(tmp_path):
    path = tmp_path / "config.json"
    check_model_inputs(NeedsText, True, ["labels"], path)
    with pytest.raises(CheckpointError, match='"tokenizer" is false, but a NeedsText needs'):
        check_model_inputs(NeedsText, False, ["labels"], path)
    with pytest.raises(CheckpointError, match="vocabularies lacks 'labels'"):
        check_model_inputs(NeedsText, True, ["chars"], path)
    check_model_inputs(TakesAnything, False, [], path)  # no hints, defaults: nothing required


def test_read_json_bounds_what_it_reads(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"a": 1}')
    assert read_json(path, 8) == {"a": 1}
    with pytest.raises(CheckpointError, match="8 bytes, more than the 7"):
        read_json(path, 7)
    with pytest.raises(CheckpointError, match="no such file"):
        read_json(tmp_path / "absent.json", 7)


# ----------------------------------------------------------------------------- the ONNX directory


def _onnx_directory(tmp_path: Path, **changes) -> Path:
    directory = tmp_path / "export"
    directory.mkdir(exist_ok=True)
    config = {
        "scheme": "IOB2",
        "crf_scheme": "IOBES",
        "lowercase_subwords": False,
        "char_filters": 0,
        "word_embedding_dim": 0,
        "context_words": 0,
        "chunk_words": 800,
        "hidden_size": 16,  # a field inference does not read: not checked here
    }
    data = {
        "format": "seqlstm-onnx-tagger",
        "format_version": 1,
        "opset": 18,
        "feature_dim": 8,
        "num_labels": 2,
        "tagger_config": config,
        "export_check": {},
    }
    for key, value in changes.items():
        (config if key in config else data)[key] = value
    (directory / "onnx_tagger.json").write_text(json.dumps(data))
    return directory


def test_an_onnx_export_header_is_checked_before_onnxruntime_reads_a_graph(tmp_path):
    assert read_header(_onnx_directory(tmp_path)).config["chunk_words"] == 800
    path = tmp_path / "export" / "onnx_tagger.json"
    for change, fragment in (
        ({"chunk_words": 2**40}, f"tagger_config.chunk_words must be {INTEGER_RANGE}"),
        ({"context_words": -1}, "tagger_config.context_words must be an integer"),
        ({"lowercase_subwords": 1}, "tagger_config.lowercase_subwords must be true or false"),
        ({"num_labels": 2**40}, "num_labels must be an integer in [1, 16777216]"),
        ({"feature_dim": 0}, "feature_dim must be an integer in [1, 16777216]"),
    ):
        with pytest.raises(CheckpointError) as error:
            read_header(_onnx_directory(tmp_path, **change))
        assert f"{path}: " in str(error.value) and fragment in str(error.value)
    directory = _onnx_directory(tmp_path)
    os.mkfifo(directory / "emissions.onnx")
    with pytest.raises(CheckpointError, match="emissions.onnx: not a regular file \\(a FIFO\\)"):
        read_header(directory)
    (directory / "emissions.onnx").unlink()
    path.unlink()
    path.mkdir()
    with pytest.raises(CheckpointError, match="onnx_tagger.json: not a regular file"):
        read_header(directory)


def test_crf_scores_must_be_finite(tmp_path):
    path = tmp_path / "crf.json"
    data = {"format_version": 1}
    for name, shape in (("start", [2]), ("transitions", [2, 2]), ("end", [2])):
        data[name] = torch.zeros(shape).tolist()
        data[f"allowed_{name}"] = torch.ones(shape, dtype=torch.bool).tolist()
    path.write_text(json.dumps(data))
    read_crf(path, 2)
    data["transitions"][0][1] = math.nan
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="crf.json: transitions holds NaN or infinite"):
        read_crf(path, 2)


# ----------------------------------------------------------------------------- the command line


def _cli_error(capsys, *argv) -> str:
    status = cli.main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_each_command_gives_one_line_for_a_tampered_model(saved, tmp_path, capsys):
    sentences = tmp_path / "input.txt"
    sentences.write_text("John lives in Berlin .\n")
    tagger, translator, lm = (copy(saved, tmp_path, n) for n in ("tagger", "translator", "char_lm"))
    set_config(tagger, hidden_size=2**40)
    _rewrite_weights(translator, lambda t: t["decoder.attention.key_layer.weight"].fill_(math.nan))
    edit_header(lm, lambda header: header.update(tokenizer=False))
    commands = [
        ("tag", tagger, "config.hidden_size must be", "--input", sentences),
        ("translate", translator, "NaN or infinite values", "--input", sentences),
        ("generate", lm, '"tokenizer" is false'),
        ("serve", lm, '"tokenizer" is false', "--port", "0"),
        ("export", tagger, "config.hidden_size must be", "--format", "onnx", "--out", tmp_path),
    ]
    for command, model, fragment, *rest in commands:
        err = _cli_error(capsys, command, "--model", model, *rest)
        assert err.startswith(f"seqlstm {command}: error: {model}") and fragment in err
    # config.json a FIFO: each command answers at once, in one line
    fifo = copy(saved, tmp_path / "fifo", "tagger")
    (fifo / "config.json").unlink()
    os.mkfifo(fifo / "config.json")
    for command, _, _, *rest in commands:
        argv = [command, "--model", fifo, *rest]
        error = _returns_within(20, lambda argv=argv: _cli_error(capsys, *argv))
        assert error is None, error


def test_loading_under_a_profiler_leaves_it_alone(saved):
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        LSTMLanguageModel.from_pretrained(saved / "char_lm")
    finally:
        profiler.disable()
    assert sys.getprofile() is None
    calls = pstats.Stats(profiler).total_calls
    assert calls > 1000  # the profiler saw the load
