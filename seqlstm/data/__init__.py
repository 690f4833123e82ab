"""Data: file readers, ``load`` (hub id, local files or a ``datasets`` object -> DatasetDict in
the columns the tasks read), the ``normalize_*`` functions behind it (a hub-shaped DatasetDict
-> those columns) and token-budget batches."""

from seqlstm.data.batching import (
    BucketedBatches,
    TokenBudgetBatchSampler,
    lengths_to_mask,
    pad_sequences,
)
from seqlstm.data.loading import (
    load,
    normalize_tagging_dataset,
    normalize_text_dataset,
    normalize_translation_dataset,
)
from seqlstm.data.readers import read_conll, read_parallel, read_text

__all__ = [
    "BucketedBatches",
    "TokenBudgetBatchSampler",
    "lengths_to_mask",
    "load",
    "normalize_tagging_dataset",
    "normalize_text_dataset",
    "normalize_translation_dataset",
    "pad_sequences",
    "read_conll",
    "read_parallel",
    "read_text",
]
