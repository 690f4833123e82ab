"""float32 against int8 (dynamic quantization) for the three models, on the CPU at one thread.

For each task one trained model directory is loaded twice, as saved (float32) and with
`from_pretrained(directory, quantize="int8")` (seqlstm.quantization: the LSTM and Linear
layers in int8), and both read the same real test set in the same run:

- ner: the CoNLL-2003 English test set (3,453 sentences, 46,435 words). The tagger reads
  every sentence with 60 words of document context, and the file has no -DOCSTART- lines, so
  it is read as one document, `predict_documents([sentences])`, as the NER recipe scores it;
  and every sentence alone, `predict(sentences)`. Words per second, and entity F1 (conlleval,
  as `model.evaluate` computes it).
- mt: Multi30k test2016 flickr en->de (1,000 sentences), `translate` with beam 5 at batch 64:
  source words per second, and the translator's own scores (`translation_scores`: sacreBLEU
  BLEU, cased 13a, with its signature).
- lm: Tiny Shakespeare validation (the last 10% of input.txt, split as the recipe splits it),
  `evaluate` at the recipe's batch 16 and bptt 100: characters per second and nats per
  character; and `generate` of 300 characters from "ROMEO:" (greedy, batch 1, the
  step-by-step path): characters per second.

Targets: int8 at least 2x the words (characters) per second of float32, at most 0.3 entity F1,
0.5 BLEU or 0.01 nats per character worse (`*_meets_target`, on the CPU-time speed-up). Also
recorded: the time `from_pretrained` takes each way (quantizing is part of loading), and how
many tags or translations of int8 equal float32's.

Models: $SEQLSTM_TAGGER_MODEL, $SEQLSTM_TRANSLATOR_MODEL and $SEQLSTM_LM_MODEL, else the
runs/ directories that the TRAIN_COMMANDS below write (the recipes' cpu configs). --quick
builds tiny random models of each kind on the first sentences of the same files, saves them
and loads them both ways, and only checks that everything runs, in seconds.

Timing: after an untimed warm-up of each model, the float32 and int8 runs alternate (one of
each per round, REPEATS rounds), so that a busy moment of a shared machine falls on both, and
each keeps its best wall time and best CPU time of this process (the steadier measure at
one thread). The one-minute load average is recorded before and after.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from benchmarks.timing import best_of, one_thread
from seqlstm.data import read_conll, read_parallel
from seqlstm.data.streams import text_lines
from seqlstm.metrics import entity_f1
from seqlstm.metrics.bleu import translation_scores
from seqlstm.pretrained import PretrainedModel
from seqlstm.recipes.tinyshakespeare_char_lm import read_shakespeare
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CONLL_TEST = DATA / "conll2003" / "test.txt"
MULTI30K_TEST = (
    DATA / "multi30k" / "test_2016_flickr.en",
    DATA / "multi30k" / "test_2016_flickr.de",
)
SHAKESPEARE = DATA / "tinyshakespeare" / "input.txt"
MODEL_ENVS = {
    "ner": "SEQLSTM_TAGGER_MODEL",
    "mt": "SEQLSTM_TRANSLATOR_MODEL",
    "lm": "SEQLSTM_LM_MODEL",
}
TRAIN_COMMANDS = {  # each writes its model to OUT/model
    "ner": "seqlstm train ner --config cpu --data-dir ../shared/data/conll2003 "
    "--seed 1 --out runs/ner_cpu_seed1",
    "mt": "seqlstm train translation --config cpu --data-dir ../shared/data/multi30k "
    "--out runs/mt_en_de_cpu",
    "lm": "seqlstm train char-lm --config cpu --data-dir "
    "../shared/data/tinyshakespeare --out runs/shakespeare_cpu",
}
BEAM_SIZE = 5
TRANSLATE_BATCH = 64
LM_BATCH, LM_BPTT = 16, 100  # the cpu preset's evaluation (eval_batch_size, bptt)
VALIDATION_FRACTION = 0.1  # the recipe's split
PROMPT, GENERATE_TOKENS = "ROMEO:", 300
REPEATS = 3
QUICK_SENTENCES = 32
TARGET_SPEEDUP = 2.0
TARGET_LOSS = {"f1": 0.3, "bleu": 0.5, "nats_per_character": 0.01}  # how much worse int8 may be
KINDS = ("fp32", "int8")

M = TypeVar("M", bound=PretrainedModel)
T = TypeVar("T")


def run(quick: bool) -> dict:
    for path in (CONLL_TEST, *MULTI30K_TEST, SHAKESPEARE):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: needed (the shared data sets, see README)")
    repeats = 1 if quick else REPEATS
    results: dict = {"repeats": repeats, "load_average_before": round(os.getloadavg()[0], 2)}
    with one_thread(), tempfile.TemporaryDirectory() as scratch:
        results["torch_threads"] = torch.get_num_threads()
        results.update(_ner(quick, Path(scratch), repeats))
        results.update(_mt(quick, Path(scratch), repeats))
        results.update(_lm(quick, Path(scratch), repeats))
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    return results


# ----------------------------------------------------------------------------- tasks


def _ner(quick: bool, scratch: Path, repeats: int) -> dict:
    count = QUICK_SENTENCES if quick else None
    directory = _tiny_tagger(read_conll(CONLL_TEST)[:count], scratch / "tagger") if quick else None
    models, results = _load_both(BiLSTMCRFTagger, directory or _model_dir("ner"), "ner")
    rows = read_conll(CONLL_TEST, scheme_to=models["fp32"].config.scheme)[:count]
    sentences = [row["tokens"] for row in rows]
    gold = [row["tags"] for row in rows]
    words = sum(len(sentence) for sentence in sentences)
    results.update(ner_sentences=len(sentences), ner_words=words)
    results["ner_context_words"] = models["fp32"].config.context_words
    results["ner_chunk_words"] = models["fp32"].config.chunk_words
    settings: dict[str, Callable[[BiLSTMCRFTagger, Sequence], list[list[str]]]] = {
        "document": lambda model, part: model.predict_documents([part])[0],
        "alone": lambda model, part: model.predict(part),
    }
    for setting, call in settings.items():
        timed = _time_both(
            models,
            lambda model, call=call: call(model, sentences),
            lambda model, call=call: call(model, sentences[:200]),
            repeats,
        )
        prefix = f"ner_{setting}"
        results.update(_rates(prefix, "words", words, timed))
        for kind in KINDS:
            scores = entity_f1(gold, timed[kind][0], scheme=models[kind].config.scheme)
            results[f"{prefix}_{kind}_f1"] = round(scores.f1, 2)
        tags = [
            (a, b)
            for x, y in zip(timed["fp32"][0], timed["int8"][0], strict=True)
            for a, b in zip(x, y, strict=True)
        ]
        results[f"{prefix}_tags_equal"] = round(sum(a == b for a, b in tags) / len(tags), 5)
        results.update(_verdict(prefix, "f1", results))
    return results


def _mt(quick: bool, scratch: Path, repeats: int) -> dict:
    pairs = read_parallel(*MULTI30K_TEST)[: QUICK_SENTENCES if quick else None]
    sources = [source for source, _ in pairs]
    references = [reference for _, reference in pairs]
    directory = _tiny_translator(sources + references, scratch / "translator") if quick else None
    models, results = _load_both(Seq2SeqLSTM, directory or _model_dir("mt"), "mt")
    words = sum(len(source.split()) for source in sources)
    results.update(mt_sentences=len(sources), mt_source_words=words)
    results.update(mt_beam_size=BEAM_SIZE, mt_batch_size=TRANSLATE_BATCH)

    def translate(model: Seq2SeqLSTM, part: list[str]) -> list[str]:
        return model.translate(part, beam_size=BEAM_SIZE, batch_size=TRANSLATE_BATCH)

    timed = _time_both(
        models,
        lambda model: translate(model, sources),
        lambda model: translate(model, sources[:TRANSLATE_BATCH]),
        repeats,
    )
    results.update(_rates("mt", "words", words, timed))
    for kind in KINDS:
        scores = translation_scores(timed[kind][0], references)
        results[f"mt_{kind}_bleu"] = round(scores["bleu"].score, 2)
        results[f"mt_{kind}_chrf"] = round(scores["chrf"].score, 2)
    results["mt_bleu_signature"] = scores["bleu"].signature
    same = sum(a == b for a, b in zip(timed["fp32"][0], timed["int8"][0], strict=True))
    results["mt_translations_equal"] = round(same / len(sources), 4)
    results.update(_verdict("mt", "bleu", results))
    return results


def _lm(quick: bool, scratch: Path, repeats: int) -> dict:
    _, valid_text = read_shakespeare(SHAKESPEARE, VALIDATION_FRACTION)
    lines = text_lines(valid_text)[: QUICK_SENTENCES if quick else None]
    directory = _tiny_lm(lines, scratch / "lm") if quick else None
    models, results = _load_both(LSTMLanguageModel, directory or _model_dir("lm"), "lm")

    def evaluate(model: LSTMLanguageModel, part: list[str]) -> dict[str, float]:
        return model.evaluate(part, batch_size=LM_BATCH, bptt=LM_BPTT)

    timed = _time_both(
        models,
        lambda model: evaluate(model, lines),
        lambda model: evaluate(model, lines[:200]),
        repeats,
    )
    characters = int(timed["fp32"][0]["characters"])
    results.update(lm_lines=len(lines), lm_characters=characters)
    results.update(lm_batch_size=LM_BATCH, lm_bptt=LM_BPTT)
    results.update(_rates("lm_evaluate", "characters", characters, timed))
    for kind in KINDS:
        nats = timed[kind][0]["nats_per_character"]
        results[f"lm_evaluate_{kind}_nats_per_character"] = round(nats, 4)
    results.update(_verdict("lm_evaluate", "nats_per_character", results))

    def generate(model: LSTMLanguageModel, tokens: int) -> str:
        return model.generate(PROMPT, tokens, temperature=0.0, multiline=True)

    timed = _time_both(
        models,
        lambda model: generate(model, GENERATE_TOKENS),
        lambda model: generate(model, 20),
        repeats,
    )
    # a character model: one token a character (EOS, a newline, counts as one)
    results.update(_rates("lm_generate", "characters", GENERATE_TOKENS, timed))
    # greedy text of int8 may part from float32's at a near tie, and then goes its own way
    same = os.path.commonprefix([timed[kind][0] for kind in KINDS])
    results["lm_generate_same_characters_first"] = len(same) - len(PROMPT)
    return results


# ----------------------------------------------------------------------------- measuring


def _load_both(model_class: type[M], directory: Path, task: str) -> tuple[dict[str, M], dict]:
    """The float32 and the int8 model of a directory, and how long each took to load."""
    models: dict[str, M] = {}
    results: dict[str, Any] = {f"{task}_model_dir": str(directory)}
    for kind in KINDS:
        quantize = None if kind == "fp32" else kind
        models[kind], wall, _ = best_of(
            lambda quantize=quantize: model_class.from_pretrained(directory, quantize=quantize), 1
        )
        results[f"{task}_{kind}_load_s"] = round(wall, 3)
    float32 = models["fp32"]
    results[f"{task}_model_parameters"] = sum(p.numel() for p in float32.parameters())
    return models, results


def _time_both(
    models: dict[str, M],
    call: Callable[[M], T],
    warm_up: Callable[[M], object],
    repeats: int,
) -> dict[str, tuple[T, float, float]]:
    """{kind: (output of call(model), best wall s, best CPU s)}: one untimed warm_up(model)
    each, then `repeats` rounds of one timed call of each model, alternating."""
    for model in models.values():
        warm_up(model)
    best: dict[str, tuple[T, float, float]] = {}
    for _ in range(repeats):
        for kind, model in models.items():
            output, wall, cpu = best_of(lambda model=model: call(model), 1)
            if kind in best:
                wall, cpu = min(wall, best[kind][1]), min(cpu, best[kind][2])
            best[kind] = (output, wall, cpu)
    return best


def _rates(prefix: str, unit: str, count: int, timed: dict[str, tuple[Any, float, float]]) -> dict:
    """Per-second rates of each kind, and int8's speed-up over float32, by wall and CPU time."""
    results: dict[str, float] = {}
    for kind, (_, wall, cpu) in timed.items():
        results[f"{prefix}_{kind}_{unit}_per_s"] = round(count / wall, 1)
        results[f"{prefix}_{kind}_{unit}_per_cpu_s"] = round(count / cpu, 1)
    results[f"{prefix}_int8_speedup"] = round(timed["fp32"][1] / timed["int8"][1], 2)
    results[f"{prefix}_int8_speedup_cpu"] = round(timed["fp32"][2] / timed["int8"][2], 2)
    return results


def _verdict(prefix: str, metric: str, results: dict) -> dict:
    """int8's difference in `metric` (int8 - float32) and whether the targets are met."""
    difference = results[f"{prefix}_int8_{metric}"] - results[f"{prefix}_fp32_{metric}"]
    # higher is better for F1 and BLEU, lower for nats per character
    worse = difference if metric == "nats_per_character" else -difference
    return {
        f"{prefix}_{metric}_difference": round(difference, 4),
        f"{prefix}_meets_target": bool(
            results[f"{prefix}_int8_speedup_cpu"] >= TARGET_SPEEDUP and worse <= TARGET_LOSS[metric]
        ),
    }


def _model_dir(task: str) -> Path:
    """$MODEL_ENVS[task] if set, else the directory TRAIN_COMMANDS[task] writes."""
    env = MODEL_ENVS[task]
    if os.environ.get(env):
        directory = Path(os.environ[env])
        if not directory.is_dir():
            raise FileNotFoundError(f"${env}={directory}: no such model directory")
        return directory
    directory = ROOT / TRAIN_COMMANDS[task].rsplit("--out ", 1)[1] / "model"
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no trained model for {task}: set ${env} to a model directory, or train one into "
            f"{directory} with `{TRAIN_COMMANDS[task]}`"
        )
    return directory


# ----------------------------------------------------------------------------- --quick


def _tiny_tagger(rows: list[dict], directory: Path) -> Path:
    texts = [" ".join(row["tokens"]) for row in rows]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=500, hard_vocab_limit=False, num_threads=1)
    torch.manual_seed(0)
    config = TaggerConfig(
        subword_dim=16, char_embedding_dim=8, char_filters=16, hidden_size=16, context_words=4
    )
    return BiLSTMCRFTagger.build(config, tokenizer, rows).save_pretrained(directory)


def _tiny_translator(texts: list[str], directory: Path) -> Path:
    tokenizer = SubwordTokenizer.train(texts, vocab_size=500, hard_vocab_limit=False, num_threads=1)
    torch.manual_seed(0)
    config = TranslatorConfig(
        embedding_dim=16,
        encoder_hidden_size=16,
        encoder_layers=1,
        decoder_hidden_size=16,
        decoder_layers=1,
        max_length_constant=2,  # a random model rarely ends: keep its outputs short
        max_length_ratio=1.0,
    )
    return Seq2SeqLSTM(config, tokenizer).save_pretrained(directory)


def _tiny_lm(lines: list[str], directory: Path) -> Path:
    tokenizer = SubwordTokenizer.train(lines, vocab_size=1000, model_type="char", num_threads=1)
    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_dim=16, hidden_size=32, num_layers=2)
    return LSTMLanguageModel(config, tokenizer).save_pretrained(directory)
