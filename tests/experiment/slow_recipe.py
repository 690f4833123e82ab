"""A toy recipe whose steps can be made slow, for the tests that kill a run or start a second
one on the same OUT (tests/experiment/test_run_lock.py).

Usage: ``python slow_recipe.py --out DIR [--step-delay SECONDS] [--resume true] ...``: an
LSTM classifier on 16 rows, 4 batches an epoch, 12 steps, a checkpoint every 2 steps and an
evaluation every 4; each batch waits ``--step-delay`` seconds before it is handed over.
"""

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from seqlstm.data import BucketedBatches
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, evaluate_on, run_recipe
from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier

ROWS = [
    {"inputs": [[float(i % 3)], [float(i % 5)], [float(i % 7)]], "label": i % 2} for i in range(16)
]


@dataclass
class SlowToyConfig(RunSettings):
    hidden_size: int = 6
    dropout: float = 0.2
    num_layers: int = 2
    max_steps: int | None = 12
    eval_every_steps: int | None = 4
    checkpoint_every_steps: int | None = 2
    threads: int | None = 1
    resume: bool = False  # continue from the checkpoints in OUT/trainer
    step_delay: float = 0.0  # seconds each batch takes


class SlowBatches:
    """``batches``, each handed over after ``delay`` seconds."""

    def __init__(self, batches: Any, delay: float) -> None:
        self.batches, self.delay = batches, delay

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int) -> Iterator[Any]:
        for batch in self.batches.epoch(epoch):
            time.sleep(self.delay)
            yield batch


def main(argv: list[str] | None = None) -> dict:
    run = RecipeRun.start(SlowToyConfig, {}, argv, __doc__, "runs/slow_toy")
    run.begin("toy classification", "rows", ROWS)
    config = config_from(ClassifierConfig, run.config, num_classes=2, input_size=1)
    model = LSTMClassifier(config)
    examples = model.encode(ROWS)
    batches = BucketedBatches(examples, [3] * 16, model.collate, max_tokens=12, seed=run.seed)
    batches = SlowBatches(batches, run.config.step_delay)
    best = run.fit(model, batches, evaluate_on(ROWS), metric="accuracy", metric_mode="max")
    return run.finish({"valid": best})


if __name__ == "__main__":
    sys.exit(run_recipe(main))
