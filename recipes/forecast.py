"""Monthly CO2 at Mauna Loa, 12 months ahead: an LSTM against the naive baselines.

    python recipes/forecast.py --preset cpu      # about a minute on 2 CPU cores
    python recipes/forecast.py --preset smoke    # seconds, to check that it runs

Data: ``statsmodels.datasets.co2``, weekly CO2 (ppm) from March 1958 to December 2001, shipped
with statsmodels. The weeks are averaged into calendar months (526 months); the 5 months with
no observation at all (1958-06, 1958-10, 1964-02 to 1964-04) are filled by linear
interpolation, and no score ever counts them: they lie in the training years. The series is
split in time: the last ``test_months`` (120: 1992-2001) are the test tail, the
``valid_months`` before them the validation years, which pick the best epoch; the model trains
on the windows whose targets end before the validation years, and its scaler sees only those
months.

Task: from the last ``window`` months, forecast the next ``horizon`` months at once
(``LSTMForecaster``, a direct multi-output head, with ``relative=True`` so that the rising
level, which leaves the training range in the test years, is handled by forecasting offsets
from the last observed month). Every month of a split is a forecast origin whose horizon lies
inside the split (rolling origin, inputs may reach back into earlier years, which are
observed by then); MAE and RMSE in ppm are over all (origin, lead) pairs.

Baselines on the same pairs: persistence (the last observed month, for every lead), seasonal
naive (the same month one year before the target) and, since CO2 rises every year, seasonal
naive plus drift (that month, moved up by the rise from a year before the last observed month
to that month). results.json has all of them; the log says plainly which one is best.
OUT/forecast.png plots the test tail with the forecasts of the LSTM and of seasonal naive
plus drift made each January (non-overlapping 12-month paths).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from seqlstm.data import BucketedBatches
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import (
    RunRecorder,
    config_from,
    parse_recipe_args,
    resolve_device,
    trainer_config,
)
from seqlstm.tasks.base import StepOutput
from seqlstm.tasks.classic.forecaster import ForecasterConfig, LSTMForecaster, sliding_windows
from seqlstm.training import Trainer

logger = logging.getLogger("forecast")

DATASET = "statsmodels-co2"
SEASON = 12  # months


@dataclass
class ForecastConfig:
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    # task and data
    window: int = 36
    horizon: int = 12
    valid_months: int = 60
    test_months: int = 120
    # model (see ForecasterConfig)
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    relative: bool = True
    # training
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 0
    max_epochs: int | None = 80
    max_steps: int | None = None
    lr_decay_factor: float = 0.5
    lr_patience: int = 5
    threads: int | None = None  # torch's CPU threads (None: its default)

    def __post_init__(self) -> None:
        if self.horizon > SEASON:
            # the seasonal-naive baseline looks exactly one season back from each target
            raise ValueError(f"horizon must be <= {SEASON} months, got {self.horizon}")


PRESETS = {
    "full": {},
    "cpu": {"threads": 1, "device": "cpu"},
    "smoke": {
        "hidden_size": 16,
        "max_epochs": None,
        "max_steps": 20,
        "threads": 1,
        "device": "cpu",
    },
}


def monthly_co2() -> tuple[Tensor, list[str], int]:
    """(monthly means [N] in ppm, "YYYY-MM" of each month, number of interpolated months)."""
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()
    missing = int(monthly.isna().sum())
    monthly = monthly.interpolate("linear")
    months = [stamp.strftime("%Y-%m") for stamp in monthly.index]
    return torch.tensor(monthly.to_numpy(), dtype=torch.float32), months, missing


@dataclass
class Windows:
    """(input, target) pairs of one split: inputs [M, W, 1], targets [M, H, 1], and the index
    into the series of each pair's first target month [M]."""

    inputs: Tensor
    targets: Tensor
    first_target: Tensor


def split_windows(series: Tensor, cfg: ForecastConfig) -> dict[str, Windows]:
    """Every window, assigned to the split that holds all of its target months."""
    inputs, targets = sliding_windows(series, cfg.window, cfg.horizon)
    first_target = torch.arange(len(inputs)) + cfg.window
    last_target = first_target + cfg.horizon - 1
    valid_start = len(series) - cfg.test_months - cfg.valid_months
    test_start = len(series) - cfg.test_months
    if valid_start < cfg.window + cfg.horizon:
        raise DataError(
            f"{DATASET}: {len(series)} months leave no training window of {cfg.window}+"
            f"{cfg.horizon} months before the {cfg.valid_months}+{cfg.test_months} held out"
        )
    masks = {
        "train": last_target < valid_start,
        "valid": (first_target >= valid_start) & (last_target < test_start),
        "test": first_target >= test_start,
    }
    return {
        name: Windows(inputs[mask], targets[mask], first_target[mask])
        for name, mask in masks.items()
    }


def baselines(series: Tensor, windows: Windows) -> dict[str, Tensor]:
    """Forecasts [M, H, 1] of the baselines for each window's targets."""
    horizon = windows.targets.size(1)
    last = windows.first_target - 1  # the last observed month of each window
    persistence = series[last].view(-1, 1, 1).expand(-1, horizon, 1)
    # target month t is forecast by month t - 12, which is observed when horizon <= 12
    seasonal = series[windows.first_target.unsqueeze(1) + torch.arange(horizon) - SEASON]
    rise = series[last] - series[last - SEASON]  # over the last observed year
    return {
        "persistence": persistence,
        "seasonal_naive": seasonal.unsqueeze(-1),
        "seasonal_naive_drift": (seasonal + rise.unsqueeze(1)).unsqueeze(-1),
    }


def errors(forecast: Tensor, target: Tensor) -> dict[str, float]:
    difference = forecast - target
    return {
        "mae": difference.abs().mean().item(),
        "rmse": difference.pow(2).mean().sqrt().item(),
    }


def scores(model: LSTMForecaster, series: Tensor, windows: Windows) -> dict[str, float]:
    """MAE/RMSE of the model and the baselines (prefixed) over every (origin, lead) pair."""
    device = next(model.parameters()).device
    with torch.no_grad():
        forecast = model(windows.inputs.to(device)).cpu()
    result = {**errors(forecast, windows.targets), "origins": len(windows.targets)}
    for name, baseline in baselines(series, windows).items():
        result.update({f"{name}_{k}": v for k, v in errors(baseline, windows.targets).items()})
    return result


def plot_test_tail(
    path: Path,
    series: Tensor,
    months: list[str],
    model: LSTMForecaster,
    cfg: ForecastConfig,
) -> None:
    """Truth over the test tail, and the forecasts made at the start of each of its years."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    test_start = len(series) - cfg.test_months
    context = max(0, test_start - 2 * SEASON)
    origins = [
        t for t in range(test_start, len(series) - cfg.horizon + 1) if months[t].endswith("-01")
    ]
    windows = Windows(
        torch.stack([series[t - cfg.window : t] for t in origins]).unsqueeze(-1),
        torch.stack([series[t : t + cfg.horizon] for t in origins]).unsqueeze(-1),
        torch.tensor(origins),
    )
    device = next(model.parameters()).device
    with torch.no_grad():
        lstm = model(windows.inputs.to(device)).cpu().squeeze(-1)
    drift = baselines(series, windows)["seasonal_naive_drift"].squeeze(-1)

    figure, axis = plt.subplots(figsize=(11, 4.5))
    axis.plot(range(context, len(series)), series[context:], color="black", lw=1.5, label="truth")
    for k, t in enumerate(origins):
        steps = range(t, t + cfg.horizon)
        axis.plot(steps, lstm[k], color="tab:red", lw=1.2, label="LSTM" if k == 0 else None)
        label = "seasonal naive + drift" if k == 0 else None
        axis.plot(steps, drift[k], color="tab:blue", lw=1.0, ls="--", label=label)
    axis.axvline(test_start, color="grey", lw=0.8, ls=":")
    ticks = [t for t in range(context, len(series)) if months[t].endswith("-01")]
    axis.set_xticks(ticks, [months[t][:4] for t in ticks])
    axis.set_ylabel("CO2 (ppm)")
    axis.set_title(f"Mauna Loa CO2: {cfg.horizon}-month forecasts made each January (test tail)")
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict:
    args = parse_recipe_args(ForecastConfig, PRESETS, argv, "runs/forecast", __doc__)
    cfg = args.config
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if args.data_dir is not None or args.dataset not in (None, DATASET):
        raise DataError(f"forecast uses the series shipped with statsmodels ({DATASET}) only")
    device = resolve_device(args.device)
    recorder = RunRecorder(args.out, "forecasting", DATASET, cfg, args.seed, device)
    torch.manual_seed(args.seed)

    series, months, interpolated = monthly_co2()
    data_sha256 = hashlib.sha256(series.numpy().tobytes()).hexdigest()
    splits = split_windows(series, cfg)
    for name, windows in splits.items():
        first, last = windows.first_target[[0, -1]].tolist()
        logger.info(
            "%s: %d origins, targets %s to %s",
            name,
            len(windows.targets),
            months[first],
            months[last + cfg.horizon - 1],
        )
    logger.info("%d months, %d of them interpolated (no weekly data)", len(series), interpolated)

    model = LSTMForecaster(config_from(ForecasterConfig, cfg, num_features=1))
    # scaled by the training months only: the ones that training windows' targets cover
    model.fit_scaler(series[: len(series) - cfg.test_months - cfg.valid_months])
    train = splits["train"]
    batches = BucketedBatches(
        range(len(train.targets)),
        [cfg.window] * len(train.targets),
        lambda indices: {"inputs": train.inputs[indices], "targets": train.targets[indices]},
        max_tokens=cfg.window * cfg.batch_size,
        max_sentences=cfg.batch_size,
        seed=args.seed,
        bucket_size=len(train.targets),
    )
    training_config = trainer_config(
        args,
        device,
        metric="mae",
        metric_mode="min",
        log_every_steps=100,
    )

    def squared_error_step(module: nn.Module, batch: dict[str, Tensor]) -> StepOutput:
        """Summed squared error in scaled units over every forecast value of the batch."""
        error = model.scaled_error(module(batch["inputs"]), batch["targets"])
        return StepOutput(error.pow(2).sum(), error.numel())

    trainer = Trainer(
        model,
        training_config,
        batches,
        squared_error_step,
        lambda m: scores(m, series, splits["valid"]),
    )
    best = trainer.fit()

    model.eval()
    test = scores(model, series, splits["test"])
    names = ["LSTM", "persistence", "seasonal_naive", "seasonal_naive_drift"]
    mae = {name: test["mae" if name == "LSTM" else f"{name}_mae"] for name in names}
    logger.info(
        "test MAE (ppm): %s; best: %s",
        ", ".join(f"{name} {value:.3f}" for name, value in mae.items()),
        min(mae, key=mae.get),
    )
    plot_test_tail(args.out / "forecast.png", series, months, model, cfg)
    model.save_pretrained(args.out / "model")
    return recorder.finish({"valid": best, "test": test}, data_sha256)


if __name__ == "__main__":
    main()
