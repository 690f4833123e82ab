"""Dynamic int8 quantization of a model's LSTM and Linear layers, for CPU inference.

`PretrainedModel.from_pretrained(directory, quantize="int8")` loads the float model and hands
it to `quantize_int8`, which is PyTorch's own dynamic quantization
(`torch.ao.quantization.quantize_dynamic`): every `nn.LSTM` and `nn.Linear` becomes its
`torch.ao.nn.quantized.dynamic` counterpart, whose weights are int8 (one scale per matrix)
and whose inputs are quantized to uint8 on the fly with the range they have at that call (for
an LSTM, at every step); products accumulate in int32 and come back as float32.
Everything else stays float32: embeddings (also when an output layer is tied to them: the
layer gets an int8 copy, the table keeps its floats), the tagger's character CNN and CRF, the
attention's batched products and the softmaxes. So does `seqlstm.layers.lstm.LSTM`, the LSTM
written from its gate equations that LSTMClassifier and LSTMForecaster use: it is not an
nn.LSTM (its matrices are Parameters used by F.linear, not Linear layers), so of those two
models only the output layer becomes int8. The tagger, the translator and the language model
use nn.LSTM throughout (the language model's weight-dropped layer wraps one).

The quantized layers hold no Parameter (their `weight` is a method returning a quantized
tensor), so code that needs the model's device asks `PretrainedModel.device`, never a
layer's weight. A quantized model is for inference only: no gradients flow through it.

int8 runs on the CPU only, through a quantized engine of this torch build (`x86`/`fbgemm`
on x86-64, `qnnpack` on ARM; see `torch.backends.quantized.supported_engines`);
`check_quantization` says in one ValueError what is wrong with a request.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# the values of `quantize` that from_pretrained accepts, besides None (float32 as saved)
QUANTIZATIONS = ("int8",)


def check_quantization(quantize: str | None, device: str | torch.device) -> None:
    """Raise a ValueError naming what was expected unless the model can be loaded on `device`
    with `quantize` (None: no quantization, always fine): an unknown value, a device other
    than the CPU, or a torch build without a quantized engine."""
    if quantize is None:
        return
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be None or one of {list(QUANTIZATIONS)}, got {quantize!r}")
    if torch.device(device).type != "cpu":
        raise ValueError(
            f"quantize={quantize!r} (dynamic quantization) runs on the CPU only, got the device "
            f"{str(device)!r}: load the model on 'cpu', or load it unquantized on {str(device)!r}"
        )
    # torch starts on the best engine of its build, and refuses to be set to "none": the
    # engine is "none" exactly when the build has none (some ARM, POWER and s390x builds)
    if torch.backends.quantized.engine == "none":
        raise ValueError(
            f"quantize={quantize!r} needs a quantized engine (x86, fbgemm, onednn or qnnpack), "
            "and this torch build has none: torch.backends.quantized.supported_engines is "
            f"{list(torch.backends.quantized.supported_engines)}; load the model unquantized"
        )


def quantize_int8(model: nn.Module) -> None:
    """Replace the model's nn.LSTM and nn.Linear layers by dynamic int8 ones, in place.

    The model should be in eval mode on the CPU (`check_quantization(..., "cpu")` first).
    """
    with warnings.catch_warnings():
        # torch >= 2.10 warns on every call that torch.ao.quantization will move to torchao,
        # and that quantized tensors are deprecated; the user of a seqlstm model can do
        # nothing about either (the int8 tests fail the day the API goes)
        warnings.filterwarnings("ignore", r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", r"torch\.quantize_per_tensor.* are deprecated")
        torch.ao.quantization.quantize_dynamic(
            model, {nn.LSTM, nn.Linear}, dtype=torch.qint8, inplace=True
        )


def is_quantized(model: nn.Module) -> bool:
    """Whether any layer of the model is a quantized one (by `quantize_int8`, or by any of
    torch.ao.quantization's functions called directly)."""
    # by the package, not a list of classes: every torch.ao.nn.quantized layer (dynamic or
    # static, LSTM, GRU, Linear, ...) keeps its weights in forms that a safetensors file of
    # float tensors cannot hold
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())
