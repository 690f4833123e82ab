"""LSTMForecaster, sliding_windows and forecast_errors: shapes, brute-force windows, scaling, the
task protocol (encode/collate/forward/evaluate/predict against hand computations and
scikit-learn), learning a sine."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error

from seqlstm.errors import DataError
from seqlstm.tasks.base import TaskModel
from seqlstm.tasks.classic.forecaster import (
    ForecasterConfig,
    LSTMForecaster,
    forecast_errors,
    sliding_windows,
)


def build(num_features, horizon, **kwargs):
    return LSTMForecaster(ForecasterConfig(num_features, horizon, **kwargs))


def rows(windows, targets):
    """The rows of (window, target) pairs, as a recipe builds them from sliding_windows."""
    return [{"window": w, "target": t} for w, t in zip(windows, targets, strict=True)]


def test_sliding_windows_brute_force():
    series = torch.arange(30.0).view(10, 3)
    inputs, targets = sliding_windows(series, window=4, horizon=2)
    assert inputs.shape == (5, 4, 3) and targets.shape == (5, 2, 3)
    for m in range(5):
        assert torch.equal(inputs[m], series[m : m + 4])
        assert torch.equal(targets[m], series[m + 4 : m + 6])
    univariate, _ = sliding_windows(torch.arange(6.0), window=3, horizon=3)
    assert univariate.shape == (1, 3, 1)
    with pytest.raises(ValueError, match="no window of 4 followed by 3"):
        sliding_windows(torch.arange(6.0), window=4, horizon=3)


def test_shapes_and_target_features():
    torch.manual_seed(0)
    model = build(3, horizon=5, hidden_size=8, num_layers=2)
    assert model.forecast(torch.randn(4, 12, 3)).shape == (4, 5, 3)
    only_second = build(3, horizon=5, target_features=[1], hidden_size=8)
    assert only_second.forecast(torch.randn(4, 12, 3)).shape == (4, 5, 1)


def test_forecast_is_equivariant_to_rescaling_the_data():
    """Fitting the scaler on a*x+b instead of x gives a*forecast+b with the same weights."""
    torch.manual_seed(0)
    model = build(2, horizon=3, hidden_size=6).double()
    series = torch.randn(50, 2, dtype=torch.float64)
    scale, shift = torch.tensor([3.0, 0.5], dtype=torch.float64), torch.tensor([-7.0, 100.0])
    model.fit_scaler(series)
    forecast = model.forecast(series[None, :20])
    model.fit_scaler(series * scale + shift)
    rescaled = model.forecast(series[None, :20] * scale + shift)
    torch.testing.assert_close(rescaled, forecast * scale + shift)


def test_relative_forecast_follows_a_level_shift_of_its_target():
    torch.manual_seed(0)
    model = build(2, horizon=4, target_features=[1], hidden_size=6, relative=True).double()
    model.fit_scaler(torch.randn(30, 2, dtype=torch.float64) * 3)
    window = torch.randn(2, 10, 2, dtype=torch.float64)
    target_up = window + torch.tensor([0.0, 50.0], dtype=torch.float64)
    covariate_up = window + torch.tensor([50.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(model.forecast(target_up), model.forecast(window) + 50.0)
    torch.testing.assert_close(model.forecast(covariate_up), model.forecast(window))


def test_fit_scaler_uses_training_statistics_and_survives_constants():
    model = build(2, horizon=1)
    series = torch.stack([torch.arange(10.0), torch.full((10,), 4.0)], dim=1)
    model.fit_scaler(series)
    torch.testing.assert_close(model.mean, torch.tensor([4.5, 4.0]))
    torch.testing.assert_close(model.std, torch.tensor([series[:, 0].std().item(), 1.0]))
    assert torch.isfinite(model.forecast(series[None])).all()
    assert "mean" in model.state_dict() and "std" in model.state_dict()


def test_argument_errors():
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        build(1, horizon=0)
    with pytest.raises(ValueError, match=r"target_features must be indices in \[0, 2\)"):
        build(2, horizon=1, target_features=[2])
    with pytest.raises(ValueError, match=r"expected a window \[B, W, 2\]"):
        build(2, horizon=1).forecast(torch.randn(3, 5, 1))


def test_learns_a_noiseless_sine_wave():
    """Period 16, 12 steps ahead; held-out windows come from later in the series."""
    torch.manual_seed(0)
    t = torch.arange(400.0)
    series = 5.0 + 2.0 * torch.sin(2 * math.pi * t / 16)
    inputs, targets = sliding_windows(series, window=24, horizon=12)
    train_x, train_y, test_x, test_y = inputs[:250], targets[:250], inputs[300:], targets[300:]

    model = build(1, horizon=12, hidden_size=32)
    model.fit_scaler(series[:270])
    batch = model.collate(model.encode(rows(train_x, train_y)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(100):
        optimizer.zero_grad()
        out = model(batch)
        (out.loss / out.num_tokens).backward()
        optimizer.step()
    mae = model.evaluate(rows(test_x, test_y))["mae"]
    assert mae < 0.05  # amplitude 2, so < 2.5% of the peak-to-peak range


def test_save_pretrained_round_trip_keeps_weights_and_scaler(tmp_path):
    torch.manual_seed(0)
    model = build(3, horizon=4, target_features=(0, 2), hidden_size=6, relative=True)
    model.fit_scaler(torch.randn(40, 3) * 5 + 2)  # the scaler is part of the saved model
    model.save_pretrained(tmp_path / "model")
    loaded = LSTMForecaster.from_pretrained(tmp_path / "model")
    assert loaded.config == model.config and loaded.config.target_features == (0, 2)
    assert torch.equal(loaded.mean, model.mean) and torch.equal(loaded.std, model.std)
    window = torch.randn(5, 8, 3) * 5 + 2
    assert torch.equal(loaded.forecast(window), model.eval().forecast(window))


# --- the task protocol ----------------------------------------------------------------------


def test_follows_the_task_protocol():
    assert isinstance(build(1, horizon=2), TaskModel)


def test_forward_is_the_summed_squared_scaled_error_by_brute_force():
    torch.manual_seed(0)
    model = build(3, horizon=2, target_features=[2, 0], hidden_size=5)
    model.fit_scaler(torch.randn(40, 3) * torch.tensor([1.0, 4.0, 0.5]) + 3)
    windows, futures = sliding_windows(torch.randn(12, 3) + 3, window=4, horizon=2)
    targets = futures[..., [2, 0]]
    out = model(model.collate(model.encode(rows(windows, targets))))
    forecast = model.forecast(windows).tolist()
    std = model.std.tolist()
    expected = sum(
        ((forecast[b][h][k] - targets[b, h, k].item()) / std[feature]) ** 2
        for b in range(len(windows))
        for h in range(2)
        for k, feature in enumerate([2, 0])
    )
    assert out.num_tokens == len(windows) * 2 * 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_evaluate_matches_scikit_learn_for_any_batch_size():
    torch.manual_seed(0)
    model = build(2, horizon=3, target_features=[1], hidden_size=6, relative=True)
    series = torch.randn(60, 2).cumsum(0)
    model.fit_scaler(series)
    windows, futures = sliding_windows(series, window=5, horizon=3)
    targets = futures[..., 1:]
    with torch.no_grad():
        forecast = model.forecast(windows).flatten().numpy().astype(np.float64)
    truth = targets.flatten().numpy().astype(np.float64)
    for batch_size in (1, 7, 256):
        metrics = model.evaluate(rows(windows, targets), batch_size=batch_size)
        assert set(metrics) == {"mae", "rmse"}
        assert metrics["mae"] == pytest.approx(mean_absolute_error(truth, forecast), rel=1e-5)
        rmse = math.sqrt(mean_squared_error(truth, forecast))
        assert metrics["rmse"] == pytest.approx(rmse, rel=1e-5)


def test_encode_reads_univariate_columns_flat_and_names_bad_rows():
    model = build(1, horizon=2)
    (example,) = model.encode([{"window": [1.0, 2.0, 3.0], "target": np.array([4.0, 5.0])}])
    assert example.window.shape == (3, 1) and example.target.shape == (2, 1)
    assert example.window.dtype == torch.float32
    two = build(2, horizon=2, target_features=[0])
    good = {"window": [[1.0, 2.0]], "target": [[3.0], [4.0]]}
    bad_rows = [
        ({"window": [[1.0]], "target": [[3.0], [4.0]]}, r"'window' must hold \[T, 2\] numbers"),
        ({"window": [[1.0, 2.0]], "target": [[3.0]]}, r"'target' must hold \[2, 1\] numbers"),
        ({"window": [], "target": [[3.0], [4.0]]}, r"'window' must hold \[T, 2\]"),
        ({"window": "abc", "target": [[3.0], [4.0]]}, r"'window' must hold \[T, 2\] numbers"),
        ({"target": [[3.0], [4.0]]}, r"expected a 'window' column"),
    ]
    for row, message in bad_rows:
        with pytest.raises(DataError, match="row 1: " + message):
            two.encode([good, row])


def test_collate_refuses_windows_of_different_lengths():
    model = build(1, horizon=1)
    examples = model.encode(
        [{"window": [1.0, 2.0], "target": [3.0]}, {"window": [1.0], "target": [2.0]}]
    )
    with pytest.raises(DataError, match=r"same length, got \[1, 2\]"):
        model.collate(examples)


def test_forecast_errors_by_hand():
    forecast = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[2.0, 2.0], [0.0, 8.0]])  # errors -1, 0, 3, -4
    errors = forecast_errors(forecast, target)
    assert errors["mae"] == pytest.approx((1 + 0 + 3 + 4) / 4)
    assert errors["rmse"] == pytest.approx(math.sqrt((1 + 0 + 9 + 16) / 4))
    with pytest.raises(ValueError, match=r"forecast \[2, 2\] and target \[2\] differ"):
        forecast_errors(forecast, target[0])


def test_predict_reads_windows_only_in_eval_mode_in_any_batch_size():
    torch.manual_seed(0)
    model = build(2, horizon=3, target_features=[1], hidden_size=6, num_layers=2, dropout=0.5)
    series = torch.randn(40, 2).cumsum(0)
    model.fit_scaler(series)
    windows, _ = sliding_windows(series, window=5, horizon=3)
    model.train()  # dropout on: predict must switch it off, and restore the mode after
    with torch.no_grad():
        model.eval()
        expected = model.forecast(windows)
        model.train()
    for batch_size in (1, 4, 256):
        forecasts = model.predict([{"window": w} for w in windows], batch_size=batch_size)
        assert forecasts.shape == (len(windows), 3, 1) and not forecasts.requires_grad
        torch.testing.assert_close(forecasts, expected)
    assert model.training
    with pytest.raises(DataError, match="at least one row"):
        model.predict([])
    with pytest.raises(DataError, match=r"row 0: 'window' must hold \[T, 2\] numbers"):
        model.predict([{"window": [1.0, 2.0, 3.0]}])
    uneven = [{"window": windows[0]}, {"window": windows[1][:3]}]
    with pytest.raises(DataError, match=r"one batch must have the same length, got \[3, 5\]"):
        model.predict(uneven)
    # windows of different lengths in different batches are fine
    one_by_one = model.predict(uneven, batch_size=1)
    torch.testing.assert_close(one_by_one[0], expected[0])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(one_by_one[1], model.forecast(windows[1:2, :3])[0])
