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


# --- fast: where each label came from, the fields kept, the rows refused, the classes named ---------------------------
def test_rows_keep_their_fields_and_say_where_they_came_from(tmp_path: Path) -> None:
    from dataigm.evaluation.labels import ROW

    csv_rows = read_labels(_write(tmp_path / "l.csv", ["file,label,method,", "a.png, 1 ,ESD,", "b.png,0,UCE,"]), tmp_path)
    assert csv_rows == {"a.png": {"method": "ESD", "label": "1", ROW: "l.csv row 2"},
                        "b.png": {"method": "UCE", "label": "0", ROW: "l.csv row 3"}}
    samples = [{"file": "a.png", "label": 1, "note": "x"}, {"file": "b.png", "label": 0}]
    (tmp_path / "r.json").write_text(__import__("json").dumps({"format": "dataigm-review-labels/1", "samples": samples}))
    json_rows = read_labels(tmp_path / "r.json", tmp_path)
    assert json_rows == {"a.png": {"note": "x", "label": "1", ROW: "r.json entry 1"}, "b.png": {"label": "0", ROW: "r.json entry 2"}}


@pytest.mark.parametrize("rows, message", [
    (["file,label", "a.png,"], r"l\.csv: row 2 needs a file and a label"),
    (["file,label", ",1"], r"l\.csv: row 2 needs a file and a label"),
    (["file,label", "a.png,1", "a.png,0"], r"l\.csv: row 3: 'a.png' is labelled twice"),
    (["file,label"], r"l\.csv: no labelled images"),
    (["file,verdict", "a.png,1"], r"the header must name the columns file and label"),
])
def test_rows_a_user_must_fix_are_refused_naming_them(tmp_path: Path, rows: list[str], message: str) -> None:
    with pytest.raises(LabelsError, match=message):
        read_labels(_write(tmp_path / "l.csv", rows), tmp_path)


def test_a_folder_of_labels_must_be_the_images_folder(tmp_path: Path) -> None:
    from PIL import Image

    for label, name in (("cat", "a.png"), ("other", "b.png")):
        (tmp_path / "img" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "img" / label / name)
    assert {f: r["label"] for f, r in read_labels(tmp_path / "img", tmp_path / "img").items()} == {"cat/a.png": "cat", "other/b.png": "other"}
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(LabelsError, match=r"must be the images folder itself"):
        read_labels(tmp_path / "elsewhere", tmp_path / "img")


def test_the_concept_is_a_label_whatever_its_case_and_the_refusal_lists_the_classes(tmp_path: Path) -> None:
    rows = {"a.png": {"label": "Tabby"}, "b.png": {"label": "other"}, "c.png": {"label": "yes"}}
    truth, rule = binary_labels(rows, "TABBY", classes=["other"])  # the concept is allowed though the judge has no such class
    assert truth == {"a.png": True, "b.png": False, "c.png": True} and rule == "TABBY against anything else"
    many = [f"class{i:02d}" for i in range(14)]
    with pytest.raises(LabelsError, match=r"one of the judge's classes \(class00, class01, .*, class11 \.\.\. \(14 classes\)\)$"):
        binary_labels({"a.png": {"label": "maybe"}}, None, classes=many)
    with pytest.raises(LabelsError, match=r"no image is labelled 'dog'"):
        binary_labels({"a.png": {"label": "cat"}, "b.png": {"label": "1"}}, "dog")


def test_one_zero_words_in_any_case_and_the_class_list_at_its_limit() -> None:
    words = ["1", "0", "yes", "no", "true", "false", "positive", "negative"]
    rows = {f"{i}.png": {"label": w.upper() if i % 2 else w} for i, w in enumerate(words)}  # every word, half in capitals
    truth, rule = binary_labels(rows, None)
    assert rule == "1/0" and truth == {f"{i}.png": w in ("1", "yes", "true", "positive") for i, w in enumerate(words)}
    twelve = [f"class{i:02d}" for i in range(12)]
    with pytest.raises(LabelsError) as e:
        binary_labels({"a.png": {"label": "maybe"}}, None, classes=twelve)
    assert str(e.value).endswith("one of the judge's classes (" + ", ".join(twelve) + ")")  # all twelve, no '...'
