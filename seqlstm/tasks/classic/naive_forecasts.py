"""The naive forecasts a forecaster must beat to be worth its training.

From a window y[t-W], ..., y[t-1] (the W steps before the origin t, as in
``seqlstm.tasks.classic.series_windows``), lead h = 0 .. H-1 forecasts step t+h as:

- ``persistence``: the last observed value, y[t-1];
- ``seasonal_naive``: the value one season S earlier, y[t+h-S] (in the window when H <= S);
- ``seasonal_naive_drift``: that plus the change over the last season, y[t+h-S] + (y[t-1] -
  y[t-1-S]), so that a trend carries on (needs W >= S + 1).

Both functions read forecaster rows (``{"window": ..., "target": ...}``), as
``LSTMForecaster.predict`` and ``evaluate`` do, so a model and its baselines see the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from seqlstm.errors import DataError
from seqlstm.tasks.classic.forecaster import forecast_errors

NAIVE_FORECASTS = ("persistence", "seasonal_naive", "seasonal_naive_drift")


def naive_forecasts(
    rows: Sequence[Mapping[str, Any]], horizon: int, season: int
) -> dict[str, Tensor]:
    """Each of ``NAIVE_FORECASTS`` from the window of each of M rows.

    rows: ``{"window": [W] or [W, D] numbers, oldest first}`` (other columns are not read),
    all of one shape, with W >= season + 1; horizon H with 1 <= H <= season (a seasonal naive
    forecast looks back at an observed step).

    Returns name -> forecast [M, H] (or [M, H, D]).
    """
    windows = _stacked(rows, "window")  # [M, W] or [M, W, D]
    steps = windows.size(1)
    if not 1 <= horizon <= season or steps < season + 1:
        raise ValueError(
            f"naive forecasts of horizon {horizon} with a season of {season} need 1 <= horizon"
            f" <= season and windows of at least season + 1 steps, got {steps}"
        )
    last = windows[:, -1]  # [M] or [M, D]: the last observed step
    seasonal = windows[:, steps - season : steps - season + horizon]
    drift = seasonal + (last - windows[:, -1 - season]).unsqueeze(1)
    persistence = last.unsqueeze(1).expand(len(windows), horizon, *windows.shape[2:])
    return dict(zip(NAIVE_FORECASTS, (persistence, seasonal, drift), strict=True))


def naive_forecast_errors(rows: Sequence[Mapping[str, Any]], season: int) -> dict[str, float]:
    """``{name}_mae`` and ``{name}_rmse`` (``forecast_errors``) of each naive forecast over
    every (row, lead) pair (and feature).

    rows: forecaster rows ``{"window": [W] or [W, D], "target": [H] or [H, D]}`` (what
    ``window_rows`` gives), all of one shape; season as for ``naive_forecasts``.
    """
    targets = _stacked(rows, "target")  # [M, H] or [M, H, D]
    return {
        f"{name}_{error}": value
        for name, forecast in naive_forecasts(rows, targets.size(1), season).items()
        for error, value in forecast_errors(forecast, targets).items()
    }


def _stacked(rows: Sequence[Mapping[str, Any]], name: str) -> Tensor:
    """Column ``name`` of every row stacked: [M, ...]; DataError without rows."""
    if not rows:
        raise DataError("naive forecasts need at least one row")
    return torch.stack([torch.as_tensor(row[name]) for row in rows])
