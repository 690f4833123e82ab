"""Running one fuzz case: "a result or a clear error", under a time and memory guard.

A case is a call of one entry point on one generated input. Its outcome is one of

- ``result``: it returned, and the result passed the case's checks of well-formedness;
- ``clear error``: the library raised DataError/CheckpointError whose message names the file
  (and the line or key where the case says so), or the command exited with status 2 and
  exactly one line on stderr, ``seqlstm COMMAND: error: ...``, naming the file or
  ``<stdin>`` - or, for a bad option, argparse's usage error;
- ``failure``: any other exception, a traceback on stderr, a malformed result, an error
  that names neither file nor line, a result where only an error is right (input that is not
  UTF-8, a model directory that cannot be loaded), or no answer within `CASE_SECONDS`
  (a hang), or an allocation beyond `MEMORY_HEADROOM` (the work was not bounded).

Every outcome is counted per entry point in `TALLY` (printed at the end of the run by
tests/fuzz/conftest.py, and written as JSON to $SEQLSTM_FUZZ_REPORT when that is set).
"""

import contextlib
import faulthandler
import io
import os
import re
import signal
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from seqlstm import cli
from seqlstm.errors import CheckpointError, DataError

# a case takes well under a second; a 200 KB line a few seconds on a slow core
CASE_SECONDS = 20.0
# when the soft guard cannot interrupt (a long call inside C), end the run rather than hang CI
HARD_EXIT_SECONDS = 120.0
# address space a case may add to the process (Linux): a model of a billion-unit layer must
# be refused before it is allocated, and without this cap it would take the CI machine down
MEMORY_HEADROOM = 4 << 30

RESULT, CLEAR_ERROR, FAILURE = "result", "clear error", "failure"
TALLY: Counter = Counter()  # (entry point, outcome) -> cases
RECORDS: list[dict] = []  # one per case: id, entry point, outcome, detail


class CaseTimeout(BaseException):
    """Raised in the case by SIGALRM; a BaseException so that no `except Exception` in the
    code under test swallows it."""


@contextlib.contextmanager
def guarded(seconds: float = CASE_SECONDS) -> Iterator[None]:
    """Run the body with a time limit (SIGALRM raises CaseTimeout) and an address-space
    limit; a hard limit ends the process with every thread's traceback if the alarm cannot
    get through."""

    def expire(signum, frame):
        raise CaseTimeout(f"no result within {seconds:g} s (a hang)")

    # signals reach the main thread only (a run under a thread-based plugin has no alarm)
    use_alarm = (
        hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    # to the process's own stderr: sys.stderr may be a capture without a file descriptor
    faulthandler.dump_traceback_later(
        max(HARD_EXIT_SECONDS, 3 * seconds), exit=True, file=sys.__stderr__
    )
    restore_memory = _limit_memory()
    try:
        yield
    finally:
        restore_memory()
        faulthandler.cancel_dump_traceback_later()
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _limit_memory() -> Callable[[], None]:
    """Cap the address space at its current size plus MEMORY_HEADROOM; returns the undo."""
    try:
        import resource

        with open("/proc/self/status") as status:
            size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size_kb * 1024 + MEMORY_HEADROOM
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError, StopIteration):
        return lambda: None  # not Linux: no cap
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _where(error: BaseException) -> str:
    """file:line of the innermost frame of seqlstm (else of anything) in error's traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f"{os.sep}seqlstm{os.sep}" in f.filename] or frames
    if not ours:
        return "?"
    frame = ours[-1]
    path = frame.filename
    if f"{os.sep}seqlstm{os.sep}" in path:
        path = "seqlstm" + path.rsplit(f"{os.sep}seqlstm", 1)[1]
    return f"{path}:{frame.lineno}"


def _shown(text: str, limit: int = 240) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Expected:
    """What a clear error of this case must name: one of ``names`` (file paths, ``<stdin>``,
    a model directory; none: nothing to name); with ``line``, one of them followed by
    ``:LINE``; every one of ``keys`` (a config key, a tensor name). ``must_fail``: why only an
    error is right (empty: a result is fine too)."""

    names: Sequence[str]
    line: bool = False
    keys: Sequence[str] = field(default_factory=tuple)
    must_fail: str = ""


def message_problem(message: str, expected: Expected) -> str | None:
    """What is missing from a clear error's message, or None."""
    if not message.strip():
        return "an empty error message"
    if expected.names and not any(name in message for name in expected.names):
        return f"the error names none of {list(expected.names)}"
    # a name, or a file inside a named directory, then :LINE
    if expected.line and not any(
        re.search(re.escape(name) + r"[^\s:]*:\d+", message) for name in expected.names
    ):
        return "the error names no line (FILE:LINE)"
    missing = [key for key in expected.keys if key not in message]
    if missing:
        return f"the error does not name {missing}"
    return None


def _record(request: pytest.FixtureRequest, entry: str, outcome: str, detail: str) -> None:
    TALLY[entry, outcome] += 1
    RECORDS.append(
        {"id": request.node.nodeid, "entry": entry, "outcome": outcome, "detail": detail}
    )


def _fail(request, entry: str, detail: str) -> None:
    _record(request, entry, FAILURE, detail)
    pytest.fail(f"{entry}: {detail}", pytrace=False)


def library_case(
    request: pytest.FixtureRequest,
    entry: str,
    call: Callable[[], object],
    expected: Expected,
    check: Callable[[object], None],
    seconds: float = CASE_SECONDS,
) -> str:
    """Run ``call()``; its value must pass ``check`` (an AssertionError says what is wrong),
    or it must raise a DataError/CheckpointError as ``expected`` says. Returns the outcome;
    a failure fails the test."""
    failure = error = None
    try:
        with guarded(seconds):
            value = call()
            check(value)
    except (DataError, CheckpointError) as err:
        error = err
        problem = message_problem(str(err), expected)
        if problem:
            failure = f"unclear {type(err).__name__}: {problem}: {_shown(str(err))}"
    except AssertionError as err:
        failure = f"malformed result: {_shown(str(err))}"
    except CaseTimeout as err:
        failure = f"hang: {err}, in {_where(err)}"
    except Exception as err:  # the failure this suite is for: any other exception
        failure = f"{type(err).__name__}: {_shown(str(err))} at {_where(err)}"
    if failure is None and error is None and expected.must_fail:
        failure = f"a result where only an error is right: {expected.must_fail}"
    if failure is not None:
        _fail(request, entry, failure)
    if error is not None:
        _record(request, entry, CLEAR_ERROR, _shown(str(error)))
        return CLEAR_ERROR
    _record(request, entry, RESULT, "")
    return RESULT


@dataclass
class CommandRun:
    status: int
    out: str
    err: str


def run_command(argv: Sequence[str], monkeypatch, capsys, stdin: bytes | None = None) -> CommandRun:
    """``seqlstm ARGV`` in this process, stdin (when given) the bytes behind sys.stdin.buffer
    as a pipe delivers them; argparse's exit counts as the status."""
    stream = io.TextIOWrapper(io.BytesIO(stdin if stdin is not None else b""), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)
    try:
        status = cli.main(list(argv))
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else 1
    captured = capsys.readouterr()
    return CommandRun(status, captured.out, captured.err)


def command_problem(run: CommandRun, command: str, expected: Expected) -> str | None:
    """None when ``run`` ended in a clear error, else what is wrong with it."""
    if run.status != 2:
        return f"exit status {run.status}"
    if "Traceback" in run.err:
        return "a traceback on stderr"
    lines = run.err.splitlines()
    if lines and lines[0].startswith("usage: "):  # argparse: usage lines, then the error
        if not lines[-1].startswith(f"seqlstm {command}: error: argument "):
            return f"a usage message without the error line: {_shown(run.err)}"
        return None
    if len(run.err.split("\n")) != 2 or not run.err.endswith("\n"):
        return f"stderr is not exactly one line: {_shown(run.err)}"
    if not run.err.startswith(f"seqlstm {command}: error: "):
        return f"stderr does not start with 'seqlstm {command}: error: ': {_shown(run.err)}"
    return message_problem(run.err, expected)


def command_case(
    request: pytest.FixtureRequest,
    entry: str,
    command: str,
    run: Callable[[], CommandRun],
    expected: Expected,
    check: Callable[[CommandRun], None],
    seconds: float = CASE_SECONDS,
) -> str:
    """Run the command; exit status 0 with output that passes ``check``, or a clear error
    (`command_problem`). Returns the outcome; a failure fails the test."""
    failure = None
    try:
        with guarded(seconds):
            done = run()
            if done.status == 0:
                assert "Traceback" not in done.err, f"a traceback on stderr: {_shown(done.err)}"
                check(done)
    except AssertionError as err:
        failure = f"malformed output: {_shown(str(err))}"
    except CaseTimeout as err:
        failure = f"hang: {err}, in {_where(err)}"
    except Exception as err:  # what seqlstm's main lets through is a traceback for the user
        failure = f"traceback: {type(err).__name__}: {_shown(str(err))} at {_where(err)}"
    if failure is None and done.status == 0 and expected.must_fail:
        failure = f"exit status 0 where only an error is right: {expected.must_fail}"
    if failure is None and done.status != 0:
        problem = command_problem(done, command, expected)
        if problem:
            failure = f"unclear error: {problem}"
    if failure is not None:
        _fail(request, entry, failure)
    if done.status == 0:
        _record(request, entry, RESULT, "")
        return RESULT
    _record(request, entry, CLEAR_ERROR, _shown(done.err))
    return CLEAR_ERROR
