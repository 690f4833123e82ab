"""A time series cut into forecaster rows, split in time.

A forecast *origin* t is the index of the first step forecast: its row is the ``window`` steps
before t and the ``horizon`` steps from t on. ``split_origins_in_time`` gives the origins of
the training, validation and test splits of one series, so that no split's targets leak into
another's; ``window_rows`` turns origins into the rows ``LSTMForecaster.encode`` reads, and
``split_rows_in_time`` does both. (``seqlstm.tasks.classic.forecaster.sliding_windows`` gives
every window at once, as tensors.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seqlstm.errors import DataError


def split_origins_in_time(
    length: int, window: int, horizon: int, valid_steps: int, test_steps: int
) -> dict[str, Tensor]:
    """The origins of a series of ``length`` steps by the split that holds all of its targets.

    The last ``test_steps`` steps are the test split, the ``valid_steps`` before them the
    validation split, the rest the training split. An origin t (window <= t <= length -
    horizon) belongs to the split that holds all of steps t .. t+horizon-1; origins whose
    targets straddle two splits are dropped. Windows may reach back into an earlier split
    (they are the past, known when forecasting).

    Returns {"train", "valid", "test"} -> LongTensor[M_split] of origins, ascending. A series
    too short for one training window before the held-out steps is a DataError.
    """
    if window < 1 or horizon < 1 or valid_steps < 0 or test_steps < 0:
        raise ValueError(
            f"window and horizon must be >= 1 and the held-out steps >= 0, got window={window},"
            f" horizon={horizon}, valid_steps={valid_steps}, test_steps={test_steps}"
        )
    valid_start = length - test_steps - valid_steps
    test_start = length - test_steps
    if valid_start < window + horizon:
        raise DataError(
            f"a series of {length} steps leaves no training window ({window} + {horizon} "
            f"steps) before the {valid_steps + test_steps} held-out ones"
        )
    first = torch.arange(window, length - horizon + 1)
    last = first + horizon - 1
    return {
        "train": first[last < valid_start],
        "valid": first[(first >= valid_start) & (last < test_start)],
        "test": first[first >= test_start],
    }


def window_rows(series: Tensor, origins: Tensor, window: int, horizon: int) -> list[dict[str, Any]]:
    """Forecaster rows ``{"origin": t, "window": series[t-window : t], "target": series[t :
    t+horizon]}``, one per origin t, in the order of ``origins``.

    series: [N] or [N, D]; origins: LongTensor[M] (or any sequence of ints) with window <= t
    <= N - horizon. ``window`` and ``target`` are views of ``series``, [window] and [horizon]
    (or with D); ``origin`` (an int) says where a row sits in time, and the model ignores it.
    """
    origins = torch.as_tensor(origins)
    if len(origins) and (origins.min() < window or origins.max() > len(series) - horizon):
        raise ValueError(
            f"origins must lie in [{window}, {len(series) - horizon}] for a series of "
            f"{len(series)} steps, window {window} and horizon {horizon}"
        )
    return [
        {"origin": t, "window": series[t - window : t], "target": series[t : t + horizon]}
        for t in origins.tolist()
    ]


def split_rows_in_time(
    series: Tensor, window: int, horizon: int, valid_steps: int, test_steps: int
) -> dict[str, list[dict[str, Any]]]:
    """{"train", "valid", "test"} -> the ``window_rows`` of the origins that
    ``split_origins_in_time`` gives the series [N] or [N, D] (the last ``test_steps`` steps
    are the test split, the ``valid_steps`` before them the validation split)."""
    origins = split_origins_in_time(len(series), window, horizon, valid_steps, test_steps)
    return {name: window_rows(series, o, window, horizon) for name, o in origins.items()}
