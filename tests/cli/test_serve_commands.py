"""`seqlstm serve`: a real server in a subprocess, its options and its errors."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from locations import FIXTURES

from seqlstm import cli

MODELS = FIXTURES / "models_0_1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _seqlstm() -> list[str]:
    # the installed console script when there is one, else the same main() via -m
    script = Path(sys.executable).with_name("seqlstm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "seqlstm.cli"]


def test_serve_answers_over_http_and_stops_cleanly():
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger

    port = _free_port()
    command = [
        *_seqlstm(),
        "serve",
        *("--model", str(MODELS / "tagger"), "--model", str(MODELS / "char_lm")),
        *("--port", str(port), "--log-level", "warning"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=5).json()
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        assert [(m["task"], m["name"]) for m in health["models"]] == [
            ("tag", str(MODELS / "tagger")),
            ("generate", str(MODELS / "char_lm")),
        ]
        sentences = ["EU rejects German call to boycott British lamb .", ["Peter", "Blackburn"]]
        tagged = httpx.post(f"{url}/tag", json={"sentences": sentences}, timeout=30).json()
        expected = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger").tag(sentences)
        assert [s["tags"] for s in tagged["sentences"]] == [t.tags for t in expected]
        body = {"prompt": "the", "max_new_tokens": 12, "temperature": 0.7, "seed": 5}
        generated = httpx.post(f"{url}/generate", json=body, timeout=30).json()
        lm = LSTMLanguageModel.from_pretrained(MODELS / "char_lm")
        assert generated == {"text": lm.generate("the", 12, temperature=0.7, seed=5)}
        assert httpx.post(f"{url}/translate", json={"sentences": ["a"]}).status_code == 404
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, stderr
    assert f"POST /tag: {MODELS / 'tagger'}" in stderr


def test_help_and_options_import_neither_torch_nor_fastapi():
    code = (
        "import sys; from seqlstm import cli; "
        "cli.build_parser().parse_args(['serve', '--model', 'x']); "
        "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_option_defaults_are_the_library_defaults():
    pytest.importorskip("fastapi")
    import inspect
    from dataclasses import asdict

    from seqlstm.serving import ServingLimits, create_app

    args = cli.build_parser().parse_args(["serve", "--model", "x"])
    assert {name: getattr(args, name) for name in asdict(ServingLimits())} == asdict(
        ServingLimits()
    )
    defaults = inspect.signature(create_app).parameters
    assert args.max_batch_sentences == defaults["max_batch_sentences"].default
    assert args.max_wait_ms == defaults["max_wait_ms"].default
    assert (args.host, args.port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["tagger", "tagger"], "are both served at /tag: serve one model per task"),
        (["classifier"], "holds a LSTMClassifier, which seqlstm serve does not serve"),
        (["no_such_model"], "not a model directory (no config.json)"),
    ],
)
def test_models_it_cannot_serve_are_one_line_errors(capsys, models, message):
    pytest.importorskip("fastapi")
    argv = ["serve"]
    for name in models:
        argv += ["--model", str(MODELS / name)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_options_are_argparse_errors(capsys):
    for option in ("--max-batch-sentences", "--max-words", "--max-body-bytes"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["serve", "--model", "x", option, "0"])
        assert exit_info.value.code == 2
        assert "must be >= 1" in capsys.readouterr().err
