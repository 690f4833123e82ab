"""seqlstm.tasks.classic.series_windows: origins split in time and their rows, by brute force."""

import pytest
import torch

from seqlstm.errors import DataError
from seqlstm.tasks.classic.series_windows import (
    split_origins_in_time,
    split_rows_in_time,
    window_rows,
)


def brute_force_split(length, window, horizon, valid_steps, test_steps):
    """Each origin's split, read off the split of every one of its target steps."""
    valid_start, test_start = length - valid_steps - test_steps, length - test_steps

    def split_of(step):
        return "train" if step < valid_start else "valid" if step < test_start else "test"

    splits = {"train": [], "valid": [], "test": []}
    for t in range(window, length - horizon + 1):
        owners = {split_of(step) for step in range(t, t + horizon)}
        if len(owners) == 1:
            splits[owners.pop()].append(t)
    return splits


@pytest.mark.parametrize(
    "length, window, horizon, valid_steps, test_steps",
    [(40, 5, 3, 8, 10), (40, 5, 1, 0, 10), (30, 2, 4, 4, 3), (526, 36, 12, 60, 120)],
)
def test_split_origins_in_time_by_brute_force(length, window, horizon, valid_steps, test_steps):
    origins = split_origins_in_time(length, window, horizon, valid_steps, test_steps)
    assert {name: o.tolist() for name, o in origins.items()} == brute_force_split(
        length, window, horizon, valid_steps, test_steps
    )
    assert all(o.dtype == torch.long for o in origins.values())


def test_split_origins_in_time_needs_one_training_window():
    assert split_origins_in_time(20, 5, 3, 6, 6)["train"].tolist() == [5]  # 5..7 < 8
    with pytest.raises(DataError, match="no training window"):
        split_origins_in_time(20, 5, 3, 7, 6)
    with pytest.raises(ValueError, match="window and horizon must be >= 1"):
        split_origins_in_time(20, 0, 3, 6, 6)


def test_window_rows_by_brute_force():
    series = torch.arange(30.0).view(10, 3)
    rows = window_rows(series, torch.tensor([7, 4]), window=4, horizon=3)
    assert [row["origin"] for row in rows] == [7, 4]
    for row in rows:
        t = row["origin"]
        assert row["window"].tolist() == [series[s].tolist() for s in range(t - 4, t)]
        assert row["target"].tolist() == [series[s].tolist() for s in range(t, t + 3)]
    univariate = window_rows(torch.arange(10.0), [4], window=4, horizon=6)
    assert univariate[0]["window"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert univariate[0]["target"].tolist() == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert window_rows(series, torch.tensor([], dtype=torch.long), 4, 3) == []
    for bad in ([3], [8]):  # a window before step 0, a target after the last step
        with pytest.raises(ValueError, match=r"origins must lie in \[4, 7\]"):
            window_rows(series, bad, window=4, horizon=3)


def test_split_rows_in_time_are_the_rows_of_the_split_origins():
    series = torch.randn(50)
    rows = split_rows_in_time(series, 6, 2, valid_steps=10, test_steps=12)
    origins = split_origins_in_time(50, 6, 2, 10, 12)
    assert set(rows) == {"train", "valid", "test"}
    for name, split in rows.items():
        assert [row["origin"] for row in split] == origins[name].tolist()
        for row in split:
            assert torch.equal(row["window"], series[row["origin"] - 6 : row["origin"]])
            assert torch.equal(row["target"], series[row["origin"] : row["origin"] + 2])
