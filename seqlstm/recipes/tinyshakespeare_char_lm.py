"""Character-level LSTM language model on Tiny Shakespeare (Karpathy's char-rnn data set).

    seqlstm train char-lm --config demo      # 600 steps, minutes on a CPU
    seqlstm train char-lm --config cpu       # 3,500 steps on one CPU thread
    seqlstm train char-lm                    # full, on a GPU
    seqlstm train char-lm --data-dir ../shared/data/tinyshakespeare
    python -m seqlstm.recipes.tinyshakespeare_char_lm --config demo    # the same script

Data: `input.txt` (`--data-dir`, or the hub's `karpathy/tiny_shakespeare`, whose three splits
are joined back together), cut as nanoGPT's `prepare.py` does: the first 90% for training,
the last 10% for validation; no test split. The tokenizer collapses whitespace, so each line
is one text `BOS line EOS` and EOS, the newline, is scored; the tokenizer is a SentencePiece
"char" model. `nats_per_character` (nanoGPT's loss) and `bits_per_character` count every
character of the validation text, newlines included, and include the nll of the word-boundary
piece before each non-empty line: an honest code length. Measured results: docs/RESULTS.md.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from seqlstm.data import load
from seqlstm.data.streams import StreamBatches, text_lines
from seqlstm.experiment.recipe_args import config_from
from seqlstm.experiment.run import RecipeRun, RunSettings, evaluate_on, run_recipe
from seqlstm.recipes import shipped_configs
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.text.tokenizer import SubwordTokenizer

logger = logging.getLogger("tinyshakespeare_char_lm")

HUB_ID = "karpathy/tiny_shakespeare"


@dataclass
class ShakespeareConfig(RunSettings):
    """Every setting of the recipe; each is also a command-line option (--hidden-size ...)."""

    embedding_dim: int = 128  # the model: see LanguageModelConfig (untied output layer)
    hidden_size: int = 1024
    num_layers: int = 3
    dropout_embedding: float = 0.0
    dropout_input: float = 0.1
    dropout_hidden: float = 0.25
    dropout_output: float = 0.25
    weight_drop: float = 0.25
    validation_fraction: float = 0.1
    batch_size: int = 64
    bptt: int = 200
    lr: float = 2e-3
    grad_clip: float = 1.0
    max_epochs: int | None = 40
    lr_patience: int = 0
    early_stopping_patience: int | None = 4
    eval_batch_size: int = 16
    sample_prompt: str = "ROMEO:\n"  # the sample printed at the end
    sample_tokens: int = 600
    sample_temperature: float = 0.8


PRESETS = shipped_configs("char-lm")  # configs/char-lm/NAME.yaml; "full" by default


def read_shakespeare(source: str | Path, validation_fraction: float) -> tuple[str, str]:
    """(training text, validation text): the first and last parts of the whole text."""
    splits = load(source, "text")
    # the hub's three splits are consecutive pieces of input.txt; a local file is one row
    text = "".join(
        "".join(splits[name]["text"]) for name in ("train", "validation", "test") if name in splits
    )
    cut = int(len(text) * (1 - validation_fraction))
    return text[:cut], text[cut:]


def main(argv: list[str] | None = None, prog: str | None = None) -> dict:
    run = RecipeRun.start(
        ShakespeareConfig, PRESETS, argv, __doc__, "runs/tinyshakespeare_char_lm", prog
    )
    cfg, data_dir = run.config, run.args.data_dir
    source = data_dir / "input.txt" if data_dir is not None else run.source(HUB_ID)
    train_text, valid_text = read_shakespeare(source, cfg.validation_fraction)
    run.begin("char language model", source, train_text + valid_text)
    train_lines, valid_lines = text_lines(train_text), text_lines(valid_text)
    # vocab_size is an upper bound for "char" models: one piece per character of the text
    tokenizer = SubwordTokenizer.train(train_lines, vocab_size=1000, model_type="char")
    logger.info("%d pieces, 260 of them bytes and specials", len(tokenizer))
    model = LSTMLanguageModel(config_from(LanguageModelConfig, cfg, tie_weights=False), tokenizer)
    batches = StreamBatches.from_examples(
        model.encode(train_lines), cfg.batch_size, cfg.bptt, tokenizer.pad_id, tokenizer.bos_id
    )
    evaluate = evaluate_on(valid_lines, batch_size=cfg.eval_batch_size, bptt=cfg.bptt)
    valid = run.fit(model, batches, evaluate, metric="nats_per_character")
    if valid["characters"] != len(valid_text):
        logger.warning(
            "%d characters predicted, %d in the text", valid["characters"], len(valid_text)
        )
    sampling = {"temperature": cfg.sample_temperature, "seed": run.seed, "multiline": True}
    sample = model.generate(cfg.sample_prompt, cfg.sample_tokens, **sampling)
    title = f"sample ({cfg.sample_tokens} characters, temperature {cfg.sample_temperature})"
    run.write_text("sample.txt", sample + "\n", title)
    return run.finish({"valid": valid})


if __name__ == "__main__":
    sys.exit(run_recipe(main))
