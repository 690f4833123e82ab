"""seqlstm: LSTM sequence models sharing one tokenizer, one embedding layer and one training loop.

The public classes are importable from the top level (`from seqlstm import BiLSTMCRFTagger`).
They are loaded on first use, so that `import seqlstm` - and the `seqlstm` console script's
`--help` - does not pay for importing torch and datasets.
"""

from importlib import import_module
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "SubwordTokenizer": "seqlstm.text.tokenizer",
    "Vocabulary": "seqlstm.text.vocabulary",
    "SharedEmbedding": "seqlstm.layers.embedding",
    "Trainer": "seqlstm.training",
    "TrainerConfig": "seqlstm.training",
    "StepOutput": "seqlstm.tasks.base",
    "PretrainedModel": "seqlstm.pretrained",
    "push_to_hub": "seqlstm.model_hub",
    "BiLSTMCRFTagger": "seqlstm.tasks.tagging.tagger",
    "TaggerConfig": "seqlstm.tasks.tagging.tagger",
    "Seq2SeqLSTM": "seqlstm.tasks.translation.translator",
    "TranslatorConfig": "seqlstm.tasks.translation.translator",
    "LSTMLanguageModel": "seqlstm.tasks.language_modeling.language_model",
    "LanguageModelConfig": "seqlstm.tasks.language_modeling.language_model",
    "LSTMClassifier": "seqlstm.tasks.classic.classifier",
    "ClassifierConfig": "seqlstm.tasks.classic.classifier",
    "LSTMForecaster": "seqlstm.tasks.classic.forecaster",
    "ForecasterConfig": "seqlstm.tasks.classic.forecaster",
    "LSTM": "seqlstm.layers.lstm",
    "LSTMCell": "seqlstm.layers.lstm",
    "TaskModel": "seqlstm.tasks.base",
    "DataError": "seqlstm.errors",
    "CheckpointError": "seqlstm.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'seqlstm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
