"""Process-group setup for multi-GPU / multi-node training launched with ``torchrun``.

``torchrun`` starts one process per device and tells each one who it is through the
environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`DistributedContext.from_env` reads that without side effects, so a recipe can shard
its data before the Trainer exists; :func:`init_distributed` joins the process group (NCCL
on CUDA, gloo otherwise) and pins the process to ``cuda:LOCAL_RANK``.

The small collectives below carry JSON-able values (validation metrics, RNG states) and dicts
of tensors (each rank's carried training state) as uint8 tensors of JSON or safetensors
bytes, so that nothing is pickled, and they run on the device the backend needs (NCCL only
moves CUDA tensors).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import safetensors.torch
import torch
import torch.distributed as dist

from seqlstm.training.device import resolve_device

# Rank 0 evaluates while the others wait in a collective; the default NCCL timeout
# (10 minutes) would kill a long validation pass.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is in the job and which device it drives."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def from_env(cls, device: str = "auto") -> DistributedContext:
        """Read the torchrun environment (a single process when it is absent); no side effects."""
        try:
            rank = int(os.environ.get("RANK", "0"))
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            world_size = int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError as err:
            raise ValueError(f"RANK/LOCAL_RANK/WORLD_SIZE must be integers: {err}") from err
        if not 0 <= rank < world_size:
            raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
        return cls(rank, local_rank, world_size, resolve_device(device, local_rank))

    @property
    def is_main(self) -> bool:
        """Only rank 0 logs, writes checkpoints and evaluates."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(context: DistributedContext) -> bool:
    """Join the process group for ``context``; returns True when this call created it.

    A single process, or a process group that the caller already set up, is left alone, so
    the caller knows whether it owns the group (and must :func:`destroy_distributed` it).
    """
    if not context.is_distributed or dist.is_initialized():
        return False
    if context.device.type == "cuda":
        torch.cuda.set_device(context.device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(
        backend,
        rank=context.rank,
        world_size=context.world_size,
        timeout=PROCESS_GROUP_TIMEOUT,
    )
    return True


def destroy_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.is_distributed:
        dist.barrier()


def all_reduce_sum_(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (asynchronous on the device, no host sync)."""
    if context.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def _comm_device(context: DistributedContext) -> torch.device:
    return context.device if dist.get_backend() == "nccl" else torch.device("cpu")


def _encode(value: Any, device: torch.device) -> torch.Tensor:
    data = json.dumps(value).encode()
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)


def _decode(tensor: torch.Tensor) -> Any:
    return json.loads(bytes(tensor.cpu().tolist()).decode())


def broadcast_json(value: Any, context: DistributedContext, src: int = 0) -> Any:
    """Rank ``src``'s JSON-able ``value``, on every rank (other ranks may pass None)."""
    if not context.is_distributed:
        return value
    device = _comm_device(context)
    payload = _encode(value, device) if context.rank == src else None
    size = torch.tensor([0 if payload is None else payload.numel()], device=device)
    dist.broadcast(size, src)
    if payload is None:
        payload = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    dist.broadcast(payload, src)
    return _decode(payload)


def all_gather_json(value: Any, context: DistributedContext) -> list[Any]:
    """Every rank's JSON-able ``value``, indexed by rank."""
    if not context.is_distributed:
        return [value]
    device = _comm_device(context)
    return [_decode(payload) for payload in _all_gather_bytes(_encode(value, device), context)]


def all_gather_tensors(
    tensors: dict[str, torch.Tensor], context: DistributedContext
) -> list[dict[str, torch.Tensor]]:
    """Every rank's ``{name: tensor}``, indexed by rank, as CPU copies (sent as safetensors
    bytes, which keep dtype and shape exactly)."""
    # copies: safetensors refuses tensors that share memory, and the caller keeps its own
    copies = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in tensors.items()}
    if not context.is_distributed:
        return [copies]
    blob = safetensors.torch.save(copies)
    payload = torch.frombuffer(bytearray(blob), dtype=torch.uint8).to(_comm_device(context))
    return [
        safetensors.torch.load(p.cpu().numpy().tobytes())
        for p in _all_gather_bytes(payload, context)
    ]


def _all_gather_bytes(payload: torch.Tensor, context: DistributedContext) -> list[torch.Tensor]:
    """Every rank's uint8 ``payload`` (their lengths may differ), indexed by rank."""
    device = payload.device
    size = torch.tensor([payload.numel()], device=device)
    sizes = [torch.empty_like(size) for _ in range(context.world_size)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8, device=device)
    padded[: payload.numel()] = payload
    gathered = [torch.empty_like(padded) for _ in range(context.world_size)]
    dist.all_gather(gathered, padded)
    return [g[: int(s.item())] for g, s in zip(gathered, sizes, strict=True)]
