"""Benchmarks: ``python -m benchmarks [NAME ...] [--quick] [--out DIR]``.

Each ``bench_NAME.py`` module exposes ``run(quick: bool) -> dict``; the runner in
``__main__.py`` adds the date, versions and machine details and writes ``DIR/NAME.json``
(``benchmarks/results``, the recorded results; with ``--quick``, ``benchmarks/results/quick``,
which git ignores).
"""
