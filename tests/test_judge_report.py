"""The report's markdown rows (dataigm.report.write): the FID, KID and CMMD rows read the same way for the
per-split fidelity and for the reference (unpaired) fidelity."""

from __future__ import annotations

from dataigm.report.write import method_table


def test_distance_rows_of_both_fidelities() -> None:
    res = {
        "sources": {"forget": "f", "retain": "r"}, "n_forget": 4, "n_retain": 4,
        "forgetting": {"all": {"value": 0.25, "low": 0.0, "high": 0.5, "n": 4}},
        "preservation": {"all": {"value": 1.0, "low": 1.0, "high": 1.0, "n": 4}},
        "fidelity": {"forget": {"reference": "pair", "n_pairs": 3, "feature": "2048", "fid": 12.34567,
                                "kid_mean": 0.012345678, "kid_std": 0.00123456, "cmmd": 0.56789}},
        "reference_fidelity": {"reference": "coco", "n_images": 5, "feature": "64", "fid": 1.5, "kid_mean": 0.5, "kid_std": 0.25,
                               "cmmd": 2.0},
    }
    rows = [row for row in method_table("esd", res) if row.startswith(("| FID", "| KID", "| CMMD"))]
    assert rows == [
        "| FID vs original concept-removed prompt (2048) | forget | 12.346 | 3 |",
        "| KID vs original concept-removed prompt (2048) | forget | 0.01235 ± 0.00123 | 3 |",
        "| CMMD vs original concept-removed prompt | forget | 0.5679 | 3 |",
        "| FID vs coco (64) | retain | 1.500 | 5 |",
        "| KID vs coco (64) | retain | 0.50000 ± 0.25000 | 5 |",
        "| CMMD vs coco | retain | 2.0000 | 5 |",
    ]


def test_a_fidelity_without_fid_has_no_fid_or_kid_rows() -> None:
    res = {"sources": {"forget": "f", "retain": "r"}, "n_forget": 1, "n_retain": 1, "forgetting": {}, "preservation": {},
           "fidelity": {"retain": {"reference": "same", "n_pairs": 2, "cmmd": 0.125}}}
    rows = [row for row in method_table("ga", res) if row.startswith(("| FID", "| KID", "| CMMD"))]
    assert rows == ["| CMMD vs original same prompt | retain | 0.1250 | 2 |"]


def test_csdr_row_names_igmus_csdr_or_ours_csdr_pair() -> None:
    """The metric named CSDR is IGMU's (its cleaned text); the p' version is ours and named csdr-pair."""
    est = {"value": 12.5, "low": 10.0, "high": 15.0, "n": 4, "unit": "image", "n_units": 4}
    win = {"value": 0.5, "low": 0.25, "high": 0.75, "n": 4}
    for prompts, name in (("igmu", "| CSDR (IGMU: "), ("pair", "| csdr-pair (ours: ")):
        res = {"sources": {"forget": "f", "retain": "r"}, "n_forget": 4, "n_retain": 4, "forgetting": {}, "preservation": {},
               "alignment": {"csdr": {**est, "prompts": prompts}, "csdr_win_rate": win, "clip_score_prompt": est}}
        rows = [row for row in method_table("esd", res) if "s_o" in row or "csdr-pair" in row]
        assert len(rows) == 1 and rows[0].startswith(name) and rows[0].endswith("per image) | forget | 12.5000 [10.0000, 15.0000] | 4 |"), rows
