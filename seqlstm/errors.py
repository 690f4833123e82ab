"""Exceptions that seqlstm raises for bad input, so callers never see a deep torch traceback."""


class DataError(ValueError):
    """Input data is malformed; the message names the file, the line and what was expected."""


class CheckpointError(RuntimeError):
    """A checkpoint or model directory is missing, corrupt, or belongs to another model/config."""
