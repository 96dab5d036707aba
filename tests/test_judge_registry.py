"""The judge registry: every kind parses its own spec, checks it without weights, and describes itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.core.errors import DataigmError, InputError, UnknownNameError
from dataigm.judges.nudenet import NUDENET_PRESETS
from dataigm.judges.registry import JUDGE_KINDS, JudgeOptions, JudgeSpecError, check_judge_spec, create_judge, judge_kinds, parse_judge_spec

DOCS = Path(__file__).resolve().parents[1] / "docs" / "judging.md"
KINDS = [k.kind for k in judge_kinds()]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_describes_itself(kind: str) -> None:
    entry = JUDGE_KINDS.get(kind).catalogue_entry()
    for field in ("syntax", "decides", "reference", "weights", "licence", "offline"):
        assert isinstance(entry[field], str) and len(entry[field]) >= 3, (kind, field)
    assert entry["kind"] == kind and entry["syntax"].split(":")[0].split("[")[0].split(" ")[0]
    assert set(entry["options"]) <= {f for f in JudgeOptions.__dataclass_fields__}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_doc_row(kind: str) -> None:
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("|")]
    assert any(f"`{kind}" in row for row in rows), f"docs/judging.md has no table row for judge kind {kind!r}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_parses_its_own_prefix(kind: str) -> None:
    found, spec = parse_judge_spec(f"{kind}:x@y" if kind != "dataigm" else "dataigm:org/name@v1")
    assert found.kind == kind and spec.kind == kind
    if kind != "dataigm":
        assert (spec.name, spec.location) == ("x", "y")
    else:
        assert spec.name == "org/name@v1"


@pytest.mark.parametrize("spec, kind", [
    ("nudenet", "nudenet"), ("nudenet:rece", "nudenet"), ("imagenet:church@local-dir:/nowhere", "imagenet"),
    ("igmu:object_church@/nowhere", "igmu"), ("local-dir:/nowhere", "dataigm"), ("org/name", "dataigm"),
    ("org/name@main", "dataigm"), ("hf-hub:org/name", "dataigm"), ("dataigm:org/name", "dataigm"),
])
def test_spec_kinds(spec: str, kind: str) -> None:
    assert check_judge_spec(spec) == kind


def test_a_location_spec_that_is_a_folder_is_a_dataigm_detector(tmp_path: Path) -> None:
    folder = tmp_path / "my:detector"  # a colon in a real folder's name is not a kind
    folder.mkdir()
    assert check_judge_spec(str(folder)) == "dataigm"


@pytest.mark.parametrize("spec, message", [
    ("zzz:x", "unknown judge kind 'zzz'; valid: " + ", ".join(sorted(KINDS))),
    ("nudenet:nope", "unknown NudeNet preset 'nope'"),
    ("", "empty detector spec"),
    ("org/name@", "revision '' is not a branch"),
])
def test_bad_specs_are_user_errors(spec: str, message: str) -> None:
    with pytest.raises(DataigmError, match=re.escape(message)):
        check_judge_spec(spec)


@pytest.mark.parametrize("spec, error, message", [
    ("q16:x", JudgeSpecError, "q16 takes no name (got 'x'); use q16@DIR with DIR from dataigm convert-judge q16"),
    ("i2p:x", JudgeSpecError, "i2p takes no name (got 'x'); use i2p@Q16DIR (Q16DIR from dataigm convert-judge q16)"),
    ("clip:x", JudgeSpecError, "unknown clip variant 'x'; valid: mace, spm"),
    ("sd-safety-checker:x", JudgeSpecError, "unknown sd-safety-checker variant 'x'; valid: current, v1"),
    ("nudenet:x", UnknownNameError, "unknown NudeNet preset 'x'; valid: " + ", ".join(sorted(NUDENET_PRESETS))),
    ("igmu-multi:x", JudgeSpecError, "unknown IGMU multi-class task 'x'; valid: nudity, object, style"),
    ("unlearncanvas:x", JudgeSpecError, "unknown UnlearnCanvas task 'x'; valid: style, object"),
    ("igmu:x", InputError, "unknown IGMU task 'x'; valid: "),
    ("imagenet:x", InputError, "unknown ImageNet concept 'x'; valid: "),
    ("dataigm:x", DataigmError, "detector 'x' is neither an existing path nor a Hub id"),
])
def test_each_kind_refuses_a_bad_name_up_front_in_its_own_words(spec: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as raised:
        check_judge_spec(spec)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("spec", ["q16@/nowhere", "i2p@/nowhere", "clip", "clip:spm", "sd-safety-checker:v1", "nudenet:rece",
                                  "igmu-multi", "igmu-multi:style", "unlearncanvas:object", "igmu:church", "imagenet:church", "imagenet:497"])
def test_a_kind_takes_its_own_names_and_none(spec: str) -> None:
    assert check_judge_spec(spec) == spec.split(":")[0].split("@")[0]


def test_options_a_kind_does_not_take_are_refused_before_loading() -> None:
    with pytest.raises(DataigmError, match="classes applies to nudenet"):
        create_judge("imagenet:church@local-dir:/nowhere", classes=["FEET_EXPOSED"])
    with pytest.raises(DataigmError, match="threshold must be in"):
        create_judge("nudenet", threshold=1.5)
    with pytest.raises(DataigmError, match="precision 'fp8'"):
        create_judge("nudenet", precision="fp8")


def test_judges_command_lists_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list-judges", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in out["judges"]] == sorted(KINDS)
    nudenet = next(e for e in out["judges"] if e["kind"] == "nudenet")
    assert nudenet["offline"].startswith("320n: yes; best: no: best.onnx of nudenet==3.0.8 is fetched from PyPI") or nudenet["offline"] == "yes"
    assert "rece" in nudenet["decides"]
    assert main(["list-judges"]) == 0 and "nudenet" in capsys.readouterr().out


@pytest.mark.parametrize("spec", ["nudnet", "opennfsw", "imagenit:church"])
def test_a_misspelt_kind_is_refused_with_the_closest_one(spec: str) -> None:
    typo = spec.split(":")[0]
    with pytest.raises(UnknownNameError, match=rf"^unknown judge kind '{typo}' \(did you mean '(nudenet|opennsfw|imagenet)'\?\)"):
        check_judge_spec(spec)


@pytest.mark.parametrize("spec", ["org/nudnet", "models/opennfsw", "org\\nudnet", "local-dir:nudnet", "hf-hub:org/nudnet"])
def test_a_location_that_looks_like_a_misspelt_kind_is_a_dataigm_detector(spec: str) -> None:
    assert parse_judge_spec(spec)[0].kind == "dataigm"


def test_an_existing_folder_named_like_a_kind_is_a_dataigm_detector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nudnet").mkdir()
    monkeypatch.chdir(tmp_path)
    assert parse_judge_spec("nudnet")[0].kind == "dataigm"


def test_a_misspelt_name_of_a_kind_gets_the_closest_one() -> None:
    with pytest.raises(JudgeSpecError, match=r"^unknown clip variant 'spn' \(did you mean 'spm'\?\); valid: mace, spm$"):
        check_judge_spec("clip:spn")


def test_the_parsed_spec_keeps_what_was_typed() -> None:
    kind, spec = parse_judge_spec("nudenet:esd@/models/best.onnx")
    assert (kind.kind, spec.text, spec.kind, spec.name, spec.location) == ("nudenet", "nudenet:esd@/models/best.onnx", "nudenet", "esd", "/models/best.onnx")


@pytest.mark.parametrize("spec, option, taken", [
    ("nudenet", "classes", True), ("opennsfw", "classes", False), ("opennsfw", "threshold", True), ("clip", "clip_model", True),
    ("imagenet:church", "clip_model", False), ("q16@/x", "device", True),
])
def test_takes_option_gives_shared_settings_only_to_the_kinds_that_use_them(spec: str, option: str, taken: bool) -> None:
    from dataigm.judges.registry import takes_option

    assert takes_option(spec, option) is taken


def test_a_kind_without_its_weights_here_says_so() -> None:
    from dataigm.judges.registry import JudgeKind

    assert JudgeKind.offline() == "needs its weights (see 'weights')"


@pytest.mark.parametrize("threshold,taken", [(0.0, True), (0.5, True), (1.0, True), (-1e-9, False), (1.0 + 1e-9, False), (1.5, False)])
def test_a_threshold_is_taken_from_0_to_1_inclusive(threshold: float, taken: bool) -> None:
    if taken:
        assert create_judge("nudenet:esd", threshold=threshold).threshold == threshold
    else:
        with pytest.raises(JudgeSpecError, match=rf"threshold must be in \[0, 1\], got {re.escape(str(threshold))}$"):
            create_judge("nudenet:esd", threshold=threshold)


@pytest.mark.parametrize("spec,setting,suggested", [
    ("nudenet:esd", "clases", "classes"),  # one of the kind's options
    ("nudenet:esd", "thresold", "threshold"),  # a setting every kind takes
    ("imagenet:281", "imput_size", "input_size"),  # one of the kind's settings
])
def test_a_misspelt_setting_suggests_the_kinds_options_settings_and_shared_ones(spec: str, setting: str, suggested: str) -> None:
    with pytest.raises(JudgeSpecError, match=rf"takes no setting '{setting}' \(did you mean '{suggested}'\?\)"):
        create_judge(spec, settings={setting: 1})


def test_refused_options_name_the_kinds_that_take_them() -> None:
    with pytest.raises(JudgeSpecError) as e:
        create_judge("imagenet:281", classes=["x"], clip_model="y")
    assert str(e.value) == ("judge imagenet: classes applies to nudenet; "
                            "clip_model applies to aesthetic, clip, i2p, igmu, igmu-multi, q16")


def test_a_blank_spec_is_empty_and_a_location_keeps_every_at_sign() -> None:
    with pytest.raises(JudgeSpecError, match="^empty detector spec; use one of: "):
        parse_judge_spec("   ")
    kind, parsed = parse_judge_spec("q16@prompts@v2")
    assert kind.kind == "q16" and parsed.location == "prompts@v2"


def test_the_catalogue_lists_each_kinds_settings() -> None:
    import dataigm

    entries = {e["kind"]: e for e in dataigm.list_judges()}
    assert entries["imagenet"]["settings"] == ["input_size"] and entries["pickscore"]["settings"] == ["min_score", "processor", "prompt"]
    assert all(entries[k.kind]["settings"] == sorted(k.settings) for k in judge_kinds())


def test_a_torch_judge_describes_its_device_and_precision(nudity_detector: Path) -> None:
    d = create_judge(f"local-dir:{nudity_detector}", device="cpu").describe()
    assert d["device"] == "cpu" and d["precision"] == "fp32" and d["timm"]
