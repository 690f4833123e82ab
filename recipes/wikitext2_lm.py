"""Subword LSTM language model (AWD-LSTM) on WikiText-2, reporting word-level perplexity.

    python recipes/wikitext2_lm.py                      # full, on a GPU
    python recipes/wikitext2_lm.py --preset cpu         # a smaller model, ~1 hour on a CPU
    python recipes/wikitext2_lm.py --data-dir DIR       # wiki.train.raw, wiki.valid.raw,
                                                        # wiki.test.raw (any train*/valid*/test*)

Data: the raw (untokenised, no <unk>) WikiText-2 from the hub, `Salesforce/wikitext` with
config `wikitext-2-raw-v1`, or the same files from a local directory. Every line is one text
`BOS line EOS` (blank lines included: EOS is the line break, as WikiText's `<eos>`).

Level: subwords of the shared SentencePiece tokenizer (unigram, trained on the training
split), so there is no closed vocabulary and no `<unk>`. The tokenizer normalises each line
(NFKC, runs of whitespace to one space, no space at either end); WikiText's spacing is
already single spaces, so this only drops the space that starts every line.

Metrics, on validation and test (see `LSTMLanguageModel.evaluate`):
- perplexity: per subword token predicted (EOS included);
- word_perplexity: exp(total nll / words), words = whitespace-separated words of each line
  plus one `<eos>` per line, blank lines included: the counting of the word-level literature
  (AWD-LSTM's data.py), so it compares with published word-level WikiText-2 numbers (which
  are on the tokenised version, where rare words are `<unk>`: an easier task);
- bits_per_character: per character of the normalised lines plus one newline per line.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Literal

import torch

from seqlstm.data import load
from seqlstm.data.streams import StreamBatches, encode_stream
from seqlstm.errors import DataError
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

logger = logging.getLogger("wikitext2_lm")

HUB_ID = "Salesforce/wikitext"
HUB_CONFIG = "wikitext-2-raw-v1"
COUNTS = ("tokens", "characters", "words")  # metrics that are counts (the Trainer makes floats)


@dataclass
class WikiTextConfig:
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    # tokenizer
    vocab_size: int = 16000
    tokenizer_type: Literal["unigram", "bpe"] = "unigram"
    # model (see LanguageModelConfig; the defaults are AWD-LSTM's, tied weights)
    embedding_dim: int = 400
    hidden_size: int = 1150
    num_layers: int = 3
    dropout_embedding: float = 0.1
    dropout_input: float = 0.65
    dropout_hidden: float = 0.2
    dropout_output: float = 0.4
    weight_drop: float = 0.5
    # training
    batch_size: int = 80
    bptt: int = 70
    lr: float = 2e-3
    weight_decay: float = 1.2e-6
    grad_clip: float = 0.25
    max_epochs: int | None = 150
    max_steps: int | None = None
    max_time_minutes: float | None = None
    eval_every_steps: int | None = None  # None: after every epoch
    lr_patience: int = 2
    early_stopping_patience: int | None = 10
    eval_batch_size: int = 10
    resume: bool = False  # continue from the checkpoints in OUT/trainer
    threads: int | None = None  # torch CPU threads; None: torch's default (one per core)
    # the sample printed at the end
    sample_prompt: str = "The"
    sample_tokens: int = 100
    sample_temperature: float = 0.8


PRESETS = {
    "full": {},
    "cpu": {
        "vocab_size": 8000,
        "embedding_dim": 256,
        "hidden_size": 512,
        "num_layers": 2,
        "dropout_input": 0.4,
        "dropout_output": 0.3,
        "weight_drop": 0.3,
        "batch_size": 32,
        "max_epochs": None,
        "max_steps": 3000,
        "eval_every_steps": 500,
        "threads": 1,  # two threads were 2.6x slower on a busy 2-core machine
        "device": "cpu",
    },
    "smoke": {
        "vocab_size": 400,
        "embedding_dim": 16,
        "hidden_size": 24,
        "num_layers": 2,
        "batch_size": 4,
        "bptt": 16,
        "lr": 1e-2,
        "max_epochs": None,
        "max_steps": 30,
        "eval_every_steps": 15,
        "sample_tokens": 10,
        "device": "cpu",
    },
}


def main(argv: list[str] | None = None) -> dict:
    args = parse_recipe_args(WikiTextConfig, PRESETS, argv, "runs/wikitext2_lm", __doc__)
    cfg = args.config
    device = resolve_device(args.device)
    source = args.data_dir if args.data_dir is not None else args.dataset or HUB_ID
    splits = load(source, "text", hub_config=HUB_CONFIG)
    missing = {"train", "validation", "test"} - set(splits)
    if missing:  # checked before RunRecorder creates OUT: bad data leaves nothing behind
        raise DataError(
            f"{source}: no {' or '.join(sorted(missing))} split; WikiText has all three"
        )
    lines = {name: list(splits[name]["text"]) for name in ("train", "validation", "test")}
    digest = hashlib.sha256()
    for name, texts in lines.items():
        digest.update(f"{name}\0{''.join(texts)}\0".encode())

    recorder = RunRecorder(args.out, "language model", str(source), cfg, args.seed, device)
    torch.manual_seed(args.seed)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)

    tokenizer = SubwordTokenizer.train(
        lines["train"],
        vocab_size=cfg.vocab_size,
        model_type=cfg.tokenizer_type,
        hard_vocab_limit=False,
    )
    train_stream = encode_stream(tokenizer, lines["train"])
    logger.info(
        "%d training lines, %d tokens with a %d-piece %s tokenizer",
        len(lines["train"]),
        train_stream.numel(),
        len(tokenizer),
        cfg.tokenizer_type,
    )
    model_config = config_from(LanguageModelConfig, cfg, tie_weights=True)
    model = LSTMLanguageModel(model_config, tokenizer)
    logger.info("%s parameters", f"{sum(p.numel() for p in model.parameters()):,}")
    batches = StreamBatches(
        train_stream, cfg.batch_size, cfg.bptt, tokenizer.pad_id, tokenizer.bos_id
    )

    def evaluate(m: LSTMLanguageModel, split: str = "validation") -> dict[str, float]:
        metrics = m.evaluate(lines[split], batch_size=cfg.eval_batch_size, bptt=cfg.bptt)
        return {"loss": metrics["nll"], **metrics}

    training_config = trainer_config(args, device)
    best = Trainer(model, training_config, batches, TBPTTStep(), evaluate).fit()

    # the best checkpoint's weights are back in the model, and `best` are its metrics
    metrics = {
        split: {k: int(v) if k in COUNTS else v for k, v in values.items() if k != "loss"}
        for split, values in [("valid", best), ("test", evaluate(model, "test"))]
    }
    model.save_pretrained(args.out / "model")
    sample = model.generate(
        cfg.sample_prompt,
        cfg.sample_tokens,
        temperature=cfg.sample_temperature,
        seed=args.seed,
        multiline=True,
    )
    (args.out / "sample.txt").write_text(sample + "\n", encoding="utf-8")
    print(f"--- sample ({cfg.sample_tokens} tokens, temperature {cfg.sample_temperature}) ---")
    print(sample)
    print("---")
    return recorder.finish(metrics, digest.hexdigest())


if __name__ == "__main__":
    main()
