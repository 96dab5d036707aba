"""report.html: written by `dataigm eval` beside report.json, self-contained, with every image beside its verdict;
checked as markup here and in headless Chromium (marked ``browser``)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser import open_chromium
from report_helpers import FORGET, RETAIN, SEEDS, eval_args, write_photo_eval


@pytest.fixture(scope="module")
def photo_report(tmp_path_factory: pytest.TempPathFactory, efficientnet_lite0_dir: Path) -> Path:
    """The report folder of `dataigm eval` on the real-photo evaluation (original + erased)."""
    from dataigm.cli import main

    root = write_photo_eval(tmp_path_factory.mktemp("photo-eval"))
    out = root / "report"
    assert main(eval_args(root, efficientnet_lite0_dir, out)) == 0
    return out


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _tags(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_report_html_holds_every_judged_image_with_its_verdict(photo_report: Path) -> None:
    report = json.loads((photo_report / "report.json").read_text())
    html = (photo_report / "report.html").read_text()
    tags = _tags(html)
    imgs = [a for t, a in tags if t == "img" and "data-method" in a]
    n_per_method = (len(FORGET) + len(RETAIN)) * len(SEEDS)
    # the original's 12 images, and erased's 12 plus the original's 6 forget images beside them
    assert len(imgs) == 2 * n_per_method + len(FORGET) * len(SEEDS)
    for a in imgs:
        assert {"data-method", "data-verdict", "data-prompt-index", "data-seed", "data-split"} <= set(a)
        assert a["data-verdict"] in ("positive", "negative") and int(a["data-seed"]) in SEEDS
        assert (photo_report / a["src"]).is_file() and (photo_report / a["data-full"]).is_file()
    # verdicts in the page are the report's: the original shows the cat everywhere, erased on prompt 2 only
    erased = {(a["data-split"], int(a["data-prompt-index"]), int(a["data-seed"])): a["data-verdict"]
              for a in imgs if a["data-method"] == "erased"}
    assert erased == {(r["split"], r["prompt_index"], r["seed"]): "positive" if r["positive"] else "negative"
                      for r in report["methods"]["erased"]["images"]}
    assert {k for k, v in erased.items() if v == "positive"} == {("forget", 2, s) for s in SEEDS}
    assert all(a["data-verdict"] == "positive" for a in imgs if a["data-method"] == "original" and a["data-split"] == "forget")
    # each erased forget image sits beside the original's image of the same prompt and seed
    cells = re.findall(r'<div class="cell">(.*?)</div>', html, flags=re.S)
    pairs = [[a for t, a in _tags(c) if t == "img"] for c in cells]
    beside = [p for p in pairs if len(p) == 2]
    assert len(beside) == len(FORGET) * len(SEEDS)
    for orig, mine in beside:
        assert (orig["data-method"], mine["data-method"]) == ("original", "erased")
        assert (orig["data-prompt-index"], orig["data-seed"]) == (mine["data-prompt-index"], mine["data-seed"])
    # the overview table: one sortable row per method; the charts and the left-out row's note
    rows = [a for t, a in tags if t == "tr" and "data-method" in a]
    assert [r["data-method"] for r in rows] == ["original", "erased"]
    charts = [a["src"] for t, a in tags if t == "img" and a.get("class") == "chart"]
    assert charts == ["forgetting_preservation.png", "tradeoff.png", "subcategories.png"]
    assert all((photo_report / c).read_bytes()[:4] == b"\x89PNG" for c in charts)
    assert "CRA left out" in html and "n/a" not in html
    # self-contained: nothing is fetched from elsewhere
    assert not [a for t, a in tags if any(str(a.get(k, "")).startswith(("http:", "https:", "//")) for k in ("src", "href"))]


def test_write_html_report_renders_warnings_audit_and_unknown_keys(photo_report: Path, tmp_path: Path) -> None:
    from dataigm.report.html import write_html_report

    report = json.loads((photo_report / "report.json").read_text())
    report["warnings"] = ["judge accuracy on this concept was never measured"]
    report["audit"] = {"n_labelled": 40, "sweep": [{"threshold": t / 10, "precision": 1 - t / 20, "recall": 1 - t / 10} for t in range(1, 10)]}
    report["another_block"] = {"answer": 42}
    image = report["methods"]["erased"]["images"][0]
    image["judges"] = {"imagenet": {"positive": False, "score": 0.1}, "second": {"positive": True, "score": 0.9}}
    path = write_html_report(report, tmp_path)
    html = path.read_text()
    assert "judge accuracy on this concept was never measured" in html and "n_labelled" in html
    assert "another_block" in html and "&#34;answer&#34;: 42" in html
    assert (tmp_path / "threshold_sweep.png").read_bytes()[:4] == b"\x89PNG"
    disagree = [a for t, a in _tags(html) if t == "figure" and a.get("data-disagree") == "1" and a["data-method"] == "erased"]
    # erased disagrees with the original on prompts 0 and 1 (4 images) and its two judges on image 0 (one of those)
    assert len(disagree) == 4


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    yield from open_chromium(tmp_path / "profile")


def _shown(driver: Any, selector: str) -> int:
    return driver.execute_script(f"return Array.from(document.querySelectorAll({selector!r})).filter(e => e.offsetParent !== null).length")


@pytest.mark.browser
def test_report_in_headless_chromium(photo_report: Path, chromium: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = chromium
    d.get((photo_report / "report.html").as_uri())
    d.execute_script("return Promise.all(Array.from(document.querySelectorAll('img[src]')).map(i => i.decode().catch(() => null)))")
    # the DOM: rows, grids, badges
    assert len(d.find_elements(By.CSS_SELECTOR, "#overview tbody tr")) == 2
    assert [s.get_attribute("data-method") for s in d.find_elements(By.CSS_SELECTOR, "section.method")] == ["original", "erased"]
    badges = d.find_elements(By.CSS_SELECTOR, "figure.tile .badge")
    assert len(badges) == 30 and {b.text.split()[0] for b in badges} == {"flagged", "clean"}
    # every image loaded
    loaded = "Array.from(document.querySelectorAll('img[src]'))"  # the viewer's img gets its src on a click
    broken = d.execute_script(f"return {loaded}.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [] and d.execute_script(f"return {loaded}.length") == 30 + 3
    # sorting: a click on the forgetting column puts erased (33 %) before the original (100 %)
    d.find_element(By.XPATH, "//th[starts-with(normalize-space(), 'forgetting')]").click()
    assert [r.get_attribute("data-method") for r in d.find_elements(By.CSS_SELECTOR, "#overview tbody tr")] == ["erased", "original"]
    # filters change what is shown
    assert _shown(d, ".cell") == 24
    d.find_element(By.ID, "f-flagged").click()
    assert _shown(d, ".cell") == 6 + 2  # the original's six forget images, erased's prompt 2
    d.find_element(By.ID, "f-flagged").click()
    d.find_element(By.ID, "f-disagree").click()
    assert _shown(d, ".cell") == 4  # erased's prompts 0 and 1 changed verdict
    d.find_element(By.ID, "f-disagree").click()
    Select(d.find_element(By.ID, "f-sub")).select_by_value("outdoor")
    assert _shown(d, ".cell") == 4  # prompt 1 in both methods
    Select(d.find_element(By.ID, "f-sub")).select_by_value("")
    # a click opens the full image with its prompt, seed and scores
    d.find_element(By.CSS_SELECTOR, "section#m1 figure.tile:not(.reference) img").click()
    assert d.find_element(By.ID, "viewer").is_displayed()
    info = json.loads(d.find_element(By.ID, "viewer-info").text)
    assert info["prompt"] == FORGET[0] and info["seed"] == SEEDS[0] and "tabby" in info["scores"]
    assert d.execute_script("return document.getElementById('viewer-img').naturalWidth") > 0
    d.find_element(By.CSS_SELECTOR, "#viewer button").click()
    # a screenshot that is not blank
    shot = tmp_path / "report.png"
    d.save_screenshot(str(shot))
    from PIL import Image

    with Image.open(shot) as im:
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200
