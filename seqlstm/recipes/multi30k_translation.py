"""Attention LSTM translation on Multi30k (Elliott et al., 2016), English -> German or French.

    seqlstm train translation --src en --tgt de                    # full, on a GPU
    seqlstm train translation --config cpu --data-dir ../shared/data/multi30k
    seqlstm train translation --config smoke --data-dir ../shared/data/multi30k
    seqlstm train translation --config cpu --src en --tgt fr --data-dir DIR
    python -m seqlstm.recipes.multi30k_translation --config smoke --data-dir DIR   # the same

Data: the hub's `bentrevett/multi30k` (en, de), or a directory of `{split}.{language}` files.
One SentencePiece model for both sides; source, target and output layer share one table. The
checkpoint is selected on validation BLEU (greedy); the test set is translated with beam
search into OUT/test.hyp and scored with sacreBLEU (`bleu`, `chrf`, `bleu_lowercase`, with
their `signatures`). Measured results and how the cpu preset was chosen: docs/RESULTS.md.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Literal

from seqlstm.data import BucketedBatches, load
from seqlstm.data.loading import SPLITS
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, evaluate_on, run_recipe, split_rows
from seqlstm.layers.attention import AttentionType
from seqlstm.metrics import translation_scores
from seqlstm.recipes import shipped_configs
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer

logger = logging.getLogger("multi30k_translation")

HUB_ID = "bentrevett/multi30k"


@dataclass
class Multi30kConfig(RunSettings):
    """Every setting of the recipe; each is also a command-line option (--vocab-size ...)."""

    src: str = "en"
    tgt: str = "de"
    train_pairs: int | None = None  # the first N pairs of a split (None: all of them)
    valid_pairs: int | None = None
    test_pairs: int | None = None
    vocab_size: int = 8000  # of the joint tokenizer
    tokenizer_type: Literal["unigram", "bpe"] = "unigram"
    hard_vocab_limit: bool = True  # False: vocab_size is an upper bound (small slices)
    embedding_dim: int = 256  # the model: see TranslatorConfig
    encoder_hidden_size: int = 256
    encoder_layers: int = 2
    decoder_hidden_size: int = 512
    decoder_layers: int = 2
    attention: AttentionType = "general"
    dropout: float = 0.3
    label_smoothing: float = 0.1
    max_tokens: int = 4000  # per batch: longest side x number of pairs
    lr: float = 1e-3
    grad_clip: float = 1.0
    max_epochs: int | None = 30
    lr_patience: int = 1
    early_stopping_patience: int | None = 4
    valid_beam_size: int = 1  # for checkpoint selection, during training
    test_beam_size: int = 5
    length_penalty: float = 1.0
    eval_batch_size: int = 128  # sentences


PRESETS = shipped_configs("translation")  # configs/translation/NAME.yaml; "full" by default


def main(argv: list[str] | None = None, prog: str | None = None) -> dict:
    run = RecipeRun.start(Multi30kConfig, PRESETS, argv, __doc__, "runs/multi30k_translation", prog)
    cfg, source = run.config, run.source(HUB_ID)
    limits = dict(zip(SPLITS, (cfg.train_pairs, cfg.valid_pairs, cfg.test_pairs), strict=True))
    rows = split_rows(load(source, "translation", languages=(cfg.src, cfg.tgt)), source, limits)
    run.begin(f"translation {cfg.src}->{cfg.tgt}", source, rows)
    train, valid, test = rows.values()
    texts = [row[cfg.src] for row in train] + [row[cfg.tgt] for row in train]
    kind = {"model_type": cfg.tokenizer_type, "hard_vocab_limit": cfg.hard_vocab_limit}
    tokenizer = SubwordTokenizer.train(texts, cfg.vocab_size, seed=run.seed, **kind)
    logger.info("%d-piece joint %s tokenizer", len(tokenizer), cfg.tokenizer_type)
    languages = {"source_language": cfg.src, "target_language": cfg.tgt}  # the rows' columns
    shared = {"share_embeddings": True, "tie_output": True}
    model = Seq2SeqLSTM(config_from(TranslatorConfig, cfg, **shared, **languages), tokenizer)
    examples = model.encode(train)
    # a pair's size is its longer side; the decoder reads BOS + text, one id fewer than the target
    lengths = [max(len(src), len(tgt) - 1) for src, tgt in examples]
    batches = BucketedBatches(examples, lengths, model.collate, cfg.max_tokens, seed=run.seed)
    decoding = {"batch_size": cfg.eval_batch_size, "length_penalty": cfg.length_penalty}
    evaluate = evaluate_on(valid, beam_size=cfg.valid_beam_size, **decoding)
    best = run.fit(model, batches, evaluate, metric="bleu", metric_mode="max")
    sources = [row[cfg.src] for row in test]
    hypotheses = model.translate(sources, beam_size=cfg.test_beam_size, **decoding)
    run.write_text("test.hyp", "".join(h + "\n" for h in hypotheses))
    scores = translation_scores(hypotheses, [row[cfg.tgt] for row in test])
    logger.info("test: %s", "; ".join(score.summary for score in scores.values()))
    test_metrics = {name: score.score for name, score in scores.items()}
    signatures = {name: score.signature for name, score in scores.items()}
    return run.finish({"valid": best, "test": test_metrics}, signatures=signatures)


if __name__ == "__main__":
    sys.exit(run_recipe(main))
