"""Multi-step time-series forecasting with an LSTM: a window of the past -> the next H steps.

Direct multi-output strategy: the LSTM reads the window, and one linear head maps its final
state to all ``horizon`` future values at once. Unlike recursive forecasting (predict one
step, feed it back, repeat) errors are not fed back into the input, and training is a plain
regression on (window, future) pairs from ``sliding_windows``.

Scaling is part of the model, so a saved model works on data in its original units: call
``fit_scaler`` on the training part of the series once, before training. Inside, the window
is standardised per feature with that mean and std, and, with ``relative=True``, expressed
relative to its last observed value, which lets a model trained on one level of a trending
series forecast at levels it never saw. Forecasts are mapped back to data units.

The task protocol (``seqlstm.tasks.base``): rows ``{"window": [W, D] numbers, "target": [H, K]
numbers}`` (the K target features, H = horizon, data units) -> ``encode`` ->
``ForecastExample`` -> ``collate`` -> ``ForecastBatch`` -> ``forward`` -> summed squared
scaled error over every forecast value; ``evaluate(rows)`` gives MAE and RMSE in data units
(``forecast_errors``), ``predict(rows)`` the forecasts. ``forecast`` is the raw call on a
tensor of windows. ``seqlstm.tasks.classic.series_windows`` cuts a series into rows, and
``seqlstm.tasks.classic.naive_forecasts`` gives the baselines to compare with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from seqlstm.errors import CheckpointError, DataError
from seqlstm.layers.lstm import LSTM
from seqlstm.pretrained import PretrainedModel
from seqlstm.tasks.base import Row, StepOutput, column, evaluating, numbered_rows


def sliding_windows(series: Tensor, window: int, horizon: int) -> tuple[Tensor, Tensor]:
    """Every (past, future) pair of a series, in time order.

    Args:
        series: [N, D], or [N] for a univariate series (treated as D = 1).
        window: number of past steps W each input holds.
        horizon: number of future steps H each target holds.

    Returns:
        (inputs [M, W, D], targets [M, H, D]) with M = N - W - H + 1; pair m is
        series[m : m+W] and series[m+W : m+W+H].
    """
    if series.dim() == 1:
        series = series.unsqueeze(-1)
    count = series.size(0) - window - horizon + 1
    if window < 1 or horizon < 1 or count < 1:
        raise ValueError(
            f"a series of {series.size(0)} steps has no window of {window} followed by "
            f"{horizon} steps"
        )
    # unfold gives [M, D, W+H]; views, no copy until the slicing below.
    pairs = series.unfold(0, window + horizon, 1).transpose(1, 2)
    return pairs[:, :window], pairs[:, window:]


def forecast_errors(forecast: Tensor, target: Tensor) -> dict[str, float]:
    """{"mae": mean |forecast - target|, "rmse": sqrt(mean (forecast - target)^2)} over every
    value of forecast and target (same shape, e.g. [M, H, K]): one mean over all values, as
    MAE and RMSE are defined, not a mean of per-row or per-batch means."""
    if forecast.shape != target.shape:
        raise ValueError(
            f"forecast {list(forecast.shape)} and target {list(target.shape)} differ in shape"
        )
    difference = forecast - target
    return {"mae": difference.abs().mean().item(), "rmse": difference.pow(2).mean().sqrt().item()}


@dataclass
class ForecasterConfig:
    """Sizes of an ``LSTMForecaster``.

    num_features: D, features per time step of the window.
    horizon: H, future steps forecast at once.
    target_features: indices of the K features to forecast (default: all D); the others are
        covariates that only inform the forecast.
    hidden_size, num_layers, dropout: of the LSTM (dropout acts between layers).
    relative: forecast each target as an offset from its last value in the window (and feed
        the window as offsets from its last values), see the module docstring.
    """

    num_features: int
    horizon: int
    target_features: tuple[int, ...] | None = None
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    relative: bool = False

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.target_features is not None:
            self.target_features = tuple(self.target_features)
            if not self.target_features or not all(
                0 <= k < self.num_features for k in self.target_features
            ):
                raise ValueError(
                    f"target_features must be indices in [0, {self.num_features}), "
                    f"got {self.target_features}"
                )

    @property
    def targets(self) -> tuple[int, ...]:
        if self.target_features is None:
            return tuple(range(self.num_features))
        return self.target_features


class ForecastExample(NamedTuple):
    """One encoded row: window FloatTensor[W, D] and target FloatTensor[H, K], data units."""

    window: Tensor
    target: Tensor


@dataclass
class ForecastBatch:
    """Stacked examples: window [B, W, D] and target [B, H, K], data units."""

    window: Tensor
    target: Tensor


class LSTMForecaster(PretrainedModel):
    """LSTM encoder + direct multi-output head: window [B, W, D] -> forecast [B, H, K].

    See ``ForecasterConfig`` for the sizes and the module docstring for scaling. The scaler's
    mean and std are buffers, so ``save_pretrained`` stores them with the weights.
    """

    config_class = ForecasterConfig

    def __init__(self, config: ForecasterConfig, tokenizer: None = None) -> None:
        # tokenizer: PretrainedModel's constructor protocol; a forecaster reads numbers only
        super().__init__(config, tokenizer)
        self.register_buffer("targets", torch.tensor(config.targets))
        # Identity until fit_scaler; buffers, so they are saved with the weights.
        self.register_buffer("mean", torch.zeros(config.num_features))
        self.register_buffer("std", torch.ones(config.num_features))
        self.lstm = LSTM(
            config.num_features,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden_size, config.horizon * len(config.targets))

    def check_loaded_weights(self, path: Path) -> None:
        """The saved ``targets`` (the indices of the forecast features) must be the config's:
        they index the scaler's buffers, so another value would fail or mislead at forecast."""
        if self.targets.tolist() != list(self.config.targets):
            raise CheckpointError(
                f"{path}: the tensor 'targets' holds {self.targets.tolist()} but the config's "
                f"target features are {list(self.config.targets)}"
            )

    @torch.no_grad()
    def fit_scaler(self, series: Tensor) -> None:
        """Set the per-feature mean and std from training data [N, D] (or [N] if D = 1)."""
        series = series.reshape(series.size(0), -1)
        if series.size(1) != self.config.num_features:
            raise ValueError(f"expected {self.config.num_features} features, got {series.size(1)}")
        self.mean.copy_(series.mean(dim=0))
        # A constant feature would divide by zero; leave it unscaled instead.
        std = series.std(dim=0)
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    # --- the task protocol ----------------------------------------------------------------

    def encode(self, rows: Iterable[Row]) -> list[ForecastExample]:
        """Rows ``{"window": ..., "target": ...}`` -> examples.

        Each column is anything ``torch.as_tensor`` reads: ``window`` [W, D] numbers with
        W >= 1 and D = num_features, ``target`` [horizon, K] numbers for the K target features
        (a univariate column may be given flat, [W] or [horizon]). A row that breaks these
        rules is a DataError naming its number.
        """
        config = self.config
        examples = []
        for number, row in numbered_rows(rows):
            window = _matrix(row, number, "window", None, config.num_features)
            target = _matrix(row, number, "target", config.horizon, len(config.targets))
            examples.append(ForecastExample(window, target))
        return examples

    def collate(self, examples: Sequence[ForecastExample]) -> ForecastBatch:
        """Examples -> one batch; the windows of a batch must have the same length W."""
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        return ForecastBatch(
            window=_stacked_windows([example.window for example in examples]),
            target=torch.stack([example.target for example in examples]),
        )

    def forward(self, batch: ForecastBatch) -> StepOutput:
        """The squared scaled error (see ``scaled_error``) summed over every forecast value
        of the batch (B x H x K), and that count."""
        error = self.scaled_error(self.forecast(batch.window), batch.target)
        return StepOutput(error.pow(2).sum(), error.numel())

    def evaluate(self, rows: Iterable[Row], batch_size: int = 256) -> dict[str, float]:
        """{"mae", "rmse"} in data units over every (row, lead, target feature) value (see
        ``forecast_errors``), in eval mode, forecasting ``batch_size`` rows at a time."""
        examples = self.encode(rows)
        if not examples:
            raise DataError("evaluate needs at least one row")
        forecasts = self._forecasts([example.window for example in examples], batch_size)
        return forecast_errors(forecasts, torch.stack([example.target for example in examples]))

    def predict(self, rows: Iterable[Row], batch_size: int = 256) -> Tensor:
        """Forecasts [M, H, K] in data units of M rows ``{"window": [W, D] numbers}`` (a
        ``target`` column is not read), in eval mode, ``batch_size`` rows at a time (the
        windows of one batch must have one length W); a bad row is a DataError naming its
        number."""
        windows = [
            _matrix(row, number, "window", None, self.config.num_features)
            for number, row in numbered_rows(rows)
        ]
        if not windows:
            raise DataError("predict needs at least one row")
        return self._forecasts(windows, batch_size)

    def _forecasts(self, windows: Sequence[Tensor], batch_size: int) -> Tensor:
        """Forecasts [M, H, K] (on the CPU) of M windows [W, D], in eval mode, ``batch_size``
        at a time; the windows of one batch must have one length."""
        device = self.device
        forecasts = []
        with evaluating(self):
            for start in range(0, len(windows), batch_size):
                batch = _stacked_windows(windows[start : start + batch_size])
                forecasts.append(self.forecast(batch.to(device)).cpu())
        return torch.cat(forecasts)

    # --- raw calls on tensors -----------------------------------------------------------

    def forecast(self, window: Tensor) -> Tensor:
        """Forecast [B, H, K] in data units from window [B, W, D] in data units."""
        if window.dim() != 3 or window.size(-1) != self.config.num_features:
            raise ValueError(
                f"expected a window [B, W, {self.config.num_features}], got {list(window.shape)}"
            )
        x = (window - self.mean) / self.std
        last = x[:, -1:, :]  # [B, 1, D]
        if self.config.relative:
            x = x - last
        _, (h_n, _) = self.lstm(x)
        forecast = self.head(h_n[-1]).view(window.size(0), self.config.horizon, len(self.targets))
        if self.config.relative:
            forecast = forecast + last[..., self.targets]
        return forecast * self.std[self.targets] + self.mean[self.targets]

    def scaled_error(self, forecast: Tensor, target: Tensor) -> Tensor:
        """(forecast - target) / std per target feature: a loss that weighs features equally.

        forecast, target: [B, H, K] in data units -> [B, H, K].
        """
        return (forecast - target) / self.std[self.targets]


def _stacked_windows(windows: Sequence[Tensor]) -> Tensor:
    """Windows [W, D] of one batch stacked: [B, W, D]; DataError when their lengths differ."""
    lengths = {len(window) for window in windows}
    if len(lengths) > 1:
        raise DataError(
            f"the windows of one batch must have the same length, got {sorted(lengths)}"
        )
    return torch.stack(list(windows))


def _matrix(row: Row, number: int, name: str, steps: int | None, features: int) -> Tensor:
    """Column ``name`` of a row as FloatTensor[steps, features] (any steps >= 1 when None);
    a flat column is one feature. DataError names the row and the shape expected."""
    wanted = f"[{'T' if steps is None else steps}, {features}] numbers"
    try:
        values = torch.as_tensor(column(row, number, name), dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        raise DataError(f"row {number}: {name!r} must hold {wanted}: {err}") from None
    if values.dim() == 1 and features == 1:
        values = values.unsqueeze(-1)
    if (
        values.dim() != 2
        or values.size(1) != features
        or len(values) == 0
        or (steps is not None and len(values) != steps)
    ):
        raise DataError(
            f"row {number}: {name!r} must hold {wanted}, got shape {list(values.shape)}"
        )
    return values
