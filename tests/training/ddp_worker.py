"""One rank of the DDP test; tests/test_distributed.py launches two under torchrun (gloo, CPU).

Usage: ``python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py OUT_DIR``.
Each rank trains one optimizer step on its share of ``SEQUENCES`` (two accumulation
micro-batches with unequal token counts) and rank 0 writes the parameters to
``OUT_DIR/params.safetensors``.
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from seqlstm.tasks.base import StepOutput
from seqlstm.training import DistributedContext, Trainer, TrainerConfig

# Rank r gets micro-batches SEQUENCES[r]; their token counts are 6 + 1 and 2 + 3.
SEQUENCES = [
    [[[1, 2, 3, 4, 5, 6]], [[7]]],
    [[[8, 9], [3, 3]], [[4, 1, 2]]],
]


class TinyModel(nn.Module):
    """Embedding + linear next-token model in float64, so comparisons can be tight."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.out = nn.Linear(6, 10)
        self.double()

    def forward(self, batch: dict) -> StepOutput:
        logits = self.out(torch.tanh(self.emb(batch["inputs"])))
        mask = batch["mask"]
        loss = F.cross_entropy(logits[mask], batch["targets"][mask], reduction="sum")
        return StepOutput(loss, mask.sum())


def make_model() -> TinyModel:
    torch.manual_seed(0)
    return TinyModel()


def make_batch(sequences: list[list[int]]) -> dict:
    """Targets are the inputs shifted by one within the vocabulary; padding is masked."""
    width = max(map(len, sequences))
    inputs = torch.tensor([s + [0] * (width - len(s)) for s in sequences])
    mask = torch.tensor([[i < len(s) for i in range(width)] for s in sequences])
    return {"inputs": inputs, "targets": (inputs + 1) % 10, "mask": mask}


class Batches:
    def __init__(self, batches: list[dict]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int):
        return iter(self.batches)


def config(output_dir: Path, accumulation_steps: int) -> TrainerConfig:
    return TrainerConfig(
        output_dir=str(output_dir),
        optimizer="sgd",
        lr=0.5,
        grad_clip=None,  # clipping would hide a wrong normalisation
        accumulation_steps=accumulation_steps,
        max_steps=1,
        progress_bar=False,
        device="cpu",
    )


def main(out_dir: Path) -> None:
    rank = DistributedContext.from_env("cpu").rank
    model = make_model()
    batches = Batches([make_batch(micro) for micro in SEQUENCES[rank]])
    trainer = Trainer(
        model, config(out_dir / "run", 2), batches, evaluate_fn=lambda m: {"loss": 1.0}
    )
    assert trainer.context.world_size == 2
    trainer.fit()
    if rank == 0:
        save_file(model.state_dict(), out_dir / "params.safetensors")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
