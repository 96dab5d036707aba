"""dataigm push: upload an exported dataset repo folder (or an exported detector) to the Hugging Face Hub."""

from __future__ import annotations

import argparse
from pathlib import Path
from dataigm.commands._options import Command


COMMAND = Command("push", order=35,
                  help="upload an exported dataset (or detector) folder to the Hub in bounded, resumable commits",
                  description="Uses the token of `huggingface-cli login` or HF_TOKEN; it is never printed. Re-run to resume.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="folder written by `dataigm export-dataset` (or `dataigm export-detector`)")
    p.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", default=None, help="branch to push to (created if needed; default: main)")
    p.add_argument("--gated", choices=["auto", "manual"], default=None, help="turn on access requests for the repo")
    p.add_argument("--allow-public-nsfw", action="store_true", help="publish NSFW categories to a public, ungated repo anyway")
    p.add_argument("--max-commit-files", type=int, default=100, help="files per commit (default: %(default)s)")
    p.add_argument("--max-commit-gb", type=float, default=4.0, help="GiB of new data per commit (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from dataigm.core.errors import DataigmError
    from dataigm.hub.push import push_folder

    try:
        result = push_folder(
            args.folder,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            gated=args.gated,
            allow_public_nsfw=args.allow_public_nsfw,
            max_commit_files=args.max_commit_files,
            max_commit_bytes=int(args.max_commit_gb * (1 << 30)),
        )
    except (HfHubHTTPError, ConnectionError) as e:  # offline, refused token, network: what is uploaded stays, a re-run resumes
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataigmError(f"push to {args.repo_id} failed ({type(e).__name__}: {first}); run the same command again to resume") from e
    print(f"{len(result.uploaded)} files uploaded in {result.commits} commits, {len(result.skipped)} already there, "
          f"{len(result.deleted)} stale files removed")
    print(result.url)
    return 0
