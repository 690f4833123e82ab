"""Awkward input at every entry point that reads text: a result or one clear error, never a
traceback or a hang (issue 18, item 1).

The rules (seqlstm.data.readers): ``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line everywhere;
a UTF-8 BOM is dropped; a NUL byte, UTF-16 text (with or without a BOM) or bad UTF-8 is a
DataError naming the file and line; blank lines mean what the format says; an empty
sentence gets no tags at any batch size; ``--batch-size`` below 1 is a usage error.
"""

import io
import sys

import pytest
import torch
from locations import FIXTURES

from seqlstm import cli
from seqlstm.data import read_conll
from seqlstm.tasks.tagging.document_chunks import document_chunks
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.text.tokenizer import SubwordTokenizer, normalize
from seqlstm.text.words import tokenize

MODELS = FIXTURES / "models_0_1"
TAGGER = MODELS / "tagger"
TRANSLATOR = MODELS / "translator"
LANGUAGE_MODEL = MODELS / "char_lm"

TEXT = "Peter Blackburn visited Paris .\nReuters met Bill Clinton .\n"


def run(argv, capsys, stdin: bytes | None = None, monkeypatch=None):
    """(exit status, stdout, stderr) of ``seqlstm ARGV``; argparse's exit counts as one."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    try:
        status = cli.main(argv)
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def tag(tmp_path, capsys, content: bytes, *options: str):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    return run(["tag", "--model", str(TAGGER), "--input", str(path), *options], capsys)


def assert_one_line_error(status, err, command, *parts):
    assert status == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"seqlstm {command}: error: "), err
    for part in parts:
        assert part in err, err


OPTIONS = [
    (),
    ("--output-format", "jsonl"),
    ("--documents",),
    ("--format", "conll"),
    ("--format", "conll", "--documents", "--output-format", "jsonl"),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_line_ends_crlf_and_lone_cr_read_as_lf(tmp_path, capsys, options):
    lf = TEXT if "conll" not in options else "Peter B-PER\nmet O\n\nParis B-LOC\n"
    expected = tag(tmp_path, capsys, lf.encode(), *options)
    assert expected[0] == 0 and expected[1]
    for ending in ("\r\n", "\r"):
        assert tag(tmp_path, capsys, lf.replace("\n", ending).encode(), *options) == expected
    # a lone CR after the last line, and a file ending without any line end
    assert tag(tmp_path, capsys, lf.rstrip("\n").encode(), *options) == expected


def test_lone_cr_separates_sentences_in_text_input(tmp_path, capsys):
    status, out, _ = tag(tmp_path, capsys, b"Peter met Paris .\rBill went home .\r")
    assert status == 0
    blocks = out.split("\n\n")
    assert [len(block.split("\n")) for block in blocks[:2]] == [4, 4]


@pytest.mark.parametrize("options", OPTIONS)
def test_blank_only_and_empty_input(tmp_path, capsys, options):
    for content, lines in ((b"", 0), (b"\n  \n\t\n", 3), (b"\r\n\r", 2)):
        status, out, err = tag(tmp_path, capsys, content, *options)
        assert (status, err) == (0, "")
        if "--documents" in options or "conll" in options or not lines:
            assert out == ""  # no sentence (text documents: blank lines only separate)
        elif "jsonl" in options:
            empty = '{"tokens": [], "tags": [], "confidences": [], "entities": []}\n'
            assert out == empty * lines
        else:
            assert out == "\n" * lines  # an empty block per blank line


def test_text_starting_with_an_empty_line(tmp_path, capsys):
    status, out, _ = tag(tmp_path, capsys, b"\n" + TEXT.encode())
    assert status == 0
    _, alone, _ = tag(tmp_path, capsys, TEXT.encode())
    assert out == "\n" + alone


@pytest.mark.parametrize("options", OPTIONS)
def test_nul_byte_is_an_error_naming_file_line_and_column(tmp_path, capsys, options):
    status, _, err = tag(tmp_path, capsys, b"Peter O\n\nPar\0is O\n", *options)
    assert_one_line_error(status, err, "tag", "input.txt:3: a NUL byte at column 4")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_without_bom_is_recognised(tmp_path, capsys, encoding):
    status, _, err = tag(tmp_path, capsys, TEXT.encode(encoding))
    assert_one_line_error(status, err, "tag", "input.txt:1:", "looks like UTF-16", "iconv")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_with_bom_is_recognised(tmp_path, capsys, encoding):
    status, _, err = tag(tmp_path, capsys, TEXT.encode(encoding))
    assert_one_line_error(status, err, "tag", "input.txt:1:", "UTF-16 byte-order mark")


def test_utf8_bom_is_dropped(tmp_path, capsys):
    assert tag(tmp_path, capsys, b"\xef\xbb\xbf" + TEXT.encode()) == tag(
        tmp_path, capsys, TEXT.encode()
    )


def test_stdin_follows_the_same_rules(capsys, monkeypatch):
    argv = ["tag", "--model", str(TAGGER)]
    expected = run(argv, capsys, TEXT.encode(), monkeypatch)
    assert run(argv, capsys, TEXT.replace("\n", "\r").encode(), monkeypatch) == expected
    status, _, err = run(argv, capsys, b"a\nb\0\n", monkeypatch)
    assert_one_line_error(status, err, "tag", "<stdin>:2: a NUL byte at column 2")


def test_a_text_stdin_without_bytes_underneath(capsys, monkeypatch):
    # a notebook's or a test's sys.stdin: no .buffer; a lone surrogate is no UTF-8 text
    argv = ["tag", "--model", str(TAGGER)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("Peter\rParis\nb\ud800\n"))
    status, _, err = run(argv, capsys)
    assert_one_line_error(status, err, "tag", "<stdin>:3: not valid UTF-8 (byte 0xed")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Peter\rParis\n"))
    status, out, _ = run(argv, capsys)
    assert status == 0 and out.count("\n\n") == 2


def test_unusual_unicode_is_tagged(tmp_path, capsys):
    # line and paragraph separators, U+2581, a no-break space, a noncharacter, an emoji with
    # a combining accent, a lone combining mark, a zero-width space, a private-use character
    text = "A\u2028B \u2581 \xa0x \u2029 y\n\uffff\U0001f44d\u0301 \u0301\u200b\ue000 z\n"
    for options in OPTIONS[:3]:
        status, out, err = tag(tmp_path, capsys, text.encode(), *options)
        assert (status, err) == (0, ""), err
        # two sentences: two blocks (conll) or two objects (jsonl)
        assert out.count("\n\n" if "jsonl" not in options else "\n") == 2


def test_u2581_separates_words_in_text_input(tmp_path, capsys):
    status, out, _ = tag(tmp_path, capsys, "Peter\u2581met \u2581 Paris\n".encode())
    assert status == 0
    assert [line.split(" ")[0] for line in out.strip("\n").split("\n")] == ["Peter", "met", "Paris"]


def test_u2581_is_whitespace_to_the_word_splitter():
    # the subword tokenizer reads U+2581 as a space: a word of it would be empty there
    for text in ("a\u2581b", "a \u2581\u2581 b", "\u0915\u094d\u2581b\u0301"):
        tokens = tokenize(text)
        assert [text[t.start : t.end] for t in tokens] == [t.text for t in tokens]
        assert all(normalize(t.text) for t in tokens)
        assert len(tokens) == 2
    assert tokenize("\u2581") == []


@pytest.mark.parametrize("token", ["\u2581", "\xa0", "\u2029", "\u2581\u3000"])
def test_conll_token_without_visible_character_names_the_line(tmp_path, capsys, token):
    content = f"Peter B-PER\n\nmet O\n{token} O\n".encode()
    status, _, err = tag(tmp_path, capsys, content, "--format", "conll")
    assert_one_line_error(status, err, "tag", "input.txt:4: the token", "no visible character")
    data = tmp_path / "train.txt"
    data.write_bytes(content)
    with pytest.raises(Exception, match=r"train.txt:4: the token .* no visible character"):
        read_conll(data)
    status, _, err = run(
        ["evaluate", "--task", "ner", "--model", str(TAGGER), "--data", str(data)], capsys
    )
    assert_one_line_error(status, err, "evaluate", "train.txt:4: the token")


def test_conll_input_splits_fields_as_read_conll_does(tmp_path, capsys):
    content = "New\xa0York B-LOC\nis\tO\n".encode()
    status, out, _ = tag(tmp_path, capsys, content, "--format", "conll")
    assert status == 0
    assert [line.rsplit(" ", 1)[0] for line in out.strip("\n").split("\n")] == [
        "New\xa0York B-LOC",
        "is O",
    ]
    data = tmp_path / "d.txt"
    data.write_bytes(content)
    assert read_conll(data, scheme_to=None)[0]["tokens"] == ["New\xa0York", "is"]


# ---------------------------------------------------------------- --batch-size


BATCH_COMMANDS = [
    ["tag", "--model", "M"],
    ["translate", "--model", "M"],
    ["evaluate", "--task", "ner", "--model", "M", "--data", "D"],
    ["evaluate", "--task", "lm", "--model", "M", "--data", "D"],
    ["evaluate", "--task", "mt", "--model", "M", "--src", "S", "--ref", "R"],
]


@pytest.mark.parametrize("argv", BATCH_COMMANDS, ids=lambda argv: " ".join(argv[:3]))
@pytest.mark.parametrize("size", ["0", "-3", "1.5", "x", ""])
def test_batch_size_below_one_is_a_usage_error_everywhere(capsys, argv, size):
    status, out, err = run([*argv, "--batch-size", size], capsys)
    assert (status, out) == (2, "")
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (
        f"seqlstm {argv[0]}: error: argument --batch-size: expected a whole number of at "
        f"least 1, got {size!r}"
    )


# ---------------------------------------------------------------- translate, generate, lm


def translate(tmp_path, capsys, content: bytes):
    path = tmp_path / "src.txt"
    path.write_bytes(content)
    argv = ["translate", "--model", str(TRANSLATOR), "--input", str(path), "--beam", "2"]
    return run(argv, capsys)


def test_translate_reads_lines_as_tag_does(tmp_path, capsys):
    lf = translate(tmp_path, capsys, b"a dog runs\n\n   \nthe cat\n")
    assert lf[0] == 0 and lf[1].count("\n") == 4  # a line out per line in, blank ones too
    assert lf[1].split("\n")[1:3] == ["", ""]
    assert translate(tmp_path, capsys, b"a dog runs\r\rx \rthe cat\r")[1].count("\n") == 4
    assert translate(tmp_path, capsys, b"a dog runs\r\n\r\n   \r\nthe cat") == lf
    assert translate(tmp_path, capsys, b"") == (0, "", "")
    assert translate(tmp_path, capsys, b"\n\n") == (0, "\n\n", "")
    status, _, err = translate(tmp_path, capsys, b"a\nb\0c\n")
    assert_one_line_error(status, err, "translate", "src.txt:2: a NUL byte at column 2")
    status, _, err = translate(tmp_path, capsys, "a dog\n".encode("utf-16-le"))
    assert_one_line_error(status, err, "translate", "src.txt:1:", "looks like UTF-16")


@pytest.mark.parametrize("prompt", ["", " ", "\r", "a\rb", "\n\n", "\r\n", "\u2581", "\u2029"])
def test_generate_takes_any_prompt(capsys, prompt):
    argv = ["generate", "--model", str(LANGUAGE_MODEL), "--prompt", prompt]
    status, out, err = run([*argv, "--max-new-tokens", "3", "--seed", "0"], capsys)
    assert status == 0 and "Traceback" not in err
    assert out.endswith("\n")


def test_evaluate_lm_counts_lone_cr_lines(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_bytes(b"First line\rsecond line\r\nthird\r")
    argv = ["evaluate", "--task", "lm", "--model", str(LANGUAGE_MODEL), "--data", str(data)]
    status, out, _ = run(argv, capsys)
    assert status == 0
    assert out.startswith(f"{data}: 3 lines")


def test_empty_parallel_files_name_both_files(tmp_path, capsys):
    src, ref = tmp_path / "empty.src", tmp_path / "empty.ref"
    for content in (b"", b"\n \n"):
        src.write_bytes(content)
        ref.write_bytes(content)
        argv = ["evaluate", "--task", "mt", "--model", str(TRANSLATOR)]
        status, _, err = run([*argv, "--src", str(src), "--ref", str(ref)], capsys)
        assert_one_line_error(status, err, "evaluate", "empty.src and ", "empty.ref have ")


# ---------------------------------------------------------------- empty sentences


def tiny_tagger(context_words: int) -> BiLSTMCRFTagger:
    rows = read_conll(FIXTURES / "ner_train.txt")
    tokenizer = SubwordTokenizer.train(
        [" ".join(row["tokens"]) for row in rows], 400, hard_vocab_limit=False
    )
    torch.manual_seed(0)
    config = TaggerConfig(
        subword_dim=8,
        char_embedding_dim=4,
        char_filters=8,
        hidden_size=8,
        context_words=context_words,
        chunk_words=16,
    )
    return BiLSTMCRFTagger.build(config, tokenizer, rows).eval()


@pytest.mark.parametrize("context_words", [0, 4])
def test_an_empty_sentence_gets_no_tags_at_any_batch_size(context_words):
    tagger = tiny_tagger(context_words)
    two = tagger.predict([["A", "b"]])[0]
    assert len(two) == 2
    for batch_size in (1, 2, 3, 64):
        assert tagger.predict([[], ["A", "b"]], batch_size=batch_size) == [[], two]
        assert tagger.predict([["A", "b"], [], "", "  "], batch_size=batch_size) == [
            two,
            [],
            [],
            [],
        ]
        assert tagger.predict([[], []], batch_size=batch_size) == [[], []]
        tagged = tagger.tag([[], ["A", "b"]], batch_size=batch_size)
        assert [t.tags for t in tagged] == [[], two]
        assert (tagged[0].confidences, tagged[0].entities) == ([], [])
        nbest = tagger.predict_nbest([[], ["A", "b"]], k=2, batch_size=batch_size)
        assert nbest[0] == [([], 1.0)] and nbest[1][0][0] == two
        documents = tagger.predict_documents([[[], ["A", "b"], []], [], [[]]], batch_size)
        assert [[len(tags) for tags in document] for document in documents] == [[0, 2, 0], [], [0]]
        tagged_documents = tagger.tag_documents([[[], ["A", "b"]], [[]]], batch_size)
        assert [[t.tags for t in d] for d in tagged_documents] == [[[], documents[0][1]], [[]]]
    assert tagger.predict_entities("") == tagger.predict_entities([]) == []


def test_the_onnx_runtime_gives_an_empty_sentence_no_tags(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from seqlstm.onnx_tagger.export import export_onnx
    from seqlstm.onnx_tagger.runtime import OnnxTagger

    tagger = tiny_tagger(4)
    runtime = OnnxTagger.load(export_onnx(tagger, tmp_path / "onnx"), threads=1)
    two = tagger.predict([["A", "b"]])[0]
    for batch_size in (1, 2, 64):
        assert runtime.predict([[], ["A", "b"]], batch_size=batch_size) == [[], two]
        assert runtime.predict(["", " ", []], batch_size=batch_size) == [[], [], []]
        documents = runtime.predict_documents([[[], ["A", "b"], []], [], [[]]], batch_size)
        assert documents == [[[], two, []], [], [[]]]


@pytest.mark.parametrize("chunk_words", [0, 16])
def test_consecutive_empty_sentences_cost_nothing(chunk_words):
    # Empty sentences add no words: the BiLSTM reads as many words, in as many chunks,
    # whether 250 or 8,000 of them come before the sentence.
    tagger = tiny_tagger(4)
    tagger.config.chunk_words = chunk_words
    read: list[int] = []
    emission_scores = tagger._emission_scores

    def counting(features, sentence_start, lengths):
        read.append(int(lengths.sum()))
        return emission_scores(features, sentence_start, lengths)

    tagger._emission_scores = counting
    sentence = ["Peter", "met", "Paris", "in", "Germany", "."]
    words = []
    for empty in (250, 8000):
        read.clear()
        tagged = tagger.tag_documents([[*[[]] * empty, sentence]])[0]
        assert [len(t.tags) for t in tagged] == [0] * empty + [6]
        words.append(sum(read))
        chunks = document_chunks([0] * empty + [6], [empty + 1], 4, chunk_words)
        assert len(chunks) == 1
    assert words == [6, 6]
