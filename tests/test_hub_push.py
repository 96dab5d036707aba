"""dataigm push/pull: bounded resumable commits against a recording fake HfApi, content policy, pull verification."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dataigm.hub.export import export_dataset
from dataigm.hub.pull import allow_patterns, verify_pulled
from dataigm.hub.push import folder_kind, push_folder


@dataclass
class FakeRepo:
    repo_type: str
    private: bool
    gated: Any = False
    files: dict[str, bytes] = field(default_factory=dict)
    branches: set[str] = field(default_factory=lambda: {"main"})


class FakeHfApi:
    """Records what push asks of the Hub write API (the only fake these tests use) and keeps the files."""

    def __init__(self, fail_on_commit: int | None = None) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.commits: list[dict[str, Any]] = []
        self.fail_on_commit = fail_on_commit

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))

    def repo_exists(self, repo_id: str, *, repo_type: str) -> bool:
        self._record("repo_exists", repo_id=repo_id, repo_type=repo_type)
        return repo_id in self.repos

    def repo_info(self, repo_id: str, *, repo_type: str) -> SimpleNamespace:
        repo = self.repos[repo_id]
        return SimpleNamespace(id=repo_id, private=repo.private, gated=repo.gated)

    def create_repo(self, repo_id: str, *, repo_type: str, private: bool, exist_ok: bool) -> str:
        self._record("create_repo", repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=exist_ok)
        if repo_id not in self.repos:
            self.repos[repo_id] = FakeRepo(repo_type, private, files={".gitattributes": b"*.tar filter=lfs\n"})
        prefix = "datasets/" if repo_type == "dataset" else ""
        return f"https://hub.example/{prefix}{repo_id}"

    def update_repo_settings(self, repo_id: str, *, repo_type: str, gated: Any) -> None:
        self._record("update_repo_settings", repo_id=repo_id, repo_type=repo_type, gated=gated)
        self.repos[repo_id].gated = gated

    def create_branch(self, repo_id: str, *, repo_type: str, branch: str, exist_ok: bool) -> None:
        self._record("create_branch", repo_id=repo_id, branch=branch)
        self.repos[repo_id].branches.add(branch)

    def list_repo_tree(self, repo_id: str, *, repo_type: str, revision: str | None, recursive: bool) -> list[Any]:
        from huggingface_hub.hf_api import RepoFile

        out = []
        for path, data in self.repos[repo_id].files.items():
            sha1 = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
            lfs = {"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 130} if path.endswith(".tar") else None
            out.append(RepoFile(path=path, size=len(data), oid=sha1, lfs=lfs))
        return out

    def create_commit(self, repo_id: str, *, operations: list[Any], commit_message: str, repo_type: str, revision: str | None) -> None:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        if self.fail_on_commit is not None and len(self.commits) + 1 == self.fail_on_commit:
            self.fail_on_commit = None
            raise ConnectionError("simulated network failure")
        adds = [op for op in operations if isinstance(op, CommitOperationAdd)]
        deletes = [op.path_in_repo for op in operations if isinstance(op, CommitOperationDelete)]
        self.commits.append(
            {"repo_id": repo_id, "repo_type": repo_type, "revision": revision, "paths": [op.path_in_repo for op in adds],
             "bytes": sum(Path(op.path_or_fileobj).stat().st_size for op in adds), "deleted": deletes}
        )
        repo = self.repos[repo_id]
        for op in adds:
            repo.files[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
        for path in deletes:
            del repo.files[path]


def local_files(folder: Path) -> dict[str, bytes]:
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.tar")}
    files |= {name: (folder / name).read_bytes() for name in ("README.md", "manifest.json")}
    return files


def test_push_private_in_bounded_commits(exported_repo: Path) -> None:
    api = FakeHfApi()
    n_tars = len(list(exported_repo.rglob("*.tar")))
    result = push_folder(exported_repo, "acme/dataigm", private=True, api=api, max_commit_files=3, max_commit_bytes=10**9)
    assert result.url == "https://hub.example/datasets/acme/dataigm" and result.repo_type == "dataset"
    assert ("create_repo", {"repo_id": "acme/dataigm", "repo_type": "dataset", "private": True, "exist_ok": True}) in api.calls
    assert all(c["repo_type"] == "dataset" and c["repo_id"] == "acme/dataigm" for c in api.commits)
    assert [len(c["paths"]) for c in api.commits] == [3] * (n_tars // 3) + ([n_tars % 3] if n_tars % 3 else []) + [2]
    assert sorted(api.commits[-1]["paths"]) == ["README.md", "manifest.json"]  # the card goes last
    assert all(p.endswith(".tar") for c in api.commits[:-1] for p in c["paths"])
    repo_files = api.repos["acme/dataigm"].files
    assert {k: v for k, v in repo_files.items() if k != ".gitattributes"} == local_files(exported_repo)
    assert result.commits == len(api.commits) and not result.skipped


def test_commit_byte_bound(exported_repo: Path) -> None:
    api = FakeHfApi()
    sizes = sorted(p.stat().st_size for p in exported_repo.rglob("*.tar"))
    bound = sizes[-1] + sizes[0]  # at most two small tars, never more than the bound unless a tar is alone
    push_folder(exported_repo, "acme/bytes", private=True, api=api, max_commit_bytes=bound)
    for commit in api.commits:
        assert commit["bytes"] <= bound or len(commit["paths"]) == 1


def test_push_resumes_after_a_failure(exported_repo: Path) -> None:
    api = FakeHfApi(fail_on_commit=3)
    with pytest.raises(ConnectionError):
        push_folder(exported_repo, "acme/dataigm", private=True, api=api, max_commit_files=2)
    uploaded_before = [p for c in api.commits for p in c["paths"]]
    assert len(api.commits) == 2 and len(uploaded_before) == 4
    assert "README.md" not in api.repos["acme/dataigm"].files  # no card for half-uploaded data
    result = push_folder(exported_repo, "acme/dataigm", private=True, api=api, max_commit_files=2)
    assert sorted(result.skipped) == sorted(uploaded_before)
    assert not set(result.uploaded) & set(uploaded_before)
    assert {k: v for k, v in api.repos["acme/dataigm"].files.items() if k != ".gitattributes"} == local_files(exported_repo)
    again = push_folder(exported_repo, "acme/dataigm", private=True, api=api)  # nothing left to do
    assert again.commits == 0 and len(again.skipped) == len(local_files(exported_repo))


def test_push_removes_stale_tars_with_the_card(exported_repo: Path) -> None:
    api = FakeHfApi()
    push_folder(exported_repo, "acme/dataigm", private=True, api=api)
    api.repos["acme/dataigm"].files["data/object/train/object-train-old-000000.tar"] = b"old"
    (exported_repo / "README.md").write_text((exported_repo / "README.md").read_text())  # same content: skipped
    result = push_folder(exported_repo, "acme/dataigm", private=True, api=api)
    assert result.deleted == ["data/object/train/object-train-old-000000.tar"]
    assert api.commits[-1]["deleted"] == result.deleted
    assert "data/object/train/object-train-old-000000.tar" not in api.repos["acme/dataigm"].files


def test_nsfw_needs_private_or_gated_or_explicit_consent(exported_repo: Path) -> None:
    api = FakeHfApi()
    with pytest.raises(ValueError, match=r"refusing to publish NSFW categories \['nudity'\].*allow_public_nsfw=True"):
        push_folder(exported_repo, "acme/public", api=api)
    assert not [c for c in api.calls if c[0] == "create_repo"] and not api.commits

    push_folder(exported_repo, "acme/gated", gated="manual", api=api)
    assert ("update_repo_settings", {"repo_id": "acme/gated", "repo_type": "dataset", "gated": "manual"}) in api.calls
    push_folder(exported_repo, "acme/gated", api=api)  # the existing repo is gated: fine without the flag

    push_folder(exported_repo, "acme/consented", allow_public_nsfw=True, api=api)
    assert api.repos["acme/consented"].private is False and api.repos["acme/consented"].gated is False

    api.repos["acme/old-public"] = FakeRepo("dataset", private=False)
    with pytest.raises(ValueError, match="existing public repo"):
        push_folder(exported_repo, "acme/old-public", private=True, api=api)  # --private does not make an existing repo private


def test_safe_categories_push_publicly(shapes_with_nudity: Path, tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    export_dataset(shapes_with_nudity, objects, categories=["object"])
    api = FakeHfApi()
    result = push_folder(objects, "acme/objects", api=api)  # no NSFW category: public without gating
    assert result.commits >= 1 and api.repos["acme/objects"].private is False and api.repos["acme/objects"].gated is False
    assert not any(p.startswith("data/nudity/") for p in api.repos["acme/objects"].files)


def test_revision_branch(exported_repo: Path) -> None:
    api = FakeHfApi()
    push_folder(exported_repo, "acme/dataigm", private=True, revision="v1", api=api)
    assert "v1" in api.repos["acme/dataigm"].branches
    assert {c["revision"] for c in api.commits} == {"v1"}


def test_push_detector_as_model_repo(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    detector = tmp_path / "detector"
    detector.mkdir()
    (detector / "config.json").write_text('{"architecture": "resnet18", "label_names": ["church", "other"]}')
    save_file({"w": torch.zeros(2, 2)}, str(detector / "model.safetensors"))
    (detector / "README.md").write_text("# detector\n")
    assert folder_kind(detector) == "model"
    api = FakeHfApi()
    result = push_folder(detector, "acme/church-judge", api=api)
    assert result.repo_type == "model" and result.url == "https://hub.example/acme/church-judge"
    assert sorted(p for c in api.commits for p in c["paths"]) == ["README.md", "config.json", "model.safetensors"]
    assert api.commits[-1]["paths"] == ["README.md"]


def test_push_rejects_bad_inputs(exported_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not of the form ORG/NAME"):
        push_folder(exported_repo, "no-slash", private=True, api=FakeHfApi())
    with pytest.raises(ValueError, match="neither an exported dataset"):
        push_folder(tmp_path, "acme/x", api=FakeHfApi())
    corrupt = tmp_path / "corrupt"
    shutil.copytree(exported_repo, corrupt)
    tar = sorted(corrupt.glob("data/object/val/*.tar"))[0]
    tar.write_bytes(tar.read_bytes()[:-1024])
    with pytest.raises(ValueError, match="fails verification, not pushing"):
        push_folder(corrupt, "acme/x", private=True, api=FakeHfApi())


def test_token_is_never_logged(exported_repo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    token = "hf_" + "t0" * 17
    monkeypatch.setenv("HF_TOKEN", token)
    with caplog.at_level(logging.DEBUG):
        result = push_folder(exported_repo, "acme/dataigm", private=True, api=FakeHfApi())
    assert token not in caplog.text and token not in repr(result)
    assert "commit 1/" in caplog.text


def test_pull_verification_catches_a_corrupted_tar(exported_repo: Path, tmp_path: Path) -> None:
    pulled = tmp_path / "pulled"
    shutil.copytree(exported_repo, pulled)
    assert verify_pulled(pulled) == []
    tar = sorted(pulled.glob("data/object/train/*.tar"))[0]
    data = bytearray(tar.read_bytes())
    data[2048] ^= 0x01  # one flipped bit
    tar.write_bytes(bytes(data))
    problems = verify_pulled(pulled)
    assert [p.shard for p in problems] == [tar.relative_to(pulled).as_posix()]
    assert "sha256" in problems[0].problem


def test_pull_verification_of_some_categories(exported_repo: Path, tmp_path: Path) -> None:
    pulled = tmp_path / "pulled"
    shutil.copytree(exported_repo, pulled)
    shutil.rmtree(pulled / "data" / "nudity")  # as `dataigm pull --categories object` leaves it
    assert verify_pulled(pulled, ["object"]) == []
    missing = verify_pulled(pulled)
    assert missing and {p.problem for p in missing} == {"missing"} and all(p.shard.startswith("data/nudity/") for p in missing)
    extra = pulled / "data" / "object" / "test" / "object-test-extra-000000.tar"
    shutil.copyfile(sorted(pulled.glob("data/object/test/*.tar"))[0], extra)
    assert [(p.shard, p.problem) for p in verify_pulled(pulled, ["object"])] == [(extra.relative_to(pulled).as_posix(), "not in manifest")]
    extra.rename(pulled / "data" / "object" / "stray.tar")  # one level up: reported once, not by both checks
    assert [(p.shard, p.problem) for p in verify_pulled(pulled, ["object"])] == [("data/object/stray.tar", "not in manifest")]
    assert allow_patterns(["object"]) == ["README.md", "manifest.json", "data/object/**"]
    assert allow_patterns(None) == ["README.md", "manifest.json", "data/**"]


# --- the command line: push (fake write API), pull (from a Hub cache, offline), as a user runs them -----------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dataigm", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_cli_push_uploads_then_resumes_and_refuses_public_nsfw(
    exported_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub

    from dataigm.cli import main

    api = FakeHfApi()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: api)
    n_files = len(local_files(exported_repo))
    assert main(["push", str(exported_repo), "--repo-id", "acme/cli", "--private", "--max-commit-files", "4"]) == 0
    out = capsys.readouterr().out
    assert f"{n_files} files uploaded in {len(api.commits)} commits, 0 already there" in out
    assert "https://hub.example/datasets/acme/cli" in out and len(api.commits) == -(-(n_files - 2) // 4) + 1
    assert {k: v for k, v in api.repos["acme/cli"].files.items() if k != ".gitattributes"} == local_files(exported_repo)
    assert main(["push", str(exported_repo), "--repo-id", "acme/cli", "--private"]) == 0
    assert f"0 files uploaded in 0 commits, {n_files} already there" in capsys.readouterr().out
    assert main(["push", str(exported_repo), "--repo-id", "acme/public"]) == 2  # nudity to a public, ungated repo
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to publish NSFW categories ['nudity']" in err and "acme/public" not in api.repos


def test_cli_pull_from_the_hub_cache_offline(exported_repo: Path, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf-home"
    env = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    files = local_files(exported_repo)
    commit = "89abcdef" * 5
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from hub_cache import write_hub_cache; "
                    "import json, pathlib; files = {k: pathlib.Path(v).read_bytes() for k, v in json.loads(sys.argv[2]).items()}; "
                    "write_hub_cache('acme/pulled', files, sys.argv[3])",
                    str(Path(__file__).parent), json.dumps({k: str(exported_repo / k) for k in files}), commit],
                   check=True, env={**os.environ, **env})
    out = _cli("pull", "acme/pulled", "--out", tmp_path / "object-only", "--categories", "object", env=env)
    assert out.returncode == 0, out.stderr
    assert "180 samples of object" in out.stdout and "all checksums match" in out.stdout
    assert sorted(p.relative_to(tmp_path / "object-only").parts[1] for p in (tmp_path / "object-only").glob("data/*/*/*.tar")) == \
        ["object"] * len(list(exported_repo.glob("data/object/*/*.tar")))
    assert (tmp_path / "object-only" / "manifest.json").read_bytes() == files["manifest.json"]
    out = _cli("pull", "acme/pulled", "--out", tmp_path / "all", env=env)
    assert out.returncode == 0 and "190 samples of nudity, object" in out.stdout
    out = _cli("pull", "acme/pulled", "--out", tmp_path / "bad", "--categories", "tree", env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "unknown categories ['tree']" in out.stderr
    out = _cli("pull", "acme/never-pushed", "--out", tmp_path / "none", env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "Hub dataset acme/never-pushed: cannot fetch it" in out.stderr
    blob = next(p for p in (hf_home / "hub").rglob("blobs/*") if p.read_bytes() == files[sorted(f for f in files if f.endswith(".tar"))[0]])
    data = bytearray(blob.read_bytes())
    data[2048] ^= 0x01  # a corrupted download: one flipped bit
    blob.write_bytes(bytes(data))
    out = _cli("pull", "acme/pulled", "--out", tmp_path / "corrupt", env=env)
    assert out.returncode == 1 and "FAILED data/" in out.stdout and "sha256" in out.stdout
