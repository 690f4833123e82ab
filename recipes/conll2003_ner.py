"""Named-entity recognition on CoNLL-2003 English with the BiLSTM-CRF tagger.

    python recipes/conll2003_ner.py --data-dir ../shared/data/conll2003 --preset smoke  # seconds
    python recipes/conll2003_ner.py --data-dir ../shared/data/conll2003 --preset cpu    # 45 min
    python recipes/conll2003_ner.py                                 # full, on a GPU, from the hub
    python recipes/conll2003_ner.py --word-vectors glove.6B.100d.txt   # + a GloVe word table

Data: the hub's `eriktks/conll2003` by default, or `--data-dir` with train/valid/test files
in column format (token first, tag last, tab or space separated) - any NER data set in that
format works unchanged, as the label set is read from the training data. Tags are read into
`--scheme` (IOB2) whatever scheme the files use; the CRF works in `--crf-scheme` (IOBES).

Model (Lample et al., 2016; Ma & Hovy, 2016): per word, SentencePiece subwords pooled into one
vector, a character CNN and optionally a word table initialised from GloVe; a BiLSTM; a CRF
constrained to valid tag sequences. Document context (seqlstm.tasks.tagging.context): the files
hold the sentences in document order, so the BiLSTM reads each sentence between up to
`--context-words` words of the sentences around it, and trains on windows of consecutive
sentences of up to `--window-words` words (`--context-words 0`: sentences alone). Neither
these files nor the hub's copy mark where one document ends, so the context may reach into
the next article. Training selects the checkpoint with the best entity F1 on the validation
split; results.json reports validation and test precision/recall/F1 (conlleval, in percent)
overall and per entity type.

Presets: `full` (the defaults, for a GPU) has Lample et al.'s sizes with a wider BiLSTM -
character embeddings of 25, 100 character-CNN filters, 200 LSTM units per direction, dropout
0.5 - and trains with Adam for up to 100 epochs, stopping early when validation F1 stalls;
`cpu` is the same model with a larger learning rate and 45 minutes of training on one CPU
core (one torch thread, so two seeds train side by side on a 2-core machine), without
pretrained vectors; `smoke` trains a tiny model on a slice of the data in seconds, to check
that everything runs.

Without pretrained vectors the tagger must label words it never saw - many test entities -
from their characters and context, so the defaults are those that generalise: subwords of
the lowercased word (the tokenizer is trained on lowercased text; the character CNN sees the
word as written), so that "JAPAN" in a headline and "Japan" share their pieces, averaged
over the word (not its first piece), up to 16,000 pieces (12,287 on CoNLL-2003), and word
dropout 0.3 (a dropped word is <unk> in the subword and word tables). Lowercasing was
measured over full cpu-preset runs (docs/RESULTS.md: +1.2 validation F1, +1.1 test F1); the
rest was chosen on validation F1 after 7 epochs of the cpu preset (seed 1, on a GPU,
2026-11-24; test F1 shown but not used to choose):

    pooling  pieces  word dropout  other                     valid F1  test F1
    first     8,000  0             (the earlier cpu preset)    88.64    83.43
    mean      8,000  0.15                                      90.26    85.10
    mean      8,000  0.30                                      89.79    84.62
    mean     16,000  0.15                                      90.41    84.86
    mean     16,000  0.20                                      90.41    84.46
    mean     16,000  0.30                                      90.87    85.03   <- defaults
    mean     16,000  0.50          + word table 100            89.95    84.98
    mean     16,000  0.30          + word table 100            90.59    85.13
    mean     16,000  0.30          + 200 char filters          90.61    84.60
    mean     16,000  0.30          + hidden 256, word table    90.30    85.05

(cased subwords in all of these). Document context (60 words, windows of 120), lowercased
subwords and weight averaging (`--ema-decay`, off) were measured over full cpu-preset runs
instead: see docs/RESULTS.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
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
from seqlstm.metrics import EntityScores
from seqlstm.tasks.tagging.context import DocumentWindowBatches
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer

logger = logging.getLogger("conll2003_ner")

HUB_ID = "eriktks/conll2003"


@dataclass
class NERConfig:
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    # tags and model (see TaggerConfig)
    scheme: Literal["IOB1", "IOB2", "IOBES"] = "IOB2"
    crf_scheme: Literal["IOB2", "IOBES"] = "IOBES"
    subword_vocab_size: int = 16000  # an upper bound: a small data set may give fewer pieces
    subword_dim: int = 100
    pooling: Literal["first", "mean"] = "mean"
    lowercase_subwords: bool = True  # subwords of lowercased words (case: character CNN)
    char_embedding_dim: int = 25
    char_filters: int = 100
    char_kernel_size: int = 3
    word_vectors: str | None = None  # GloVe/word2vec text file for the word table
    word_embedding_dim: int = 0  # 0: no word table, or the vectors' size when word_vectors
    word_dropout: float = 0.3  # share of training words whose subwords/word entry are <unk>
    hidden_size: int = 200
    num_layers: int = 1
    dropout: float = 0.5
    # document context (seqlstm.tasks.tagging.context): when tagging, the BiLSTM reads each sentence
    # between up to context_words words of the sentences around it; training reads windows
    # of consecutive sentences of up to window_words words. 0: sentences alone
    context_words: int = 60
    window_words: int = 120
    # training; the loss is a mean over words (SGD would need a rate ~14x that of the papers,
    # which average over sentences), and Adam is the less sensitive choice (Reimers & Gurevych,
    # 2017)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    grad_clip: float | None = 5.0
    ema_decay: float | None = None  # evaluate and keep a moving average of the weights
    batch_words: int = 400  # padded words per batch (longest sentence x sentences), ~30 sentences
    max_epochs: int | None = 100
    max_time_minutes: float | None = None
    eval_every_steps: int | None = None  # None: after every epoch
    lr_decay_factor: float = 0.5
    lr_patience: int = 3
    early_stopping_patience: int | None = 10
    eval_batch_size: int = 256
    # torch's CPU threads (None: its default). The model's small matrices gain little from a
    # second thread, and on a shared machine threads that spin against other jobs made
    # training over ten times slower.
    threads: int | None = None
    # slices of the data, for quick runs
    max_train_sentences: int | None = None
    max_eval_sentences: int | None = None


PRESETS = {
    "full": {},
    "cpu": {
        # on one core of an otherwise idle 2-core machine, two seeds side by side: about 49 s
        # an epoch (510 steps and the validation pass), 56 epochs in 45 minutes; validation F1
        # peaked after 26-38 (2026-11-24, the defaults: lowercased subwords, context_words 60,
        # window_words 120; docs/RESULTS.md)
        "lr": 2e-3,
        "lr_patience": 2,
        "max_epochs": 40,
        "early_stopping_patience": None,
        "threads": 1,
        "device": "cpu",
    },
    "smoke": {
        "subword_vocab_size": 1000,
        "subword_dim": 16,
        "char_embedding_dim": 8,
        "char_filters": 16,
        "hidden_size": 16,
        "word_dropout": 0.0,  # two epochs on 300 sentences: no words to spare
        "batch_words": 100,  # 300 sentences make 12 full batches of 400 words: too few steps
        "lr": 2e-2,
        "max_epochs": 2,
        "max_train_sentences": 300,
        "max_eval_sentences": 100,
        "threads": 1,
        "device": "cpu",
    },
}


def read_splits(source: str | Path, cfg: NERConfig) -> dict[str, tuple[list, list]]:
    """{split: (sentences, tags)} for train/validation/test, tags in cfg.scheme, sliced."""
    dataset = load(source, "tagging", scheme=cfg.scheme)
    missing = {"train", "validation", "test"} - set(dataset)
    if missing:
        raise DataError(f"{source}: no {', '.join(sorted(missing))} split")
    splits = {}
    for split in ("train", "validation", "test"):
        limit = cfg.max_train_sentences if split == "train" else cfg.max_eval_sentences
        rows = dataset[split]
        if limit is not None:
            rows = rows.select(range(min(limit, len(rows))))
        columns = rows.to_dict()
        splits[split] = (columns["tokens"], columns["tags"])
    return splits


def vectors_dimension(path: str | Path) -> int:
    """The size of the vectors in a GloVe/word2vec text file, from its first line."""
    with open(path, encoding="utf-8") as f:
        fields = f.readline().rstrip().split(" ")
    if len(fields) == 2 and all(field.isdigit() for field in fields):  # word2vec header
        return int(fields[1])
    if len(fields) < 2:
        raise DataError(f"{path}:1: expected a token and its vector")
    return len(fields) - 1


def check_labels(model: BiLSTMCRFTagger, tags: list[list[str]], split: str) -> None:
    """Fail before training, not after, on a tag whose label the training split lacks."""
    for number, sentence_tags in enumerate(tags):
        try:
            model.tag_ids(sentence_tags, number)
        except DataError as err:
            raise DataError(f"{split} split, {err}") from None


def metrics(scores: EntityScores) -> dict[str, float]:
    """Overall precision/recall/F1/accuracy and precision/recall/F1 per entity type."""
    result = {k: v for k, v in scores.as_dict().items() if not k.startswith("f1_")}
    for name, type_scores in scores.per_type.items():
        result[f"precision_{name}"] = type_scores.precision
        result[f"recall_{name}"] = type_scores.recall
        result[f"f1_{name}"] = type_scores.f1
    return result


def main(argv: list[str] | None = None) -> dict:
    args = parse_recipe_args(NERConfig, PRESETS, argv, "runs/conll2003_ner", __doc__)
    cfg = args.config
    device = resolve_device(args.device)
    source = args.data_dir if args.data_dir is not None else args.dataset or HUB_ID
    recorder = RunRecorder(
        args.out, "named-entity recognition", str(source), cfg, args.seed, device
    )
    torch.manual_seed(args.seed)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)

    splits = read_splits(source, cfg)
    # of the data rather than of files, so the hub and local files give the same fingerprint
    data_sha256 = hashlib.sha256(json.dumps(splits, ensure_ascii=False).encode()).hexdigest()
    train_sentences, train_tags = splits["train"]
    valid_sentences, valid_tags = splits["validation"]
    test_sentences, test_tags = splits["test"]
    word_dim = cfg.word_embedding_dim
    if cfg.word_vectors is not None and word_dim == 0:
        word_dim = vectors_dimension(cfg.word_vectors)
    model_config = config_from(TaggerConfig, replace(cfg, word_embedding_dim=word_dim))
    tokenizer = SubwordTokenizer.train(
        (" ".join(model_config.subword_words(words)) for words in train_sentences),
        vocab_size=cfg.subword_vocab_size,
        hard_vocab_limit=False,
    )
    model = BiLSTMCRFTagger.build(
        model_config, tokenizer, train_sentences, train_tags, word_vectors=cfg.word_vectors
    )
    check_labels(model, valid_tags, "validation")
    check_labels(model, test_tags, "test")
    logger.info(
        "%d/%d/%d train/validation/test sentences; %d subword pieces; labels %s; %s parameters",
        len(train_sentences),
        len(valid_sentences),
        len(test_sentences),
        len(tokenizer),
        " ".join(model.labels.tokens),
        f"{sum(p.numel() for p in model.parameters()):,}",
    )

    examples = model.encode(train_sentences, train_tags)
    if cfg.context_words:
        batches = DocumentWindowBatches(
            model, examples, cfg.window_words, cfg.batch_words, seed=args.seed
        )
    else:
        batches = BucketedBatches(
            examples, [e.length for e in examples], model.collate, cfg.batch_words, seed=args.seed
        )

    def evaluate(m: BiLSTMCRFTagger) -> dict[str, float]:
        return metrics(m.evaluate(valid_sentences, valid_tags, batch_size=cfg.eval_batch_size))

    training_config = trainer_config(
        args,
        device,
        metric="f1",
        metric_mode="max",
        log_every_steps=100,
    )
    best = Trainer(model, training_config, batches, evaluate_fn=evaluate).fit()

    # the best checkpoint's weights are back in the model, and `best` are its metrics
    model.save_pretrained(args.out / "model")
    test = model.evaluate(test_sentences, test_tags, batch_size=cfg.eval_batch_size)
    print(f"--- test ({len(test_sentences)} sentences) ---")
    print(test.report())
    return recorder.finish({"valid": best, "test": metrics(test)}, data_sha256)


if __name__ == "__main__":
    main()
