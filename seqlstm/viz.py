"""Pictures of what the models do: attention heatmaps, the gates of a language model's LSTM,
and forecasts against the truth.

    plot_attention(translation.attention, translation.source_pieces, translation.target_pieces,
                   "attention.png")
    plot_gates(lm, "ROMEO:\\nBut soft, what light", "gates.png", layer=1, units=range(16))
    plot_forecasts(series, origins, {"LSTM": forecaster.predict(rows)[..., 0]}, "forecast.png")

matplotlib is optional (`pip install seqlstm[plot]`): it is imported when a plot is drawn,
and only its object-oriented API is used (a Figure saved to a file), so plotting never changes
pyplot's backend or state. `gate_activations` needs no matplotlib: it returns the numbers
that `plot_gates` draws.

The gates come from `seqlstm.layers.lstm.LSTM`, the LSTM written from the equations, loaded with the
weights of the language model's `torch.nn.LSTM` layer (the parameter layouts are the same)
and run with `return_gates=True`. Its hidden states equal the language model's own, so the
picture shows exactly what the trained model computes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from seqlstm.data.streams import encode_stream, text_lines
from seqlstm.layers.lstm import LSTM
from seqlstm.quantization import is_quantized
from seqlstm.tasks.base import evaluating

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
    from seqlstm.text.tokenizer import SubwordTokenizer


@dataclass
class GateActivations:
    """One LSTM layer's activations along a text; every array is float32 [T, H].

    tokens[t] is the input at step t, shown as text: "<s>" for BOS, "\\n" for EOS (the line
    break), "␣" for SentencePiece's word-boundary mark. The gates are those of the equations
    in `seqlstm.layers.lstm`: c_t = forget_gate * c_{t-1} + input_gate * cell_candidate,
    hidden = output_gate * tanh(cell).
    """

    tokens: list[str]
    input_gate: np.ndarray
    forget_gate: np.ndarray
    cell_candidate: np.ndarray
    output_gate: np.ndarray
    cell: np.ndarray
    hidden: np.ndarray


@torch.no_grad()
def gate_activations(model: LSTMLanguageModel, text: str, layer: int = 0) -> GateActivations:
    """Run the model over text (line by line, as in training) and record layer `layer`.

    The text is read as the stream `BOS line EOS BOS line EOS ...` from the zero state, in
    eval mode (no dropout); the layers below `layer` are the model's own.
    """
    if not 0 <= layer < len(model.layers):
        raise ValueError(f"layer must be in [0, {len(model.layers)}), got {layer}")
    if is_quantized(model):
        raise ValueError(
            "gate_activations runs the float weights of the model's LSTM, which an int8 model "
            "has packed away: load the model without quantize"
        )
    tok = model.tokenizer
    ids = encode_stream(tok, text_lines(text)).unsqueeze(0)
    if ids.numel() == 0:
        raise ValueError("gate_activations needs a non-empty text")
    with evaluating(model):
        device = model.device
        x = model.embedding(ids.to(device))  # [1, T, E]
        for below in model.layers[:layer]:
            x, _ = below(x)
        lstm = LSTM.from_torch(model.layers[layer].lstm)
        _, _, traces = lstm(x, return_gates=True)
    trace = traces[0]

    def array(values: torch.Tensor) -> np.ndarray:
        return values[:, 0].float().cpu().numpy()  # [T, 1, H] -> [T, H]

    return GateActivations(
        tokens=[_label(tok, int(i)) for i in ids[0]],
        input_gate=array(trace.input_gate),
        forget_gate=array(trace.forget_gate),
        cell_candidate=array(trace.cell_candidate),
        output_gate=array(trace.output_gate),
        cell=array(trace.cell),
        hidden=array(trace.hidden),
    )


def plot_gates(
    model: LSTMLanguageModel,
    text: str,
    path: str | os.PathLike,
    layer: int = 0,
    units: Sequence[int] | None = None,
) -> Path:
    """Heatmaps of the forget, input and output gates and the cell state along text.

    One panel per quantity, units on the vertical axis (default: the first 16), the text's
    tokens along the horizontal one. Gates are in [0, 1]; the cell state uses a diverging
    scale symmetric around 0. Writes a PNG to path and returns it.
    """
    activations = gate_activations(model, text, layer)
    hidden_size = activations.cell.shape[1]
    chosen = list(range(min(16, hidden_size)) if units is None else units)
    if not chosen or not all(0 <= u < hidden_size for u in chosen):
        raise ValueError(f"units must be a non-empty list of indices in [0, {hidden_size})")
    panels = [
        ("forget gate", activations.forget_gate, "viridis", 0.0, 1.0),
        ("input gate", activations.input_gate, "viridis", 0.0, 1.0),
        ("output gate", activations.output_gate, "viridis", 0.0, 1.0),
    ]
    cell_limit = float(np.abs(activations.cell[:, chosen]).max()) or 1.0
    panels.append(("cell state", activations.cell, "RdBu_r", -cell_limit, cell_limit))

    steps = len(activations.tokens)
    figure = _figure(figsize=(min(40.0, 2.0 + 0.18 * steps), 1.2 + 0.9 * len(panels)))
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, values, cmap, low, high) in zip(axes, panels, strict=True):
        image = ax.imshow(
            values[:, chosen].T,
            aspect="auto",
            cmap=cmap,
            vmin=low,
            vmax=high,
            interpolation="nearest",
        )
        ax.set_ylabel("unit")
        ax.set_yticks(range(len(chosen)), [str(u) for u in chosen], fontsize=6)
        ax.set_title(f"layer {layer} {title}", fontsize=9, loc="left")
        figure.colorbar(image, ax=ax, pad=0.01)
    axes[-1].set_xticks(range(steps), activations.tokens, fontsize=7, family="monospace")
    return _save(figure, path)


def plot_attention(
    attention: torch.Tensor | np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str | os.PathLike,
) -> Path:
    """Heatmap of attention weights [T_tgt, T_src]: row t is where target token t looked.

    Writes a PNG to path and returns it. Raises ValueError when the shape does not match the
    token lists.
    """
    weights = _float_array(attention)
    expected = (len(target_tokens), len(source_tokens))
    if weights.shape != expected:
        raise ValueError(
            f"attention has shape {list(weights.shape)}, expected [T_tgt, T_src] = "
            f"{list(expected)} from the token lists"
        )
    width = 2.5 + 0.35 * len(source_tokens)
    height = 1.5 + 0.3 * len(target_tokens)
    figure = _figure(figsize=(min(30.0, width), min(30.0, height)))
    ax = figure.subplots()
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(len(source_tokens)), list(source_tokens), rotation=90, fontsize=8)
    ax.set_yticks(range(len(target_tokens)), list(target_tokens), fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    figure.colorbar(image, ax=ax)
    return _save(figure, path)


def plot_forecasts(
    truth: torch.Tensor | np.ndarray,
    origins: Sequence[int],
    forecasts: Mapping[str, torch.Tensor | np.ndarray],
    path: str | os.PathLike,
    start: int = 0,
    marker: int | None = None,
    ticks: Mapping[int, str] | None = None,
    ylabel: str = "",
    title: str = "",
) -> Path:
    """Forecasts against the truth of a univariate series: the truth [N] from step ``start``
    on as a black line, and for each named forecast [M, H] (M = len(origins)) one line per
    origin t over steps t .. t+H-1, the first name solid and the others dashed, one colour
    per name (named once in the legend).

    marker: a step marked by a dotted vertical line (e.g. where the test split starts);
    ticks: step -> label of the horizontal axis (default: matplotlib's step numbers). Writes a
    PNG to path and returns it. Raises ValueError when a forecast is not [M, H] or the truth
    is not one series.
    """
    values = _float_array(truth)
    origins = [int(origin) for origin in origins]  # a LongTensor of origins works too
    if values.ndim != 1 or not 0 <= start < len(values):
        raise ValueError(
            f"truth must be one series [N] with start in [0, N), got {list(values.shape)} and "
            f"start={start}"
        )
    if not forecasts:
        raise ValueError("plot_forecasts needs at least one forecast")
    lines = {name: _float_array(forecast) for name, forecast in forecasts.items()}
    for name, forecast in lines.items():
        if forecast.ndim != 2 or len(forecast) != len(origins):
            raise ValueError(
                f"forecast {name!r} has shape {list(forecast.shape)}, expected [M, H] with "
                f"M = {len(origins)} origins"
            )
    figure = _figure(figsize=(11.0, 4.5))
    ax = figure.subplots()
    ax.plot(range(start, len(values)), values[start:], color="black", lw=1.5, label="truth")
    colours = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple"]
    for k, (name, forecast) in enumerate(lines.items()):
        style = {"color": colours[k % len(colours)], "ls": "-" if k == 0 else "--", "lw": 1.2}
        for m, origin in enumerate(origins):
            steps = range(origin, origin + forecast.shape[1])
            ax.plot(steps, forecast[m], label=name if m == 0 else None, **style)
    if marker is not None:
        ax.axvline(marker, color="grey", lw=0.8, ls=":")
    if ticks is not None:
        ax.set_xticks(list(ticks), list(ticks.values()))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left")
    return _save(figure, path)


def _label(tokenizer: SubwordTokenizer, token_id: int) -> str:
    if token_id == tokenizer.bos_id:
        return "<s>"
    if token_id == tokenizer.eos_id:
        return "\\n"
    return tokenizer.id_to_piece(token_id).replace("\u2581", "\u2423")


def _float_array(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A tensor (any device, any dtype, with or without autograd) or array as float32."""
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu()
    return np.asarray(values, dtype=np.float32)


def _figure(figsize: tuple[float, float]) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib: pip install 'seqlstm[plot]' (or matplotlib)"
        ) from None
    return Figure(figsize=figsize, layout="constrained")


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path
