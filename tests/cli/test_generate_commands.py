"""`seqlstm generate` and `seqlstm evaluate --task lm` on a small model trained on Macbeth."""

import math

import pytest
import torch
from lm_overfit import overfit, recited_fraction

from seqlstm import cli
from seqlstm.cli import command
from seqlstm.cli.generate_commands import unknown_characters
from seqlstm.data.streams import StreamBatches
from seqlstm.tasks.language_modeling import language_model
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.text.tokenizer import SubwordTokenizer

MACBETH = """Is this a dagger which I see before me,
The handle toward my hand? Come, let me clutch thee.
I have thee not, and yet I see thee still.
Art thou not, fatal vision, sensible
To feeling as to sight? or art thou but
A dagger of the mind, a false creation,
Proceeding from the heat-oppressed brain?

Tomorrow, and tomorrow, and tomorrow,
Creeps in this petty pace from day to day,
To the last syllable of recorded time;
And all our yesterdays have lighted fools
The way to dusty death. Out, out, brief candle!
Life's but a walking shadow, a poor player,
That struts and frets his hour upon the stage,
And then is heard no more. It is a tale
Told by an idiot, full of sound and fury,
Signifying nothing.
"""
LINES = MACBETH.splitlines()
PROMPT = "Is this a dagger"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A character model that learnt the passage by heart, saved: the classic Keras demo."""
    tokenizer = SubwordTokenizer.train(LINES, vocab_size=400, model_type="char")
    torch.manual_seed(0)
    config = LanguageModelConfig(
        embedding_dim=16,
        hidden_size=64,
        num_layers=1,
        tie_weights=False,
        dropout_input=0.0,
        dropout_hidden=0.0,
        dropout_output=0.0,
        dropout_embedding=0.0,
        weight_drop=0.0,
    )
    model = LSTMLanguageModel(config, tokenizer)
    examples = model.encode({"text": line} for line in LINES)
    batches = StreamBatches.from_examples(examples, 2, 100, tokenizer.pad_id, tokenizer.bos_id)
    overfit(model, batches, epochs=150, lr=0.02)
    directory = tmp_path_factory.mktemp("macbeth") / "model"
    model.eval().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def model(model_dir):
    return LSTMLanguageModel.from_pretrained(model_dir)


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ----------------------------------------------------------------------------- generate


def test_save_load_generate_round_trip_from_a_seed_string(model_dir, model, capsys):
    # the model of the fixture is a fresh load; a second load must write the same text
    expected = model.generate(PROMPT, 80, temperature=0.8, seed=1, multiline=True)
    again = LSTMLanguageModel.from_pretrained(model_dir)
    assert again.generate(PROMPT, 80, temperature=0.8, seed=1, multiline=True) == expected
    assert expected.startswith(PROMPT) and len(expected) > len(PROMPT) + 20
    argv = ["generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", 80]
    status, out, err = run(capsys, *argv, "--temperature", 0.8, "--seed", 1)
    assert (status, out, err) == (0, expected + "\n", "")
    assert run(capsys, *argv, "--temperature", 0.8, "--seed", 2)[1] != out


def test_generate_greedy_top_k_top_p_and_single_line(model_dir, model, capsys):
    argv = ["generate", "--model", model_dir, "--prompt", PROMPT, "--max-new-tokens", 120]
    greedy = model.generate(PROMPT, 120, temperature=0, multiline=True)
    assert run(capsys, *argv, "--temperature", 0)[1] == greedy + "\n"
    sampled = model.generate(PROMPT, 120, top_k=5, top_p=0.9, seed=3, multiline=True)
    assert run(capsys, *argv, "--top-k", 5, "--top-p", 0.9, "--seed", 3)[1] == sampled + "\n"
    # It learnt the passage (a uniform guess costs log V > 5 nats) and recites it, line breaks
    # included. Which part it recites after the prompt depends on the last bits of training
    # (on one machine it went on with another passage), so only the margins are asserted.
    assert model.evaluate(LINES)["nll"] < 0.7
    continuation = greedy[len(PROMPT) :]
    assert continuation.count("\n") >= 2
    assert recited_fraction(continuation, MACBETH) >= 0.8
    # --single-line stops at the first line break
    single = run(capsys, *argv, "--temperature", 0, "--single-line")[1]
    assert single == model.generate(PROMPT, 120, temperature=0) + "\n"
    assert single == greedy.split("\n")[0] + "\n"


def test_generate_from_an_empty_prompt_starts_at_bos(model_dir, model, capsys):
    status, out, _ = run(
        capsys, "generate", "--model", model_dir, "--max-new-tokens", 40, "--seed", 0
    )
    assert status == 0
    assert out == model.generate("", 40, seed=0, multiline=True) + "\n"
    assert out.strip()


def test_characters_outside_the_vocabulary_fall_back_to_bytes_with_a_warning(
    model_dir, model, capsys
):
    prompt = "Is this a dagger, señor — or a ghost?"
    assert unknown_characters(model.tokenizer, prompt) == ["ñ", "—"]
    assert unknown_characters(model.tokenizer, PROMPT) == []
    argv = ["generate", "--model", model_dir, "--prompt", prompt, "--max-new-tokens", 20]
    status, out, err = run(capsys, *argv, "--seed", 0)
    assert status == 0
    assert out.startswith(prompt)  # the bytes decode back to the characters
    assert "no piece for 'ñ—'" in err and "UTF-8 bytes" in err


@pytest.mark.parametrize(
    "option",
    [
        ["--temperature", "-1"],
        ["--temperature", "nan"],
        ["--top-p", "1.5"],
        ["--top-p", "nan"],
        ["--top-k", "0"],
        ["--top-p", "x"],
        ["--max-new-tokens", "65537"],
    ],
)
def test_generate_rejects_bad_sampling_options(model_dir, capsys, option):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", "--model", str(model_dir), *option])
    assert exit_info.value.code == 2
    assert option[0] in capsys.readouterr().err


def test_the_command_lines_token_limit_is_the_language_models():
    """--max-new-tokens of generate and serve is bounded by MAX_NEW_TOKENS written out in the
    command line (which must not import torch), equal to the language model's own."""
    assert command.MAX_NEW_TOKENS == language_model.MAX_NEW_TOKENS


def test_generate_names_a_missing_model_directory(tmp_path, capsys):
    status, out, err = run(capsys, "generate", "--model", tmp_path / "nope", "--prompt", "x")
    assert (status, out) == (2, "")
    assert "nope: no such model directory" in err


# ----------------------------------------------------------------------------- evaluate


def parse_metrics(out):
    """{name: float} from the evaluate output (first number after the name)."""
    metrics = {}
    for line in out.splitlines()[1:]:
        name, value = line.split()[:2]
        metrics[name] = float(value)
    return metrics


def test_evaluate_prints_the_models_metrics(model_dir, model, tmp_path, capsys):
    data = tmp_path / "macbeth.txt"
    data.write_text(MACBETH, encoding="utf-8")
    status, out, _ = run(capsys, "evaluate", "--task", "lm", "--model", model_dir, "--data", data)
    assert status == 0
    assert out.splitlines()[0] == f"{data}: {len(LINES)} lines"
    expected = model.evaluate(LINES, batch_size=64, bptt=70)
    printed = parse_metrics(out)
    for name in ("nll", "perplexity", "bits_per_character", "word_perplexity"):
        assert printed[name] == pytest.approx(expected[name], abs=1e-4)
    assert f"({len(MACBETH)} characters, a newline per line)" in out
    assert f"({len(MACBETH.split()) + len(LINES)} words, an end of line per line)" in out


def test_evaluate_a_text_shorter_than_one_window(model_dir, model, tmp_path, capsys):
    data = tmp_path / "short.txt"
    data.write_text("Out, out, brief candle!", encoding="utf-8")  # no final newline either
    argv = ["evaluate", "--task", "lm", "--model", model_dir, "--data", data, "--bptt", 200]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    expected = model.evaluate(["Out, out, brief candle!"], bptt=200)
    # the characters, the word-boundary piece before the line, and EOS
    assert expected["tokens"] == len("Out, out, brief candle!") + 2
    assert parse_metrics(out)["nll"] == pytest.approx(expected["nll"], abs=1e-4)
    assert math.isfinite(parse_metrics(out)["word_perplexity"])


def test_evaluate_rejects_an_empty_file_and_a_missing_data_option(model_dir, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    status, _, err = run(capsys, "evaluate", "--task", "lm", "--model", model_dir, "--data", empty)
    assert status == 2 and f"{empty}: the file is empty" in err
    status, _, err = run(capsys, "evaluate", "--task", "lm", "--model", model_dir)
    assert status == 2 and "needs --data FILE" in err
