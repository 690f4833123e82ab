"""Dynamic batching: concurrent requests to one model grouped into one model call.

A model call over many sentences costs far less per sentence than one call per sentence (the
tagger reads 32 sentences at once about 4 times faster per word than one by one), so the server
does not call the model per request. Each served model has one `DynamicBatcher` with one
worker thread:

    request handlers (event loop)          worker thread (one per model)
    submit(key, payload, size) --queue-->  take the oldest request; add the queued requests
      awaits its future                    with the same key, in order, while the batch holds
                                           at most max_batch_size (in sentences); wait up to
                                           max_wait_s for more; call(key, payloads) once;
      <--------- result or error --------  hand each request its own result

Why this shape:

- The model runs in the worker thread, never on the event loop, so the server keeps answering
  (health checks, validation errors, other models) while a batch runs; torch releases the
  GIL inside its kernels. One thread per model: a model is called by one thread at a time,
  and two models run side by side.
- The key says which requests may share a call: those whose call options are equal (beam
  size, sampling settings, sentences or documents). A request never waits for requests of
  another key; they form the next batch.
- Requests that queued while the previous batch ran are taken at once; max_wait_s (a few
  milliseconds) only adds latency when the queue runs dry before the batch is full.
- A request larger than max_batch_size is a batch of its own (the request limits bound it).
- A call that raises fails only the request that caused it: the batch is called again one
  request at a time, so the other requests of the batch still get their results, and each
  failing request gets a `ModelCallError`. The worker thread survives every exception.

`calls` and `requests` count the model calls made and the requests answered, so
``requests / calls`` is the mean batch size (shown by ``GET /health``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

P = TypeVar("P")  # what a request asks of the model (its payload)
R = TypeVar("R")  # what it gets back

# how long `close` waits for the batch in progress before giving up on the worker thread
CLOSE_TIMEOUT_S = 30.0


class ModelCallError(RuntimeError):
    """The model call of a request raised; the message is one line: the exception's type and
    text."""


class BatcherClosed(RuntimeError):
    """The batcher was closed (the server is shutting down) before the request ran."""


@dataclass
class _Pending:
    """A submitted request: its key, payload and size, and the future its handler awaits."""

    key: Hashable
    payload: Any
    size: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class DynamicBatcher(Generic[P, R]):
    """Groups concurrent requests for one model into model calls, run in one worker thread.

    ``call(key, payloads)`` runs the model once for the payloads of requests that share
    ``key``, in submission order, and returns one result per payload, in the same order.
    """

    def __init__(
        self,
        name: str,
        call: Callable[[Hashable, list[P]], Sequence[R]],
        max_batch_size: int,
        max_wait_s: float,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.calls = 0
        self.requests = 0
        self._call = call
        self._queue: deque[_Pending] = deque()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def submit(self, key: Hashable, payload: P, size: int = 1) -> R:
        """The result of ``payload`` (``size`` sentences), from a model call it may share with
        other requests of the same key. Raises ModelCallError if that call raised, and
        BatcherClosed after `close`."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._condition:
            if self._closed:
                raise BatcherClosed(f"{self.name}: the server is shutting down")
            if self._thread is None:  # started here, so no ASGI lifespan event is needed
                self._thread = threading.Thread(
                    target=self._work, name=f"seqlstm-{self.name}", daemon=True
                )
                self._thread.start()
            self._queue.append(_Pending(key, payload, size, loop, future))
            self._condition.notify()
        return await future

    def close(self) -> None:
        """Stop taking requests, fail the queued ones with BatcherClosed, and let the worker
        finish the batch in progress (waiting up to CLOSE_TIMEOUT_S)."""
        with self._condition:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            self._condition.notify_all()
        for pending in queued:
            _settle(pending, None, BatcherClosed(f"{self.name}: the server is shutting down"))
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT_S)

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Pending] | None:
        """The next batch (None once closed): the oldest request, then the queued requests of
        its key that fit, waiting up to max_wait_s for more while the batch is not full."""
        with self._condition:
            while True:
                while not self._queue:
                    if self._closed:
                        return None
                    self._condition.wait()
                first = self._queue.popleft()
                batch, size = [first], first.size
                deadline = time.monotonic() + self.max_wait_s
                while size < self.max_batch_size:
                    size = self._take_matching(first.key, batch, size)
                    remaining = deadline - time.monotonic()
                    if size >= self.max_batch_size or remaining <= 0 or self._closed:
                        break
                    self._condition.wait(remaining)
                # a request whose client went away is not worth a model call
                batch = [pending for pending in batch if not pending.future.cancelled()]
                if batch:
                    return batch

    def _take_matching(self, key: Hashable, batch: list[_Pending], size: int) -> int:
        """Move the queued requests of ``key`` that fit into ``batch``, oldest first, stopping
        at the first one that does not fit (so requests of a key keep their order); returns
        the batch's new size."""
        kept: deque[_Pending] = deque()
        full = False
        while self._queue:
            pending = self._queue.popleft()
            if pending.key != key or full:
                kept.append(pending)
            elif size + pending.size > self.max_batch_size:
                full = True
                kept.append(pending)
            else:
                batch.append(pending)
                size += pending.size
        self._queue = kept
        return size

    def _run(self, batch: list[_Pending]) -> None:
        """Call the model on the batch and settle every request's future."""
        try:
            results = self._checked_call(batch)
        except Exception as err:
            if len(batch) == 1:
                self._fail(batch[0], err)
            else:  # find the request that raised: the others still get their results
                for pending in batch:
                    self._run([pending])
            return
        self.requests += len(batch)
        for pending, result in zip(batch, results, strict=True):
            _settle(pending, result, None)

    def _checked_call(self, batch: list[_Pending]) -> Sequence[R]:
        self.calls += 1
        results = self._call(batch[0].key, [pending.payload for pending in batch])
        if len(results) != len(batch):
            raise RuntimeError(
                f"the model call returned {len(results)} results for {len(batch)} requests"
            )
        return results

    def _fail(self, pending: _Pending, error: Exception) -> None:
        # the traceback goes to the server's log; the client gets one line
        logger.error("%s: model call failed", self.name, exc_info=error)
        self.requests += 1
        text = " ".join(str(error).split())
        message = f"{type(error).__name__}: {text}" if text else type(error).__name__
        _settle(pending, None, ModelCallError(f"{self.name}: the model call failed: {message}"))


def _settle(pending: _Pending, result: Any, error: BaseException | None) -> None:
    """Hand a result or an error to the request's future, on the future's own event loop."""

    def settle() -> None:
        if pending.future.done():  # cancelled: the client went away
            return
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        pending.loop.call_soon_threadsafe(settle)
