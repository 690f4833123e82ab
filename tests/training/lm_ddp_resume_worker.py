"""One rank of the language model's DDP resume test (tests/training/test_distributed_lm.py).

Usage: ``python -m torch.distributed.run --nproc_per_node=2 lm_ddp_resume_worker.py DIR``,
where DIR/initial is a saved LSTMLanguageModel with dropout (drawn per rank: each rank's RNG
state must come back too). In one process group each rank trains three times on its own rows
of the stream: without a break (DIR/full), stopped after
step STOP mid-epoch, and resumed from that checkpoint (both DIR/split). Rank 0 writes the
weights of the first and the last to DIR/full.safetensors and DIR/resumed.safetensors; each
rank writes the carried state it had after STOP steps to DIR/carried-RANK.safetensors.
"""

import sys
from pathlib import Path

from lm_ddp_worker import BPTT, ROWS, ROWS_PER_RANK, evaluate, load_model
from safetensors.torch import save_file

from seqlstm.data.streams import StreamBatches
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
from seqlstm.training import DistributedContext, Trainer, TrainerConfig
from seqlstm.training.distributed import destroy_distributed, init_distributed

STOP = 3


def train(directory: Path, output_dir: Path, **overrides) -> LSTMLanguageModel:
    model = load_model(directory / "initial")
    tok = model.tokenizer
    batches = StreamBatches.from_examples(
        model.encode(ROWS), ROWS_PER_RANK, BPTT, tok.pad_id, tok.bos_id
    )
    config = TrainerConfig(
        output_dir=str(output_dir),
        optimizer="adam",
        lr=0.01,
        max_epochs=2,
        checkpoint_every_steps=2,
        keep_last=20,  # the test reads the checkpoint of step STOP
        eval_every_steps=2,
        progress_bar=False,
        device="cpu",
        seed=11,
        **overrides,
    )
    Trainer(model, config, batches, evaluate_fn=evaluate).fit()
    return model


def main(directory: Path) -> None:
    context = DistributedContext.from_env("cpu")
    init_distributed(context)
    try:
        full = train(directory, directory / "full")
        stopped = train(directory, directory / "split", max_steps=STOP)
        carried = {k: v.clone() for k, v in stopped.training_state_dict().items()}
        save_file(carried, directory / f"carried-{context.rank}.safetensors")
        resumed = train(directory, directory / "split", resume=True)
        if context.rank == 0:
            # cloned: the output layer is tied to the embedding, and safetensors stores no views
            for name, model in (("full", full), ("resumed", resumed)):
                params = {k: v.clone() for k, v in model.state_dict().items()}
                save_file(params, directory / f"{name}.safetensors")
    finally:
        destroy_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
