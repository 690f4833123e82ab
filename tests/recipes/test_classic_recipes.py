"""The classic LSTM recipes end to end: digits read as rows, and CO2 forecasting."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlstm.errors import DataError
from seqlstm.recipes import digits_rows, forecast
from seqlstm.tasks.classic.classifier import LSTMClassifier
from seqlstm.tasks.classic.forecaster import LSTMForecaster
from seqlstm.tasks.classic.naive_forecasts import naive_forecast_errors
from seqlstm.tasks.classic.series_windows import split_rows_in_time

RESULT_KEYS = {
    "task",
    "dataset",
    "metrics",
    "config",
    "seed",
    "wall_time_s",
    "device",
    "data_sha256",
    "command",
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

    from seqlstm.data import loading

    requested = []
    monkeypatch.setattr(
        datasets, "load_dataset", lambda name, config: requested.append(name) or fake_mnist()
    )
    monkeypatch.setattr(loading, "hub_reachable", lambda endpoint: True)  # no real probe
    results = digits_rows.main(["--preset", "smoke", "--dataset", "mnist", "--out", str(tmp_path)])
    assert requested == ["ylecun/mnist"]
    assert results["dataset"] == "ylecun/mnist"
    assert results["metrics"]["test"]["examples"] == 40
    model = load_model(tmp_path / "model", LSTMClassifier)
    assert model.config.input_size == 28  # 28 steps of 28 pixels


# ----------------------------------------------------------------------------- forecasting


def test_co2_rows_and_naive_errors_by_brute_force():
    cfg = forecast.ForecastConfig()
    series, months, interpolated = forecast.monthly_co2()
    assert (len(series), months[0], months[-1], interpolated) == (526, "1958-03", "2001-12", 5)
    rows = split_rows_in_time(series, cfg.window, cfg.horizon, cfg.valid_months, cfg.test_months)
    valid_start, test_start = 526 - 180, 526 - 120
    # every window whose 12 targets lie in one split, assigned to that split
    origins = {name: [row["origin"] for row in split] for name, split in rows.items()}
    assert origins["train"] == list(range(36, valid_start - 11))
    assert origins["valid"] == list(range(valid_start, test_start - 11))
    assert origins["test"] == list(range(test_start, 526 - 11))
    y = series.tolist()
    for row in rows["test"]:
        t = row["origin"]
        assert row["window"].tolist() == y[t - 36 : t]
        assert row["target"].tolist() == y[t : t + 12]
    # the recipe's naive errors over every (origin, lead) of the test tail
    naive = naive_forecast_errors(rows["test"], forecast.SEASON)
    pairs = [(t, h) for t in origins["test"] for h in range(12)]
    forecasts = {
        "persistence": lambda t, h: y[t - 1],
        "seasonal_naive": lambda t, h: y[t + h - 12],
        "seasonal_naive_drift": lambda t, h: y[t + h - 12] + (y[t - 1] - y[t - 13]),
    }
    for name, forecast_of in forecasts.items():
        errors = np.array([forecast_of(t, h) - y[t + h] for t, h in pairs])
        assert naive[f"{name}_mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-5)
        assert naive[f"{name}_rmse"] == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-5)


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
    rows = split_rows_in_time(series, cfg.window, cfg.horizon, cfg.valid_months, cfg.test_months)
    windows = torch.stack([row["window"] for row in rows["test"]]).unsqueeze(-1)
    targets = torch.stack([row["target"] for row in rows["test"]]).unsqueeze(-1)
    with torch.no_grad():
        mae = (model.forecast(windows) - targets).abs().mean().item()
    assert mae == pytest.approx(test["mae"], rel=1e-5)


def test_forecast_rejects_other_data(tmp_path):
    with pytest.raises(DataError, match="statsmodels"):
        forecast.main(["--preset", "smoke", "--dataset", "other/series", "--out", str(tmp_path)])


def test_forecast_checks_the_horizon_against_the_season_before_training(tmp_path):
    with pytest.raises(ValueError, match="1 <= horizon <= season"):
        forecast.main(["--preset", "smoke", "--horizon", "13", "--out", str(tmp_path)])
    assert not (tmp_path / "model").exists()
