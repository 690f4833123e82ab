"""seqlstm.tasks.classic.image_rows: rows from image arrays, a hub split's arrays, and random
shifts (brute force over every possible shift; the same draws as one gather)."""

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from seqlstm.errors import DataError
from seqlstm.tasks.classic.classifier import ClassifierConfig, LSTMClassifier
from seqlstm.tasks.classic.image_rows import (
    image_label_arrays,
    image_rows,
    random_shift,
    shifting_collate,
)


def test_image_rows_are_classifier_rows():
    images = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 24
    rows = image_rows(images, np.array([7, 2]))
    assert [row["label"] for row in rows] == [7, 2]
    assert all(type(row["label"]) is int for row in rows)
    assert torch.equal(rows[1]["inputs"], torch.from_numpy(images[1]))
    assert rows[1]["inputs"].dtype == torch.float32
    model = LSTMClassifier(ClassifierConfig(num_classes=8, input_size=4, hidden_size=3))
    assert [example.label for example in model.encode(rows)] == [7, 2]
    with pytest.raises(ValueError):  # zip(strict=True): one label per image
        image_rows(images, [1])


def test_image_label_arrays_scale_grey_pixels_and_name_what_is_missing():
    pixels = np.array([[0, 51], [255, 102]], dtype=np.uint8)
    colour = Image.fromarray(np.stack([pixels] * 3, axis=-1), mode="RGB")  # grey as RGB
    split = datasets.Dataset.from_dict({"image": [colour], "label": [3]})
    images, labels = image_label_arrays(datasets.DatasetDict({"train": split}), "train", "x/y")
    assert images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_allclose(images, [[[0.0, 0.2], [1.0, 0.4]]], atol=1e-6)
    assert labels.tolist() == [3]

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"img": [1], "y": [0]})})
    with pytest.raises(DataError, match=r"someone/digits \[train\]: expected columns 'image'"):
        image_label_arrays(splits, "train", "someone/digits")
    with pytest.raises(DataError, match=r"someone/digits: no 'test' split \(it has \['train'\]\)"):
        image_label_arrays(splits, "test", "someone/digits")


def test_random_shift_moves_each_image_by_at_most_one_pixel_with_zero_fill():
    images = torch.rand(200, 5, 6) + 1  # no zero pixel: a zero can only be shifted in
    torch.manual_seed(0)
    shifted = random_shift(images, 1)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    seen = set()
    for image, result in zip(padded, shifted, strict=True):
        matches = [
            (dy, dx)
            for dy in range(3)
            for dx in range(3)
            if torch.equal(image[dy : dy + 5, dx : dx + 6], result)
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # every shift in [-1, 1] x [-1, 1], the identity included
    assert random_shift(images, 0) is images
    # the same draws, and so the same images, as one gather over the padded batch
    for shift in (1, 2):
        torch.manual_seed(shift)
        shifted = random_shift(images, shift)
        torch.manual_seed(shift)
        dy, dx = torch.randint(0, 2 * shift + 1, (2, 200, 1, 1))
        padded = torch.nn.functional.pad(images, (shift,) * 4)
        rows, columns = dy + torch.arange(5).view(1, 5, 1), dx + torch.arange(6).view(1, 1, 6)
        assert torch.equal(shifted, padded[torch.arange(200).view(200, 1, 1), rows, columns])
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(images, -1)


def test_shifting_collate_shifts_the_collated_images_with_fresh_draws():
    model = LSTMClassifier(ClassifierConfig(num_classes=3, input_size=6, hidden_size=4))
    examples = model.encode(image_rows(torch.rand(8, 5, 6) + 1, [0, 1, 2, 0, 1, 2, 0, 1]))
    collate = shifting_collate(model.collate, 2)
    torch.manual_seed(3)
    batch = collate(examples)
    torch.manual_seed(3)
    expected = random_shift(model.collate(examples).inputs, 2)
    assert torch.equal(batch.inputs, expected)
    assert batch.labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1] and batch.lengths is None
    assert not torch.equal(collate(examples).inputs, batch.inputs)  # fresh shifts every batch
    unshifted = shifting_collate(model.collate, 0)(examples)
    assert torch.equal(unshifted.inputs, model.collate(examples).inputs)

    uneven = model.encode(image_rows([torch.ones(5, 6), torch.ones(4, 6)], [0, 1]))
    with pytest.raises(DataError, match="images of one size"):
        collate(uneven)
    with pytest.raises(ValueError, match="max_shift"):
        shifting_collate(model.collate, -1)
