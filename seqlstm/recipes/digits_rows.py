"""Handwritten digits read row by row: the classic "MNIST as a sequence" LSTM example.

    seqlstm train image-rows --config cpu        # 8x8 digits, 60 epochs on one thread
    seqlstm train image-rows --config smoke      # seconds, to check that it runs
    seqlstm train image-rows --dataset mnist     # ylecun/mnist from the hub, for a GPU
    python -m seqlstm.recipes.digits_rows --config smoke     # the same script

Row t of an image (pixels in [0, 1]) is the input at step t of an ``LSTMClassifier``. Data:
scikit-learn's 8x8 digits, a stratified 20% held out for test (fixed by ``split_seed``) and
10% of the rest for validation, which picks the best epoch; or a hub id with ``image`` and
``label`` columns and its own test split. Measured results: docs/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Literal

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from seqlstm.data import BucketedBatches
from seqlstm.data.loading import fetch_hub
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, run_recipe
from seqlstm.recipes import shipped_configs
from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier
from seqlstm.tasks.classic.image_rows import image_label_arrays, image_rows, shifting_collate

DIGITS = "sklearn-digits"
ALIASES = {"mnist": "ylecun/mnist", "digits": DIGITS}


@dataclasses.dataclass
class DigitsConfig(RunSettings):
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    hidden_size: int = 128  # the model: see ClassifierConfig
    num_layers: int = 1
    bidirectional: bool = False
    pooling: Literal["last", "mean", "max"] = "last"
    dropout: float = 0.0
    test_fraction: float = 0.2  # of the digits; the hub's MNIST has its own test split
    valid_fraction: float = 0.1  # of what is left for training
    split_seed: int = 0
    max_shift: int = 0  # training images move by up to this many pixels (fresh every batch)
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 0.01  # AdamW's decoupled decay; 0 means plain Adam
    warmup_steps: int = 100
    max_epochs: int | None = 30
    # picks the best epoch and drives the LR decay; the loss is the smoother signal
    metric: Literal["accuracy", "loss"] = "loss"
    lr_decay_factor: float = 0.5
    lr_patience: int = 1
    eval_batch_size: int = 1000


PRESETS = shipped_configs("image-rows")  # configs/image-rows/NAME.yaml; "full" by default


def load_rows(dataset: str, cfg: DigitsConfig) -> dict[str, list[dict]]:
    """{"train", "valid", "test"}: rows {"inputs": FloatTensor[rows, columns] in [0, 1],
    "label": int}, the splits as the module docstring says."""

    def stratified(x: np.ndarray, y: np.ndarray, fraction: float) -> list[np.ndarray]:
        return train_test_split(x, y, test_size=fraction, stratify=y, random_state=cfg.split_seed)

    if dataset == DIGITS:
        digits = load_digits()
        images = digits.images.astype(np.float32) / 16.0
        train_x, test_x, train_y, test_y = stratified(images, digits.target, cfg.test_fraction)
    else:
        hub = fetch_hub(dataset)
        train_x, train_y = image_label_arrays(hub, "train", dataset)
        test_x, test_y = image_label_arrays(hub, "test", dataset)
    train_x, valid_x, train_y, valid_y = stratified(train_x, train_y, cfg.valid_fraction)
    arrays = {"train": (train_x, train_y), "valid": (valid_x, valid_y), "test": (test_x, test_y)}
    return {name: image_rows(*xy) for name, xy in arrays.items()}


def main(argv: list[str] | None = None, prog: str | None = None) -> dict:
    run = RecipeRun.start(DigitsConfig, PRESETS, argv, __doc__, "runs/digits_rows", prog)
    cfg = run.config
    if run.args.data_dir is not None:
        raise DataError("digits_rows reads no local files: use --dataset digits or a hub id")
    dataset = ALIASES.get(run.source(DIGITS), run.source(DIGITS))
    rows = load_rows(dataset, cfg)
    run.begin("image rows classification", dataset, rows)
    features = rows["train"][0]["inputs"].shape[1]  # pixels per row
    classes = max(row["label"] for split in rows.values() for row in split) + 1
    model = LSTMClassifier(
        config_from(ClassifierConfig, cfg, num_classes=classes, input_size=features)
    )

    def evaluate(m: LSTMClassifier, split: str = "valid") -> dict[str, float]:
        return {**m.evaluate(rows[split], cfg.eval_batch_size), "examples": len(rows[split])}

    collate = shifting_collate(model.collate, cfg.max_shift)
    batches = BucketedBatches.fixed_size(
        model.encode(rows["train"]), collate, cfg.batch_size, run.seed
    )
    optimizer = "adamw" if cfg.weight_decay > 0 else "adam"
    metric_mode = "max" if cfg.metric == "accuracy" else "min"
    best = run.fit(model, batches, evaluate, optimizer=optimizer, metric_mode=metric_mode)
    return run.finish({"valid": best, "test": evaluate(model, "test")})


if __name__ == "__main__":
    sys.exit(run_recipe(main))
