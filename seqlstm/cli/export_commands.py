"""`seqlstm export`: write a saved tagger as ONNX graphs, to tag without torch.

    seqlstm export --model DIR --format onnx --out DIR2

writes what seqlstm.onnx_tagger.OnnxTagger loads (seqlstm.onnx_tagger.directory): the tagger's
network up to its emission scores as ONNX, its CRF, tokenizer, vocabularies and config. The
export is checked against PyTorch before it is kept (seqlstm.onnx_tagger.export). Only the
tagger is exported: the translator's beam search and the language model's sampling are Python
loops over one-step graphs, which one ONNX graph would not hold.
"""

import argparse
from pathlib import Path

from seqlstm.cli.command import Command, add_model_argument, model_directory
from seqlstm.errors import CheckpointError
from seqlstm.model_directory_checks import MAX_CONFIG_BYTES, read_json


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    parser.add_argument(
        "--format", choices=("onnx",), required=True, help="onnx: for onnxruntime (opset 18)"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write it")


def _export(args: argparse.Namespace) -> None:
    from seqlstm.onnx_tagger.directory import read_header
    from seqlstm.onnx_tagger.export import NotExportedError, export_onnx
    from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger

    model = model_directory(args.model)  # a hub id: its files downloaded (or cached)
    saved = _saved_model_class(model)
    if saved not in (None, BiLSTMCRFTagger.__name__):
        # said before loading a model that cannot be exported
        raise NotExportedError(saved, str(args.model))
    directory = export_onnx(BiLSTMCRFTagger.from_pretrained(model), args.out)
    header = read_header(directory)
    check = header.export_check
    print(
        f"exported the tagger to {directory} (ONNX opset {header.opset}): its emission scores "
        f"are within {check['max_abs_difference']:.2g} of PyTorch's on {check['sentences']} "
        f"check sentences; tag with seqlstm.onnx_tagger.OnnxTagger.load({str(directory)!r})"
    )


def _saved_model_class(directory: Path) -> str | None:
    """The model class a model directory's config.json names; None where it cannot be read
    (from_pretrained then says what is wrong with the directory)."""
    try:  # bounded: a FIFO or /dev/zero named config.json is no hang
        header = read_json(directory / "config.json", MAX_CONFIG_BYTES)
    except CheckpointError:
        return None
    name = header.get("model_class") if isinstance(header, dict) else None
    return name if isinstance(name, str) else None


COMMANDS = [
    Command(
        "export", "export a saved tagger to ONNX, to tag without torch", _export_arguments, _export
    ),
]
