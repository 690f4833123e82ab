"""The recipes: each one task end to end, trained by ``seqlstm train TASK``.

    seqlstm train ner --config smoke --data-dir DIR      # a shipped config, by name
    seqlstm train ner --config my.yaml --lr 2e-3         # a YAML file, then explicit options
    seqlstm train ner --config cpu --print-config > my.yaml   # every setting, to edit
    python -m seqlstm.recipes.conll2003_ner --config smoke --data-dir DIR   # the same run

A recipe is a short script composing library parts: a config dataclass (every field is also an
option, ``seqlstm.experiment.recipe_args``) and ``main(argv)``. Its named configs ("presets")
are YAML files shipped in ``configs/TASK/NAME.yaml``; ``full`` is the default. This module
only names things, so that ``seqlstm --help`` imports no recipe (and no torch).
"""

from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "configs"

# task name of `seqlstm train` -> (module of its recipe, what it trains)
TASKS: dict[str, tuple[str, str]] = {
    "ner": ("conll2003_ner", "named-entity recognition on CoNLL-2003 (BiLSTM-CRF tagger)"),
    "translation": ("multi30k_translation", "Multi30k translation (attention LSTM seq2seq)"),
    "lm": ("wikitext2_lm", "WikiText-2 subword language model (AWD-LSTM)"),
    "char-lm": ("tinyshakespeare_char_lm", "Tiny Shakespeare character language model"),
    "image-rows": ("digits_rows", "digit images read row by row (LSTM classifier)"),
    "forecast": ("forecast", "Mauna Loa CO2 forecasting (LSTM forecaster vs naive forecasts)"),
}


def shipped_configs(task: str) -> dict[str, Path]:
    """The named configs of a task: name -> ``configs/TASK/NAME.yaml``, sorted by name.

    Raises KeyError for a task that is not in ``TASKS``.
    """
    if task not in TASKS:
        raise KeyError(f"no task {task!r}; the tasks are {', '.join(TASKS)}")
    return {path.stem: path for path in sorted((CONFIGS / task).glob("*.yaml"))}
