"""A folder that stands in for the Hugging Face hub, for the tests of seqlstm.model_hub.

``FakeHub(tmp_path).install(monkeypatch)`` substitutes ``huggingface_hub.snapshot_download``
and ``HfApi.create_repo``/``create_branch``/``upload_folder`` (the calls seqlstm.model_hub
makes) by functions that copy files to and from ``hub/OWNER--NAME/REVISION`` folders, and
makes the reachability probe answer. Downloads filter the repo's files with huggingface_hub's
own ``filter_repo_objects``, which is what the real snapshot_download does with
``allow_patterns``/``ignore_patterns``; uploads apply ``delete_patterns`` as the real
upload_folder does (a file matching one is deleted unless the commit uploads it).
"""

from __future__ import annotations

import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import huggingface_hub.constants
from huggingface_hub.utils import LocalEntryNotFoundError, filter_repo_objects

from seqlstm import model_hub
from seqlstm.hub_connection import OFFLINE_VARIABLES


class FakeHub:
    def __init__(self, root: Path) -> None:
        self.root = root / "hub"
        self.cache = root / "hub-cache"
        self.downloads: list[dict] = []  # the keyword arguments of each snapshot_download
        self.created: list[dict] = []  # create_repo calls
        self.commits: list[dict] = []  # upload_folder calls, with the files uploaded
        self.probes: list[str] = []  # endpoints probed

    def repo(self, repo_id: str, revision: str | None = None) -> Path:
        return self.root / repo_id.replace("/", "--") / (revision or "main")

    def files(self, repo_id: str, revision: str | None = None) -> list[str]:
        """The repo's files, relative, sorted."""
        folder = self.repo(repo_id, revision)
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def put(self, repo_id: str, source: Path, revision: str | None = None) -> None:
        """Place a folder's files in a repo as they are (a repo made by someone else)."""
        shutil.copytree(source, self.repo(repo_id, revision), dirs_exist_ok=True)

    # ---- the substitutes

    def snapshot_download(self, repo_id: str, **options) -> str:
        self.downloads.append({"repo_id": repo_id, **options})
        revision = options.get("revision") or "main"
        cache = Path(options.get("cache_dir") or self.cache)
        snapshot = cache / repo_id.replace("/", "--") / "snapshots" / revision
        if options.get("local_files_only"):
            if snapshot.is_dir():
                return str(snapshot)
            raise LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder")
        source = self.repo(repo_id, revision)
        if not source.is_dir():
            raise OSError(f"404 Client Error.\n\nRepository Not Found for url: {repo_id}")
        wanted = filter_repo_objects(
            self.files(repo_id, revision),
            allow_patterns=options.get("allow_patterns"),
            ignore_patterns=options.get("ignore_patterns"),
        )
        shutil.rmtree(snapshot, ignore_errors=True)
        for name in wanted:
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, snapshot / name)
        return str(snapshot)

    def install(self, monkeypatch, reachable: bool = True) -> FakeHub:
        hub = self

        def create_repo(api, repo_id, *, private=None, exist_ok=False, repo_type=None, **kw):
            hub.created.append({"repo_id": repo_id, "private": private, "exist_ok": exist_ok})
            hub.repo(repo_id).mkdir(parents=True, exist_ok=True)

        def create_branch(api, repo_id, *, branch, exist_ok=False, repo_type=None, **kw):
            if not hub.repo(repo_id, branch).exists():
                shutil.copytree(hub.repo(repo_id), hub.repo(repo_id, branch))

        def upload_folder(api, *, repo_id, folder_path, revision=None, delete_patterns=None, **kw):
            target = hub.repo(repo_id, revision)
            if not target.is_dir():
                raise OSError(f"404 Client Error: no repo {repo_id} at {revision}")
            source = Path(folder_path)
            uploaded = sorted(
                p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()
            )
            for name in hub.files(repo_id, revision):
                if name not in uploaded and any(fnmatch(name, p) for p in delete_patterns or ()):
                    (target / name).unlink()
            shutil.copytree(source, target, dirs_exist_ok=True)
            hub.commits.append({"repo_id": repo_id, "revision": revision, "files": uploaded, **kw})
            number = len(hub.commits)
            return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/{number}")

        def probe(endpoint, timeout=None):
            hub.probes.append(endpoint)
            return reachable

        # online, whatever the machine running the tests has set
        for name in OFFLINE_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        datasets_config = sys.modules.get("datasets.config")
        for name in OFFLINE_VARIABLES:
            if datasets_config is not None and hasattr(datasets_config, name):
                monkeypatch.setattr(datasets_config, name, False)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", create_branch)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
        monkeypatch.setattr(model_hub, "hub_reachable", probe)
        return self
