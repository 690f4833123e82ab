"""Exceptions that seqlstm raises for bad input, so callers never see a deep torch traceback."""


class DataError(ValueError):
    """Input data is malformed; the message names the file, the line and what was expected."""


class CheckpointError(RuntimeError):
    """A checkpoint or model directory is missing, corrupt, or belongs to another model/config."""


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line (its lines stripped and joined by ``; ``), the form
    in which the command line and the recipes report bad input."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
