"""`seqlstm push`: upload a saved model directory to the Hugging Face hub, with a model card.

    seqlstm push --model DIR --repo-id OWNER/NAME [--private] [--revision BRANCH]
                 [--commit-message TEXT]

uploads DIR's model files (config.json, model.safetensors, tokenizer/, vocab/*.json) and a
README.md model card in one commit (seqlstm.model_hub.push_to_hub). For a recipe run's
OUT/model the card also holds the run's data set and fingerprint, metrics with their
signatures, training config and command, read from OUT/results.json beside it. The token is
the ``HF_TOKEN`` variable or the one ``hf auth login`` saved; it is not an option, so that it
stays out of shell histories.

Any command that takes ``--model`` (tag, translate, generate, evaluate, serve, export) then
loads the pushed model as ``--model OWNER/NAME``.
"""

import argparse
from pathlib import Path

from seqlstm.cli.command import Command


def _push_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "The token comes from HF_TOKEN or `hf auth login`. From a recipe run's OUT/model,\n"
        "the card also has OUT/results.json's data, metrics and command."
    )
    parser.add_argument(
        "--model", type=Path, required=True, metavar="DIR", help="the model directory to upload"
    )
    parser.add_argument(
        "--repo-id",
        required=True,
        metavar="OWNER/NAME",
        help="the hub model repo (created if missing)",
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="create the repo private (an existing one keeps its visibility)",
    )
    parser.add_argument(
        "--revision",
        metavar="BRANCH",
        help="push to this branch, created when missing (default: main)",
    )
    parser.add_argument(
        "--commit-message", metavar="TEXT", help="(default: Upload MODEL_CLASS ...)"
    )


def _push(args: argparse.Namespace) -> None:
    from seqlstm.model_hub import push_to_hub

    url = push_to_hub(
        args.model,
        args.repo_id,
        private=args.private,
        commit_message=args.commit_message,
        revision=args.revision,
    )
    print(f"pushed {args.model} to {args.repo_id}: {url}")


COMMANDS = [
    Command(
        "push",
        "upload a model directory to the Hugging Face hub",
        _push_arguments,
        _push,
    ),
]
