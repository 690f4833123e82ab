"""The one rule that turns a device name (``--device``, ``TrainerConfig.device``) into a device.

Recipes, the CLI and the Trainer all call :func:`resolve_device`, so ``"auto"`` means the same
everywhere, and asking for an accelerator that is not there fails before any work is done
rather than falling back to the CPU without a word.
"""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The ``torch.device`` for ``name``.

    Args:
        name: ``"auto"`` (CUDA, then Apple MPS, then the CPU), ``"cpu"``, ``"mps"``,
            ``"cuda"`` or ``"cuda:N"``.
        local_rank: this process's index on its machine (``LOCAL_RANK`` under ``torchrun``);
            a bare ``"cuda"`` means ``cuda:local_rank``, so each process drives its own GPU.

    Raises:
        ValueError: ``name`` is not a device, or names CUDA (or a CUDA index) or MPS that
            this machine does not have.
    """
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for, but torch sees no CUDA device")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} was asked for, but torch sees only "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} was asked for, but torch sees no Apple MPS device")
    return device
