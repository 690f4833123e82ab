"""seqlstm.tasks.classic.naive_forecasts: every forecast by brute force over the series, and
their errors against scikit-learn."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error

from seqlstm.errors import DataError
from seqlstm.tasks.classic.naive_forecasts import (
    NAIVE_FORECASTS,
    naive_forecast_errors,
    naive_forecasts,
)
from seqlstm.tasks.classic.series_windows import window_rows


def test_naive_forecasts_by_brute_force_univariate_and_multivariate():
    torch.manual_seed(0)
    season, horizon, window = 4, 3, 6
    for series in (torch.randn(30).cumsum(0), torch.randn(30, 2).cumsum(0)):
        origins = list(range(window, 30 - horizon + 1))
        rows = window_rows(series, origins, window, horizon)
        forecasts = naive_forecasts(rows, horizon, season)
        assert tuple(forecasts) == NAIVE_FORECASTS
        y = series.tolist()
        for m, t in enumerate(origins):
            for h in range(horizon):
                persistence = y[t - 1]
                seasonal = y[t + h - season]
                drift = np.add(seasonal, np.subtract(y[t - 1], y[t - 1 - season]))
                got = {name: forecast[m, h].tolist() for name, forecast in forecasts.items()}
                assert got["persistence"] == persistence
                assert got["seasonal_naive"] == seasonal
                np.testing.assert_allclose(got["seasonal_naive_drift"], drift, rtol=1e-6)
        assert all(
            f.shape == (len(origins), horizon, *series.shape[1:]) for f in forecasts.values()
        )


def test_naive_forecasts_read_only_the_window():
    rows = [{"window": [1.0, 2.0, 3.0, 5.0]}]  # no target needed
    forecasts = naive_forecasts(rows, horizon=2, season=2)
    assert forecasts["persistence"].tolist() == [[5.0, 5.0]]
    assert forecasts["seasonal_naive"].tolist() == [[3.0, 5.0]]  # y[t-2], y[t-1]
    assert forecasts["seasonal_naive_drift"].tolist() == [[6.0, 8.0]]  # + (5 - 2)


def test_naive_forecasts_check_horizon_season_and_rows():
    rows = [{"window": [1.0, 2.0, 3.0]}]
    with pytest.raises(ValueError, match="1 <= horizon <= season"):
        naive_forecasts(rows, horizon=3, season=2)
    with pytest.raises(ValueError, match="at least season \\+ 1 steps, got 3"):
        naive_forecasts(rows, horizon=1, season=3)
    with pytest.raises(DataError, match="at least one row"):
        naive_forecasts([], horizon=1, season=1)


def test_naive_forecast_errors_match_scikit_learn():
    torch.manual_seed(1)
    series = torch.randn(40).cumsum(0)
    rows = window_rows(series, list(range(13, 38)), window=13, horizon=3)
    errors = naive_forecast_errors(rows, season=12)
    assert set(errors) == {f"{n}_{e}" for n in NAIVE_FORECASTS for e in ("mae", "rmse")}
    truth = torch.stack([row["target"] for row in rows]).flatten().double().numpy()
    for name, forecast in naive_forecasts(rows, 3, 12).items():
        predicted = forecast.flatten().double().numpy()
        assert errors[f"{name}_mae"] == pytest.approx(mean_absolute_error(truth, predicted))
        rmse = math.sqrt(mean_squared_error(truth, predicted))
        assert errors[f"{name}_rmse"] == pytest.approx(rmse)
