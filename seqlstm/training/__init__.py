"""The shared training loop: Trainer, its config, checkpoints, DDP setup and the device rule."""

from seqlstm.training.checkpoint import CheckpointManager, seed_everything
from seqlstm.training.device import resolve_device
from seqlstm.training.distributed import DistributedContext
from seqlstm.training.trainer import (
    BatchSource,
    Trainer,
    TrainerConfig,
    TrainingDivergedError,
)

__all__ = [
    "BatchSource",
    "CheckpointManager",
    "DistributedContext",
    "Trainer",
    "TrainerConfig",
    "TrainingDivergedError",
    "resolve_device",
    "seed_everything",
]
