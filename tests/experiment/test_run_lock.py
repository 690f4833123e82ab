"""One writer per run directory, what OUT may already hold, and what a killed run leaves.

The lock is an flock on OUT/.lock (seqlstm.atomic_files.lock_directory): a second run on the
same OUT fails at once with one line naming OUT and the holder, and a killed holder (kill -9)
leaves no stale lock. A recipe run killed with SIGKILL after its first checkpoints and
resumed with --resume true ends with the model of the uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from slow_recipe import main as slow_recipe

from seqlstm.atomic_files import (
    DirectoryInUseError,
    delete_directory,
    lock_directory,
    remove_temporaries,
    staged_directory,
)
from seqlstm.experiment.run import run_recipe

SLOW_RECIPE = Path(__file__).with_name("slow_recipe.py")
HOLD_LOCK = (
    "import sys; from seqlstm.atomic_files import lock_directory; "
    "lock = lock_directory(sys.argv[1]); print('locked', flush=True); sys.stdin.read()"
)


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()  # the recipe sets one thread
    yield
    torch.set_num_threads(before)


@pytest.fixture
def holder(tmp_path):
    """A process that holds the lock of tmp_path / "out" until the test ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "out")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "locked\n"
    yield process
    process.kill()
    process.wait()


def argv(out: Path, *more: str) -> list[str]:
    return ["--out", str(out), "--device", "cpu", "--seed", "3", *more]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


# ----------------------------------------------------------------------------- the lock


def test_a_held_lock_is_refused_at_once_naming_the_holder_and_a_kill_frees_it(tmp_path, holder):
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(DirectoryInUseError) as error:
        lock_directory(out)
    assert time.monotonic() - started < 1  # no waiting
    message = str(error.value)
    assert message.startswith(f"{out} is in use by another run (pid {holder.pid} on ")
    assert ", started 20" in message
    holder.send_signal(signal.SIGKILL)  # a crash: no clean-up of any kind
    holder.wait()
    record = json.loads((out / ".lock").read_text())
    assert record["pid"] == holder.pid  # the dead holder's record is still there ...
    with lock_directory(out) as lock:  # ... but the lock is free
        assert lock.held
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    assert (out / ".lock").read_text() == ""  # released cleanly: names nobody


def test_the_lock_is_reentrant_within_a_process_and_released_by_the_last_hold(tmp_path):
    out = tmp_path / "out"
    first = lock_directory(out)
    second = lock_directory(out)  # a run started again in-process (a test, a notebook)
    first.release()
    probe = [sys.executable, "-c", HOLD_LOCK, str(out)]
    refused = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    assert "is in use by another run" in refused.stderr  # the second hold still holds it
    second.release()
    second.release()  # harmless
    freed = subprocess.run(probe, input="", capture_output=True, text=True, timeout=60)
    assert freed.stdout == "locked\n"


def test_a_second_recipe_run_on_the_same_out_fails_with_one_line_and_status_2(
    tmp_path, holder, capsys
):
    out = tmp_path / "out"
    assert run_recipe(slow_recipe, argv(out)) == 2
    line = error_line(capsys)
    assert line.startswith(f"{Path(sys.argv[0]).name}: error: {out} is in use by another run")
    assert f"(pid {holder.pid} on " in line
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of its own written


# ----------------------------------------------------------------------------- OUT's content


def test_an_earlier_run_needs_resume_and_a_finished_one_has_nothing_to_resume(tmp_path, capsys):
    out = tmp_path / "out"
    first = slow_recipe(argv(out))
    assert run_recipe(slow_recipe, argv(out)) == 2
    assert error_line(capsys).endswith(
        f"error: {out} holds an earlier run (checkpoints up to "
        f"{out / 'trainer' / 'checkpoints' / 'step-00000012'}, results.json); pass --resume "
        "true to continue it, or choose another --out"
    )
    assert run_recipe(slow_recipe, argv(out, "--resume", "true")) == 2
    assert error_line(capsys).endswith(
        f"error: {out} holds a finished run (results.json is written and its last checkpoint, "
        "step-00000012, reached max_steps); there is nothing to resume: raise --max-steps to "
        "train on, or choose another --out"
    )
    assert json.loads((out / "results.json").read_text()) == first  # left alone
    # a raised budget trains on, and the log of the resumed run follows the first one's
    assert run_recipe(slow_recipe, argv(out, "--resume", "true", "--max-steps", "14")) == 0
    log = (out / "train.log").read_text()
    assert "training stopped after step 12" in log
    assert "resumed from" in log and "training stopped after step 14" in log


def test_a_killed_runs_leftovers_are_removed_on_the_next_start(tmp_path):
    out = tmp_path / "out"
    checkpoints = out / "trainer" / "checkpoints"
    slow_recipe(argv(out, "--max-steps", "4"))
    # what kills at each moment would leave: a staged model directory, a replaced one not yet
    # deleted, a half-written results file, a checkpoint half-deleted by a prune, and a
    # half-written pointer
    (out / ".tmp-model-1a2b3c4d").mkdir()
    (out / ".tmp-model-1a2b3c4d" / "model.safetensors").write_bytes(b"half")
    (out / ".old-model-5e6f7a8b" / "model").mkdir(parents=True)
    (out / ".tmp-results.json-0a1b2c3d").write_text('{"task": ')
    (checkpoints / ".deleting-step-00000002-9a8b7c6d" / "step-00000002").mkdir(parents=True)
    (checkpoints / ".tmp-latest-1f2e3d4c").write_text("step-0000")
    half = checkpoints / "step-00000005"  # an old seqlstm's prune, killed mid-way
    half.mkdir()
    (half / "tensors.safetensors").write_bytes(b"")
    assert slow_recipe(argv(out, "--resume", "true", "--max-steps", "6"))
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert hidden == [".lock"]
    names = sorted(p.name for p in checkpoints.iterdir())
    assert names == ["best", "latest", "step-00000004", "step-00000006"]
    log = (out / "train.log").read_text()
    assert (
        f"removed what an interrupted run left in {out}: .old-model-5e6f7a8b, "
        ".tmp-model-1a2b3c4d, .tmp-results.json-0a1b2c3d" in log
    )
    assert "step-00000005" in log and ".deleting-step-00000002-9a8b7c6d" in log
    # it resumed from step 4, not from the incomplete "step 5"
    assert "resumed from" in log and "(step 4, epoch 1)" in log


def test_delete_directory_never_leaves_a_half_deleted_tree_under_its_name(tmp_path, monkeypatch):
    target = tmp_path / "step-00000003"
    with staged_directory(target) as staging:
        for name in ("a", "b", "c"):
            (staging / name).write_text(name)

    def killed(path, *args, **kwargs):  # a kill part-way through the deletion
        next(Path(path).rglob("a")).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr("shutil.rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        delete_directory(target)
    monkeypatch.undo()
    assert not target.exists()  # gone from its name at once
    (aside,) = tmp_path.iterdir()
    assert aside.name.startswith(".deleting-step-00000003-")
    assert remove_temporaries(tmp_path) == [aside.name]
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- kill -9


def test_a_recipe_killed_after_its_first_checkpoints_resumes_to_the_same_model(tmp_path, capsys):
    reference = tmp_path / "reference"
    slow_recipe(argv(reference))
    out = tmp_path / "killed"
    # 12 steps of at least 0.3 s: after its first checkpoint (step 2) the run has 3 s to go
    command = [sys.executable, str(SLOW_RECIPE), *argv(out, "--step-delay", "0.3")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for(done) -> None:
        deadline = time.monotonic() + 120
        while not done() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert done(), f"the run ended with status {run.poll()} or timed out"

    try:
        lock = out / ".lock"
        wait_for(lambda: lock.is_file() and f'"pid": {run.pid},' in lock.read_text())
        # while it runs, a second run on the same OUT is refused
        assert run_recipe(slow_recipe, argv(out, "--resume", "true")) == 2
        assert f"is in use by another run (pid {run.pid} on " in error_line(capsys)
        wait_for((out / "trainer" / "checkpoints" / "step-00000002" / "state.json").is_file)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
    finally:
        run.kill()
    assert run.returncode == -signal.SIGKILL  # killed, not finished
    assert not (out / "results.json").exists()

    slow_recipe(argv(out, "--resume", "true"))
    expected = load_file(reference / "model" / "model.safetensors")
    got = load_file(out / "model" / "model.safetensors")
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        assert torch.equal(got[name], value), name
    assert "resumed from" in (out / "train.log").read_text()
