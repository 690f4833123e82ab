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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqlstm.layers.lstm import LSTM
from seqlstm.pretrained import PretrainedModel


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

    def forward(self, window: Tensor) -> Tensor:
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
