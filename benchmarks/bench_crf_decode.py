"""Constrained Viterbi decoding (seqlstm.layers.crf) against pytorch-crf's CRF.decode, on the CPU.

Batches of 64 sentences, lengths uniform in 5..40, 9 tags (CoNLL-2003 NER in IOB2), random
emissions. Both decoders see the same batches, timed alternately so that load from other
processes hits both alike, each batch a few times keeping the best; warm-up batches are not
timed. Throughput is sentences over the summed best times. The unconstrained decoder with the
same parameters must return exactly pytorch-crf's paths.

Run alone: ``python -m benchmarks.bench_crf_decode [--quick]`` prints the result as JSON.
"""

import argparse
import json
import time

import torch
from torchcrf import CRF

from seqlstm.layers.crf import LinearChainCRF

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
BATCH_SIZE = 64
MIN_LENGTH, MAX_LENGTH = 5, 40
TARGET_SPEEDUP = 3.0
REPEATS = 3


def make_batches(count: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` pairs (emissions FloatTensor[64, T, 9], right-padded mask BoolTensor[64, T])."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        lengths = torch.randint(MIN_LENGTH, MAX_LENGTH + 1, (BATCH_SIZE,), generator=generator)
        steps = int(lengths.max())
        emissions = torch.randn(BATCH_SIZE, steps, len(LABELS), generator=generator)
        batches.append((emissions, torch.arange(steps) < lengths.unsqueeze(1)))
    return batches


def run(quick: bool = False) -> dict:
    """Time both decoders; returns sentences/s for each, their ratio and the equality check.

    Single-threaded: the tensors are far too small for intra-op threads to help, and on a
    shared machine idle-spinning threads only add noise to both sides.
    """
    warmup, timed = (5, 30) if quick else (20, 300)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(warmup, timed)
    finally:
        torch.set_num_threads(threads)


def _measure(warmup: int, timed: int) -> dict:
    torch.manual_seed(0)
    constrained = LinearChainCRF.from_labels(LABELS, "IOB2")
    unconstrained = LinearChainCRF(len(LABELS))
    unconstrained.crf.load_state_dict(constrained.crf.state_dict())
    reference = CRF(len(LABELS), batch_first=True)
    reference.load_state_dict(constrained.crf.state_dict())
    batches = make_batches(warmup + timed)

    with torch.inference_mode():
        identical = all(
            unconstrained.decode(emissions, mask) == reference.decode(emissions, mask)
            for emissions, mask in batches
        )
        for emissions, mask in batches[:warmup]:
            reference.decode(emissions, mask)
            constrained.decode(emissions, mask)
        # Each batch REPEATS times, alternating the decoders; the best of the repeats drops
        # the moments another process held the CPU, which would otherwise dominate the sums.
        best = {"torchcrf": [], "seqlstm": []}
        total = dict.fromkeys(best, 0.0)
        for emissions, mask in batches[warmup:]:
            times = {name: [] for name in best}
            for _ in range(REPEATS):
                for name, decode in (
                    ("torchcrf", reference.decode),
                    ("seqlstm", constrained.decode),
                ):
                    start = time.perf_counter()
                    decode(emissions, mask)
                    times[name].append(time.perf_counter() - start)
            for name in best:
                best[name].append(min(times[name]))
                total[name] += sum(times[name])

    sentences = timed * BATCH_SIZE
    speedup = sum(best["torchcrf"]) / sum(best["seqlstm"])
    return {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "batch_size": BATCH_SIZE,
        "lengths": [MIN_LENGTH, MAX_LENGTH],
        "num_tags": len(LABELS),
        "timed_batches": timed,
        "warmup_batches": warmup,
        "repeats": REPEATS,
        "torchcrf_sentences_per_s": round(sentences / sum(best["torchcrf"]), 1),
        "seqlstm_constrained_sentences_per_s": round(sentences / sum(best["seqlstm"]), 1),
        "speedup": round(speedup, 2),
        # every run counted, interruptions included
        "speedup_all_runs": round(total["torchcrf"] / total["seqlstm"], 2),
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": speedup >= TARGET_SPEEDUP,
        "unconstrained_paths_identical": identical,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2))
