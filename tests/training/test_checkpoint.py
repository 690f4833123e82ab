"""Checkpoint files: round trips, atomic layout, corruption and mismatch detection."""

import hashlib
import json
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from seqlstm.errors import CheckpointError
from seqlstm.training.checkpoint import (
    STATE_FILE,
    TENSORS_FILE,
    CheckpointManager,
    capture_rng_state,
    flatten_state,
    load_model_weights,
    model_class_name,
    read_checkpoint,
    restore_rng_state,
    unflatten_state,
    write_checkpoint,
)


class Net(nn.Module):
    def __init__(self, hidden: int = 4):
        super().__init__()
        self.emb = nn.Embedding(7, hidden)
        self.out = nn.Linear(hidden, 7)


class OtherNet(Net):
    pass


def saved_net(tmp_path, model: nn.Module):
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "ckpt"
    write_checkpoint(path, tensors, {"model_class": model_class_name(model), "step": 3})
    return path


def test_flatten_round_trip_keeps_tuples_int_keys_and_tensors():
    state = {
        "state": {0: {"step": torch.tensor(2.0), "exp_avg": torch.ones(3)}, 1: {}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0, 1], "x": None}],
    }
    skeleton, tensors = flatten_state(state, "optimizer")
    assert set(tensors) == {"optimizer/state/0/step", "optimizer/state/0/exp_avg"}
    restored = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert restored["param_groups"] == state["param_groups"]
    assert isinstance(restored["param_groups"][0]["betas"], tuple)
    assert list(restored["state"]) == [0, 1]
    assert torch.equal(restored["state"][0]["exp_avg"], torch.ones(3))


def test_flatten_rejects_objects_json_cannot_hold():
    with pytest.raises(TypeError, match="set"):
        flatten_state({"a": {1, 2}}, "x")


def test_write_read_round_trip_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "step-00000001"
    write_checkpoint(path, {"a": torch.arange(4.0)}, {"step": 1})
    write_checkpoint(path, {"a": torch.arange(5.0)}, {"step": 2})  # replace in place
    tensors, state = read_checkpoint(path)
    assert torch.equal(tensors["a"], torch.arange(5.0)) and state["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]  # no temporaries
    assert sorted(p.name for p in path.iterdir()) == [STATE_FILE, TENSORS_FILE]


def test_tied_weights_are_saved(tmp_path):
    model = Net()
    model.out.weight = model.emb.weight  # tied: two names, one storage
    path = saved_net(tmp_path, model)
    fresh = Net()
    fresh.out.weight = fresh.emb.weight
    tensors, state = read_checkpoint(path)
    load_model_weights(fresh, tensors, state, path)
    assert torch.equal(fresh.out.weight, model.emb.weight)


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)

    def step(m, opt):
        m.out(m.emb(torch.tensor([1, 2, 3]))).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()

    step(model, optimizer)
    skeleton, tensors = flatten_state(optimizer.state_dict(), "optimizer")
    tensors.update({f"model/{k}": v for k, v in model.state_dict().items()})
    write_checkpoint(tmp_path / "c", tensors, {"optimizer": skeleton, "model_class": "x"})
    loaded, state = read_checkpoint(tmp_path / "c")
    copy = Net()
    copy.load_state_dict({k[6:]: v for k, v in loaded.items() if k.startswith("model/")})
    copy_optimizer = torch.optim.Adam(copy.parameters(), lr=0.1)
    copy_optimizer.load_state_dict(unflatten_state(state["optimizer"], loaded))
    step(model, optimizer)
    step(copy, copy_optimizer)
    for p, q in zip(model.parameters(), copy.parameters(), strict=True):
        assert torch.equal(p, q)


def test_rng_states_round_trip():
    tensors, state = capture_rng_state(torch.device("cpu"))
    tensors, state = {k: v.clone() for k, v in tensors.items()}, json.loads(json.dumps(state))
    first = (torch.rand(3), random.random(), np.random.rand(2))
    restore_rng_state(tensors, state, torch.device("cpu"))
    second = (torch.rand(3), random.random(), np.random.rand(2))
    assert torch.equal(first[0], second[0])
    assert first[1] == second[1]
    assert np.array_equal(first[2], second[2])
    assert tensors["torch"].dtype == torch.uint8


# --- corruption and mismatches --------------------------------------------------------------


def test_missing_directory_and_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nowhere")
    path = saved_net(tmp_path, Net())
    (path / TENSORS_FILE).unlink()
    with pytest.raises(CheckpointError, match=f"{TENSORS_FILE} is missing"):
        read_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "json"])
def test_corrupt_files_raise_checkpoint_error(tmp_path, damage):
    path = saved_net(tmp_path, Net())
    blob = (path / TENSORS_FILE).read_bytes()
    if damage == "truncate":
        (path / TENSORS_FILE).write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        (path / TENSORS_FILE).write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    else:
        (path / STATE_FILE).write_text('{"step": ')
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(path)


def test_garbage_tensor_file_with_matching_hash_is_corrupt(tmp_path):
    path = saved_net(tmp_path, Net())
    garbage = b"\xff" * 64
    (path / TENSORS_FILE).write_bytes(garbage)
    state = json.loads((path / STATE_FILE).read_text())
    state["tensors_sha256"] = hashlib.sha256(garbage).hexdigest()
    (path / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(path)


def test_other_model_class_or_config_is_named(tmp_path):
    path = saved_net(tmp_path, Net(hidden=4))
    tensors, state = read_checkpoint(path)
    with pytest.raises(CheckpointError, match="OtherNet"):
        load_model_weights(OtherNet(), tensors, state, path)
    with pytest.raises(CheckpointError, match=r"emb\.weight \(7, 4\) vs model \(7, 5\)"):
        load_model_weights(Net(hidden=5), tensors, state, path)
    del tensors["model/out.bias"]
    tensors["model/extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing out\.bias; unexpected extra"):
        load_model_weights(Net(), tensors, state, path)


# --- the checkpoint directory ---------------------------------------------------------------


def test_manager_keeps_last_n_and_best(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2, keep_best=True)
    for step in range(1, 6):
        manager.save(step, {"w": torch.tensor([float(step)])}, {"step": step}, is_best=step == 2)
    assert [p.name for p in manager.checkpoints()] == [
        "step-00000002",
        "step-00000004",
        "step-00000005",
    ]
    assert manager.latest().name == "step-00000005"
    assert manager.best().name == "step-00000002"


def test_manager_latest_survives_a_crash_before_the_pointer(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, {"w": torch.zeros(1)}, {"step": 1})
    write_checkpoint(tmp_path / "step-00000002", {"w": torch.ones(1)}, {"step": 2})
    (tmp_path / ".tmp-step-00000003-x").mkdir()  # a save interrupted half-way
    (tmp_path / ".tmp-latest-y").write_text("step-00000003\n")  # a pointer update, too
    assert manager.latest().name == "step-00000002"
    manager.remove_stale_temporaries()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_dangling_pointer_is_an_error(tmp_path):
    manager = CheckpointManager(tmp_path)
    (tmp_path / "best").write_text("step-00000009\n")
    with pytest.raises(CheckpointError, match="does not exist"):
        manager.best()


def test_checkpoints_are_readable_as_the_umask_allows(tmp_path, restore_umask):
    os.umask(0o022)  # a shared machine's usual umask: others may read, not write
    manager = CheckpointManager(tmp_path / "checkpoints", keep_last=2)
    path = manager.save(1, {"model/w": torch.ones(2)}, {"step": 1}, is_best=True)
    assert path.stat().st_mode & 0o777 == 0o755
    for file in (path / TENSORS_FILE, path / STATE_FILE, manager.directory / "latest"):
        assert file.stat().st_mode & 0o777 == 0o644, file.name


def test_a_step_directory_without_both_files_is_never_taken_for_a_checkpoint(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, {"w": torch.zeros(1)}, {"step": 1})
    manager.save(2, {"w": torch.ones(1)}, {"step": 2})
    for step, left in ((3, TENSORS_FILE), (4, STATE_FILE)):  # half-deleted, newer than 2
        write_checkpoint(tmp_path / f"step-{step:08d}", {"w": torch.ones(1)}, {"step": step})
        (tmp_path / f"step-{step:08d}" / left).unlink()
    (tmp_path / "step-00000005").mkdir()  # emptied, not yet removed
    assert [p.name for p in manager.checkpoints()] == ["step-00000001", "step-00000002"]
    assert manager.latest().name == "step-00000002"
    (tmp_path / "best").write_text("step-00000003\n")
    with pytest.raises(CheckpointError, match="step-00000003, which is incomplete"):
        manager.best()
    (tmp_path / "best").unlink()
    assert sorted(manager.remove_stale_temporaries()) == [
        "step-00000003",
        "step-00000004",
        "step-00000005",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest",
        "step-00000001",
        "step-00000002",
    ]


def test_prune_moves_a_checkpoint_aside_before_deleting_it(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=1, keep_best=False)
    manager.save(1, {"w": torch.zeros(1)}, {"step": 1})

    def killed(path, *args, **kwargs):  # a kill during the prune, after one file went
        next(p for p in path.rglob("*") if p.is_file()).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr("shutil.rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        manager.save(2, {"w": torch.ones(1)}, {"step": 2})
    monkeypatch.undo()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0].startswith(".deleting-step-00000001-")  # not under its own name
    assert names[1:] == ["latest", "step-00000002"]
    assert [p.name for p in manager.checkpoints()] == ["step-00000002"]
    assert manager.remove_stale_temporaries() == [names[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == names[1:]
