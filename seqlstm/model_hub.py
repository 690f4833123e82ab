"""Model directories on the Hugging Face hub: a repo id in, a model directory out, and back.

``from_pretrained("owner/name")`` (seqlstm.pretrained) calls ``resolve_model_directory``:

- a source that exists on disk is that directory, whatever it looks like; one that does not
  exist but looks local (absolute, ``./``, ``~``, more than one ``/``: the rule of
  ``seqlstm.data.load``, seqlstm.hub_connection.looks_local) stays a path, which then fails as
  a missing directory, never as a hub request;
- anything else is a hub repo id. Only the files of a model directory are downloaded
  (``MODEL_FILE_PATTERNS``: config.json, model.safetensors, tokenizer/, vocab/*.json and the
  card), never a pickle (``PICKLE_PATTERNS`` are refused even inside those folders), into the
  Hugging Face cache; the snapshot folder is then loaded as any model directory.
- Offline - ``HF_HUB_OFFLINE`` set, or the hub not answering one HEAD request within
  ``HUB_PROBE_TIMEOUT_S`` - only the cache is read (``local_files_only``: no request, no
  retry), and without a cached copy the CheckpointError says so in one line at once.

``push_to_hub(model_dir, repo_id)`` uploads a saved model directory - its model files only -
with a generated model card (seqlstm.model_card) as README.md, in one commit.

Torch-free: huggingface_hub is imported on use (``huggingface_hub.snapshot_download`` and
``huggingface_hub.HfApi`` are looked up at each call, which is what the tests substitute).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from fnmatch import fnmatch
from pathlib import Path

import huggingface_hub

from seqlstm.errors import CheckpointError, one_line
from seqlstm.hub_connection import hub_endpoint, hub_reachable, looks_local, offline_by_setting
from seqlstm.model_card import model_card, read_model_header

# The files of a model directory (the layout of seqlstm.pretrained) and its card: the only
# files downloaded or uploaded. fnmatch patterns, as huggingface_hub reads them ("*" crosses
# "/"). tokenizer/ holds spm.model (a SentencePiece protobuf) and tokenizer.json.
MODEL_FILE_PATTERNS = (
    "config.json",
    "model.safetensors",
    "tokenizer/*.json",
    "tokenizer/*.model",
    "vocab/*.json",
    "README.md",
)
# Files that can run code when loaded; never fetched even where a pattern above would match.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt", "*.joblib", "*.npy")
CARD_FILE = "README.md"


def resolve_model_directory(
    source: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
) -> Path:
    """The local model directory that ``source`` names: itself when it is a path (see the
    module docstring), else the downloaded (or cached) snapshot of hub repo ``source``.

    ``revision`` (a branch, tag or commit), ``cache_dir`` and ``token`` are for hub ids;
    ``revision`` with a local directory is a ValueError (a directory has no revisions).
    Raises CheckpointError, in one line, when the hub id cannot be had (see
    ``download_model_directory``).
    """
    path = Path(source).expanduser()
    if path.exists() or isinstance(source, os.PathLike) or looks_local(str(source)):
        if revision is not None:
            raise ValueError(f"revision={revision!r} is for hub ids; {source} is a local path")
        return path
    return download_model_directory(
        str(source), revision=revision, cache_dir=cache_dir, token=token
    )


def download_model_directory(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
) -> Path:
    """The snapshot folder of hub model ``repo_id`` in the Hugging Face cache, holding only
    ``MODEL_FILE_PATTERNS`` files (downloaded when the hub is reachable, else the cached copy).

    Raises CheckpointError naming ``repo_id``: offline (``HF_HUB_OFFLINE``, or no answer from
    the hub within ``HUB_PROBE_TIMEOUT_S``) with no cached copy; an id that is not a valid repo
    id; a repo, revision or file the hub does not have, or will not give.
    """
    by_setting = offline_by_setting()
    endpoint = hub_endpoint()
    reachable = not by_setting and hub_reachable(endpoint)
    at = f" at revision {revision!r}" if revision is not None else ""
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=not reachable,
            allow_patterns=list(MODEL_FILE_PATTERNS),
            ignore_patterns=list(PICKLE_PATTERNS),
            library_name="seqlstm",
        )
    except ValueError as error:  # HFValidationError: not a repo id
        raise CheckpointError(
            f"{repo_id}: no such model directory, and not a hub repo id ({one_line(error)})"
        ) from None
    except OSError as error:  # HTTP errors, a missing cache entry, no connection
        if not reachable:
            if by_setting:
                why = "the Hugging Face hub is off (HF_HUB_OFFLINE is set)"
            else:
                why = f"the Hugging Face hub ({endpoint}) is unreachable"
            raise CheckpointError(
                f"{repo_id}: {why} and the model{at} is not in the local Hugging Face cache; "
                "pass a local model directory instead"
            ) from None
        raise CheckpointError(
            f"could not download the model {repo_id!r}{at} from the Hugging Face hub, and there "
            f"is no local directory {repo_id!r}: {one_line(error)}"
        ) from None
    return Path(folder)


def push_to_hub(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
) -> str:
    """Upload the model directory ``model_dir`` to hub repo ``repo_id`` with a model card;
    returns the URL of the commit.

    The repo is created when missing (``private`` then decides who sees it; an existing
    repo keeps its visibility). One commit holds config.json, model.safetensors, tokenizer/,
    vocab/*.json and README.md - the card written by ``seqlstm.model_card.model_card``, from
    config.json and, when ``model_dir`` is a recipe run's OUT/model, OUT/results.json - and
    deletes model files of an earlier push that this one lacks. ``revision`` names a branch
    (created from main when missing). ``token``: a hub token (default: the ``HF_TOKEN``
    variable or the one saved by ``hf auth login``).

    Raises CheckpointError in one line: ``model_dir`` is not a model directory, the hub is
    off or unreachable, or it refuses the upload (no token, no write access ...).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists() and (model_dir / "model" / "config.json").exists():
        raise CheckpointError(
            f"{model_dir} is a run directory, not a model directory: push {model_dir / 'model'}"
        )
    header = read_model_header(model_dir)  # a CheckpointError now, before anything is sent
    files = _model_files(model_dir)
    if "model.safetensors" not in files:
        raise CheckpointError(f"{model_dir} is incomplete: missing model.safetensors")
    card = model_card(model_dir, repo_id)
    if offline_by_setting():
        raise CheckpointError(
            f"cannot push {model_dir} to {repo_id}: the Hugging Face hub is off "
            "(HF_HUB_OFFLINE is set)"
        )
    endpoint = hub_endpoint()
    if not hub_reachable(endpoint):
        raise CheckpointError(
            f"cannot push {model_dir} to {repo_id}: the Hugging Face hub ({endpoint}) is "
            "unreachable"
        )
    with tempfile.TemporaryDirectory(prefix="seqlstm-push-") as staging:
        for name in files:
            target = Path(staging) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_dir / name, target)
        (Path(staging) / CARD_FILE).write_text(card, encoding="utf-8")
        api = huggingface_hub.HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                repo_type="model",
                revision=revision,
                commit_message=commit_message or f"Upload {header['model_class']} with seqlstm",
                delete_patterns=list(MODEL_FILE_PATTERNS),
            )
        except (OSError, ValueError) as error:  # HTTP errors, no token, a bad repo id
            raise CheckpointError(
                f"could not push {model_dir} to {repo_id}: {one_line(error)}"
            ) from None
    return str(getattr(commit, "commit_url", commit))


def _model_files(model_dir: Path) -> list[str]:
    """The model directory's files that travel (``MODEL_FILE_PATTERNS`` except the card,
    which is generated), relative, with "/" separators, sorted."""
    names = sorted(
        path.relative_to(model_dir).as_posix() for path in model_dir.rglob("*") if path.is_file()
    )
    return [
        name
        for name in names
        if name != CARD_FILE
        and any(fnmatch(name, pattern) for pattern in MODEL_FILE_PATTERNS)
        and not any(fnmatch(name, pattern) for pattern in PICKLE_PATTERNS)
    ]
