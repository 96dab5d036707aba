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


# --- readable from 1 to 20 methods (charts, overview, judge table, warnings, tiles) -------------------------------------
def _many_methods(report: dict[str, Any], n: int) -> dict[str, Any]:
    """``report`` with ``n`` unlearned methods beside the original: copies of ``erased`` under long names, their
    forgetting and preservation spread over [0, 1] in an order that is not the insertion order."""
    import copy

    out = copy.deepcopy(report)
    erased = out["methods"].pop("erased")
    for i in range(n):
        res = copy.deepcopy(erased)
        f = ((i * 7) % n) / max(1, n - 1)
        res["forgetting"]["all"] = {**res["forgetting"]["all"], "value": f, "low": max(0.0, f - 0.1), "high": min(1.0, f + 0.1)}
        res["preservation"]["all"] = {**res["preservation"]["all"], "value": 1 - f / 2, "low": 0.4, "high": 1.0}
        for r in res["images"]:
            r["grid_key"] = r["grid_key"]  # same prompts and seeds as the original
        out["methods"][f"method-{i:02d}-with-a-rather-long-name"] = res
    return out


def _texts_outside(fig: Any) -> list[str]:
    """The visible, non-empty texts of ``fig`` whose box leaves the figure (1 px of slack)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1:
            out.append(t.get_text())
    return out


@pytest.mark.parametrize("n", [1, 11, 20])
def test_charts_keep_every_label_inside_the_image_and_sort_the_bars(photo_report: Path, n: int) -> None:
    import matplotlib.pyplot as plt

    from dataigm.report.plots import bars_figure, tradeoff_figure

    report = _many_methods(json.loads((photo_report / "report.json").read_text()), n)
    bars = bars_figure(report)
    assert _texts_outside(bars) == []
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    forgetting = {m: r["forgetting"]["all"]["value"] for m, r in report["methods"].items()}
    assert labels == sorted(forgetting, key=lambda m: forgetting[m])  # lowest forgetting on top, ties in report order
    assert sorted(labels) == sorted(report["methods"])
    trade = tradeoff_figure(report)
    assert _texts_outside(trade) == []
    legend = [t.get_text() for t in trade.legends[0].get_texts()]
    assert legend == list(report["methods"])  # every method named once, none as a label piled on a point
    assert not [t for t in trade.axes[0].texts if t.get_text() in report["methods"]]
    plt.close("all")


def test_overview_has_one_readable_row_per_method(photo_report: Path) -> None:
    from dataigm.report.html import overview

    report = json.loads((photo_report / "report.json").read_text())
    assert {"forget_positive_rate", "unlearning_accuracy"} <= set(report["methods"]["erased"])  # raw keys stay in the JSON
    columns, rows = overview(report)
    assert [r["method"] for r in rows] == list(report["methods"]) and sorted(report["methods"]) == ["erased", "original"]
    assert not [c for c in columns if "_" in c], columns  # no raw keys as column names
    assert columns[:2] == ["forgetting (↓)", "preservation (↑)"]
    erased = {c: cell["sort"] for c, cell in next(r for r in rows if r["method"] == "erased")["cells"].items()}
    assert erased["forgetting (↓)"] == pytest.approx(report["methods"]["erased"]["forgetting"]["all"]["value"])
    # the same number is not repeated under another name: 1 - forgetting (UA) and the per-image rate are left out
    assert pytest.approx(1 - erased["forgetting (↓)"]) not in [v for c, v in erased.items() if c != "preservation (↑)"]


def test_judge_section_shows_the_rule_threshold_and_the_weights_digest() -> None:
    from dataigm.report.html import decision_rule, judge_section, weights_digest

    nested = {"name": "nudenet:rece", "pipeline": {"model_sha256": "ab" * 32}, "threshold": 0.6, "precision": "fp32", "kind": "nudenet"}
    report = {"detector": nested, "threshold": None, "target": "nude", "warnings": []}
    section = judge_section(report)
    assert section["threshold"] == "0.6" and section["weights_sha256"] == "ab" * 32
    assert set(section["describe"]) == {"pipeline", "kind"}  # name, threshold, precision: each shown once, above
    assert decision_rule({"detector": {"threshold": 0.6}, "threshold": 0.35}) == "0.35"  # the evaluation's own threshold wins
    assert decision_rule({"detector": {"rule": "argmax over 1000 classes"}, "threshold": None}) == "argmax over 1000 classes"
    assert decision_rule({"detector": {}, "threshold": None}) == "none (the judge's top class decides)"
    assert weights_digest({"weights_sha256": "cd" * 32, "pipeline": {"model_sha256": "ab" * 32}}) == "cd" * 32
    assert weights_digest({"name": "x"}) == ""


def test_report_md_names_the_rule_and_digest_not_none(photo_report: Path) -> None:
    from dataigm.report.write import render_markdown

    report = json.loads((photo_report / "report.json").read_text())
    report["threshold"] = None
    report["detector"] = {**report["detector"], "rule": "ImageNet top-1 is class 281", "weights_sha256": "ef" * 32}
    head = render_markdown(report).splitlines()[2:6]
    judge_line = next(line for line in head if line.startswith("judge:"))
    assert "threshold ImageNet top-1 is class 281" in judge_line and "sha256 " + "ef" * 8 in judge_line and "None" not in judge_line


def test_a_judge_that_never_fires_is_warned_about() -> None:
    from dataigm.evaluation.validity import never_fires, validity

    def method(flags: list[bool]) -> dict[str, Any]:
        return {"images": [{"positive": f} for f in flags], "forgetting": {"all": {"value": 0.0, "n": len(flags)}}}

    silent = {"erased": method([False] * 4), "other": method([False] * 3)}
    assert "none of the 7 images" in never_fires(silent)
    _, warnings = validity(silent)
    assert len(warnings) == 1 and "does not fire" in warnings[0]
    assert never_fires({"erased": method([False, False, True]), "other": method([False])}) is None
    assert never_fires({"erased": {"images": []}}) is None  # nothing judged: nothing to warn about
    # beside the original's own check: both warnings, the silent judge first
    both = {"original": method([False] * 5), "erased": method([False] * 5)}
    _, warnings = validity(both)
    assert len(warnings) == 2 and "none of the 10 images" in warnings[0] and "only 0%" in warnings[1]


def test_tiles_carry_the_prompt_and_the_layouts_index_name(photo_report: Path, tmp_path: Path) -> None:
    from dataigm.report.html import write_html_report

    report = json.loads((photo_report / "report.json").read_text())
    for r in report["methods"]["erased"]["images"]:
        r["seed_name"] = "image"
    report["detector"]["note"] = {"rule": "score < 0.5 & crop ≥ 224"}
    html = write_html_report(report, tmp_path).read_text()
    figs = re.findall(r'<figure class="tile[^"]*".*?</figure>', html, flags=re.S)
    assert len(figs) == 30
    for fig in figs:
        prompt = re.search(r'<span class="prompt" title="([^"]*)">([^<]*)</span>', fig)
        assert prompt is not None and prompt.group(1) == prompt.group(2) and prompt.group(1) in FORGET + [p for p, _ in RETAIN]
        method = re.search(r'data-method="([^"]*)"', fig).group(1)
        seed = re.search(r'data-seed="([^"]*)"', fig).group(1)
        assert (f"image {seed}" if method == "erased" else f"seed {seed}") in fig
    # JSON in the page reads as written: no \\u escapes (HTML-escaped characters render as themselves)
    assert "≥ 224" in html and "\\u2265" not in html


@pytest.mark.browser
def test_report_with_eleven_methods_in_headless_chromium(photo_report: Path, chromium: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from dataigm.report.write import write_report

    report = _many_methods(json.loads((photo_report / "report.json").read_text()), 11)
    report["warnings"] = ["the judge sees the concept in only 40% of the original model's forget images"]
    for m in report["methods"].values():  # the copies share the photo report's image files
        for r in m["images"]:
            r["path"] = str(Path(r["path"]))
    write_report(report, tmp_path)
    d = chromium
    d.get((tmp_path / "report.html").as_uri())
    d.execute_script("return Promise.all(Array.from(document.querySelectorAll('img[src]')).map(i => i.decode().catch(() => null)))")
    assert len(d.find_elements(By.CSS_SELECTOR, "#overview tbody tr")) == 12
    # the warning is the first thing on the page, above the overview
    top = d.execute_script("return [document.querySelector('#warnings .warn').getBoundingClientRect().top, "
                           "document.querySelector('#overview').getBoundingClientRect().top]")
    assert top[0] < top[1]
    assert "40%" in d.find_element(By.CSS_SELECTOR, "#warnings .warn").text
    # every tile shows its prompt (the full text on hover)
    tiles = d.find_elements(By.CSS_SELECTOR, "figure.tile")
    prompts = d.find_elements(By.CSS_SELECTOR, "figure.tile .prompt")
    assert len(prompts) == len(tiles) > 12 * 12
    assert {p.get_attribute("title") for p in prompts} == set(FORGET) | {p for p, _ in RETAIN}
    assert all(p.text and p.get_attribute("title").startswith(p.text.rstrip("…").rstrip()) for p in prompts[:30])
    # the charts are shown at their own size (not shrunk to thumbnails), whole inside the page's width
    charts = d.execute_script("return Array.from(document.querySelectorAll('img.chart')).map(i => "
                              "[i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width, document.body.clientWidth])")
    assert len(charts) == 3
    for natural_w, natural_h, shown_w, page_w in charts:
        assert natural_h > 0 and shown_w == pytest.approx(min(natural_w, page_w - 40), abs=2)
    bars = d.execute_script("return document.querySelector('img.chart').naturalHeight")
    assert bars >= 120 * (1.6 + 0.42 * 12) - 2  # one row per method: 12 rows of bars


def test_the_demos_planted_failure_reads_as_planted() -> None:
    from dataigm.ingest.demo import planted_failures

    assert planted_failures({"empty file": 1}) == "1 deliberately empty file rejected, as expected"
    assert planted_failures({"empty file": 2}) == "UNEXPECTED failures: empty file: 2"
    assert planted_failures({"empty file": 1, "truncated": 3}) == "UNEXPECTED failures: truncated: 3"
    assert planted_failures({}) == "UNEXPECTED failures: none"  # the planted file was not rejected


def test_lightnings_advert_is_dropped_and_its_other_messages_kept(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from dataigm.train.run import silence_lightning_adverts

    silence_lightning_adverts()
    silence_lightning_adverts()  # once per process, however often a trainer is built
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert len(log.filters) == 1
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        log.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        log.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]


def test_curation_table_fits_80_columns_without_cutting_the_reasons(tmp_path: Path) -> None:
    from rich.console import Console

    from dataigm.curate.decision import Decision
    from dataigm.curate.engine import CurationResult
    from dataigm.curate.present import kept_dropped_table

    reasons = {"a": ["phash:conflicting_pair_duplicate"], "b": ["phash:conflicting_pair_duplicate", "nudenet:positive_in_negative"],
               "c": []}
    decisions = {k: Decision(k, "van_gogh", "train", "other_painter", "drop" if r else "keep", r, {}, "s") for k, r in reasons.items()}
    console = Console(width=80, record=True, color_system=None)
    console.print(kept_dropped_table(CurationResult(tmp_path, decisions, {})))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "van_gogh/train/other_painter: nudenet:positive_in_negative (1), phash:conflicting_pair_duplicate (2)" in " ".join(text.split())
    assert "…" not in text
    row = next(line for line in text.splitlines() if "van_gogh" in line).split()
    assert row[:7] == ["van_gogh", "train", "other_painter", "3", "1", "0", "2"]  # in, kept, review, dropped
