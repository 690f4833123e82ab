"""seqlstm.viz: gate activations equal the equations and the LM's own LSTM; forecast plots
draw the given numbers where they belong; PNGs are written."""

import sys

import numpy as np
import pytest
import torch

from seqlstm import viz
from seqlstm.data.streams import encode_stream
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.viz import gate_activations, plot_attention, plot_forecasts, plot_gates

TEXT = "ROMEO:\nBut soft, what light\n\nthrough yonder window breaks?"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model():
    tokenizer = SubwordTokenizer.train(TEXT.split("\n"), vocab_size=300, model_type="char")
    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_dim=8, hidden_size=10, num_layers=3, output_size=6)
    return LSTMLanguageModel(config, tokenizer).train()  # train mode: eval must be switched on


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_gates_follow_the_lstm_equations(model):
    acts = gate_activations(model, TEXT, layer=0)
    ids = encode_stream(model.tokenizer, TEXT.split("\n"))
    x = model.embedding.token_embedding.weight.detach().numpy()[ids.numpy()]  # [T, E]
    lstm = model.layers[0].lstm
    w_ih, w_hh = lstm.weight_ih_l0.detach().numpy(), lstm.weight_hh_l0.detach().numpy()
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    h, c = np.zeros(10), np.zeros(10)
    for t in range(len(ids)):  # by hand, in float64
        z_i, z_f, z_g, z_o = np.split(w_ih @ x[t] + w_hh @ h + bias, 4)
        i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g), sigmoid(z_o)
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, value in [("input_gate", i), ("forget_gate", f), ("cell_candidate", g)]:
            np.testing.assert_allclose(getattr(acts, name)[t], value, atol=1e-5)
        np.testing.assert_allclose(acts.output_gate[t], o, atol=1e-5)
        np.testing.assert_allclose(acts.cell[t], c, atol=1e-5)
        np.testing.assert_allclose(acts.hidden[t], h, atol=1e-5)
    assert model.training  # the mode is restored


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_hidden_states_equal_the_language_models_own_lstm(model, layer):
    acts = gate_activations(model, TEXT, layer=layer)
    ids = encode_stream(model.tokenizer, TEXT.split("\n")).unsqueeze(0)
    seen = []

    def record(module, inputs, output):
        seen.append(output[0])  # returns None: the output stays as it is

    hook = model.layers[layer].register_forward_hook(record)
    try:
        model.eval()
        with torch.no_grad():
            model.logits(ids)
    finally:
        hook.remove()
        model.train()
    expected = seen[0][0].numpy()  # [T, H_layer]
    assert acts.hidden.shape == expected.shape == (ids.size(1), model.config.layer_sizes()[layer])
    np.testing.assert_allclose(acts.hidden, expected, atol=1e-5)


def test_token_labels_show_line_structure(model):
    acts = gate_activations(model, "ha w\n\n\u00e9", layer=0)
    # a character the tokenizer has no piece for shows as its UTF-8 bytes (byte fallback)
    expected = ["<s>", "\u2423", "h", "a", "\u2423", "w", "\\n", "<s>", "\\n"]
    assert acts.tokens == [*expected, "<s>", "\u2423", "<0xC3>", "<0xA9>", "\\n"]
    assert acts.cell.shape == (len(acts.tokens), 10)
    with pytest.raises(ValueError, match="layer must be in"):
        gate_activations(model, TEXT, layer=3)
    with pytest.raises(ValueError, match="non-empty"):
        gate_activations(model, "", layer=0)


def read_png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    # IHDR: width and height are the first two big-endian 32-bit fields of the first chunk
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_gates_writes_a_png(model, tmp_path):
    path = plot_gates(model, TEXT, tmp_path / "plots" / "gates.png", layer=1, units=[0, 3, 9])
    assert path == tmp_path / "plots" / "gates.png"
    width, height = read_png_size(path)
    assert width > 400 and height > 300 and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="units"):
        plot_gates(model, TEXT, tmp_path / "bad.png", layer=0, units=[10])


def test_plot_attention_writes_a_png_and_checks_the_shape(tmp_path):
    source = ["\u2581ein", "\u2581Hund", "\u2581l\u00e4uft", "</s>"]
    target = ["\u2581a", "\u2581dog", "\u2581runs"]
    attention = torch.softmax(torch.randn(3, 4), dim=-1)
    path = plot_attention(attention, source, target, tmp_path / "attention.png")
    width, height = read_png_size(path)
    assert width > 200 and height > 150
    plot_attention(attention.numpy(), source, target, tmp_path / "from_numpy.png")
    with pytest.raises(ValueError, match=r"expected \[T_tgt, T_src\] = \[3, 3\]"):
        plot_attention(attention, source[:3], target, tmp_path / "bad.png")


def test_plot_forecasts_draws_each_forecast_from_its_origin(tmp_path, monkeypatch):
    truth = torch.arange(20.0) ** 0.5
    origins = torch.tensor([12, 16])  # a LongTensor works as well as a list
    lstm = np.array([[3.5, 3.6, 3.7], [4.0, 4.1, 4.2]])
    naive = torch.tensor([[3.3, 3.3, 3.3], [3.9, 3.9, 3.9]])
    figures = []
    save = viz._save
    monkeypatch.setattr(
        viz, "_save", lambda figure, path: figures.append(figure) or save(figure, path)
    )
    ticks = {10: "2010", 15: "2015"}
    path = plot_forecasts(
        truth, origins, {"LSTM": lstm, "naive": naive}, tmp_path / "f.png", 8, 12, ticks, "ppm", "t"
    )
    width, height = read_png_size(path)
    assert (width, height) == (1100, 450)
    (ax,) = figures[0].axes
    lines = [
        (line.get_label(), line.get_linestyle(), line.get_xdata(), line.get_ydata())
        for line in ax.lines
    ]
    label, style, x, y = lines[0]
    assert label == "truth" and list(x) == list(range(8, 20))
    np.testing.assert_allclose(y, truth[8:].numpy())
    drawn = lines[1:5]  # LSTM from 12 and 16 (solid), then naive from 12 and 16 (dashed)
    # one legend entry per forecast: matplotlib leaves labels starting with "_" out of it
    hidden = "hidden"
    shown = [(hidden if label.startswith("_") else label, style) for label, style, _, _ in drawn]
    assert shown == [("LSTM", "-"), (hidden, "-"), ("naive", "--"), (hidden, "--")]
    for (_, _, x, y), origin, values in zip(
        drawn, [12, 16, 12, 16], [*lstm, *naive.numpy()], strict=True
    ):
        assert list(x) == [origin, origin + 1, origin + 2]
        np.testing.assert_allclose(y, values, rtol=1e-6)
    marker = lines[5]
    assert list(marker[2]) == [12, 12]  # the vertical line at the marked step
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2010", "2015"]
    assert list(ax.get_xticks()) == [10, 15]
    assert (ax.get_ylabel(), ax.get_title()) == ("ppm", "t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["truth", "LSTM", "naive"]


def test_plot_forecasts_checks_its_arguments(tmp_path):
    truth, origins = np.arange(10.0), [2, 5]
    with pytest.raises(
        ValueError, match=r"forecast 'a' has shape \[3, 2\], expected \[M, H\] with M = 2"
    ):
        plot_forecasts(truth, origins, {"a": np.zeros((3, 2))}, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"shape \[2\], expected \[M, H\]"):
        plot_forecasts(truth, origins, {"a": np.zeros(2)}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="at least one forecast"):
        plot_forecasts(truth, origins, {}, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"one series \[N\] with start in \[0, N\)"):
        plot_forecasts(np.zeros((10, 2)), origins, {"a": np.zeros((2, 2))}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="start=10"):
        plot_forecasts(truth, origins, {"a": np.zeros((2, 2))}, tmp_path / "a.png", start=10)
    assert not (tmp_path / "a.png").exists()


def test_a_missing_matplotlib_is_a_clear_import_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'seqlstm\[plot\]'"):
        plot_attention(np.eye(2), ["a", "b"], ["x", "y"], tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
