"""Run the benchmarks and write one JSON file per benchmark (see benchmarks/__init__.py)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

PREFIX = "bench_"


def discover() -> list[str]:
    """Names of the ``bench_*.py`` modules next to this file."""
    here = Path(__file__).parent
    return sorted(p.stem[len(PREFIX) :] for p in here.glob(f"{PREFIX}*.py"))


def machine_info() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name() if cuda else None,
    }


def summary_line(name: str, results: dict) -> str:
    scalars = {k: v for k, v in results.items() if isinstance(v, int | float | str | bool)}
    shown = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in scalars.items()
    )
    return f"{name}: {shown}"


def main(argv: list[str] | None = None) -> None:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {available}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument(
        "--out",
        type=Path,
        help="default: benchmarks/results, or benchmarks/results/quick (not kept) with --quick",
    )
    args = parser.parse_args(argv)
    # a smoke test must not overwrite the recorded results
    args.out = args.out or Path("benchmarks/results/quick" if args.quick else "benchmarks/results")
    names = [n.removeprefix(PREFIX) for n in args.names] or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available}")

    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.{PREFIX}{name}")
        start = time.perf_counter()
        results = module.run(quick=args.quick)
        record = {
            "benchmark": name,
            "quick": args.quick,
            "wall_time_s": time.perf_counter() - start,
            **machine_info(),
            "results": results,
        }
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(summary_line(name, results), f"-> {path}", file=sys.stdout)


if __name__ == "__main__":
    main()
