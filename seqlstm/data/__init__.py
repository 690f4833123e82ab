"""Data: file readers, ``load`` (hub id or local files -> DatasetDict) and token-budget batches."""

from seqlstm.data.batching import (
    BucketedBatches,
    TokenBudgetBatchSampler,
    lengths_to_mask,
    pad_sequences,
)
from seqlstm.data.loading import load
from seqlstm.data.readers import read_conll, read_parallel, read_text

__all__ = [
    "BucketedBatches",
    "TokenBudgetBatchSampler",
    "lengths_to_mask",
    "load",
    "pad_sequences",
    "read_conll",
    "read_parallel",
    "read_text",
]
