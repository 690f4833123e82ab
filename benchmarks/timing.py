"""Best-of-N timing in wall and CPU seconds, shared by the benchmarks that time a call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
