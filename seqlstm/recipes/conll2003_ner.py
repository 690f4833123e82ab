"""Named-entity recognition on CoNLL-2003 English with the BiLSTM-CRF tagger.

    seqlstm train ner --config smoke --data-dir ../shared/data/conll2003   # seconds
    seqlstm train ner --config cpu --data-dir ../shared/data/conll2003     # 40 epochs
    seqlstm train ner                                      # full, on a GPU, from the hub
    seqlstm train ner --word-vectors glove.6B.100d.txt     # + a GloVe word table
    python -m seqlstm.recipes.conll2003_ner --config smoke --data-dir DIR   # the same script

Data: the hub's `eriktks/conll2003`, or `--data-dir` with train/valid/test files in column
format (token first, tag last). Model (Lample et al., 2016; Ma & Hovy, 2016): per word,
subwords of the lowercased word, a character CNN and optionally a GloVe word table; a BiLSTM
that reads each sentence with `--context-words` words of its neighbours in its document; a
constrained CRF. Documents (`--documents`, seqlstm.data.documents): `auto` takes the data's
marks (`-DOCSTART-` lines, or `--document-column` of a hub set), else reads each split as one
document, as for CoNLL-2003, whose files are in document order but unmarked; results.json
records the rule. The best validation F1 is kept. Results: docs/RESULTS.md.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, replace
from typing import Literal

from seqlstm.data import load
from seqlstm.data.documents import DocumentSource, mark_split_documents
from seqlstm.data.loading import SPLITS
from seqlstm.data.word_vectors import word_vectors_dimension
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, evaluate_on, run_recipe, split_rows
from seqlstm.recipes import shipped_configs
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.text.tokenizer import SubwordTokenizer

logger = logging.getLogger("conll2003_ner")

HUB_ID = "eriktks/conll2003"


@dataclass
class NERConfig(RunSettings):
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

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
    context_words: int = 60  # words of the neighbouring sentences read on each side
    window_words: int = 120  # training windows of consecutive sentences
    documents: DocumentSource = "auto"  # where documents come from (module docstring)
    document_column: str | None = None  # a hub data set's document-id column
    # the loss is a mean over words: SGD would need ~14x the rate of the papers, which average
    # over sentences; Adam is the less sensitive choice (Reimers & Gurevych, 2017)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    grad_clip: float | None = 5.0
    ema_decay: float | None = None  # evaluate and keep a moving average of the weights
    batch_words: int = 400  # padded words per batch (longest sentence x sentences)
    max_epochs: int | None = 100
    lr_decay_factor: float = 0.5
    lr_patience: int = 3
    early_stopping_patience: int | None = 10
    eval_batch_size: int = 256
    max_train_sentences: int | None = None  # slices of the data, for quick runs
    max_eval_sentences: int | None = None


PRESETS = shipped_configs("ner")  # configs/ner/NAME.yaml; "full" by default


def main(argv: list[str] | None = None, prog: str | None = None) -> dict:
    run = RecipeRun.start(NERConfig, PRESETS, argv, __doc__, "runs/conll2003_ner", prog)
    cfg, source = run.config, run.source(HUB_ID)
    limits = dict.fromkeys(SPLITS, cfg.max_eval_sentences) | {"train": cfg.max_train_sentences}
    data = load(source, "tagging", scheme=cfg.scheme, document_column=cfg.document_column)
    rows, documents = mark_split_documents(split_rows(data, source, limits), cfg.documents)
    run.begin("named-entity recognition", source, rows)
    logger.info("documents: %s", documents)
    train, valid, test = rows.values()
    vectors_dim = word_vectors_dimension(cfg.word_vectors) if cfg.word_vectors else 0
    sizes = replace(cfg, word_embedding_dim=cfg.word_embedding_dim or vectors_dim)
    model_config = config_from(TaggerConfig, sizes)
    texts = (" ".join(model_config.subword_words(row["tokens"])) for row in train)
    tokenizer = SubwordTokenizer.train(texts, cfg.subword_vocab_size, hard_vocab_limit=False)
    model = BiLSTMCRFTagger.build(model_config, tokenizer, train, word_vectors=cfg.word_vectors)
    for split in ("validation", "test"):  # bad labels fail now, not after training
        model.check_rows(rows[split], f"{split} split")
    logger.info("%d subword pieces; labels %s", len(tokenizer), " ".join(model.labels.tokens))
    batches = model.training_batches(train, cfg.batch_words, cfg.window_words, run.seed)
    evaluate = evaluate_on(valid, batch_size=cfg.eval_batch_size)
    best = run.fit(model, batches, evaluate, metric="f1", metric_mode="max", log_every_steps=100)
    scores = model.entity_scores(test, batch_size=cfg.eval_batch_size)
    print(f"--- test ({len(test)} sentences) ---\n{scores.report()}")
    return run.finish({"valid": best, "test": scores.as_dict()}, documents=documents)


if __name__ == "__main__":
    sys.exit(run_recipe(main))
