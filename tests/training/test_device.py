"""resolve_device: the one rule for --device and TrainerConfig.device, on any machine (the
accelerators' availability is simulated)."""

import pytest
import torch

from seqlstm.training.device import resolve_device
from seqlstm.training.distributed import DistributedContext


@pytest.fixture
def machine(monkeypatch):
    """machine(cuda=N, mps=bool): pretend torch sees N CUDA devices and MPS or not."""

    def pretend(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return pretend


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(2, True, "cuda:0"), (0, True, "mps"), (0, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device() == torch.device(expected)


def test_a_bare_cuda_means_the_local_rank_and_an_index_is_kept(machine):
    machine(cuda=4)
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 3)
    assert resolve_device("auto", local_rank=2) == torch.device("cuda", 2)
    assert resolve_device("cuda:1", local_rank=3) == torch.device("cuda", 1)
    assert resolve_device("cpu", local_rank=3) == torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "local_rank", "message"),
    [
        ("cuda", 0, "'cuda' was asked for, but torch sees no CUDA device"),
        ("cuda:0", 0, "'cuda:0' was asked for, but torch sees no CUDA device"),
        ("mps", 0, "'mps' was asked for, but torch sees no Apple MPS device"),
        ("tpu-ish", 0, "unknown device 'tpu-ish'"),
    ],
)
def test_an_absent_or_unknown_device_is_a_clear_error(machine, name, local_rank, message):
    machine(cuda=0, mps=False)
    with pytest.raises(ValueError, match=message):
        resolve_device(name, local_rank)


def test_a_cuda_index_beyond_the_devices_is_an_error(machine):
    machine(cuda=2)
    with pytest.raises(ValueError, match="'cuda:2' was asked for, but torch sees only 2"):
        resolve_device("cuda", local_rank=2)
    with pytest.raises(ValueError, match="'cuda:5' was asked for"):
        resolve_device("cuda:5")


def test_the_distributed_context_uses_the_same_rule(machine, monkeypatch):
    machine(cuda=2)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert DistributedContext.from_env("auto").device == torch.device("cuda", 1)
    machine(cuda=0)
    with pytest.raises(ValueError, match="no CUDA device"):
        DistributedContext.from_env("cuda")
