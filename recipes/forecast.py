"""Monthly CO2 at Mauna Loa, 12 months ahead: an LSTM against the naive baselines.

    python recipes/forecast.py --preset cpu      # 80 epochs on one thread, about a minute
    python recipes/forecast.py --preset smoke    # seconds, to check that it runs

``statsmodels.datasets.co2`` in calendar months, split in time: the test tail, the validation
years before it, and training windows whose targets end before those. ``LSTMForecaster``
forecasts the next ``horizon`` months from the last ``window``; MAE and RMSE (ppm) are over
every (origin, lead) pair, for it and for persistence, seasonal naive and seasonal naive plus
drift. OUT/forecast.png plots the test tail. Measured results and the data: docs/RESULTS.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqlstm.data import BucketedBatches
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings
from seqlstm.tasks.classic.forecaster import ForecasterConfig, LSTMForecaster

logger = logging.getLogger("forecast")

DATASET = "statsmodels-co2"
SEASON = 12  # months
BASELINES = ("persistence", "seasonal_naive", "seasonal_naive_drift")


@dataclass
class ForecastConfig(RunSettings):
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    window: int = 36
    horizon: int = 12
    valid_months: int = 60
    test_months: int = 120
    hidden_size: int = 64  # the model: see ForecasterConfig
    num_layers: int = 1
    dropout: float = 0.0
    relative: bool = True  # offsets from the last month: the level leaves the training range
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 0
    max_epochs: int | None = 80
    lr_decay_factor: float = 0.5
    lr_patience: int = 5

    def __post_init__(self) -> None:
        if self.horizon > SEASON:  # seasonal naive looks exactly one season back
            raise ValueError(f"horizon must be <= {SEASON} months, got {self.horizon}")


# fmt: off
PRESETS = {
    "full": {},
    "cpu": {"threads": 1, "device": "cpu"},
    "smoke": {"hidden_size": 16, "max_epochs": None, "max_steps": 20, "threads": 1,
              "device": "cpu"},
}
# fmt: on


def monthly_co2() -> tuple[Tensor, list[str], int]:
    """(monthly means [N] in ppm, "YYYY-MM" of each month, number of interpolated months)."""
    from statsmodels.datasets import co2

    monthly = co2.load_pandas().data["co2"].resample("MS").mean()
    series = torch.tensor(monthly.interpolate("linear").to_numpy(), dtype=torch.float32)
    return series, [stamp.strftime("%Y-%m") for stamp in monthly.index], int(monthly.isna().sum())


def split_origins(series: Tensor, cfg: ForecastConfig) -> dict[str, Tensor]:
    """The origins (first target month) of every window, by the split that holds all of its
    target months: {"train", "valid", "test"} -> LongTensor of indices into the series."""
    first = torch.arange(cfg.window, len(series) - cfg.horizon + 1)
    last = first + cfg.horizon - 1
    valid_start = len(series) - cfg.test_months - cfg.valid_months
    test_start = len(series) - cfg.test_months
    if valid_start < cfg.window + cfg.horizon:
        raise DataError(
            f"{DATASET}: {len(series)} months leave no training window before the held-out ones"
        )
    masks = {"train": last < valid_start, "valid": (first >= valid_start) & (last < test_start)}
    return {
        **{name: first[mask] for name, mask in masks.items()},
        "test": first[first >= test_start],
    }


def windows(series: Tensor, origins: Tensor, cfg: ForecastConfig) -> list[dict[str, Tensor]]:
    """The forecaster's rows: {"window": the cfg.window months before, "target": the next
    cfg.horizon months} of each origin."""
    return [
        {"window": series[t - cfg.window : t], "target": series[t : t + cfg.horizon]}
        for t in origins.tolist()
    ]


def baselines(series: Tensor, origins: Tensor, horizon: int) -> dict[str, Tensor]:
    """Forecasts [M, H] of the baselines from each origin."""
    last = series[origins - 1]  # the last observed month
    # target month t is forecast by month t - 12, which is observed when horizon <= 12
    seasonal = series[origins.unsqueeze(1) + torch.arange(horizon) - SEASON]
    drift = seasonal + (last - series[origins - 1 - SEASON]).unsqueeze(1)
    persistence = last.unsqueeze(1).expand(-1, horizon)
    return dict(zip(BASELINES, (persistence, seasonal, drift), strict=True))


def scores(model: LSTMForecaster, series: Tensor, origins: Tensor, cfg: ForecastConfig) -> dict:
    """MAE/RMSE of the model and the baselines (prefixed) over every (origin, lead) pair."""
    rows = windows(series, origins, cfg)
    result = {**model.evaluate(rows), "origins": len(rows)}
    targets = torch.stack([row["target"] for row in rows])
    for name, forecast in baselines(series, origins, cfg.horizon).items():
        error = forecast - targets
        result[f"{name}_mae"] = error.abs().mean().item()
        result[f"{name}_rmse"] = error.pow(2).mean().sqrt().item()
    return result


def plot_test_tail(path: Path, series: Tensor, months: list[str], model, cfg) -> None:
    """Truth over the test tail, and the forecasts made at the start of each of its years."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    test_start = len(series) - cfg.test_months
    start = max(0, test_start - 2 * SEASON)
    years = [t for t in range(start, len(series)) if months[t].endswith("-01")]
    origins = torch.tensor([t for t in years if test_start <= t <= len(series) - cfg.horizon])
    inputs = torch.stack([row["window"] for row in windows(series, origins, cfg)]).unsqueeze(-1)
    with torch.no_grad():
        lstm = model.forecast(inputs.to(next(model.parameters()).device)).cpu().squeeze(-1)
    drift = baselines(series, origins, cfg.horizon)["seasonal_naive_drift"]
    figure, axis = plt.subplots(figsize=(11, 4.5))
    axis.plot(range(start, len(series)), series[start:], color="black", lw=1.5, label="truth")
    for k, t in enumerate(origins.tolist()):
        labels = ("LSTM", "seasonal naive + drift") if k == 0 else (None, None)
        axis.plot(range(t, t + cfg.horizon), lstm[k], color="tab:red", lw=1.2, label=labels[0])
        axis.plot(range(t, t + cfg.horizon), drift[k], "--", color="tab:blue", label=labels[1])
    axis.axvline(test_start, color="grey", lw=0.8, ls=":")
    axis.set_xticks(years, [months[t][:4] for t in years])
    axis.set_ylabel("CO2 (ppm)")
    axis.set_title(f"Mauna Loa CO2: {cfg.horizon}-month forecasts made each January (test tail)")
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict:
    run = RecipeRun.start(ForecastConfig, PRESETS, argv, __doc__, "runs/forecast")
    cfg = run.config
    if run.args.data_dir is not None or run.source(DATASET) != DATASET:
        raise DataError(f"forecast uses the series shipped with statsmodels ({DATASET}) only")
    series, months, interpolated = monthly_co2()
    run.begin("forecasting", DATASET, series)
    origins = split_origins(series, cfg)
    spans = {
        name: f"{months[o[0]]}..{months[o[-1] + cfg.horizon - 1]}" for name, o in origins.items()
    }
    logger.info("%d months (%d interpolated); targets %s", len(series), interpolated, spans)
    model = LSTMForecaster(config_from(ForecasterConfig, cfg, num_features=1))
    model.fit_scaler(series[: len(series) - cfg.test_months - cfg.valid_months])  # training months
    examples = model.encode(windows(series, origins["train"], cfg))
    sizes = {"max_sentences": cfg.batch_size, "bucket_size": len(examples), "seed": run.seed}
    batches = BucketedBatches(
        examples, [cfg.window] * len(examples), model.collate, cfg.window * cfg.batch_size, **sizes
    )
    evaluate = lambda m: scores(m, series, origins["valid"], cfg)  # noqa: E731
    best = run.fit(model, batches, evaluate, metric="mae", metric_mode="min", log_every_steps=100)
    test = scores(model, series, origins["test"], cfg)
    mae = {"LSTM": test["mae"]} | {name: test[f"{name}_mae"] for name in BASELINES}
    logger.info("test MAE (ppm): %s; lowest: %s", mae, min(mae, key=mae.get))
    if run.is_main:
        plot_test_tail(run.out / "forecast.png", series, months, model, cfg)
    return run.finish({"valid": best, "test": test})


if __name__ == "__main__":
    main()
