"""The classic LSTM recipes end to end: digits read as rows, and CO2 forecasting."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recipes import digits_rows, forecast
from seqlstm.errors import DataError
from seqlstm.tasks.classic.classifier import LSTMClassifier
from seqlstm.tasks.classic.forecaster import LSTMForecaster

RESULT_KEYS = {
    "task",
    "dataset",
    "metrics",
    "config",
    "seed",
    "wall_time_s",
    "device",
    "data_sha256",
}


def load_model(directory: Path, model_class):
    """The saved model; from_pretrained checks the class named in config.json."""
    return model_class.from_pretrained(directory)


# ----------------------------------------------------------------------------- digits


def test_digits_split_is_stratified_and_fixed_across_seeds():
    rows = digits_rows.load_rows(digits_rows.DIGITS, digits_rows.DigitsConfig())
    assert {name: len(split) for name, split in rows.items()} == {
        "train": 1293,
        "valid": 144,
        "test": 360,
    }
    test_x = torch.stack([row["inputs"] for row in rows["test"]])
    test_y = torch.tensor([row["label"] for row in rows["test"]])
    assert test_x.shape == (360, 8, 8) and test_x.min() >= 0 and test_x.max() <= 1
    # stratified: 20% of each class, to within rounding
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target)
    assert np.abs(torch.bincount(test_y).numpy() - 0.2 * per_class).max() < 1
    again = digits_rows.load_rows(digits_rows.DIGITS, digits_rows.DigitsConfig())
    pairs = zip(again["test"], rows["test"], strict=True)
    assert all(torch.equal(a["inputs"], b["inputs"]) for a, b in pairs)


def test_digits_smoke_preset(tmp_path):
    out = tmp_path / "run"
    results = digits_rows.main(["--preset", "smoke", "--out", str(out)])
    assert set(results) == RESULT_KEYS
    assert results["dataset"] == "sklearn-digits"
    assert json.loads((out / "results.json").read_text()) == results
    test = results["metrics"]["test"]
    assert test["examples"] == 360
    # 20 steps of a tiny model: far from trained, but clearly better than chance (10%)
    assert 0.15 < test["accuracy"] <= 1.0 and test["loss"] > 0
    # the saved model is the one that was scored
    model = load_model(out / "model", LSTMClassifier)
    rows = digits_rows.load_rows(digits_rows.DIGITS, digits_rows.DigitsConfig())["test"]
    images = torch.stack([row["inputs"] for row in rows])
    labels = torch.tensor([row["label"] for row in rows])
    with torch.no_grad():
        accuracy = (model.logits(images).argmax(-1) == labels).float().mean().item()
    assert accuracy == pytest.approx(test["accuracy"])


def test_random_shift_moves_each_image_by_at_most_one_pixel_with_zero_fill():
    images = torch.rand(200, 5, 6) + 1  # no zero pixel: a zero can only be shifted in
    torch.manual_seed(0)
    shifted = digits_rows.random_shift(images, 1)
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
    assert digits_rows.random_shift(images, 0) is images
    # the same draws, and so the same images, as one gather over the padded batch
    for shift in (1, 2):
        torch.manual_seed(shift)
        shifted = digits_rows.random_shift(images, shift)
        torch.manual_seed(shift)
        dy, dx = torch.randint(0, 2 * shift + 1, (2, 200, 1, 1))
        padded = torch.nn.functional.pad(images, (shift,) * 4)
        rows, columns = dy + torch.arange(5).view(1, 5, 1), dx + torch.arange(6).view(1, 1, 6)
        assert torch.equal(shifted, padded[torch.arange(200).view(200, 1, 1), rows, columns])
    with pytest.raises(ValueError, match="max_shift"):
        digits_rows.random_shift(images, -1)


def fake_mnist():
    """A hub-like MNIST: 28x28 grey PIL images whose brightest row is the label."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)

    def split(count):
        labels = np.arange(count) % 10
        images = []
        for label in labels:
            pixels = rng.integers(0, 60, (28, 28), dtype=np.uint8)
            pixels[2 * label + 3] = 255
            images.append(Image.fromarray(pixels, mode="L"))
        return datasets.Dataset.from_dict({"image": images, "label": labels.tolist()})

    return datasets.DatasetDict({"train": split(200), "test": split(40)})


def test_mnist_code_path_with_a_fake_hub(tmp_path, monkeypatch):
    import datasets

    requested = []
    monkeypatch.setattr(
        datasets, "load_dataset", lambda name: requested.append(name) or fake_mnist()
    )
    results = digits_rows.main(["--preset", "smoke", "--dataset", "mnist", "--out", str(tmp_path)])
    assert requested == ["ylecun/mnist"]
    assert results["dataset"] == "ylecun/mnist"
    assert results["metrics"]["test"]["examples"] == 40
    model = load_model(tmp_path / "model", LSTMClassifier)
    assert model.config.input_size == 28  # 28 steps of 28 pixels


def test_hub_images_names_missing_columns():
    import datasets

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"img": [1], "y": [0]})})
    with pytest.raises(DataError, match="expected columns 'image' and 'label'"):
        digits_rows.hub_images(splits, "train", "someone/digits")
    with pytest.raises(DataError, match="no 'test' split"):
        digits_rows.hub_images(splits, "test", "someone/digits")


# ----------------------------------------------------------------------------- forecasting


def test_co2_windows_and_baselines_by_brute_force():
    cfg = forecast.ForecastConfig()
    series, months, interpolated = forecast.monthly_co2()
    assert (len(series), months[0], months[-1], interpolated) == (526, "1958-03", "2001-12", 5)
    origins = forecast.split_origins(series, cfg)
    valid_start, test_start = 526 - 180, 526 - 120
    # every window whose 12 targets lie in one split, assigned to that split
    assert origins["train"].tolist() == list(range(36, valid_start - 11))
    assert origins["valid"].tolist() == list(range(valid_start, test_start - 11))
    assert origins["test"].tolist() == list(range(test_start, 526 - 11))

    test = origins["test"]
    rows = forecast.windows(series, test, cfg)
    forecasts = forecast.baselines(series, test, cfg.horizon)
    y = series.tolist()
    for m, t in enumerate(test.tolist()):
        assert rows[m]["window"].tolist() == y[t - 36 : t]
        assert rows[m]["target"].tolist() == y[t : t + 12]
        for h in range(12):
            assert forecasts["persistence"][m, h] == y[t - 1]
            assert forecasts["seasonal_naive"][m, h] == y[t + h - 12]
            drift = y[t + h - 12] + (y[t - 1] - y[t - 13])
            assert forecasts["seasonal_naive_drift"][m, h].item() == pytest.approx(drift)
    with pytest.raises(DataError, match="no training window"):
        forecast.split_origins(series[:200], cfg)


def test_forecast_smoke_preset(tmp_path):
    out = tmp_path / "run"
    results = forecast.main(["--preset", "smoke", "--out", str(out)])
    assert set(results) == RESULT_KEYS
    assert json.loads((out / "results.json").read_text()) == results
    test = results["metrics"]["test"]
    assert test["origins"] == 109
    # the baselines do not depend on training: these are the values of the real series
    assert test["persistence_mae"] == pytest.approx(2.640, abs=1e-3)
    assert test["seasonal_naive_mae"] == pytest.approx(1.569, abs=1e-3)
    for split in results["metrics"].values():
        for name in ("", "persistence_", "seasonal_naive_", "seasonal_naive_drift_"):
            assert 0 < split[f"{name}mae"] <= split[f"{name}rmse"]
    assert (out / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the saved model (with its scaler) is the one that was scored
    model = load_model(out / "model", LSTMForecaster)
    series, _, _ = forecast.monthly_co2()
    cfg = forecast.ForecastConfig()
    rows = forecast.windows(series, forecast.split_origins(series, cfg)["test"], cfg)
    windows = torch.stack([row["window"] for row in rows]).unsqueeze(-1)
    targets = torch.stack([row["target"] for row in rows]).unsqueeze(-1)
    with torch.no_grad():
        mae = (model.forecast(windows) - targets).abs().mean().item()
    assert mae == pytest.approx(test["mae"], rel=1e-5)


def test_forecast_rejects_other_data(tmp_path):
    with pytest.raises(DataError, match="statsmodels"):
        forecast.main(["--preset", "smoke", "--dataset", "other/series", "--out", str(tmp_path)])
