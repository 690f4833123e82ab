"""DynamicBatcher: which requests share a call, in what order, and what happens when one fails."""

import asyncio
import threading
import time

import pytest

pytest.importorskip("fastapi")  # seqlstm.serving is the `serve` extra

from seqlstm.serving.batching import BatcherClosed, DynamicBatcher, ModelCallError  # noqa: E402


class Recorder:
    """A model call that records its batches and answers each payload with (key, payload)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[tuple[object, list]] = []
        self.delay_s = delay_s

    def __call__(self, key, payloads):
        self.batches.append((key, list(payloads)))
        time.sleep(self.delay_s)
        for payload in payloads:
            if payload == "boom":
                raise RuntimeError("boom\non two lines")
        return [(key, payload) for payload in payloads]


async def _submit_all(batcher, requests):
    """Submit (key, payload, size) requests concurrently, in order; results or exceptions."""
    return await asyncio.gather(
        *(batcher.submit(key, payload, size) for key, payload, size in requests),
        return_exceptions=True,
    )


def test_concurrent_requests_share_calls_by_key_in_order():
    call = Recorder()
    batcher = DynamicBatcher("test", call, max_batch_size=8, max_wait_s=0.05)
    requests = [("a", 0, 1), ("b", 1, 1), ("a", 2, 1), ("a", 3, 1), ("b", 4, 1)]
    results = asyncio.run(_submit_all(batcher, requests))
    batcher.close()
    assert results == [(key, payload) for key, payload, _ in requests]
    assert sorted(call.batches) == [("a", [0, 2, 3]), ("b", [1, 4])]
    assert (batcher.calls, batcher.requests) == (2, 5)


def test_a_batch_holds_at_most_max_batch_size_and_a_larger_request_runs_alone():
    call = Recorder()
    batcher = DynamicBatcher("test", call, max_batch_size=4, max_wait_s=0.05)
    requests = [("k", n, size) for n, size in enumerate([3, 1, 1, 6, 2, 2])]
    results = asyncio.run(_submit_all(batcher, requests))
    batcher.close()
    assert results == [("k", n) for n in range(6)]
    # in order; a request that does not fit waits for the next batch, so its key keeps order
    assert [payloads for _, payloads in call.batches] == [[0, 1], [2], [3], [4, 5]]


def test_requests_queued_during_a_call_form_the_next_batch():
    call = Recorder(delay_s=0.05)
    batcher = DynamicBatcher("test", call, max_batch_size=64, max_wait_s=0.0)

    async def main():
        first = asyncio.ensure_future(batcher.submit("k", "first"))
        await asyncio.sleep(0.01)  # the worker is inside the first call now
        rest = await asyncio.gather(*(batcher.submit("k", n) for n in range(10)))
        return [await first, *rest]

    results = asyncio.run(main())
    batcher.close()
    assert results == [("k", "first"), *(("k", n) for n in range(10))]
    assert [payloads for _, payloads in call.batches] == [["first"], list(range(10))]


def test_a_failing_request_fails_alone_and_the_worker_carries_on():
    call = Recorder()
    batcher = DynamicBatcher("tag", call, max_batch_size=8, max_wait_s=0.05)

    async def main():
        results = await _submit_all(batcher, [("k", 1, 1), ("k", "boom", 1), ("k", 2, 1)])
        return results, await batcher.submit("k", 3)

    (first, failed, second), after = asyncio.run(main())
    batcher.close()
    assert (first, second, after) == (("k", 1), ("k", 2), ("k", 3))
    assert isinstance(failed, ModelCallError)
    assert str(failed) == "tag: the model call failed: RuntimeError: boom on two lines"
    # the batch of three, then each of its requests alone, then the request after
    assert [payloads for _, payloads in call.batches] == [[1, "boom", 2], [1], ["boom"], [2], [3]]
    assert batcher.requests == 4


def test_a_call_returning_the_wrong_number_of_results_is_an_error():
    batcher = DynamicBatcher("test", lambda key, payloads: [], max_batch_size=8, max_wait_s=0.0)
    with pytest.raises(ModelCallError, match="returned 0 results for 1 requests"):
        asyncio.run(batcher.submit("k", 1))
    batcher.close()


def test_close_refuses_queued_and_new_requests():
    started, release = threading.Event(), threading.Event()

    def call(key, payloads):
        started.set()
        release.wait(5)
        return payloads

    batcher = DynamicBatcher("test", call, max_batch_size=1, max_wait_s=0.0)

    async def main():
        running = asyncio.ensure_future(batcher.submit("k", "running"))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        queued = asyncio.ensure_future(batcher.submit("k", "queued"))
        await asyncio.sleep(0.01)
        closing = asyncio.get_running_loop().run_in_executor(None, batcher.close)
        await asyncio.sleep(0.01)
        release.set()  # the batch in progress finishes
        await closing
        return await asyncio.gather(running, queued, return_exceptions=True)

    running, queued = asyncio.run(main())
    assert running == "running"
    assert isinstance(queued, BatcherClosed)
    with pytest.raises(BatcherClosed, match="shutting down"):
        asyncio.run(batcher.submit("k", "late"))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_batch_size"):
        DynamicBatcher("test", Recorder(), max_batch_size=0, max_wait_s=0.0)
    with pytest.raises(ValueError, match="max_wait_s"):
        DynamicBatcher("test", Recorder(), max_batch_size=1, max_wait_s=-1.0)
