"""seqlstm: LSTM sequence models sharing one tokenizer, one embedding layer and one training loop.

The public classes are importable from the top level (`from seqlstm import BiLSTMCRFTagger`).
They are loaded on first use, so that `import seqlstm` - and the `seqlstm` console script's
`--help` - does not pay for importing torch and datasets.
"""

from importlib import import_module
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "SubwordTokenizer": "seqlstm.tokenizer",
    "Vocabulary": "seqlstm.vocabulary",
    "SharedEmbedding": "seqlstm.embedding",
    "Trainer": "seqlstm.training",
    "TrainerConfig": "seqlstm.training",
    "StepOutput": "seqlstm.training",
    "PretrainedModel": "seqlstm.pretrained",
    "BiLSTMCRFTagger": "seqlstm.tagger",
    "TaggerConfig": "seqlstm.tagger",
    "Seq2SeqLSTM": "seqlstm.translator",
    "TranslatorConfig": "seqlstm.translator",
    "LSTMLanguageModel": "seqlstm.language_model",
    "LanguageModelConfig": "seqlstm.language_model",
    "LSTMClassifier": "seqlstm.classifier",
    "ClassifierConfig": "seqlstm.classifier",
    "LSTMForecaster": "seqlstm.forecaster",
    "ForecasterConfig": "seqlstm.forecaster",
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
