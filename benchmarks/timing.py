"""Best-of-N timing in wall and CPU seconds, shared by the benchmarks that time a call."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")


def best_of(call: Callable[[], T], repeats: int) -> tuple[T, float, float]:
    """(the output of ``call()``, its best wall seconds, its best CPU seconds) over ``repeats``
    runs. The best, because other work on the machine only ever adds time; the CPU time of
    this process, because on a busy machine it is the steadier measure at one thread, while
    the wall time is what a user waits. Warm-up is the caller's."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        output = call()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return output, wall, max(cpu, 1e-9)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch - and numpy's or spaCy's BLAS, where threadpoolctl is installed - at one thread
    inside the block, the thread counts restored after: the benchmarks compare one core's
    work, and on a shared machine idle-spinning threads only add noise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield
            return
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)
