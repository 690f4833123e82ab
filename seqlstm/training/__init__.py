"""The shared training loop: Trainer, its config, checkpoints and DDP setup."""

from seqlstm.training.checkpoint import CheckpointManager, seed_everything
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
    "seed_everything",
]
