"""Padding, masks, and the token-budget batch sampler: coverage, budgets, determinism, shards."""

import random
from collections import Counter

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from seqlstm.data import BucketedBatches, TokenBudgetBatchSampler, lengths_to_mask, pad_sequences
from seqlstm.data.batching import resolve_replicas


def random_lengths(n: int = 500, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(0, 60) for _ in range(n)]


def padded_size(batch: list[int], lengths: list[int]) -> int:
    return max(max(lengths[i] for i in batch), 1) * len(batch)


def test_pad_sequences():
    ids, lengths = pad_sequences([[5, 6, 7], [8], []], pad_id=0)
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]
    tensor_ids, _ = pad_sequences([torch.tensor([1, 2]), torch.tensor([3])], pad_id=9)
    assert tensor_ids.tolist() == [[1, 2], [3, 9]]
    empty, empty_lengths = pad_sequences([], pad_id=0)
    assert empty.shape == (0, 0) and empty_lengths.shape == (0,)


def test_masks_match_lengths():
    rng = random.Random(0)
    seqs = [[rng.randint(1, 50) for _ in range(rng.randint(0, 9))] for _ in range(20)]
    ids, lengths = pad_sequences(seqs, pad_id=0)
    mask = lengths_to_mask(lengths)
    assert mask.dtype == torch.bool and mask.shape == ids.shape
    assert torch.equal(mask, ids != 0)  # no real id is 0 here, so padding is exactly ids == 0
    brute = [[t < len(seq) for t in range(12)] for seq in seqs]
    assert lengths_to_mask(lengths, max_len=12).tolist() == brute
    assert lengths_to_mask([2, 0]).tolist() == [[True, True], [False, False]]
    with pytest.raises(ValueError, match="shorter than the longest"):
        lengths_to_mask(lengths, max_len=2)


def test_every_example_once_per_epoch_within_budget():
    lengths = random_lengths() + [500, 0]  # one over-long example and one empty one
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=200, bucket_size=64)
    for epoch in range(3):
        batches = sampler.batches(epoch)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        assert len(batches) == len(sampler)
        for batch in batches:
            assert padded_size(batch, lengths) <= 200 or len(batch) == 1
        assert [len(lengths) - 2] in batches  # the over-long example is a batch of its own


def test_max_sentences():
    lengths = [3] * 100
    batches = TokenBudgetBatchSampler(lengths, max_tokens=1000, max_sentences=7).batches(0)
    assert max(len(batch) for batch in batches) == 7
    assert sum(len(batch) for batch in batches) == 100


def test_determinism_and_epochs_differ():
    lengths = random_lengths()
    first = TokenBudgetBatchSampler(lengths, max_tokens=200, seed=3, bucket_size=64)
    second = TokenBudgetBatchSampler(lengths, max_tokens=200, seed=3, bucket_size=64)
    assert first.batches(1) == second.batches(1)
    assert first.batches(0) != first.batches(1)
    other_seed = TokenBudgetBatchSampler(lengths, max_tokens=200, seed=4, bucket_size=64)
    assert other_seed.batches(1) != first.batches(1)
    # Not just the batch order: which examples share a batch changes too.
    groups = [{frozenset(batch) for batch in first.batches(epoch)} for epoch in (0, 1)]
    assert groups[0] != groups[1]
    first.set_epoch(1)
    assert list(first) == second.batches(1)
    assert len({len(first.batches(epoch)) for epoch in range(5)}) == 1


def test_buckets_keep_padding_low():
    lengths = random_lengths(2000)
    bucketed = TokenBudgetBatchSampler(lengths, max_tokens=300, bucket_size=100).batches(0)
    padding = sum(padded_size(b, lengths) for b in bucketed) - sum(max(n, 1) for n in lengths)
    # Random batches of the same sizes would pad about a third of every batch.
    shuffled = list(range(len(lengths)))
    random.Random(0).shuffle(shuffled)
    position, random_padding = 0, 0
    for batch in bucketed:
        members = shuffled[position : position + len(batch)]
        position += len(batch)
        random_padding += padded_size(members, lengths) - sum(max(lengths[i], 1) for i in members)
    assert padding < 0.2 * random_padding


def test_no_shuffle_goes_from_short_to_long():
    lengths = random_lengths()
    batches = TokenBudgetBatchSampler(lengths, max_tokens=200, shuffle=False).batches(7)
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)
    assert batches == TokenBudgetBatchSampler(lengths, max_tokens=200, shuffle=False).batches(0)


@pytest.mark.parametrize("num_replicas", [2, 3])
def test_shards_cover_everything_with_equal_counts(num_replicas):
    lengths = random_lengths(301)
    single = TokenBudgetBatchSampler(lengths, max_tokens=150, seed=1, bucket_size=50)
    total = len(single.batches(2))
    shards = [
        TokenBudgetBatchSampler(
            lengths, 150, seed=1, bucket_size=50, num_replicas=num_replicas, rank=rank
        )
        for rank in range(num_replicas)
    ]
    per_rank = [shard.batches(2) for shard in shards]
    assert len({len(batches) for batches in per_rank}) == 1
    assert all(len(shard) == len(per_rank[0]) for shard in shards)
    assert len(per_rank[0]) == -(-total // num_replicas)
    seen = Counter(i for batches in per_rank for batch in batches for i in batch)
    assert set(seen) == set(range(len(lengths)))
    # Only the batches added by wrapping around are seen twice.
    extra_batches = len(per_rank[0]) * num_replicas - total
    assert sum(count - 1 for count in seen.values()) == sum(
        len(batch) for batch in single.batches(2)[:extra_batches]
    )


def test_more_replicas_than_batches():
    # One batch, four ranks: wrapping around gives every rank that batch.
    shards = [
        TokenBudgetBatchSampler([5, 5], max_tokens=10, num_replicas=4, rank=rank)
        for rank in range(4)
    ]
    assert [[sorted(batch) for batch in shard.batches(0)] for shard in shards] == [[[0, 1]]] * 4
    assert TokenBudgetBatchSampler([], max_tokens=10).batches(0) == []


def test_invalid_arguments():
    with pytest.raises(ValueError, match=">= 0"):
        TokenBudgetBatchSampler([3, -1], max_tokens=10)
    with pytest.raises(ValueError, match=">= 1"):
        TokenBudgetBatchSampler([3], max_tokens=0)
    with pytest.raises(ValueError, match="rank 2"):
        TokenBudgetBatchSampler([3], max_tokens=10, num_replicas=2, rank=2)


def test_defaults_come_from_the_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        sampler = TokenBudgetBatchSampler([1, 2, 3], max_tokens=4)
        assert (sampler.num_replicas, sampler.rank) == (1, 0)
    finally:
        dist.destroy_process_group()


def test_works_as_a_dataloader_batch_sampler():
    lengths = random_lengths(50)
    data = [torch.full((n,), i) for i, n in enumerate(lengths)]
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=100, seed=5)
    loader = DataLoader(
        data, batch_sampler=sampler, collate_fn=lambda seqs: pad_sequences(seqs, -1)
    )
    sampler.set_epoch(2)
    batches = list(loader)
    assert len(batches) == len(sampler)
    for (_, batch_lengths), indices in zip(batches, sampler.batches(2), strict=True):
        assert batch_lengths.tolist() == [lengths[i] for i in indices]


def test_bucketed_batches_is_a_deterministic_batch_source():
    lengths = random_lengths(200)
    examples = [list(range(1, n + 1)) for n in lengths]

    def collate(batch):
        return pad_sequences(batch, pad_id=0)

    source = BucketedBatches(examples, lengths, collate, max_tokens=120, seed=2, bucket_size=40)
    epoch0 = list(source.epoch(0))
    assert len(epoch0) == len(source)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch0, source.epoch(0), strict=True))
    assert sorted(n for _, batch_lengths in epoch0 for n in batch_lengths.tolist()) == sorted(
        lengths
    )
    assert all(ids.numel() <= 120 or len(ids) == 1 for ids, _ in epoch0)
    assert [ids.tolist() for ids, _ in source.epoch(1)] != [ids.tolist() for ids, _ in epoch0]
    with pytest.raises(ValueError, match="200 examples but 3 lengths"):
        BucketedBatches(examples, [1, 2, 3], collate, max_tokens=10)


def test_replicas_come_from_torchrun_environment_before_the_group_exists(monkeypatch):
    # torchrun sets WORLD_SIZE/RANK; batches built before the Trainer joins the process group
    # must still be sharded, or every rank would train on the same data
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    assert resolve_replicas(None, None) == (3, 2)
    assert resolve_replicas(1, 0) == (1, 0)  # explicit values win
    sampler = TokenBudgetBatchSampler([1] * 9, max_tokens=1, shuffle=False)
    assert sampler.batches(0) == [[2], [5], [8]]
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK='x' is not an integer"):
        resolve_replicas(None, None)


def test_no_environment_and_no_group_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert resolve_replicas(None, None) == (1, 0)


# BucketedBatches.fixed_size: every example once per epoch in batches of the given size,
# seeded, shared by rank, and the very batches of a token budget over examples of one length


def epoch(batches, number):
    return list(batches.epoch(number))


def test_every_example_once_per_epoch_in_batches_of_the_size():
    batches = BucketedBatches.fixed_size(list(range(23)), list, batch_size=5, seed=3)
    for number in range(3):
        got = epoch(batches, number)
        assert sorted(len(batch) for batch in got) == [3, 5, 5, 5, 5]
        assert sorted(i for batch in got for i in batch) == list(range(23))
    assert len(batches) == 5
    assert epoch(batches, 0) == epoch(
        BucketedBatches.fixed_size(list(range(23)), list, 5, seed=3), 0
    )
    assert epoch(batches, 0) != epoch(batches, 1)  # reshuffled every epoch
    assert epoch(batches, 0) != epoch(
        BucketedBatches.fixed_size(list(range(23)), list, 5, seed=4), 0
    )


def test_the_batches_of_a_token_budget_over_examples_of_one_length():
    examples = [f"example {i}" for i in range(50)]
    for steps, batch_size, seed in [(8, 32, 0), (36, 32, 1), (28, 7, 2)]:
        expected = BucketedBatches(
            examples,
            [steps] * len(examples),
            list,
            steps * batch_size,
            max_sentences=batch_size,
            bucket_size=len(examples),
            seed=seed,
        )
        batches = BucketedBatches.fixed_size(examples, list, batch_size, seed)
        for number in range(3):
            assert epoch(batches, number) == epoch(expected, number)


def test_ranks_share_the_batches():
    examples = list(range(40))
    shares = [
        BucketedBatches.fixed_size(examples, list, 4, 0, num_replicas=2, rank=r) for r in (0, 1)
    ]
    whole = epoch(BucketedBatches.fixed_size(examples, list, 4, 0, num_replicas=1, rank=0), 0)
    assert epoch(shares[0], 0) == whole[0::2] and epoch(shares[1], 0) == whole[1::2]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BucketedBatches.fixed_size(examples, list, 0)
