"""Subword LSTM language model (AWD-LSTM) on WikiText-2, reporting word-level perplexity.

    seqlstm train lm                       # full, on a GPU
    seqlstm train lm --config cpu          # a smaller model, 3,000 steps on a CPU
    seqlstm train lm --data-dir DIR        # wiki.train.raw, wiki.valid.raw, wiki.test.raw
                                           # (any train*/valid*/test*)
    python -m seqlstm.recipes.wikitext2_lm --config cpu     # the same script

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

import logging
import sys
from dataclasses import dataclass
from typing import Literal

from seqlstm.data import load
from seqlstm.data.loading import SPLITS
from seqlstm.data.streams import StreamBatches
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, evaluate_on, run_recipe, split_rows
from seqlstm.recipes import shipped_configs
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.text.tokenizer import SubwordTokenizer

logger = logging.getLogger("wikitext2_lm")

HUB_ID = "Salesforce/wikitext"
HUB_CONFIG = "wikitext-2-raw-v1"


@dataclass
class WikiTextConfig(RunSettings):
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    vocab_size: int = 16000  # of the tokenizer
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
    batch_size: int = 80  # training
    bptt: int = 70
    lr: float = 2e-3
    weight_decay: float = 1.2e-6
    grad_clip: float = 0.25
    max_epochs: int | None = 150
    lr_patience: int = 2
    early_stopping_patience: int | None = 10
    eval_batch_size: int = 10
    sample_prompt: str = "The"  # the sample printed at the end
    sample_tokens: int = 100
    sample_temperature: float = 0.8


PRESETS = shipped_configs("lm")  # configs/lm/NAME.yaml; "full" by default


def main(argv: list[str] | None = None, prog: str | None = None) -> dict:
    run = RecipeRun.start(WikiTextConfig, PRESETS, argv, __doc__, "runs/wikitext2_lm", prog)
    cfg, source = run.config, run.source(HUB_ID)
    splits = load(source, "text", hub_config=HUB_CONFIG)
    rows = split_rows(splits, source, dict.fromkeys(SPLITS))  # a split missing: nothing written
    run.begin("language model", source, rows)
    train, valid, test = rows.values()
    kind = {"model_type": cfg.tokenizer_type, "hard_vocab_limit": False}
    tokenizer = SubwordTokenizer.train([row["text"] for row in train], cfg.vocab_size, **kind)
    model = LSTMLanguageModel(config_from(LanguageModelConfig, cfg, tie_weights=True), tokenizer)
    examples = model.encode(train)
    tokens = sum(len(example) for example in examples)
    logger.info("%d training lines, %d tokens, %d pieces", len(train), tokens, len(tokenizer))
    batches = StreamBatches.from_examples(
        examples, cfg.batch_size, cfg.bptt, tokenizer.pad_id, tokenizer.bos_id
    )
    reading = {"batch_size": cfg.eval_batch_size, "bptt": cfg.bptt}
    best = run.fit(model, batches, evaluate_on(valid, **reading), metric="nll")
    test_metrics = model.evaluate(test, **reading)
    sampling = {"temperature": cfg.sample_temperature, "seed": run.seed, "multiline": True}
    sample = model.generate(cfg.sample_prompt, cfg.sample_tokens, **sampling)
    title = f"sample ({cfg.sample_tokens} tokens, temperature {cfg.sample_temperature})"
    run.write_text("sample.txt", sample + "\n", title)
    return run.finish({"valid": best, "test": test_metrics})


if __name__ == "__main__":
    sys.exit(run_recipe(main))
