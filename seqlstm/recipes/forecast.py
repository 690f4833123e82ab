"""Monthly CO2 at Mauna Loa, 12 months ahead: an LSTM against the naive baselines.

    seqlstm train forecast --config cpu      # 80 epochs on one thread, about a minute
    seqlstm train forecast --config smoke    # seconds, to check that it runs
    python -m seqlstm.recipes.forecast --config smoke     # the same script

``statsmodels.datasets.co2`` in calendar months, split in time: the test tail, the validation
years before it, and training windows whose targets end before those. ``LSTMForecaster``
forecasts the next ``horizon`` months from the last ``window``; MAE and RMSE (ppm) over every
(origin, lead) pair, for it and the naive forecasts (persistence, seasonal naive, seasonal
naive + drift); OUT/forecast.png plots the test tail. Results and data: docs/RESULTS.md.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from seqlstm.data import BucketedBatches
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, run_recipe
from seqlstm.recipes import shipped_configs
from seqlstm.tasks.classic.forecaster import ForecasterConfig, LSTMForecaster
from seqlstm.tasks.classic.naive_forecasts import naive_forecast_errors, naive_forecasts
from seqlstm.tasks.classic.series_windows import split_rows_in_time
from seqlstm.viz import plot_forecasts

logger = logging.getLogger("forecast")

DATASET = "statsmodels-co2"
SEASON = 12  # months


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


PRESETS = shipped_configs("forecast")  # configs/forecast/NAME.yaml; "full" by default


def monthly_co2() -> tuple[torch.Tensor, list[str], int]:
    """(monthly means [N] in ppm, "YYYY-MM" of each month, number of interpolated months)."""
    from statsmodels.datasets import co2

    monthly = co2.load_pandas().data["co2"].resample("MS").mean()
    series = torch.tensor(monthly.interpolate("linear").to_numpy(), dtype=torch.float32)
    return series, [stamp.strftime("%Y-%m") for stamp in monthly.index], int(monthly.isna().sum())


def plot_test_tail(path: Path, series: torch.Tensor, months: list[str], model, rows, cfg) -> None:
    """Truth from two years before the test tail, and the forecasts made each January in it."""
    start = max(0, rows[0]["origin"] - 2 * SEASON)
    ticks = {t: months[t][:4] for t in range(start, len(series)) if months[t].endswith("-01")}
    januaries = [row for row in rows if row["origin"] in ticks]
    drift = naive_forecasts(januaries, cfg.horizon, SEASON)["seasonal_naive_drift"]
    lines = {"LSTM": model.predict(januaries)[..., 0], "seasonal naive + drift": drift}
    title = f"Mauna Loa CO2: {cfg.horizon}-month forecasts made each January (test tail)"
    origins, first = [row["origin"] for row in januaries], rows[0]["origin"]  # first: marked
    plot_forecasts(series, origins, lines, path, start, first, ticks, "CO2 (ppm)", title)


def main(argv: list[str] | None = None, prog: str | None = None) -> dict:
    run = RecipeRun.start(ForecastConfig, PRESETS, argv, __doc__, "runs/forecast", prog)
    cfg = run.config
    if run.args.data_dir is not None or run.source(DATASET) != DATASET:
        raise DataError(f"forecast uses the series shipped with statsmodels ({DATASET}) only")
    series, months, interpolated = monthly_co2()
    run.begin("forecasting", DATASET, series)
    rows = split_rows_in_time(series, cfg.window, cfg.horizon, cfg.valid_months, cfg.test_months)
    spans = {
        name: f"{months[r[0]['origin']]}..{months[r[-1]['origin'] + cfg.horizon - 1]}"
        for name, r in rows.items()
    }
    logger.info("%d months (%d interpolated); targets %s", len(series), interpolated, spans)
    # the naive forecasts do not learn: their errors are known (and checked) before training
    naive = {name: naive_forecast_errors(rows[name], SEASON) for name in ("valid", "test")}
    model = LSTMForecaster(config_from(ForecasterConfig, cfg, num_features=1))
    model.fit_scaler(series[: len(series) - cfg.test_months - cfg.valid_months])  # training months
    examples = model.encode(rows["train"])
    batches = BucketedBatches.fixed_size(examples, model.collate, cfg.batch_size, run.seed)

    def evaluate(m: LSTMForecaster, split: str = "valid") -> dict[str, float]:
        return {**m.evaluate(rows[split]), "origins": len(rows[split]), **naive[split]}

    best = run.fit(model, batches, evaluate, metric="mae", metric_mode="min", log_every_steps=100)
    test = evaluate(model, "test")
    mae = {"LSTM": test["mae"]} | {k: v for k, v in naive["test"].items() if k.endswith("mae")}
    logger.info("test MAE (ppm): %s; lowest: %s", mae, min(mae, key=mae.get))
    if run.is_main:
        plot_test_tail(run.out / "forecast.png", series, months, model, rows["test"], cfg)
    return run.finish({"valid": best, "test": test})


if __name__ == "__main__":
    sys.exit(run_recipe(main))
