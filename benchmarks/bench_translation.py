"""Translation speed of Seq2SeqLSTM on the Multi30k test set (test2016 flickr, en->de), CPU.

Sentences per second for greedy search and beam search (beam 5) at batch sizes 1 and 64,
and the speed-up of batching: beam 5 at batch 64 should be at least 8x faster than
translating one sentence at a time.

The model matters: a randomly initialised one rarely emits EOS, so every output runs to the
length limit (2 x source + 10 subwords), far longer than real translations. The full
benchmark therefore uses a model of the recipe's cpu-preset size trained for a few minutes,
whose outputs have about the length of the references (reported as `mean_output_words`
next to `mean_reference_words`): the model in runs/bench_translation/model if it is there,
else one trained now by the translation recipe (`seqlstm train translation --config cpu`, one
epoch, about five minutes on two idle cores) and saved there for the next run. --quick uses a
tiny random model on a few sentences and only checks that everything runs.

Each setting is timed after one untimed warm-up batch; batch-64 timings are the best of two
runs. The full benchmark runs at one and at two intra-op threads (`_t1`, `_t2` keys): on an
idle machine two threads speed up the compute-bound batched search, while one sentence at a
time gains little; on a busy machine a second thread mostly waits for a core and timings
measure the neighbours, which is why the load average is recorded before and after. Rates
are per second of wall time, and at one thread also per second of this process's CPU time,
which a busy machine disturbs less.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from benchmarks.timing import best_of
from seqlstm.data import read_parallel
from seqlstm.metrics import corpus_bleu
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "multi30k"
RUN_DIR = ROOT / "runs" / "bench_translation"
TRAIN_EPOCHS = 1
TARGET_SPEEDUP = 8.0


def run(quick: bool) -> dict:
    if not DATA.is_dir():
        raise FileNotFoundError(f"{DATA}: the Multi30k files (test_2016_flickr.en/.de) are needed")
    pairs = read_parallel(DATA / "test_2016_flickr.en", DATA / "test_2016_flickr.de")
    if quick:
        pairs = pairs[:16]
    sources = [src for src, _ in pairs]
    references = [ref for _, ref in pairs]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model, model_info = _tiny_random_model(sources + references) if quick else _trained_model()
        results: dict = {"sentences": len(sources), **model_info}
        results["mean_reference_words"] = _mean_words(references)
        results["load_average_before"] = os.getloadavg()[0]
        large = 8 if quick else 64
        for thread_count in (1,) if quick else (1, 2):
            torch.set_num_threads(thread_count)
            results.update(_measure(model, sources, references, large, thread_count))
        results["load_average_after"] = os.getloadavg()[0]
        return results
    finally:
        torch.set_num_threads(threads)


def _measure(
    model: Seq2SeqLSTM, sources: list[str], references: list[str], large: int, threads: int
) -> dict:
    """Rates, speed-ups and output statistics of greedy and beam 5 at `threads` threads."""
    results: dict = {}
    for name, beam in (("greedy", 1), ("beam5", 5)):
        rates = {}
        for batch_size in (1, large):
            hypotheses, rates[batch_size] = _time_translation(model, sources, beam, batch_size)
            key = f"{name}_batch{batch_size}_t{threads}"
            results[f"{key}_sentences_per_s"] = round(rates[batch_size][0], 2)
            if threads == 1:
                results[f"{key}_sentences_per_cpu_s"] = round(rates[batch_size][1], 2)
        if threads == 1:
            # batching and threads do not change the output (tests check it): score it once
            results[f"{name}_bleu"] = round(corpus_bleu(hypotheses, references).score, 2)
            results[f"{name}_mean_output_words"] = _mean_words(hypotheses)
            cpu_speedup = rates[large][1] / rates[1][1]
            results[f"{name}_batch{large}_speedup_t1_cpu"] = round(cpu_speedup, 2)
        speedup = rates[large][0] / rates[1][0]
        results[f"{name}_batch{large}_speedup_t{threads}"] = round(speedup, 2)
    beam_speedup = results[f"beam5_batch{large}_speedup_t{threads}"]
    results[f"beam5_meets_{TARGET_SPEEDUP:g}x_t{threads}"] = beam_speedup >= TARGET_SPEEDUP
    return results


def _time_translation(
    model: Seq2SeqLSTM, sources: list[str], beam: int, batch_size: int
) -> tuple[list[str], tuple[float, float]]:
    """(translations, (sentences per second, sentences per CPU second)) of translating
    `sources` in batches. On a busy machine the CPU time of this process (one thread) is
    the steadier measure; the wall time is what a user waits."""
    model.translate(sources[:batch_size], beam_size=beam, batch_size=batch_size)  # warm-up
    repeats = 2 if batch_size > 1 else 1
    hypotheses, wall, cpu = best_of(
        lambda: model.translate(sources, beam_size=beam, batch_size=batch_size), repeats
    )
    return hypotheses, (len(sources) / wall, len(sources) / cpu)


def _mean_words(texts: list[str]) -> float:
    return round(sum(len(text.split()) for text in texts) / max(len(texts), 1), 2)


def _trained_model() -> tuple[Seq2SeqLSTM, dict]:
    """The cpu-preset-size model of RUN_DIR, trained now if it is not there yet."""
    if not (RUN_DIR / "model").is_dir():
        from seqlstm.recipes import multi30k_translation as recipe

        recipe.main(
            ["--preset", "cpu", "--data-dir", str(DATA), "--out", str(RUN_DIR)]
            + ["--max-epochs", str(TRAIN_EPOCHS), "--test-beam-size", "1"]
        )
    model = Seq2SeqLSTM.from_pretrained(RUN_DIR / "model")
    recorded = json.loads((RUN_DIR / "results.json").read_text(encoding="utf-8"))
    config = recorded["config"]
    return model, {
        "model": (
            f"seqlstm/recipes/multi30k_translation.py, {config['encoder_hidden_size']}/"
            f"{config['decoder_hidden_size']} hidden, trained for {_budget(config)}"
        ),
        "model_dir": str((RUN_DIR / "model").relative_to(ROOT)),
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "model_valid_bleu": recorded["metrics"]["valid"]["bleu"],
        "model_test_bleu": recorded["metrics"]["test"]["bleu"],
    }


def _budget(config: dict) -> str:
    """The training budget of a recipe config: steps, epochs and/or minutes, as set."""
    parts = [
        f"{config[key]} {unit}"
        for key, unit in (("max_steps", "steps"), ("max_epochs", "epochs"))
        if config.get(key) is not None
    ]
    if config.get("max_time_minutes") is not None:
        parts.append(f"at most {config['max_time_minutes']} minutes")
    return " and ".join(parts) or "no budget recorded"


def _tiny_random_model(texts: list[str]) -> tuple[Seq2SeqLSTM, dict]:
    tokenizer = SubwordTokenizer.train(texts, vocab_size=500, hard_vocab_limit=False)
    torch.manual_seed(0)
    config = TranslatorConfig(
        embedding_dim=32,
        encoder_hidden_size=16,
        encoder_layers=1,
        decoder_hidden_size=32,
        decoder_layers=1,
    )
    model = Seq2SeqLSTM(config, tokenizer).eval()
    info = {"model": "tiny, randomly initialised (quick)"}
    return model, {**info, "model_parameters": sum(p.numel() for p in model.parameters())}
