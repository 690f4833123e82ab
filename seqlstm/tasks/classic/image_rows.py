"""Images read row by row by an ``LSTMClassifier``: classifier rows from image arrays, the
arrays of a hub split with ``image`` and ``label`` columns, and random shifts of the images as
training-time augmentation.

Row t of an image [R, C] is the input at step t: an image is a sequence of R steps of C
features, the classic "MNIST as a sequence" example.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlstm.errors import DataError
from seqlstm.tasks.classic.classifier import ClassifierBatch, ClassifierExample


def image_rows(images: Iterable[Any], labels: Iterable[Any]) -> list[dict[str, Any]]:
    """Classifier rows ``{"inputs": FloatTensor-like [R, C], "label": int}``, one per image.

    images: [N, R, C] (an array, a tensor, or any iterable of [R, C] images); labels: [N]
    class indices. ``inputs`` is ``torch.as_tensor`` of each image, so a float32 array stays
    float32 and shares its memory.
    """
    return [
        {"inputs": torch.as_tensor(image), "label": int(label)}
        for image, label in zip(images, labels, strict=True)
    ]


def image_label_arrays(
    splits: Mapping[str, Any], split: str, dataset: str
) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [N, R, C] in [0, 1], labels int64 [N]) of one split of a hub dataset.

    splits: a ``datasets.DatasetDict`` (or a mapping of ``datasets.Dataset``) whose split has
    an ``image`` column of PIL images (converted to grey, 8 bits, so 255 -> 1.0) of one size
    and an integer ``label`` column; dataset names it in errors. A missing split or column is
    a DataError.
    """
    if split not in splits:
        raise DataError(f"{dataset}: no {split!r} split (it has {sorted(splits)})")
    rows = splits[split]
    if not {"image", "label"} <= set(rows.column_names):
        raise DataError(
            f"{dataset} [{split}]: expected columns 'image' and 'label', got {rows.column_names}"
        )
    images = np.stack([np.asarray(image.convert("L"), dtype=np.float32) for image in rows["image"]])
    return images / 255.0, np.asarray(rows["label"], dtype=np.int64)


def random_shift(images: Tensor, max_shift: int) -> Tensor:
    """Each image of [N, R, C] moved by its own random (dy, dx), both uniform in
    [-max_shift, max_shift], with zeros (background) shifted in -> [N, R, C].

    The shifts are drawn from torch's global generator (one ``randint`` of 2 x N values);
    max_shift = 0 returns ``images`` itself and draws nothing.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return images
    rows, columns = images.shape[1:]
    padded = F.pad(images, (max_shift, max_shift, max_shift, max_shift))
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, len(images))).tolist()
    return torch.stack(
        [p[y : y + rows, x : x + columns] for p, y, x in zip(padded, dy, dx, strict=True)]
    )


def shifting_collate(
    collate: Callable[[Sequence[ClassifierExample]], ClassifierBatch], max_shift: int
) -> Callable[[Sequence[ClassifierExample]], ClassifierBatch]:
    """``collate`` followed by ``random_shift`` of the batch's images [B, R, C]: every batch
    made gets fresh shifts, so each epoch sees the training images moved differently.

    The images of a batch must have the same size (``collate`` then leaves lengths None).
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")

    def shifted(examples: Sequence[ClassifierExample]) -> ClassifierBatch:
        batch = collate(examples)
        if batch.lengths is not None:
            raise DataError("random shifts need images of one size, got sequences of several")
        return dataclasses.replace(batch, inputs=random_shift(batch.inputs, max_shift))

    return shifted
