"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a directory ``step-00001234/`` holding

- ``tensors.safetensors``: model weights (``model/``; with weight averaging the average, and
  the raw weights under ``training_weights/``), optimizer state tensors, torch RNG states
  (uint8);
- ``state.json``: counters, data position, optimizer hyperparameters, schedule state, RNG
  states of ``random``/numpy, the config, and the sha256 of the tensor file.

Nested state such as ``optimizer.state_dict()`` is split into the two files by
:func:`flatten_state`: every tensor is replaced by ``{"__tensor__": name}`` and stored under
that name, and the JSON-incompatible containers (tuples, dicts with int keys) are tagged so
that :func:`unflatten_state` rebuilds exactly the same structure.

Writes are atomic: the directory is filled under a temporary name, fsynced, and renamed into
place; the ``latest`` and ``best`` pointer files are replaced the same way. A crash therefore
leaves either the old checkpoint or the new one, never half of one. Pruning renames a
checkpoint aside (``.deleting-step-...``) before deleting its files, so a crash there never
leaves a half-deleted ``step-*`` directory either; and a ``step-*`` directory counts as a
checkpoint only when it is complete (both files: ``state.json``, which records the sha256 of
the tensor file, is the completion marker), so anything else is never resumed from.
:meth:`CheckpointManager.remove_stale_temporaries` deletes all such leftovers.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from seqlstm.atomic_files import (
    delete_directory,
    remove_temporaries,
    staged_directory,
    write_text_atomic,
)
from seqlstm.errors import CheckpointError

FORMAT_VERSION = 1
TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
LATEST = "latest"
BEST = "best"
_PREFIX = "step-"
_MAX_LISTED = 10  # mismatches named in one error message


# --- nested state <-> (JSON, tensors) -------------------------------------------------------


def flatten_state(obj: Any, prefix: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested structure into a JSON-able skeleton and a flat ``{name: tensor}`` dict.

    Tensor names are ``prefix`` followed by the path of keys, e.g. ``optimizer/state/0/exp_avg``.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value
            return {"__tensor__": path}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: walk(v, f"{path}/{k}") for k, v in value.items()}
            return {"__dict__": [[k, walk(v, f"{path}/{k}")] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"__tuple__": [walk(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"cannot store {type(value).__name__} at {path!r} in a checkpoint")

    return walk(obj, prefix), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if "__tensor__" in skeleton:
        name = skeleton["__tensor__"]
        if name not in tensors:
            raise CheckpointError(f"checkpoint state refers to tensor {name!r}, which is missing")
        return tensors[name]
    if "__tuple__" in skeleton:
        return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
    if "__dict__" in skeleton:
        return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
    return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}


# --- checkpoint directories ----------------------------------------------------------------


def _detached(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies; tensors sharing memory (tied weights) are stored separately
    because safetensors refuses aliased storage."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in tensors.items():
        t = tensor.detach().cpu().contiguous()
        if t.numel() and t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def write_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """Atomically write a checkpoint directory (replacing an existing one at ``path``)."""
    blob = safetensors.torch.save(_detached(tensors))
    full_state = {
        "format_version": FORMAT_VERSION,
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        **state,
    }
    with staged_directory(path) as staging:
        (staging / TENSORS_FILE).write_bytes(blob)
        (staging / STATE_FILE).write_bytes(json.dumps(full_state, indent=1).encode())


def read_checkpoint_state(path: str | Path) -> dict:
    """The JSON half of a checkpoint directory (counters, config ...), without reading its
    tensors; CheckpointError names what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    state_path = path / STATE_FILE
    for required in (state_path, path / TENSORS_FILE):
        if not required.is_file():
            raise CheckpointError(f"checkpoint {path} is incomplete: {required.name} is missing")
    try:
        state = json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{state_path} is corrupt (not valid JSON: {err})") from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{state_path} is not a seqlstm checkpoint of format version {FORMAT_VERSION}"
        )
    return state


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read and verify a checkpoint directory; CheckpointError names what is wrong."""
    path = Path(path)
    state = read_checkpoint_state(path)
    tensors_path = path / TENSORS_FILE
    blob = tensors_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != state.get("tensors_sha256"):
        raise CheckpointError(
            f"{tensors_path} is corrupt: its sha256 does not match the one in {STATE_FILE}"
        )
    try:
        tensors = safetensors.torch.load(blob)
    except Exception as err:  # safetensors raises its own error types for a bad header
        raise CheckpointError(f"{tensors_path} is corrupt: {err}") from err
    return tensors, state


# --- model weights --------------------------------------------------------------------------


def model_class_name(model: nn.Module) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def load_model_weights(
    model: nn.Module,
    tensors: dict[str, torch.Tensor],
    state: dict,
    source: str | Path,
    prefix: str = "model/",
) -> None:
    """Copy the weights stored under ``prefix`` into ``model`` after checking they belong to it.

    Raises CheckpointError naming the other model class, or the missing, unexpected and
    differently shaped parameters (a checkpoint from another config).
    """
    expected_class = model_class_name(model)
    if state.get("model_class") != expected_class:
        raise CheckpointError(
            f"checkpoint {source} holds a {state.get('model_class')}, not a {expected_class}"
        )
    saved = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = model.state_dict()
    problems = []
    missing = sorted(own.keys() - saved.keys())
    unexpected = sorted(saved.keys() - own.keys())
    if missing:
        problems.append(f"missing {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listing(unexpected)}")
    shapes = [
        f"{name} {tuple(saved[name].shape)} vs model {tuple(own[name].shape)}"
        for name in sorted(own.keys() & saved.keys())
        if saved[name].shape != own[name].shape
    ]
    if shapes:
        problems.append(f"different shapes {_listing(shapes)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {source} does not match this {expected_class} (another config?): "
            + "; ".join(problems)
        )
    model.load_state_dict(saved)


# --- random number generators ---------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state(device: torch.device) -> tuple[dict[str, torch.Tensor], dict]:
    """RNG states of this process: torch generators as uint8 tensors, the rest JSON-able."""
    tensors = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        tensors["mps"] = torch.mps.get_rng_state()
    version, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return tensors, {
        "python": [version, list(internal), gauss],
        "numpy": {
            "keys": keys.tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }


def restore_rng_state(tensors: dict[str, torch.Tensor], state: dict, device: torch.device) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(tensors["torch"])
    if device.type == "cuda" and "cuda" in tensors:
        torch.cuda.set_rng_state(tensors["cuda"], device)
    elif device.type == "mps" and "mps" in tensors:
        torch.mps.set_rng_state(tensors["mps"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np.array(numpy_state["keys"], dtype=np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )


# --- a directory of checkpoints -------------------------------------------------------------


def _step_of(path: Path) -> int:
    return int(path.name[len(_PREFIX) :])


def is_complete_checkpoint(path: Path) -> bool:
    """Whether the directory ``path`` holds both files of a checkpoint (their content is
    verified by :func:`read_checkpoint`)."""
    return (path / STATE_FILE).is_file() and (path / TENSORS_FILE).is_file()


class CheckpointManager:
    """``directory/step-NNNNNNNN/`` checkpoints with ``latest`` and ``best`` pointer files.

    After each save only the ``keep_last`` newest checkpoints survive, plus the best one
    when ``keep_best``. Which checkpoint is best is the caller's decision (``is_best``).
    """

    def __init__(self, directory: str | Path, keep_last: int = 3, keep_best: bool = True):
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.keep_best = keep_best

    def _step_directories(self) -> list[Path]:
        """Every ``step-N`` directory, complete or not, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [
            p
            for p in self.directory.iterdir()
            if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit()
        ]
        return sorted(found, key=_step_of)

    def checkpoints(self) -> list[Path]:
        """Existing complete checkpoint directories, oldest first."""
        return [p for p in self._step_directories() if is_complete_checkpoint(p)]

    def _pointer(self, name: str) -> Path | None:
        pointer = self.directory / name
        if not pointer.is_file():
            return None
        target = self.directory / pointer.read_text().strip()
        if not target.is_dir():
            raise CheckpointError(f"{pointer} points to {target}, which does not exist")
        if not is_complete_checkpoint(target):
            raise CheckpointError(
                f"{pointer} points to {target}, which is incomplete ({STATE_FILE} or "
                f"{TENSORS_FILE} is missing)"
            )
        return target

    def latest(self) -> Path | None:
        """The newest complete checkpoint. The ``latest`` pointer file names the same one
        for people and tools; a crash between writing a checkpoint and its pointer loses
        nothing, since the directories themselves are read."""
        found = self.checkpoints()
        return found[-1] if found else None

    def best(self) -> Path | None:
        return self._pointer(BEST)

    def remove_stale_temporaries(self) -> list[str]:
        """Delete what a crash left: half-written files and directories of a save, a
        checkpoint half-deleted by a prune, and any ``step-*`` directory that is not a
        complete checkpoint. Returns the names removed. Only safe while no other process
        writes here (the Trainer holds the lock of its output directory)."""
        removed = remove_temporaries(self.directory)
        for path in self._step_directories():
            if not is_complete_checkpoint(path):
                delete_directory(path)
                removed.append(path.name)
        return removed

    def save(
        self, step: int, tensors: dict[str, torch.Tensor], state: dict, is_best: bool = False
    ) -> Path:
        path = self.directory / f"{_PREFIX}{step:08d}"
        write_checkpoint(path, tensors, state)
        write_text_atomic(self.directory / LATEST, path.name + "\n")
        if is_best:
            write_text_atomic(self.directory / BEST, path.name + "\n")
        self._prune()
        return path

    def _prune(self) -> None:
        keep = set(self.checkpoints()[-self.keep_last :])
        best = self.best()
        if best is not None and self.keep_best:
            keep.add(best)
        elif best is not None and best not in keep:
            (self.directory / BEST).unlink()  # never leave a pointer to a deleted checkpoint
        for path in self.checkpoints():
            if path not in keep:
                delete_directory(path)
