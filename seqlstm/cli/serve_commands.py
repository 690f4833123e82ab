"""`seqlstm serve`: the saved models over HTTP, JSON in and out (seqlstm.serving).

    seqlstm serve --model DIR [--model DIR ...] [--host 127.0.0.1] [--port 8000] [--int8]

serves each model by its task, read from its directory's config.json: a tagger at
``POST /tag``, a translator at ``POST /translate``, a language model at ``POST /generate``;
``GET /health`` lists them and ``GET /openapi.json`` is the schema. One model per task: two
models of one task are an error (start a second server on another port). It listens on
127.0.0.1 unless --host says otherwise, and has no authentication: keep it on loopback or
behind a proxy that has.

Concurrent requests to one model are batched into one model call (--max-batch-sentences,
--max-wait-ms); --max-* options bound what one request may ask (seqlstm.serving.limits).
Needs the ``serve`` extra: ``pip install "seqlstm[serve]"`` (FastAPI and uvicorn).
"""

import argparse
import sys
from pathlib import Path

from seqlstm.cli.command import (
    MAX_NEW_TOKENS,
    MODEL_HELP,
    MODEL_METAVAR,
    Command,
    add_int8_argument,
    at_least,
    load_model,
    model_directory,
    model_location,
)
from seqlstm.errors import CheckpointError, DataError
from seqlstm.model_directory_checks import MAX_CONFIG_BYTES, read_json

# tasks by the model class in a model directory's config.json (as seqlstm.serving serves them)
_TASKS = {"BiLSTMCRFTagger": "tag", "Seq2SeqLSTM": "translate", "LSTMLanguageModel": "generate"}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    # defaults are written out, not imported: seqlstm.serving imports torch and FastAPI, which
    # `seqlstm --help` does without (tests/cli/test_serve_commands.py checks they agree)
    parser.add_argument(
        "--model",
        type=model_location,
        action="append",
        required=True,
        metavar=MODEL_METAVAR,
        help=f"{MODEL_HELP} to serve (repeat for a model of another task)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="(default: 127.0.0.1, loopback)")
    parser.add_argument("--port", type=at_least(0, int), default=8000, help="(default: 8000)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_int8_argument(parser)
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level; below info there is no line per request (default: info)",
    )
    batching = parser.add_argument_group("dynamic batching")
    batching.add_argument(
        "--max-batch-sentences",
        type=at_least(1, int),
        default=64,
        metavar="N",
        help="sentences (or prompts) of concurrent requests per model call (default: 64)",
    )
    batching.add_argument(
        "--max-wait-ms",
        type=at_least(0.0, float),
        default=2.0,
        metavar="MS",
        help="how long a model call may wait for more requests to fill its batch (default: 2)",
    )
    limits = parser.add_argument_group("request limits (larger requests get 413 or 422)")
    limits.add_argument(
        "--max-body-bytes",
        type=at_least(1, int),
        default=1 << 20,
        metavar="N",
        help="request body size (default: 1048576)",
    )
    limits.add_argument(
        "--max-sentences",
        type=at_least(1, int),
        default=256,
        metavar="N",
        help="sentences per request, over all its documents (default: 256)",
    )
    limits.add_argument(
        "--max-words",
        type=at_least(1, int),
        default=256,
        metavar="N",
        help="words per sentence (default: 256)",
    )
    limits.add_argument(
        "--max-chars",
        type=at_least(1, int),
        default=2048,
        metavar="N",
        help="characters per sentence or prompt (default: 2048)",
    )
    limits.add_argument(
        "--max-new-tokens",
        type=at_least(1, int, MAX_NEW_TOKENS),
        default=1000,
        metavar="N",
        help="max_new_tokens of a generation (default: 1000)",
    )
    limits.add_argument(
        "--max-beam-size",
        type=at_least(1, int),
        default=16,
        metavar="N",
        help="beam_size of a translation (default: 16)",
    )


def _serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from seqlstm.serving import ServingLimits, create_app
    except ImportError as err:
        raise DataError(
            f"seqlstm serve needs FastAPI and uvicorn ({err}): pip install 'seqlstm[serve]'"
        ) from None
    from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger
    from seqlstm.tasks.translation.translator import Seq2SeqLSTM

    classes = {c.__name__: c for c in (BiLSTMCRFTagger, Seq2SeqLSTM, LSTMLanguageModel)}
    # hub ids: their files downloaded (or read from the cache) first
    found = [(directory, _model_class(directory)) for directory in map(model_directory, args.model)]
    by_task: dict[str, Path] = {}
    for directory, name in found:
        task = _TASKS[name]
        if task in by_task:
            raise DataError(
                f"--model {by_task[task]} and --model {directory} are both served at /{task}: "
                "serve one model per task (start a second server on another port for the other)"
            )
        by_task[task] = directory
    models = {
        str(directory): load_model(classes[name], directory, args.device, args.int8)
        for directory, name in found
    }
    limits = ServingLimits(
        max_body_bytes=args.max_body_bytes,
        max_sentences=args.max_sentences,
        max_words=args.max_words,
        max_chars=args.max_chars,
        max_new_tokens=args.max_new_tokens,
        max_beam_size=args.max_beam_size,
    )
    app = create_app(models, limits, args.max_batch_sentences, args.max_wait_ms)
    for task, directory in by_task.items():
        print(f"seqlstm serve: POST /{task}: {directory}", file=sys.stderr)
    if args.host not in _LOOPBACK:
        print(
            f"seqlstm serve: warning: --host {args.host} can be reached from other machines, "
            "and the server has no authentication",
            file=sys.stderr,
        )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


def _model_class(directory: Path) -> str:
    """The model class named in the directory's config.json, if seqlstm serve serves it."""
    path = directory / "config.json"
    if not path.exists():
        raise CheckpointError(f"{directory}: not a model directory (no config.json)")
    header = read_json(path, MAX_CONFIG_BYTES)  # bounded: a FIFO or /dev/zero is no hang
    name = header.get("model_class") if isinstance(header, dict) else None
    if not isinstance(name, str):
        raise CheckpointError(f"{path}: expected a JSON object with model_class (a string)")
    if name not in _TASKS:
        served = ", ".join(f"{cls} (/{task})" for cls, task in _TASKS.items())
        raise DataError(f"{directory} holds a {name}, which seqlstm serve does not serve: {served}")
    return name


COMMANDS = [
    Command(
        "serve",
        "serve saved models over HTTP, JSON in and out",
        _serve_arguments,
        _serve,
    ),
]
