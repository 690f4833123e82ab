"""Character-level LSTM language model on Tiny Shakespeare (Karpathy's char-rnn data set).

    python recipes/tinyshakespeare_char_lm.py --preset demo      # ~3 min on a laptop CPU
    python recipes/tinyshakespeare_char_lm.py --preset cpu       # <= 60 min on 2 CPU cores
    python recipes/tinyshakespeare_char_lm.py                    # full, on a GPU
    python recipes/tinyshakespeare_char_lm.py --data-dir ../shared/data/tinyshakespeare

Data: the 1,115,394 characters of `input.txt` (local `--data-dir`, or the hub's
`karpathy/tiny_shakespeare`, whose train/validation/test rows are consecutive pieces of the
same text and are joined back together), cut as nanoGPT's `prepare.py` does: the first 90%
of the characters for training, the last 10% for validation. There is no test split.

Newlines matter in Shakespeare (speaker names, verse), but the shared tokenizer collapses all
whitespace. So the text is modelled line by line: each line is one text `BOS line EOS`, and
EOS stands for the newline, is scored, and blank lines are kept as `BOS EOS`. The tokenizer is
a SentencePiece "char" model (one piece per character, `▁` for a space).

Metrics are per character of the original text: the summed nll over the validation
characters including every newline (`nats_per_character`, the number nanoGPT reports as its
loss, 1.4697 for its 6-layer transformer on this split, and `bits_per_character`). The
character count that the model predicts is checked against len(validation text): it matches
exactly, since no validation line has runs of spaces or leading/trailing spaces for the
tokenizer's normalisation to remove (the training text has 14 such lines, 17 characters).
Every non-empty line also costs the prediction of the word-boundary piece `▁` that
SentencePiece puts before it; its nll is included (it is the model's belief that the line is
not blank), so the metric is an honest code length of the text.

Presets (measured on the project's shared 2-core AMD EPYC machine, torch 2.13, fp32):
- demo: 1 layer x 256, 3 minutes: 1.87 nats/char (559 steps, 1.8M characters at ~9,800
  characters/s on one thread of a busy machine); the sample already has speaker names, verse
  lines and Shakespearean words, mostly misspelt.
- cpu: 2 layers x 512 (3.6M parameters), bptt 100, batch 32, Adam 4e-3 (2e-3 stayed on the
  unigram plateau, 3.4 nats/char, for the first 80 steps; 4e-3 was at 2.86 after 100),
  55 minutes of training on one thread: 3,500 characters/s of CPU time, so ~11 epochs on an
  idle machine, ~4-6 epochs when the cores are shared (1,200-1,900/s were measured). Two
  threads were 2.6x slower than one on the busy machine (643 vs 1,665 characters/s), hence
  `threads: 1`; on an idle machine `--threads 2` should be faster (not measured: it never was
  idle).
  Expected: about 1.5 nats/char idle, 1.55-1.65 busy (an estimate from short probes; the
  full hour was not run while choosing it).
- full (GPU): 3 layers x 1024 with weight drop, bptt 200, up to 40 epochs with LR halving on
  plateaus and early stopping.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from seqlstm.data import load
from seqlstm.data.streams import StreamBatches, encode_stream, text_lines
from seqlstm.experiment.recipe_args import (
    RunRecorder,
    config_from,
    parse_recipe_args,
    resolve_device,
    trainer_config,
)
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.tasks.language_modeling.tbptt import TBPTTStep
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer

logger = logging.getLogger("tinyshakespeare_char_lm")

HUB_ID = "karpathy/tiny_shakespeare"
COUNTS = ("tokens", "characters", "words")  # metrics that are counts (the Trainer makes floats)


@dataclass
class ShakespeareConfig:
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    # model (see LanguageModelConfig); untied: the output layer has its own weights
    embedding_dim: int = 128
    hidden_size: int = 1024
    num_layers: int = 3
    dropout_embedding: float = 0.0
    dropout_input: float = 0.1
    dropout_hidden: float = 0.25
    dropout_output: float = 0.25
    weight_drop: float = 0.25
    # data and training
    validation_fraction: float = 0.1
    batch_size: int = 64
    bptt: int = 200
    lr: float = 2e-3
    grad_clip: float = 1.0
    max_epochs: int | None = 40
    max_steps: int | None = None
    max_time_minutes: float | None = None
    eval_every_steps: int | None = None  # None: after every epoch
    lr_patience: int = 0
    early_stopping_patience: int | None = 4
    eval_batch_size: int = 16
    resume: bool = False  # continue from the checkpoints in OUT/trainer
    threads: int | None = None  # torch CPU threads; None: torch's default (one per core)
    # the sample printed at the end
    sample_prompt: str = "ROMEO:\n"
    sample_tokens: int = 600
    sample_temperature: float = 0.8


PRESETS = {
    "full": {},
    "cpu": {
        # chosen by measurement on this project's 2-core machine: see the module docstring
        "hidden_size": 512,
        "num_layers": 2,
        "bptt": 100,
        "batch_size": 32,
        "weight_drop": 0.0,
        "lr": 4e-3,
        "max_epochs": None,
        "max_steps": 3500,
        "eval_every_steps": 500,
        "threads": 1,
        "device": "cpu",
    },
    "demo": {
        "embedding_dim": 64,
        "hidden_size": 256,
        "num_layers": 1,
        "dropout_input": 0.0,
        "dropout_hidden": 0.0,
        "dropout_output": 0.1,
        "weight_drop": 0.0,
        "bptt": 100,
        "batch_size": 32,
        "lr": 4e-3,
        "max_epochs": None,
        "max_steps": 600,
        "eval_every_steps": 300,
        "sample_tokens": 300,
        "threads": 1,
        "device": "cpu",
    },
    "smoke": {
        "embedding_dim": 16,
        "hidden_size": 32,
        "num_layers": 1,
        "weight_drop": 0.0,
        "batch_size": 16,
        "bptt": 32,
        "lr": 1e-2,
        "max_epochs": None,
        "max_time_minutes": None,
        "max_steps": 20,
        "eval_every_steps": 10,
        "sample_tokens": 40,
        "device": "cpu",
    },
}


def read_shakespeare(source: str | Path, validation_fraction: float) -> tuple[str, str]:
    """(training text, validation text): the first and last parts of the whole text."""
    splits = load(source, "text")
    # the hub's three splits are consecutive pieces of input.txt; a local file is one row
    text = "".join(
        "".join(splits[name]["text"]) for name in ("train", "validation", "test") if name in splits
    )
    cut = int(len(text) * (1 - validation_fraction))
    return text[:cut], text[cut:]


def main(argv: list[str] | None = None) -> dict:
    args = parse_recipe_args(
        ShakespeareConfig, PRESETS, argv, "runs/tinyshakespeare_char_lm", __doc__
    )
    cfg = args.config
    device = resolve_device(args.device)
    source = args.data_dir / "input.txt" if args.data_dir is not None else args.dataset or HUB_ID
    train_text, valid_text = read_shakespeare(source, cfg.validation_fraction)
    # of the text rather than of a file, so the hub and input.txt give the same fingerprint
    data_sha256 = hashlib.sha256((train_text + valid_text).encode()).hexdigest()

    recorder = RunRecorder(args.out, "char language model", str(source), cfg, args.seed, device)
    torch.manual_seed(args.seed)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    train_lines, valid_lines = text_lines(train_text), text_lines(valid_text)
    # vocab_size is an upper bound for "char" models: one piece per character of the text
    tokenizer = SubwordTokenizer.train(train_lines, vocab_size=1000, model_type="char")
    logger.info(
        "%d training and %d validation characters; %d pieces, 260 of them bytes and specials",
        len(train_text),
        len(valid_text),
        len(tokenizer),
    )

    model_config = config_from(LanguageModelConfig, cfg, tie_weights=False)
    model = LSTMLanguageModel(model_config, tokenizer)
    logger.info("%s parameters", f"{sum(p.numel() for p in model.parameters()):,}")
    batches = StreamBatches(
        encode_stream(tokenizer, train_lines),
        cfg.batch_size,
        cfg.bptt,
        tokenizer.pad_id,
        tokenizer.bos_id,
    )

    def evaluate(m: LSTMLanguageModel) -> dict[str, float]:
        metrics = m.evaluate(valid_lines, batch_size=cfg.eval_batch_size, bptt=cfg.bptt)
        return {"loss": metrics["nats_per_character"], **metrics}

    training_config = trainer_config(args, device)
    trainer = Trainer(model, training_config, batches, TBPTTStep(), evaluate)
    best = trainer.fit()

    # the best checkpoint's weights are back in the model, and `best` are its metrics
    valid = {k: int(v) if k in COUNTS else v for k, v in best.items() if k != "loss"}
    if int(valid["characters"]) != len(valid_text):
        logger.warning(
            "the model predicted %d characters, the validation text has %d",
            int(valid["characters"]),
            len(valid_text),
        )
    model.save_pretrained(args.out / "model")
    sample = model.generate(
        cfg.sample_prompt,
        cfg.sample_tokens,
        temperature=cfg.sample_temperature,
        seed=args.seed,
        multiline=True,
    )
    (args.out / "sample.txt").write_text(sample + "\n", encoding="utf-8")
    print(f"--- sample ({cfg.sample_tokens} characters, temperature {cfg.sample_temperature}) ---")
    print(sample)
    print("---")
    return recorder.finish({"valid": valid}, data_sha256)


if __name__ == "__main__":
    main()
