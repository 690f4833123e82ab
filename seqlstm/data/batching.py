"""Padding, masks and length-bucketed batches under a token budget, sharded for DDP.

Batches hold examples of similar length so that little of a batch is padding, and a batch
holds as many examples as fit in ``max_tokens`` padded positions (longest x count), which
keeps the memory of a step about constant whatever the sentence lengths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Stack id sequences of different lengths, right-padded with ``pad_id``.

    Returns ``(ids LongTensor[B, T], lengths LongTensor[B])`` with ``T`` the longest length
    (0 for an empty batch or one of empty sequences).
    """
    lengths = torch.tensor([len(seq) for seq in seqs], dtype=torch.long)
    max_len = int(lengths.max()) if len(seqs) else 0
    ids = torch.full((len(seqs), max_len), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return ids, lengths


def lengths_to_mask(lengths: Tensor | Sequence[int], max_len: int | None = None) -> Tensor:
    """``BoolTensor[B, T]``, True at the real positions ``t < lengths[b]``.

    ``T`` is ``max_len``, or the longest length; a ``max_len`` shorter than a length is an
    error rather than a silently truncated mask.
    """
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_len is None:
        max_len = longest
    elif max_len < longest:
        raise ValueError(f"max_len={max_len} is shorter than the longest length {longest}")
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def resolve_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """``(num_replicas, rank)``, each taken where None from the torch.distributed process
    group, else from torchrun's ``WORLD_SIZE``/``RANK`` environment (so batches built under
    torchrun before the Trainer joins the group are still sharded), else ``(1, 0)``. This is
    the one rule by which every batch source of seqlstm shards its data."""
    distributed = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if distributed else _env_int("WORLD_SIZE", 1)
    if rank is None:
        rank = dist.get_rank() if distributed else _env_int("RANK", 0)
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
    return num_replicas, rank


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"the environment variable {name}={value!r} is not an integer") from None


def rank_share(batches: list[Any], num_replicas: int, rank: int) -> list[Any]:
    """Rank ``rank``'s batches: ``rank, rank + num_replicas, ...`` of the list wrapped round
    to a multiple of ``num_replicas`` (so every rank takes the same number of steps)."""
    padded = -(-len(batches) // num_replicas) * num_replicas
    wrapped = [batches[i % len(batches)] for i in range(padded)] if batches else []
    return wrapped[rank::num_replicas]


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Batches of example indices whose padded size ``longest x count`` is <= ``max_tokens``.

    How an epoch's batches are made:

    1. sort the examples by length, equal lengths in a random order;
    2. cut the sorted list into buckets of ``bucket_size`` examples of similar length;
    3. in each bucket, shuffle the examples and cut them into batches of
       ``max_tokens // (longest length in the bucket)`` examples (at most ``max_sentences``);
       an example longer than ``max_tokens`` is thus a batch of its own, never dropped;
    4. shuffle the order of all batches;
    5. give rank ``r`` of ``num_replicas`` the batches ``r, r + num_replicas, ...``. When the
       batch count is not a multiple of ``num_replicas``, the list is first padded by wrapping
       around to its start, so every rank gets the same number of batches (DDP needs every
       rank to take the same number of steps) and a few batches are seen twice in the epoch.

    The sorted lengths are the same every epoch, so the batch sizes, and ``len(self)``, do
    not change between epochs, while which examples share a batch does. The order is a pure
    function of ``(seed, epoch)``: call ``set_epoch`` before iterating, or use
    :meth:`batches`. With ``shuffle=False`` the batches come from the shortest to the longest.
    Lengths of 0 count as 1, so empty examples still use up the budget.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        max_sentences: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        bucket_size: int = 1000,
    ) -> None:
        super().__init__()
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if (self.lengths < 0).any():
            raise ValueError("lengths must be >= 0")
        if max_tokens < 1 or bucket_size < 1 or (max_sentences is not None and max_sentences < 1):
            raise ValueError("max_tokens, max_sentences and bucket_size must be >= 1")
        num_replicas, rank = resolve_replicas(num_replicas, rank)
        self.max_tokens = max_tokens
        self.max_sentences = max_sentences
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.bucket_size = bucket_size
        self.epoch = 0
        self._total = sum(
            -(-len(bucket) // self._bucket_batch_size(bucket)) for bucket in self._buckets(None)
        )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches ``__iter__`` gives (as DistributedSampler does)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch for this rank (the same on every rank and in every epoch)."""
        return -(-self._total // self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch))

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of epoch ``epoch``, as lists of example indices."""
        rng = np.random.default_rng([self.seed, epoch]) if self.shuffle else None
        batches = []
        for bucket in self._buckets(rng):
            size = self._bucket_batch_size(bucket)
            if rng is not None:
                bucket = rng.permutation(bucket)
            batches += [bucket[i : i + size].tolist() for i in range(0, len(bucket), size)]
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return rank_share(batches, self.num_replicas, self.rank)

    def _buckets(self, rng: np.random.Generator | None) -> list[np.ndarray]:
        """Indices sorted by length (ties in random order with ``rng``), cut into buckets."""
        ties = rng.random(len(self.lengths)) if rng is not None else np.arange(len(self.lengths))
        order = np.lexsort((ties, self.lengths))
        return [order[i : i + self.bucket_size] for i in range(0, len(order), self.bucket_size)]

    def _bucket_batch_size(self, bucket: np.ndarray) -> int:
        size = max(1, self.max_tokens // max(int(self.lengths[bucket].max()), 1))
        return min(size, self.max_sentences) if self.max_sentences is not None else size


class BucketedBatches:
    """The ``BatchSource`` the Trainer consumes: collated token-budget batches of ``examples``.

    ``epoch(e)`` gives this rank's batches of epoch ``e``, each ``collate_fn`` applied to the
    list of its examples; keyword arguments go to :class:`TokenBudgetBatchSampler`
    (``max_sentences``, ``shuffle``, ``seed``, ``num_replicas``, ``rank``, ``bucket_size``).
    """

    def __init__(
        self,
        examples: Sequence[Any],
        lengths: Sequence[int],
        collate_fn: Callable[[list[Any]], Any],
        max_tokens: int,
        **sampler_options: Any,
    ) -> None:
        if len(examples) != len(lengths):
            raise ValueError(f"{len(examples)} examples but {len(lengths)} lengths")
        self.examples = examples
        self.collate_fn = collate_fn
        self.sampler = TokenBudgetBatchSampler(lengths, max_tokens, **sampler_options)

    @classmethod
    def fixed_size(
        cls,
        examples: Sequence[Any],
        collate_fn: Callable[[list[Any]], Any],
        batch_size: int,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> BucketedBatches:
        """Batches of ``batch_size`` examples (the last one smaller when the count does not
        divide), the examples shuffled by ``seed`` and the epoch: the batch source for
        examples that all have one length (images of one size, windows of one length), where
        a token budget has nothing to balance. Every example counts as length 1 in one bucket,
        so these are exactly the batches of a budget of ``T x batch_size`` over examples of T
        steps."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return cls(
            examples,
            [1] * len(examples),
            collate_fn,
            batch_size,
            max_sentences=batch_size,
            bucket_size=max(1, len(examples)),
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> Iterator[Any]:
        for indices in self.sampler.batches(epoch):
            yield self.collate_fn([self.examples[i] for i in indices])
