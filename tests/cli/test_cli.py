import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from locations import SHARED_DATA

from seqlstm import cli
from seqlstm.errors import DataError
from seqlstm.text.tokenizer import SubwordTokenizer

DATA = SHARED_DATA
TEXT = "\n".join(
    [
        "",
        "A man in a red shirt is climbing a rock wall.",
        "Two dogs play in the snow near a wooden fence.",
        "Children are sitting on a bench outside the school.",
    ]
    * 20
)


def _run_script(*argv: str) -> subprocess.CompletedProcess:
    # the installed console script when there is one, else the same main() via -m
    script = Path(sys.executable).with_name("seqlstm")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "seqlstm.cli"]
    return subprocess.run([*command, *argv], capture_output=True, text=True, timeout=60)


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert command.name in out and command.help in out
    assert "train-tokenizer" in out


def test_version_and_missing_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"seqlstm {version('seqlstm')}"
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(("model_type", "vocab_size"), [("unigram", 300), ("bpe", 290)])
def test_train_tokenizer(tmp_path, capsys, model_type, vocab_size):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    argv = ["train-tokenizer", "--input", str(corpus), "--vocab-size", str(vocab_size)]
    status = cli.main([*argv, "--model-type", model_type, "--out", str(tmp_path / "tok")])
    assert status == 0
    tokenizer = SubwordTokenizer.load(tmp_path / "tok")
    assert tokenizer.model_type == model_type
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"saved a {model_type} tokenizer with {len(tokenizer)} pieces to {tmp_path / 'tok'}"
    )
    # the example is the first non-blank line and its pieces spell it again
    assert lines[1] == "example: A man in a red shirt is climbing a rock wall."
    pieces = lines[2].removeprefix("pieces:  ").split(" ")
    assert pieces == tokenizer.pieces("A man in a red shirt is climbing a rock wall.")
    assert "".join(pieces).replace("\u2581", " ").strip() == lines[1].removeprefix("example: ")


def test_train_tokenizer_on_multi30k(tmp_path, capsys):
    path = DATA / "multi30k" / "train.en"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    argv = ["train-tokenizer", "--input", str(path), "--vocab-size", "500", "--model-type", "bpe"]
    assert cli.main([*argv, "--out", str(tmp_path / "tok")]) == 0
    assert len(SubwordTokenizer.load(tmp_path / "tok")) == 500
    assert "pieces:  \u2581Two \u2581young" in capsys.readouterr().out


def test_errors_are_one_line_without_traceback(tmp_path):
    missing = tmp_path / "missing.txt"
    result = _run_script("train-tokenizer", "--input", str(missing), "--out", str(tmp_path / "t"))
    assert result.returncode == 2
    assert result.stderr == f"seqlstm train-tokenizer: error: {missing}: no such file\n"
    assert not (tmp_path / "t").exists()

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    result = _run_script("train-tokenizer", "--input", str(corpus), "--vocab-size", "100000")
    assert result.returncode == 2 and "--out" in result.stderr  # argparse: required option
    result = _run_script(
        "train-tokenizer", "--input", str(corpus), "--vocab-size", "10", "--out", str(tmp_path)
    )
    assert result.returncode == 2
    assert result.stderr.startswith("seqlstm train-tokenizer: error: vocab_size=10 is too small")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    # the upper-bound mode the message suggests is reachable from the command line
    result = _run_script(
        "train-tokenizer", "--input", str(corpus), "--vocab-size", "2000", "--out",
        str(tmp_path / "soft"), "--no-hard-vocab-limit",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(SubwordTokenizer.load(tmp_path / "soft")) < 2000


def test_a_registered_command_is_dispatched(monkeypatch, capsys):
    seen = []

    def add_arguments(parser):
        parser.add_argument("--name", required=True)

    def run(args):
        seen.append(args.name)
        if args.name == "bad":
            raise DataError("data.txt, line 3:\nexpected 4 columns")

    extra = cli.Command("hello", "say hello", add_arguments, run)
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, extra])
    assert cli.main(["hello", "--name", "x"]) == 0
    assert cli.main(["hello", "--name", "bad"]) == 2
    assert seen == ["x", "bad"]
    err = capsys.readouterr().err
    assert err == "seqlstm hello: error: data.txt, line 3:; expected 4 columns\n"
