"""One rank of the language-model DDP test; tests/training/test_distributed_lm.py launches two.

Usage: ``python -m torch.distributed.run --nproc_per_node=2 tests/training/lm_ddp_worker.py
DIR``, where DIR/initial is a saved LSTMLanguageModel. Each rank joins the process group
before it builds its batches, so that ``StreamBatches`` finds its rank there (nothing is
passed, as in the recipes), trains on ROWS with the Trainer and records the rows of the stream
it read; rank 0 also writes the trained weights and the validation metrics.
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file

from seqlstm.data.streams import LMBatch, StreamBatches
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
from seqlstm.training import DistributedContext, Trainer, TrainerConfig
from seqlstm.training.distributed import destroy_distributed, init_distributed

ROWS = [
    {"text": line}
    for line in [
        "When shall we three meet again",
        "In thunder, lightning, or in rain?",
        "When the hurlyburly's done,",
        "When the battle's lost and won.",
        "That will be ere the set of sun.",
        "",
        "Where the place? Upon the heath.",
        "There to meet with Macbeth.",
        "Fair is foul, and foul is fair:",
        "Hover through the fog and filthy air.",
    ]
]
ROWS_PER_RANK = 2
BPTT = 16


class SeenWindows:
    """The Trainer's BatchSource over ``batches``, keeping the inputs of every window it gave."""

    def __init__(self, batches: StreamBatches) -> None:
        self.batches = batches
        self.seen: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int) -> Iterator[LMBatch]:
        for batch in self.batches.epoch(epoch):
            self.seen.append(batch.inputs)
            yield batch


def load_model(directory: Path) -> LSTMLanguageModel:
    """The saved model in float64, so that the comparison can be tight."""
    return LSTMLanguageModel.from_pretrained(directory).double()


def config(output_dir: Path) -> TrainerConfig:
    return TrainerConfig(
        output_dir=str(output_dir),
        optimizer="sgd",
        lr=2.0,
        grad_clip=None,  # clipping would hide a wrong normalisation
        accumulation_steps=2,  # carried state across micro-batches, and DDP's no_sync
        max_epochs=2,  # the state is reset at the start of the second epoch
        save_checkpoints=False,
        progress_bar=False,
        device="cpu",
    )


def evaluate(model: LSTMLanguageModel) -> dict[str, float]:
    return {"loss": model.evaluate(ROWS, batch_size=2, bptt=BPTT)["nll"]}


def main(directory: Path) -> None:
    context = DistributedContext.from_env("cpu")
    init_distributed(context)
    try:
        model = load_model(directory / "initial")
        examples = model.encode(ROWS)
        pad_id, bos_id = model.tokenizer.pad_id, model.tokenizer.bos_id
        batches = SeenWindows(
            StreamBatches.from_examples(examples, ROWS_PER_RANK, BPTT, pad_id, bos_id)
        )
        trainer = Trainer(model, config(directory / "run"), batches, evaluate_fn=evaluate)
        assert trainer.context.world_size == 2
        best = trainer.fit()
        # the rows of the stream this rank trained on: epoch 0's windows side by side
        rows = torch.cat(batches.seen[: len(batches)], dim=1)
        save_file({"rows": rows}, directory / f"rows-{context.rank}.safetensors")
        if context.rank == 0:
            # cloned: the output layer is tied to the embedding, and safetensors stores no views
            params = {name: value.clone() for name, value in model.state_dict().items()}
            save_file(params, directory / "params.safetensors")
            (directory / "metrics.json").write_text(json.dumps(best))
    finally:
        destroy_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
