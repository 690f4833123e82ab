"""Checks of a model's weights file against the model its config describes, made before the
model is built for real, and of the weights' values once they are read.

A config whose sizes disagree with model.safetensors must be refused before a tensor is
allocated: a hidden size of a billion would otherwise take all the memory there is before a
shape is ever compared. So the model is first *planned*: its constructor runs on PyTorch's
meta device, where tensors have a shape and a dtype but no memory, and the tensors of its
state_dict are compared with those the file's header lists (names, shapes, dtypes) - the
file's own tensors bound every size that shapes a tensor, with no per-model code. Only a
model that fits the file is built, and it then allocates exactly what the file holds.

The plan is bounded too, by counts the file sets: the constructor may register at most
``2 * tensors + 64`` parameters and buffers (counted with torch's registration hooks), and
make at most ``250,000 + 2 * values`` function calls (counted with sys.setprofile, unless a
profiler such as cProfile already holds it); tensors: those of the file, values: their
elements together. A layer count far larger than the file's tensors (a million LSTM layers)
is refused after a few dozen layers, and a vocabulary far larger than they are (a CRF walks
every pair of labels) after a fraction of a second for a small model, instead of running for
hours; work that grows with the model's own weights (a CRF's K x K transitions) stays within
the budget. Random initialisation is skipped on the meta device (it has nothing to fill, and
torch would import its compiler for it).

After reading, every floating-point tensor must hold finite values only: one NaN in a weight
makes every output NaN, so a file with one is refused, naming the tensor. The check is one
min/max pass per tensor: about 10 ms for 65 million weights on one core, where the whole
load takes 0.4 s (planning takes 2 ms).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from torch.nn.modules.module import (
    register_module_buffer_registration_hook,
    register_module_parameter_registration_hook,
)
from torch.overrides import TorchFunctionMode

from seqlstm.errors import CheckpointError
from seqlstm.model_directory_checks import check_regular_file

PLAN_CALLS_BASE = 250_000
PLAN_CALLS_PER_VALUE = 2
PLAN_REGISTRATIONS_BASE = 64
PLAN_REGISTRATIONS_PER_TENSOR = 2
# safetensors' dtype names -> torch's
_FILE_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
# Tensor methods that fill a tensor with random values (torch.nn.init's functions, which call
# them, are recognised by their module)
_RANDOM_FILLS = frozenset(
    {"normal_", "uniform_", "random_", "bernoulli_", "exponential_", "geometric_", "cauchy_"}
    | {"log_normal_"}
)


@dataclass(frozen=True)
class TensorInfo:
    """The shape and dtype of a tensor; the dtype as torch names it ("float32"), or for a
    file's tensor of a dtype torch has no name for here, as safetensors does."""

    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class PlanBudget:
    """The most function calls and parameter/buffer registrations planning may make."""

    calls: int
    registrations: int


class PlanTooLarge(Exception):
    """Planning the model went over its budget: of registrations (``registrations`` true) or
    of function calls; the message says which."""

    def __init__(self, message: str, registrations: bool) -> None:
        super().__init__(message)
        self.registrations = registrations


class _BudgetSpent(BaseException):
    # a BaseException, so that no `except Exception` in a constructor can swallow it
    pass


def read_tensor_infos(path: Path) -> dict[str, TensorInfo]:
    """The name, shape and dtype of each tensor of the safetensors file ``path``, from its
    header alone (nothing else is read); CheckpointError for anything else."""
    check_regular_file(path)
    try:
        with safe_open(str(path), framework="pt") as file:
            infos = {}
            names = file.keys()
            for name in names:
                tensor = file.get_slice(name)
                dtype = tensor.get_dtype()
                dtype = _dtype_name(_FILE_DTYPES[dtype]) if dtype in _FILE_DTYPES else dtype
                infos[name] = TensorInfo(tuple(tensor.get_shape()), dtype)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    return infos


def build_budget(file_tensors: Mapping[str, TensorInfo]) -> PlanBudget:
    """The budget of planning a model for these file tensors (see the module docstring)."""
    values = sum(math.prod(info.shape) for info in file_tensors.values())
    return PlanBudget(
        calls=PLAN_CALLS_BASE + PLAN_CALLS_PER_VALUE * values,
        registrations=PLAN_REGISTRATIONS_BASE + PLAN_REGISTRATIONS_PER_TENSOR * len(file_tensors),
    )


def planned_tensors(
    build: Callable[[], nn.Module], budget: PlanBudget
) -> list[list[tuple[str, TensorInfo]]]:
    """The state_dict of ``build()`` run on the meta device, grouped by tensor (a tied tensor is
    one group of several names): [[(name, TensorInfo)], ...].

    Raises PlanTooLarge when ``build`` goes over ``budget``, and passes on whatever else
    ``build`` raises.
    """
    owner = threading.get_ident()
    calls = registrations = 0
    spent = ""

    def registered(module: nn.Module, name: str, value: Any) -> None:
        # torch's registration hooks are global: another thread's modules are not counted
        nonlocal registrations, spent
        if threading.get_ident() == owner:
            registrations += 1
            if registrations > budget.registrations:
                spent = f"more than {budget.registrations} parameters and buffers"
                raise _BudgetSpent

    def called(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls, spent
        if event == "call" or event == "c_call":
            calls += 1
            if calls > budget.calls:
                spent = f"more than {budget.calls} function calls"
                raise _BudgetSpent

    hooks = [
        register_module_parameter_registration_hook(registered),
        register_module_buffer_registration_hook(registered),
    ]
    # a profiler of the caller's (cProfile) is left alone, and calls then go uncounted
    counting = sys.getprofile() is None
    if counting:
        sys.setprofile(called)  # per thread
    try:
        with torch.device("meta"), _SkipRandomFills():
            model = build()
    except _BudgetSpent:
        raise PlanTooLarge(spent, spent.endswith("buffers")) from None
    finally:
        if counting:
            sys.setprofile(None)
        for hook in hooks:
            hook.remove()
    groups: dict[int, list[tuple[str, TensorInfo]]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append((name, tensor_info(tensor)))
    return list(groups.values())


def tensor_info(tensor: torch.Tensor) -> TensorInfo:
    """The shape and dtype of ``tensor``."""
    return TensorInfo(tuple(tensor.shape), _dtype_name(tensor.dtype))


class TensorProblem(NamedTuple):
    """One way in which a file's tensors do not fit a model: the tensor names it is about."""

    names: tuple[str, ...]
    text: str


def tensor_problems(
    planned: list[list[tuple[str, TensorInfo]]], file_tensors: Mapping[str, TensorInfo]
) -> list[TensorProblem]:
    """What keeps the file's tensors from filling the planned model, one problem each:
    unexpected and missing tensors, other shapes, other dtypes. A floating-point tensor of
    the model takes any floating-point dtype of the file (cast as load_state_dict casts: a
    model saved after .half() loads); any other tensor needs its own dtype."""
    own = {name: info for group in planned for name, info in group}
    problems = [
        TensorProblem((name,), f"unexpected tensor {name!r}")
        for name in sorted(file_tensors.keys() - own.keys())
    ]
    for group in planned:
        names = tuple(name for name, _ in group)
        if not any(name in file_tensors for name in names):
            problems.append(
                TensorProblem(names, f"missing tensor {' = '.join(repr(n) for n in names)}")
            )
    for name in sorted(file_tensors.keys() & own.keys()):
        found, expected = file_tensors[name], own[name]
        if found.shape != expected.shape:
            problems.append(
                TensorProblem(
                    (name,),
                    f"{name!r} has shape {found.shape} in the file but {expected.shape} in the "
                    "model",
                )
            )
        if not _dtype_fits(found.dtype, expected.dtype):
            problems.append(
                TensorProblem(
                    (name,),
                    f"{name!r} has dtype {found.dtype} in the file but {expected.dtype} in the "
                    "model",
                )
            )
    return problems


def config_keys_shaping(
    config: Any,
    plan: Callable[[Any], list[list[tuple[str, TensorInfo]]]],
    names: set[str],
    baseline: list[list[tuple[str, TensorInfo]]] | None,
) -> list[str]:
    """For messages, the keys a reader should look at, as "key=value": the integer and
    true/false keys of the dataclass ``config`` that change the tensors ``names`` of the plan
    ``baseline`` - each key varied on its own (an integer by one either way, a flag flipped) and the
    model planned again with ``plan``; or, with ``baseline`` None (the plan went over its
    budget), the integer keys above 1 that, set to 1, bring it within."""
    before = None if baseline is None else _named(baseline, names)
    keys = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, bool):
            variants: list[Any] = [] if before is None else [not value]
        elif isinstance(value, int):
            variants = ([1] if value > 1 else []) if before is None else [value + 1, value - 1]
        else:
            continue
        for changed in variants:
            try:
                after = plan(dataclasses.replace(config, **{field.name: changed}))
            except Exception:  # still too large, or no valid config or model: nothing learnt
                continue
            if before is None or _named(after, names) != before:
                keys.append(f"{field.name}={value}")
                break
    return keys


def keys_beyond_tensors(config: Any, file_tensors: Mapping[str, TensorInfo]) -> list[str]:
    """The integer keys of the dataclass ``config`` larger than every dimension of the file's
    tensors, as "key=value": for the message of a plan too large, the likely culprits."""
    largest = max((size for info in file_tensors.values() for size in info.shape), default=0)
    return [
        f"{field.name}={value}"
        for field in dataclasses.fields(config)
        if isinstance(value := getattr(config, field.name), int)
        and not isinstance(value, bool)
        and value > largest
    ]


def check_finite(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    """CheckpointError naming the first floating-point tensor that holds a NaN or infinity."""
    for name, tensor in tensors.items():
        if not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        # min and max are NaN if any value is, and infinite if any is: one pass, no copy
        low, high = torch.aminmax(tensor)
        if not bool(low.isfinite() & high.isfinite()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{path}: tensor {name!r} holds {bad} NaN or infinite values (of "
                f"{tensor.numel()}); weights must be finite numbers"
            )


def _named(planned: list[list[tuple[str, TensorInfo]]], names: set[str]) -> dict[str, TensorInfo]:
    return {name: info for group in planned for name, info in group if name in names}


def _dtype_fits(file_dtype: str, model_dtype: str) -> bool:
    found, expected = getattr(torch, file_dtype, None), getattr(torch, model_dtype, None)
    if not (isinstance(found, torch.dtype) and isinstance(expected, torch.dtype)):
        return False
    return found == expected or (found.is_floating_point and expected.is_floating_point)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class _SkipRandomFills(TorchFunctionMode):
    """On the meta device, random initialisation is a no-op that returns its tensor."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _RANDOM_FILLS or (
            name.endswith("_") and getattr(func, "__module__", "") == "torch.nn.init"
        ):
            first = args[0] if args else next(iter(kwargs.values()), None)
            if isinstance(first, torch.Tensor) and first.is_meta:
                return first
        return func(*args, **kwargs)
