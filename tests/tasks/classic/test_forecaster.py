"""LSTMForecaster and sliding_windows: shapes, brute-force windows, scaling, learning a sine."""

import math

import pytest
import torch

from seqlstm.tasks.classic.forecaster import ForecasterConfig, LSTMForecaster, sliding_windows


def build(num_features, horizon, **kwargs):
    return LSTMForecaster(ForecasterConfig(num_features, horizon, **kwargs))


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
    assert model(torch.randn(4, 12, 3)).shape == (4, 5, 3)
    only_second = build(3, horizon=5, target_features=[1], hidden_size=8)
    assert only_second(torch.randn(4, 12, 3)).shape == (4, 5, 1)


def test_forecast_is_equivariant_to_rescaling_the_data():
    """Fitting the scaler on a*x+b instead of x gives a*forecast+b with the same weights."""
    torch.manual_seed(0)
    model = build(2, horizon=3, hidden_size=6).double()
    series = torch.randn(50, 2, dtype=torch.float64)
    scale, shift = torch.tensor([3.0, 0.5], dtype=torch.float64), torch.tensor([-7.0, 100.0])
    model.fit_scaler(series)
    forecast = model(series[None, :20])
    model.fit_scaler(series * scale + shift)
    rescaled = model(series[None, :20] * scale + shift)
    torch.testing.assert_close(rescaled, forecast * scale + shift)


def test_relative_forecast_follows_a_level_shift_of_its_target():
    torch.manual_seed(0)
    model = build(2, horizon=4, target_features=[1], hidden_size=6, relative=True).double()
    model.fit_scaler(torch.randn(30, 2, dtype=torch.float64) * 3)
    window = torch.randn(2, 10, 2, dtype=torch.float64)
    target_up = window + torch.tensor([0.0, 50.0], dtype=torch.float64)
    covariate_up = window + torch.tensor([50.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(model(target_up), model(window) + 50.0)
    torch.testing.assert_close(model(covariate_up), model(window))


def test_fit_scaler_uses_training_statistics_and_survives_constants():
    model = build(2, horizon=1)
    series = torch.stack([torch.arange(10.0), torch.full((10,), 4.0)], dim=1)
    model.fit_scaler(series)
    torch.testing.assert_close(model.mean, torch.tensor([4.5, 4.0]))
    torch.testing.assert_close(model.std, torch.tensor([series[:, 0].std().item(), 1.0]))
    assert torch.isfinite(model(series[None])).all()
    assert "mean" in model.state_dict() and "std" in model.state_dict()


def test_argument_errors():
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        build(1, horizon=0)
    with pytest.raises(ValueError, match=r"target_features must be indices in \[0, 2\)"):
        build(2, horizon=1, target_features=[2])
    with pytest.raises(ValueError, match=r"expected a window \[B, W, 2\]"):
        build(2, horizon=1)(torch.randn(3, 5, 1))


def test_learns_a_noiseless_sine_wave():
    """Period 16, 12 steps ahead; held-out windows come from later in the series."""
    torch.manual_seed(0)
    t = torch.arange(400.0)
    series = 5.0 + 2.0 * torch.sin(2 * math.pi * t / 16)
    inputs, targets = sliding_windows(series, window=24, horizon=12)
    train_x, train_y, test_x, test_y = inputs[:250], targets[:250], inputs[300:], targets[300:]

    model = build(1, horizon=12, hidden_size=32)
    model.fit_scaler(series[:270])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(100):
        optimizer.zero_grad()
        model.scaled_error(model(train_x), train_y).pow(2).mean().backward()
        optimizer.step()
    with torch.no_grad():
        mae = (model(test_x) - test_y).abs().mean().item()
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
    assert torch.equal(loaded(window), model.eval()(window))
