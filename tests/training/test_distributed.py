"""DDP under torchrun on CPU (gloo) equals one process on the combined batch."""

from pathlib import Path

import pytest
import torch
from ddp_worker import SEQUENCES, Batches, config, make_batch, make_model
from safetensors.torch import load_file
from torchrun_launch import run_two_processes

from seqlstm.training import DistributedContext, Trainer
from seqlstm.training.checkpoint import read_checkpoint
from seqlstm.training.distributed import all_gather_json, broadcast_json

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_context_reads_the_torchrun_environment(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    single = DistributedContext.from_env("cpu")
    assert (single.rank, single.world_size, single.is_main, single.is_distributed) == (
        0,
        1,
        True,
        False,
    )
    assert broadcast_json({"a": 1}, single) == {"a": 1}
    assert all_gather_json([1], single) == [[1]]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    second = DistributedContext.from_env("cpu")
    assert (second.rank, second.local_rank, second.is_main) == (1, 1, False)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="outside WORLD_SIZE=2"):
        DistributedContext.from_env("cpu")


def test_two_process_ddp_step_equals_one_process_on_the_combined_batch(tmp_path):
    run_two_processes(WORKER, tmp_path, timeout=120)
    ddp_params = load_file(tmp_path / "params.safetensors")

    all_sequences = [seq for rank in SEQUENCES for micro in rank for seq in micro]
    single = make_model()
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    Trainer(single, config(tmp_path / "single", 1), Batches([make_batch(all_sequences)])).fit()
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp_params[name], value, rtol=0, atol=1e-6)
        assert not torch.equal(value, initial[name]), name  # the step did move it

    # Only rank 0 wrote the checkpoint, with the RNG states of both ranks.
    _, state = read_checkpoint(tmp_path / "run" / "checkpoints" / "step-00000001")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
