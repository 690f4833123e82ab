"""Attention LSTM translation on Multi30k (Elliott et al., 2016), English -> German or French.

    python recipes/multi30k_translation.py --src en --tgt de                 # full, on a GPU
    python recipes/multi30k_translation.py --preset cpu --data-dir ../shared/data/multi30k
    python recipes/multi30k_translation.py --preset smoke --data-dir ../shared/data/multi30k
    python recipes/multi30k_translation.py --preset cpu --src en --tgt fr --data-dir DIR

Data: the hub's `bentrevett/multi30k` (English and German only), or a local directory of
line-aligned `{split}.{language}` files (`train`, `val`, `test_2016_flickr`: 29,000 / 1,014 /
1,000 pairs, raw cased text). One SentencePiece model is trained on both sides of the training
pairs, so source and target share one embedding table, which the output layer reuses.

Training runs through the shared Trainer on token-budget batches. The checkpoint is selected
on validation BLEU (greedy search by default, for speed); the LR is halved when validation
BLEU stops improving. The selected model translates the test set (test2016 flickr) with beam
search, and the recipe reports on its detokenized, cased output

- `bleu`: sacreBLEU (13a tokenization, cased), comparable with published sacreBLEU scores;
- `chrf`: sacreBLEU's chrF2;
- `bleu_lowercase`: sacreBLEU with lowercase=True, for comparison with the many Multi30k
  papers that report lowercased BLEU (those are usually also on tokenized text, so they are
  still not exactly comparable).

The sacreBLEU signatures go into results.json (`signatures`) and results.md, and the test
translations into OUT/test.hyp.

The cpu preset (one torch thread, 50 minutes of training) was chosen by timing probes on
Multi30k en->de (joint unigram, 8,000 pieces; embeddings 256, tied; one layer each side;
Adam 2e-3, 3,000-token batches, about 190 steps an epoch), comparing validation BLEU (greedy,
first 300 sentences) at equal CPU time:

    encoder/decoder hidden   params  tokens/CPU-s   BLEU at 10.5 / 14 CPU-minutes
    256 / 256                 4.5M      1,450        12.0 / 20.2
    256 / 512                 7.2M      1,060        16.3 / 22.5   <- cpu preset
    512 / 512                10.3M        870         9.9 / -
    2 layers, 256 / 512      10.9M        810         5.2 / -

On an idle core the preset trains at about 1,280 target tokens/s (2,050 with two threads),
about 7 epochs in 50 minutes. Measured on 2026-11-24 with en->de and en->fr training side by
side on a 2-core machine (docs/RESULTS.md): test2016 sacreBLEU 35.36 (en->de) and 52.46
(en->fr), beam 5, cased. On a machine busy with other jobs a second thread made training up
to five times slower, so the preset uses one (`--threads 2` on an idle machine).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from seqlstm.data import BucketedBatches, load
from seqlstm.errors import DataError
from seqlstm.experiment.recipe_args import (
    RunRecorder,
    config_from,
    parse_recipe_args,
    resolve_device,
    trainer_config,
)
from seqlstm.layers.attention import AttentionType
from seqlstm.metrics import SacreScore, corpus_bleu, corpus_chrf
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslationBatch, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer

logger = logging.getLogger("multi30k_translation")

HUB_ID = "bentrevett/multi30k"


@dataclass
class Multi30kConfig:
    """Every setting of the recipe; each is also a command-line option (--vocab-size ...)."""

    src: str = "en"
    tgt: str = "de"
    # the first N pairs of a split (None: all of them), to run on a slice of the data
    train_pairs: int | None = None
    valid_pairs: int | None = None
    test_pairs: int | None = None
    # joint tokenizer, trained on both sides of the training pairs
    vocab_size: int = 8000
    tokenizer_type: Literal["unigram", "bpe"] = "unigram"
    hard_vocab_limit: bool = True  # False: vocab_size is an upper bound (small slices)
    # model (see TranslatorConfig); source, target and output layer share one table
    embedding_dim: int = 256
    encoder_hidden_size: int = 256
    encoder_layers: int = 2
    decoder_hidden_size: int = 512
    decoder_layers: int = 2
    attention: AttentionType = "general"
    dropout: float = 0.3
    label_smoothing: float = 0.1
    # training
    max_tokens: int = 4000  # per batch: longest side x number of pairs
    lr: float = 1e-3
    grad_clip: float = 1.0
    max_epochs: int | None = 30
    max_steps: int | None = None
    max_time_minutes: float | None = None
    eval_every_steps: int | None = None  # None: after every epoch
    lr_patience: int = 1
    early_stopping_patience: int | None = 4
    # decoding
    valid_beam_size: int = 1  # for checkpoint selection, during training
    test_beam_size: int = 5
    length_penalty: float = 1.0
    eval_batch_size: int = 128  # sentences
    # torch's intra-op threads (None: torch's default, one per core). On a machine shared
    # with other jobs, one thread is faster: a second one mostly waits for a busy core.
    threads: int | None = None


PRESETS = {
    "full": {},
    "cpu": {
        # chosen by measurement on 2 CPU cores; see the module docstring
        "encoder_layers": 1,
        "decoder_layers": 1,
        "max_tokens": 3000,
        "lr": 2e-3,
        "max_epochs": None,
        "max_steps": 1320,
        "eval_every_steps": 250,
        "lr_patience": 1,
        "early_stopping_patience": None,
        "threads": 1,
        "device": "cpu",
    },
    "smoke": {
        "train_pairs": 400,
        "valid_pairs": 40,
        "test_pairs": 40,
        "vocab_size": 1000,
        "hard_vocab_limit": False,
        "embedding_dim": 32,
        "encoder_hidden_size": 16,
        "encoder_layers": 1,
        "decoder_hidden_size": 32,
        "decoder_layers": 1,
        "max_tokens": 1000,
        "max_epochs": None,
        "max_steps": 16,
        "eval_every_steps": 8,
        "early_stopping_patience": None,
        "test_beam_size": 3,
        "threads": 1,
        "device": "cpu",
    },
}

SPLITS = ("train", "validation", "test")


# split -> (source sentences, target sentences)
Pairs = dict[str, tuple[list[str], list[str]]]


def read_pairs(source: str | Path, config: Multi30kConfig) -> Pairs:
    """The train, validation and test pairs, each split cut to its configured size."""
    splits = load(source, "translation", languages=(config.src, config.tgt))
    missing = [split for split in SPLITS if split not in splits]
    if missing:
        raise DataError(f"{source}: no {', '.join(missing)} split (found {', '.join(splits)})")
    limits = (config.train_pairs, config.valid_pairs, config.test_pairs)
    pairs = {}
    for split, limit in zip(SPLITS, limits, strict=True):
        dataset = splits[split]
        if limit is not None:
            dataset = dataset.select(range(min(limit, len(dataset))))
        pairs[split] = (list(dataset[config.src]), list(dataset[config.tgt]))
    return pairs


def data_fingerprint(pairs: Pairs) -> str:
    """SHA-256 of the sentence pairs, so the hub and local files give the same fingerprint."""
    digest = hashlib.sha256()
    for split in SPLITS:
        for pair in zip(*pairs[split], strict=True):
            digest.update(f"{split}\t{json.dumps(pair, ensure_ascii=False)}\n".encode())
    return digest.hexdigest()


def build_model(config: Multi30kConfig, tokenizer: SubwordTokenizer) -> Seq2SeqLSTM:
    model_config = config_from(TranslatorConfig, config, share_embeddings=True, tie_output=True)
    return Seq2SeqLSTM(model_config, tokenizer)


def training_batches(
    model: Seq2SeqLSTM, sources: list[str], targets: list[str], max_tokens: int, seed: int
) -> BucketedBatches:
    """Token-budget batches of (source, target) pairs; a pair's size is its longer side."""
    examples = model.encode_examples(sources, targets)
    # the decoder reads BOS text and predicts text EOS: one position fewer than the target ids
    lengths = [max(len(src), len(tgt) - 1) for src, tgt in examples]
    return BucketedBatches(
        examples, lengths, TranslationBatch.collate, max_tokens=max_tokens, seed=seed
    )


def score(hypotheses: list[str], references: list[str]) -> dict[str, SacreScore]:
    """Cased sacreBLEU, chrF and lowercased BLEU of detokenized translations."""
    return {
        "bleu": corpus_bleu(hypotheses, references),
        "chrf": corpus_chrf(hypotheses, references),
        "bleu_lowercase": corpus_bleu(hypotheses, references, lowercase=True),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_recipe_args(Multi30kConfig, PRESETS, argv, "runs/multi30k_translation", __doc__)
    cfg = args.config
    device = resolve_device(args.device)
    source = args.data_dir if args.data_dir is not None else args.dataset or HUB_ID
    recorder = RunRecorder(
        args.out, f"translation {cfg.src}->{cfg.tgt}", str(source), cfg, args.seed, device
    )
    torch.manual_seed(args.seed)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)

    pairs = read_pairs(source, cfg)
    train, valid, test = (pairs[split] for split in SPLITS)
    logger.info(
        "%d training, %d validation and %d test pairs", *(len(p[0]) for p in (train, valid, test))
    )
    tokenizer = SubwordTokenizer.train(
        train[0] + train[1],
        vocab_size=cfg.vocab_size,
        model_type=cfg.tokenizer_type,
        hard_vocab_limit=cfg.hard_vocab_limit,
        seed=args.seed,
    )
    model = build_model(cfg, tokenizer)
    logger.info(
        "%d-piece joint %s tokenizer; %s parameters",
        len(tokenizer),
        cfg.tokenizer_type,
        f"{sum(p.numel() for p in model.parameters()):,}",
    )
    batches = training_batches(model, *train, cfg.max_tokens, args.seed)

    def evaluate(m: Seq2SeqLSTM) -> dict[str, float]:
        hypotheses = m.translate(
            valid[0],
            beam_size=cfg.valid_beam_size,
            length_penalty=cfg.length_penalty,
            batch_size=cfg.eval_batch_size,
        )
        scores = score(hypotheses, valid[1])
        return {name: s.score for name, s in scores.items()}

    training_config = trainer_config(args, device, metric="bleu", metric_mode="max")
    best = Trainer(model, training_config, batches, evaluate_fn=evaluate).fit()
    model.save_pretrained(args.out / "model")

    # the best checkpoint's weights are back in the model, and `best` are its metrics
    hypotheses = model.translate(
        test[0],
        beam_size=cfg.test_beam_size,
        length_penalty=cfg.length_penalty,
        batch_size=cfg.eval_batch_size,
    )
    (args.out / "test.hyp").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    test_scores = score(hypotheses, test[1])
    for name, s in test_scores.items():
        logger.info("test %s: %s", name, s.summary)
    results = recorder.finish(
        {"valid": best, "test": {name: s.score for name, s in test_scores.items()}},
        data_fingerprint(pairs),
    )
    return add_signatures(args.out, results, test_scores)


def add_signatures(out: Path, results: dict, scores: dict[str, SacreScore]) -> dict:
    """Put the sacreBLEU signatures next to the scores in results.json and results.md.

    RunRecorder's metrics are numbers only, and a BLEU score means little without the
    signature that says how it was computed.
    """
    results = {**results, "signatures": {name: s.signature for name, s in scores.items()}}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = ["", "| test score (sacreBLEU) | signature |", "| --- | --- |"]
    lines += [f"| {s.summary} | `{s.signature}` |" for s in scores.values()]
    section = "\n".join(lines) + "\n"
    with (out / "results.md").open("a", encoding="utf-8") as f:
        f.write(section)
    print(section, end="")
    return results


if __name__ == "__main__":
    main()
