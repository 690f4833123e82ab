"""One rank of a toy recipe under torchrun; tests/experiment/test_run.py launches two (gloo, CPU).

Usage: ``python -m torch.distributed.run --nproc_per_node=2 recipe_worker.py OUT_DIR``.
Every rank runs the same ``RecipeRun`` (results in OUT_DIR/run, which only rank 0 may write)
and writes what it saw to OUT_DIR/rank{R}.json: the results ``finish`` returned, the training
rows its batches held, whether it had a RunRecorder and whether the process group was left.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch.distributed as dist

from seqlstm.data import BucketedBatches
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, evaluate_on
from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier

ROWS = [{"inputs": [[float(i % 3)], [float(i % 5)]], "label": i % 2} for i in range(16)]


@dataclass
class ToyConfig(RunSettings):
    hidden_size: int = 4
    max_steps: int | None = 2


def main(out: Path) -> None:
    argv = ["--out", str(out / "run"), "--device", "cpu", "--seed", "3"]
    run = RecipeRun.start(ToyConfig, {}, argv, None, "runs/toy")
    run.begin("toy classification", "rows", ROWS)
    model = LSTMClassifier(config_from(ClassifierConfig, run.config, num_classes=2, input_size=1))
    seen: list[int] = []

    def collate(pairs: list) -> object:
        seen.extend(number for number, _ in pairs)
        return model.collate([example for _, example in pairs])

    examples = list(enumerate(model.encode(ROWS)))
    # 16 rows of 2 steps, 4 a batch: 4 batches an epoch, 2 for each rank
    batches = BucketedBatches(examples, [2] * 16, collate, max_tokens=8, seed=run.seed)
    best = run.fit(model, batches, evaluate_on(ROWS), metric="accuracy", metric_mode="max")
    results = run.finish({"valid": best})
    record = {
        "results": results,
        "seen": seen,
        "recorded": run.recorder is not None,
        "group_left": not dist.is_initialized(),
    }
    (out / f"rank{run.context.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
