"""The FiftyOne review in a real browser: the App that `dataigm review --launch --remote` serves loads the review
dataset in headless Chromium with its samples and provenance fields, and tags set through the App's session end
up in `dataigm review --apply`'s next version. FiftyOne's own database lives in a temp folder (see conftest).

Not asserted: that the open App redraws a tag set meanwhile (a session's view pushed to the App arrived in one run
of three on the loaded test machine; the App's state push is FiftyOne's, not ours), nor that the grid has drawn
the thumbnails (its canvases also hold the loading animation, so their pixels prove nothing)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from browser import open_chromium
from dataigm.cli import main
from dataigm.core.shards import iter_samples, list_shards
from dataigm.curate import curate, parse_curation_config
from dataigm.curate.review import build_review_dataset, open_app, review_name

CONFIG = {"default": {"filters": {"blank": {}}}}


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    yield from open_chromium(tmp_path / "profile")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page_text_once(driver: Any, ready: Callable[[str], bool], timeout_s: float = 180.0) -> str:
    """The page's text as soon as ``ready`` accepts it (the App renders after its GraphQL queries return)."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = driver.execute_script("return document.body ? document.body.innerText : ''") or ""
        if ready(text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"the App did not show what was expected within {timeout_s:.0f} s; it shows: {text[:500]!r}")


@pytest.mark.browser
@pytest.mark.slow
def test_review_app_in_headless_chromium_and_tags_reach_apply(shapes_dataset: Path, chromium: Any, tmp_path: Path) -> None:
    import fiftyone as fo

    curated = tmp_path / "v1"
    curate(shapes_dataset, curated, parse_curation_config(CONFIG), progress=False)
    dataset = build_review_dataset(curated, review_dir=tmp_path / "images")
    n = len(dataset)
    port = _free_port()
    session = open_app(dataset, port=port, remote=True)  # what `dataigm review --launch --remote` serves
    try:
        chromium.get(f"http://localhost:{port}/")
        text = _page_text_once(chromium, lambda t: f"{n} samples" in t and "curation_verdict" in t)
        # the review dataset's name, its samples and the provenance fields are in the App's sidebar
        assert dataset.name in chromium.page_source  # the header names the dataset
        for field in ("prompt", "pair_id", "concept", "split", "seed", "model", "curation_verdict"):
            assert f"\n{field}\n" in text, field
        assert chromium.execute_script("return Array.from(document.querySelectorAll('canvas, img')).length") > 0
        chromium.save_screenshot(str(tmp_path / "app.png"))
        assert (tmp_path / "app.png").stat().st_size > 10_000
        # a reviewer tags a sample in the App; here through the App session's dataset (the same database)
        first = session.dataset.match(fo.ViewField("split") == "train").sort_by("key").first()
        session.dataset.select(first.id).tag_samples("reject")
    finally:
        session.close()
    out = tmp_path / "v2"
    assert main(["review", str(curated), "--name", review_name(curated), "--apply", "--out", str(out)]) == 0
    after = {s.key for s in iter_samples(list_shards(out))}
    assert first.key not in after and len(after) == n - 1
