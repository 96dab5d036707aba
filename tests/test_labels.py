"""Human labels for an audit: ``#`` comments and blank lines are accepted, an unknown label value is refused in one
line that names its row (it used to count as a negative), and the disagreement sheet names each image by its path
below the images folder. The CLI runs are the default path a user gets: real EfficientNet-Lite0 weights."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from audit_photos import write_labelled_photos

from dataigm.evaluation.labels import LabelsError, binary_labels, read_labels


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_labelled_photos(tmp_path_factory.mktemp("labels") / "photos")


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_comments_and_blank_lines_are_skipped_and_rows_keep_their_line_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path / "labels.csv", ["# labelled by eye, 2026-12-07", "file,label,method", "", "a.png,1,ESD",
                                            "  # a second opinion follows", "b.png,no,ESD", "c.png,church,ORG", "d.png,maybe,ORG"])
    rows = read_labels(path, tmp_path)
    assert {f: (r["label"], r["method"]) for f, r in rows.items()} == {
        "a.png": ("1", "ESD"), "b.png": ("no", "ESD"), "c.png": ("church", "ORG"), "d.png": ("maybe", "ORG")}
    with pytest.raises(LabelsError) as e:
        binary_labels(rows, "church", classes=["church", "other"])
    assert str(e.value).startswith("labels.csv row 8: label 'maybe' is not 1/0") and "\n" not in str(e.value)
    del rows["d.png"]
    truth, _ = binary_labels(rows, "church", classes=["church", "other"])
    assert truth == {"a.png": True, "b.png": False, "c.png": True}  # 1/yes words and the concept's class, image by image


@pytest.mark.parametrize("value, positive", [("1", True), ("0", False), ("yes", True), ("no", False), ("true", True), ("False", False),
                                             ("cat", True), ("other", False), ("Other", False)])
def test_every_accepted_value(tmp_path: Path, value: str, positive: bool) -> None:
    path = _write(tmp_path / "l.csv", ["file,label", "a.png,cat", f"b.png,{value}"])
    truth, _ = binary_labels(read_labels(path, tmp_path), "cat", classes=["cat", "other"])
    assert truth == {"a.png": True, "b.png": positive}


def test_audit_accepts_a_commented_csv_and_refuses_an_unknown_label(photos: Path, tmp_path: Path, efficientnet_lite0_dir: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main
    from dataigm.evaluation.audit import audit, sheet_items

    files = sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.png"))
    lines = ["# cat photos are 1", "file,label"] + [f"{f},{int(f.startswith('cat/'))}" for f in files] + ["", "# end"]
    good = _write(tmp_path / "good.csv", lines)
    spec = f"imagenet:281@local-dir:{efficientnet_lite0_dir}"
    assert main(["audit", str(photos), "--labels", str(good), "--detector", spec, "--bootstrap", "50", "--workers", "0", "--json"]) == 0
    capsys.readouterr()
    result = audit(photos, good, [spec], n_resamples=50, workers=0)
    assert result.truth == {f: f.startswith("cat/") for f in files}
    names = [name for _, name, _ in sheet_items(result)]
    assert names and all("/" in n and (photos / n).is_file() for n in names)  # the path below the images folder
    bad = _write(tmp_path / "bad.csv", lines[:5] + [f"{files[3]},maybe"] + lines[6:])
    assert main(["audit", str(photos), "--labels", str(bad), "--detector", spec, "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.csv row 6: label 'maybe'" in err[0], err
