"""The task models, all following the contract in ``seqlstm.tasks.base``."""
