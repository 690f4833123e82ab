"""Fuzz cases of the commands: ``seqlstm tag`` (text and CoNLL input, with and without
``--documents``, CoNLL and JSON lines output), ``translate``, ``generate --prompt`` and
``evaluate --task ner|mt|lm``, on generated files and stdin. Every case exits 0 with
well-formed output - as many sentences or lines out as in, tags only from the model's,
an empty sentence with no tags - or with status 2 and one line on stderr naming the file or
``<stdin>`` (and the line, for a defect of one line); never a traceback, never a hang.

The commands run in this process (seqlstm.cli.main, stdin the bytes behind sys.stdin.buffer);
the last cases run ``python -m seqlstm.cli`` for stdin and argv bytes as a shell gives them.
"""

import json
import math
import os
import random
import subprocess
import sys

import pytest
from fuzz_inputs import (
    CONLL_KINDS,
    LINE_KINDS,
    PARALLEL_KINDS,
    PROMPT_KINDS,
    ROUNDS,
    SLOW_KINDS,
    TEXT_KINDS,
    case_input,
    cases,
    parallel_must_fail,
    reference_conll,
    reference_lines,
    unreadable,
)
from fuzz_outcomes import CommandRun, Expected, command_case, run_command

from seqlstm.text.tag_schemes import is_valid_sequence
from seqlstm.text.words import tokenize


def output_lines(out: str) -> list[str]:
    """The lines of a command's output, cut at "\\n" only (a word may hold U+2028)."""
    assert out == "" or out.endswith("\n"), "the output does not end with a line end"
    return out.split("\n")[:-1]


def check_tags(tags: list[str], count: int, allowed: set[str]) -> None:
    assert len(tags) == count, f"{len(tags)} tags for {count} words"
    assert set(tags) <= allowed, f"tags the model does not have: {set(tags) - allowed}"
    assert is_valid_sequence(tags, "IOB2"), f"not a valid IOB2 sequence: {tags}"


def check_record(record: dict, words: list[str], allowed: set[str], line: str | None) -> None:
    """A JSON object of ``tag --output-format jsonl`` for a sentence of ``words`` (read from
    the text ``line``, to which entity offsets point, or from CoNLL input when None)."""
    assert record["tokens"] == words, f"tokens {record['tokens']} for the words {words}"
    check_tags(record["tags"], len(words), allowed)
    confidences = record["confidences"]
    assert len(confidences) == len(words) and all(0 <= c <= 1 for c in confidences), confidences
    types = {tag[2:] for tag in allowed if tag != "O"}
    for entity in record["entities"]:
        assert entity["type"] in types and 0 <= entity["score"] <= 1, entity
        if line is not None:
            assert line[entity["start"] : entity["end"]] == entity["text"], (entity, line)


def text_documents(lines: list[str], documents: bool) -> list[list[str]]:
    """The sentences of text input, grouped as tag reads them: one group of every line; with
    ``documents``, blank lines separate groups and are no sentences."""
    if not documents:
        return [lines] if lines else []
    groups: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
    return [group for group in groups if group]


def tag_options(rng: random.Random) -> list[str]:
    options = ["--batch-size", str(rng.choice([1, 2, 3, 64]))]
    if rng.random() < 0.5:
        options += ["--output-format", "jsonl"]
    if rng.random() < 0.4:
        options.append("--documents")
    return options


def input_argument(rng: random.Random, data: bytes, tmp_path) -> tuple[list[str], bytes, str]:
    """(--input FILE, no stdin, FILE) or (nothing, stdin, "<stdin>"), by the seed."""
    if rng.random() < 0.5:
        return [], data, "<stdin>"
    path = tmp_path / "input.txt"
    path.write_bytes(data)
    return ["--input", str(path)], None, str(path)


# ----------------------------------------------------------------------------- tag


def check_tag_text(done: CommandRun, data: bytes, options: list[str], allowed: set[str]):
    lines = reference_lines(data)
    assert lines is not None, "exit status 0 on input that is not UTF-8"
    groups = text_documents(lines, "--documents" in options)
    out = output_lines(done.out)
    if "jsonl" in options:
        records = [json.loads(line) for line in out]
        sentences = [(number, line) for number, group in enumerate(groups) for line in group]
        assert len(records) == len(sentences), f"{len(records)} objects for {len(sentences)} lines"
        for record, (number, line) in zip(records, sentences, strict=True):
            check_record(record, [t.text for t in tokenize(line)], allowed, line)
            assert record.get("document") == (number if "--documents" in options else None)
        return
    position = 0
    for number, group in enumerate(groups):
        if number:  # a blank line more between documents
            assert out[position] == "", f"no blank line between documents at {position}"
            position += 1
        for line in group:
            words = [t.text for t in tokenize(line)]
            block = out[position : position + len(words)]
            assert [b.rsplit(" ", 1)[0] for b in block] == words, f"{block} for {words}"
            check_tags([b.rsplit(" ", 1)[-1] for b in block], len(words), allowed)
            position += len(words)
            assert position < len(out) and out[position] == "", "a sentence not ended by a blank"
            position += 1
    assert position == len(out), f"{len(out) - position} lines more than the input has words"


@pytest.mark.parametrize(("kind", "seed"), cases(TEXT_KINDS, 4, 11000, ROUNDS))
def test_tag_text(kind, seed, fuzz_models, tagger_tags, tmp_path, monkeypatch, capsys, request):
    rng = random.Random(seed)
    data = case_input(kind, seed)
    options = tag_options(rng)
    if kind == "long_line" and "jsonl" not in options:
        # entity probabilities of a 200 KB line: memory and time must stay linear in it
        options += ["--output-format", "jsonl"]
    given, stdin, name = input_argument(rng, data, tmp_path)
    argv = ["tag", "--model", str(fuzz_models["tagger"]), *given, *options]
    command_case(
        request,
        "tag --format text",
        "tag",
        lambda: run_command(argv, monkeypatch, capsys, stdin),
        Expected([name], line=kind in LINE_KINDS, must_fail=unreadable(data)),
        lambda done: check_tag_text(done, data, options, tagger_tags),
    )


def check_tag_conll(done: CommandRun, data: bytes, options: list[str], allowed: set[str]):
    reading = reference_conll(data)
    assert reading is not None, "exit status 0 on input that is not UTF-8"
    documents = "--documents" in options
    out = output_lines(done.out)
    if "jsonl" in options:
        records = [json.loads(line) for line in out]
        assert len(records) == len(reading.sentences), (
            f"{len(records)} objects for {len(reading.sentences)} sentences"
        )
        for record, sentence, document in zip(
            records, reading.sentences, reading.documents, strict=True
        ):
            check_record(record, [fields[0] for fields in sentence], allowed, None)
            assert record.get("document") == (document if documents else None)
        return
    position = 0
    previous = None
    for sentence, document in zip(reading.sentences, reading.documents, strict=True):
        if documents and previous is not None and document != previous:
            assert out[position] == "", f"no blank line between documents at {position}"
            position += 1
        previous = document
        block = out[position : position + len(sentence)]
        expected = [" ".join(fields) for fields in sentence]
        assert [b.rsplit(" ", 1)[0] for b in block] == expected, f"{block} for {expected}"
        check_tags([b.rsplit(" ", 1)[-1] for b in block], len(sentence), allowed)
        position += len(sentence)
        assert position < len(out) and out[position] == "", "a sentence not ended by a blank"
        position += 1
    assert position == len(out), f"{len(out) - position} lines more than the input has tokens"


@pytest.mark.parametrize(("kind", "seed"), cases(CONLL_KINDS, 3, 12000, ROUNDS))
def test_tag_conll(kind, seed, fuzz_models, tagger_tags, tmp_path, monkeypatch, capsys, request):
    rng = random.Random(seed)
    data = case_input(kind, seed)
    options = ["--format", "conll", *tag_options(rng)]
    given, stdin, name = input_argument(rng, data, tmp_path)
    argv = ["tag", "--model", str(fuzz_models["tagger"]), *given, *options]
    command_case(
        request,
        "tag --format conll",
        "tag",
        lambda: run_command(argv, monkeypatch, capsys, stdin),
        Expected([name], line=kind in LINE_KINDS, must_fail=unreadable(data)),
        lambda done: check_tag_conll(done, data, options, tagger_tags),
    )


# ----------------------------------------------------------------------------- translate


def check_translate(done: CommandRun, data: bytes, n_best: int) -> None:
    lines = reference_lines(data)
    assert lines is not None, "exit status 0 on input that is not UTF-8"
    out = output_lines(done.out)
    if n_best == 1:
        assert len(out) == len(lines), f"{len(out)} translations of {len(lines)} lines"
        for line, translation in zip(lines, out, strict=True):
            if not line.strip(" \t"):
                assert translation == "", f"{translation!r} for the blank line {line!r}"
        return
    indices = []
    for entry in out:
        index, _, score = entry.split(" ||| ")
        indices.append(int(index))
        assert not math.isnan(float(score)), entry
    assert indices == sorted(indices) and set(indices) <= set(range(len(lines))), indices
    assert all(indices.count(i) <= n_best for i in set(indices)), indices


@pytest.mark.parametrize(("kind", "seed"), cases(TEXT_KINDS, 2, 13000, ROUNDS))
def test_translate(kind, seed, fuzz_models, tmp_path, monkeypatch, capsys, request):
    rng = random.Random(seed)
    data = case_input(kind, seed)
    beam = rng.choice([1, 2, 3])
    n_best = rng.choice([1, 1, beam])
    options = ["--beam", str(beam), "--n-best", str(n_best)]
    options += ["--batch-size", str(rng.choice([1, 2, 64]))]
    given, stdin, name = input_argument(rng, data, tmp_path)
    argv = ["translate", "--model", str(fuzz_models["translator"]), *given, *options]
    command_case(
        request,
        "translate",
        "translate",
        lambda: run_command(argv, monkeypatch, capsys, stdin),
        Expected([name], line=kind in LINE_KINDS, must_fail=unreadable(data)),
        lambda done: check_translate(done, data, n_best),
    )


# ----------------------------------------------------------------------------- generate


def check_generate(done: CommandRun) -> None:
    assert done.out.endswith("\n"), "the text does not end with a line end"
    for line in done.err.splitlines():
        assert line.startswith("seqlstm generate: warning: "), f"stderr: {line!r}"


@pytest.mark.parametrize(("kind", "seed"), cases(PROMPT_KINDS, 3, 14000, ROUNDS))
def test_generate(kind, seed, fuzz_models, monkeypatch, capsys, request):
    rng = random.Random(seed)
    prompt = case_input(kind, seed)
    options = ["--max-new-tokens", str(rng.choice([0, 1, 5, 20])), "--seed", str(seed)]
    options += rng.choice(
        [[], ["--temperature", "0"], ["--top-k", "3"], ["--top-p", "0.5"], ["--single-line"]]
    )
    argv = ["generate", "--model", str(fuzz_models["language_model"]), "--prompt", prompt]
    command_case(
        request,
        "generate --prompt",
        "generate",
        lambda: run_command([*argv, *options], monkeypatch, capsys),
        Expected([]),
        check_generate,
    )


# ----------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(("kind", "seed"), cases(CONLL_KINDS, 1, 15000, ROUNDS))
def test_evaluate_ner(kind, seed, fuzz_models, tmp_path, monkeypatch, capsys, request):
    rng = random.Random(seed)
    data = case_input(kind, seed)
    path = tmp_path / "test.conll"
    path.write_bytes(data)
    options = ["--documents", rng.choice(["auto", "marked", "whole-file", "none"])]
    options += ["--batch-size", str(rng.choice([1, 2, 64]))]
    argv = ["evaluate", "--task", "ner", "--model", str(fuzz_models["tagger"])]
    argv += ["--data", str(path), *options]

    def check(done: CommandRun) -> None:
        reading = reference_conll(data)
        assert reading is not None, "exit status 0 on input that is not UTF-8"
        tokens = sum(len(sentence) for sentence in reading.sentences)
        assert done.out.startswith(f"processed {tokens} tokens "), done.out[:80]

    command_case(
        request,
        "evaluate --task ner",
        "evaluate",
        lambda: run_command(argv, monkeypatch, capsys),
        Expected([str(path)], line=kind in LINE_KINDS, must_fail=unreadable(data)),
        check,
    )


@pytest.mark.parametrize(("kind", "seed"), cases(PARALLEL_KINDS, 1, 16000, ROUNDS))
def test_evaluate_mt(kind, seed, fuzz_models, tmp_path, monkeypatch, capsys, request):
    rng = random.Random(seed)
    src, ref = case_input(kind, seed)
    src_path, ref_path = tmp_path / "src.txt", tmp_path / "ref.txt"
    src_path.write_bytes(src)
    ref_path.write_bytes(ref)
    argv = ["evaluate", "--task", "mt", "--model", str(fuzz_models["translator"])]
    argv += ["--src", str(src_path), "--ref", str(ref_path), "--beam", str(rng.choice([1, 2]))]

    def check(done: CommandRun) -> None:
        assert "BLEU = " in done.out and "chrF2 = " in done.out, done.out[:200]

    command_case(
        request,
        "evaluate --task mt",
        "evaluate",
        lambda: run_command(argv, monkeypatch, capsys),
        Expected(
            [str(src_path), str(ref_path)],
            line=kind in LINE_KINDS,
            must_fail=parallel_must_fail(src, ref),
        ),
        check,
    )


@pytest.mark.parametrize(("kind", "seed"), cases(TEXT_KINDS, 1, 17000, ROUNDS))
def test_evaluate_lm(kind, seed, fuzz_models, tmp_path, monkeypatch, capsys, request):
    rng = random.Random(seed)
    data = case_input(kind, seed)
    path = tmp_path / "test.txt"
    path.write_bytes(data)
    argv = ["evaluate", "--task", "lm", "--model", str(fuzz_models["language_model"])]
    # windows of 1 token are legitimate but slow on a 200 KB line
    bptt = 70 if kind in SLOW_KINDS else rng.choice([1, 5, 70])
    argv += ["--data", str(path), "--bptt", str(bptt)]
    argv += ["--batch-size", str(rng.choice([1, 2, 64]))]

    def check(done: CommandRun) -> None:
        lines = reference_lines(data)
        assert lines is not None, "exit status 0 on input that is not UTF-8"
        assert done.out.startswith(f"{path}: {len(lines)} lines\n"), done.out[:200]
        assert "perplexity" in done.out

    command_case(
        request,
        "evaluate --task lm",
        "evaluate",
        lambda: run_command(argv, monkeypatch, capsys),
        Expected([str(path)], line=kind in LINE_KINDS, must_fail=unreadable(data)),
        check,
    )


# ----------------------------------------------------------------------------- bad options

BAD_OPTIONS = [
    ("tag", "tagger", ["--batch-size", "0"]),
    ("tag", "tagger", ["--batch-size", "-3"]),
    ("translate", "translator", ["--batch-size", "0"]),
    ("translate", "translator", ["--beam", "0"]),
    ("translate", "translator", ["--n-best", "4", "--beam", "2"]),
    ("generate", "language_model", ["--max-new-tokens", "-1"]),
    ("generate", "language_model", ["--top-p", "0"]),
    ("generate", "language_model", ["--max-new-tokens", "1000000000"]),
    ("generate", "language_model", ["--temperature", "nan"]),
    ("generate", "language_model", ["--temperature", "inf"]),
    ("evaluate --task ner", "tagger", ["--batch-size", "0"]),
    ("evaluate --task lm", "language_model", ["--batch-size", "0"]),
    ("evaluate --task mt", "translator", ["--batch-size", "0"]),
]


@pytest.mark.parametrize(
    ("command", "model", "options"),
    BAD_OPTIONS,
    ids=[f"{c.split()[-1]}{''.join(o)}" for c, _, o in BAD_OPTIONS],
)
def test_bad_options(command, model, options, fuzz_models, tmp_path, monkeypatch, capsys, request):
    text = tmp_path / "input.txt"
    text.write_text("Peter met Paris .\n", encoding="utf-8")
    data = {"ner": ["--data", str(text)], "lm": ["--data", str(text)]}.get(command.split()[-1])
    if command.endswith("mt"):
        data = ["--src", str(text), "--ref", str(text)]
    files = data or (["--input", str(text)] if command != "generate" else [])
    argv = [*command.split(), "--model", str(fuzz_models[model]), *files, *options]
    command_case(
        request,
        "bad options",
        command.split()[0],
        lambda: run_command(argv, monkeypatch, capsys),
        Expected([], must_fail=f"{' '.join(options)} is out of range"),
        lambda done: None,
    )


# ----------------------------------------------------------------------------- subprocesses

# id -> (model, input kind, seed, options): stdin bytes, or for a prompt kind argv bytes
SUBPROCESS_CASES = {
    "tag-stdin-mixed_line_ends-s18000": ("tagger", "mixed_line_ends", 18000, []),
    "tag-stdin-blank_only-s18001": ("tagger", "blank_only", 18001, ["--documents"]),
    "tag-conll-stdin-conll_nul-s18002": ("tagger", "conll_nul", 18002, ["--format", "conll"]),
    "translate-stdin-utf16_bom-s18003": ("translator", "utf16_bom", 18003, []),
    "generate-argv-prompt_not_utf8-s18004": ("language_model", "prompt_not_utf8", 18004, []),
}
COMMANDS = {"tagger": "tag", "translator": "translate", "language_model": "generate"}


@pytest.fixture(scope="module")
def launched(fuzz_models):
    """The subprocess cases, started together (they spend most of their time importing)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = {}
    for case, (model, kind, seed, options) in SUBPROCESS_CASES.items():
        argv = [sys.executable, "-m", "seqlstm.cli", COMMANDS[model]]
        argv += ["--model", str(fuzz_models[model]), *options]
        stdin = None
        if kind in PROMPT_KINDS:  # the prompt as argv bytes, as a shell passes them
            argv += ["--prompt", case_input(kind, seed).encode("utf-8", "surrogateescape")]
        else:
            stdin = case_input(kind, seed)
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        processes[case] = (process, stdin)
    yield processes
    for process, _ in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_subprocess(case, launched, tagger_tags, request):
    model, kind, seed, options = SUBPROCESS_CASES[case]
    process, stdin = launched[case]

    def finished() -> CommandRun:
        out, err = process.communicate(stdin, timeout=120)
        return CommandRun(process.returncode, out.decode("utf-8"), err.decode("utf-8"))

    checks = {
        "tag": lambda done: (check_tag_conll if "conll" in options else check_tag_text)(
            done, stdin, options, tagger_tags
        ),
        "translate": lambda done: check_translate(done, stdin, 1),
        "generate": check_generate,
    }
    expected = Expected([])  # a prompt: nothing to name
    if stdin is not None:
        expected = Expected(["<stdin>"], line=kind in LINE_KINDS, must_fail=unreadable(stdin))
    command_case(
        request,
        f"{COMMANDS[model]} (subprocess)",
        COMMANDS[model],
        finished,
        expected,
        checks[COMMANDS[model]],
        seconds=150,
    )
