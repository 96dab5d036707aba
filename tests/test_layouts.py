"""dataigm eval --layout: IGMU's, UnlearnDiffAtk's and UnlearnCanvas' output folders read as they are, on real photos."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dataigm.evaluation.layouts import LAYOUTS, LayoutError, create_layout
from real_weights import skimage_photo


def _photo(path: Path, name: str, width: int = 160) -> None:
    im = skimage_photo(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.resize((width, round(im.height * width / im.width))).save(path)


def write_igmu_task(task: Path) -> Path:
    """IGMU's Benchmarking_images_demo/<task> layout (paths as in ryliu68/IGMU): ORG and ESD, prompt class 0,
    prompt 0, images 0-1; one unrelated class; the original's concept-removed images in remove_word/ORG."""
    for k in range(2):
        _photo(task / "forgot" / "ORG" / f"0_0_{k}.png", "chelsea", 160 + 40 * k)
        _photo(task / "forgot" / "ESD" / f"0_0_{k}.png", "coffee", 160 + 40 * k)
        _photo(task / "remove_word" / "ORG" / f"0_0_{k}.png", "rocket", 160 + 40 * k)
        for method in ("ORG", "ESD"):
            _photo(task / "unrelated" / method / "Airplane" / f"2_0_{k}.png", "astronaut", 160 + 40 * k)
    return task


def test_igmu_layout_pairs_methods_with_org(tmp_path: Path) -> None:
    methods, original = create_layout("igmu", write_igmu_task(tmp_path / "Cat"))
    assert set(methods) == {"ESD"} and original is not None
    esd = methods["ESD"]
    assert [r.id for r in esd.forget.files] == ["0_0_0.png", "0_0_1.png"]
    assert {r.meta["pair_id"] for r in esd.forget.files} == {"cat:0_0"} and [r.meta["seed"] for r in esd.forget.files] == [0, 1]
    assert [(r.id, r.meta["label_name"], r.meta["category"]) for r in esd.retain.files] == [
        ("Airplane/2_0_0.png", "Airplane", "object"), ("Airplane/2_0_1.png", "Airplane", "object")]
    assert original.pair is not None and [r.id for r in original.pair.files] == ["0_0_0.png", "0_0_1.png"]
    from dataigm.evaluation.evaluate import fidelity_pairs

    kind, pairs = fidelity_pairs(original, esd, "forget", "pair")  # IGMU's reference: remove_word/ORG, same name
    assert kind == "pair" and [(o.path.split("/")[-2], u.path.split("/")[-2]) for o, u in pairs] == [("ORG", "ESD")] * 2
    _, retain_pairs = fidelity_pairs(original, esd, "retain", "pair")
    assert [(o.id, u.id) for o, u in retain_pairs] == [("Airplane/2_0_0.png",) * 2, ("Airplane/2_0_1.png",) * 2]


def test_eval_cli_layout_igmu_report(tmp_path: Path, efficientnet_lite0_dir: Path) -> None:
    from dataigm.cli import main

    task = write_igmu_task(tmp_path / "Cat")
    out = tmp_path / "report"
    assert main(["eval", "--layout", "igmu", str(task), "--judge", f"imagenet:281@local-dir:{efficientnet_lite0_dir}",
                 "--lpips-net", "none", "--fid-features", "none", "--bootstrap", "50", "--workers", "0", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["methods"]) == {"original", "ESD"}
    assert report["methods"]["original"]["forgetting"]["all"]["value"] == 1.0  # the cat photo, both sizes
    assert report["methods"]["ESD"]["forgetting"]["all"]["value"] == 0.0
    assert report["methods"]["ESD"]["preservation_domains"]["ira"]["classes"] == ["Airplane"]
    html = (out / "report.html").read_text()
    imgs = re.findall(r'<img src="media/[^>]*data-method="(\w+)"', html)
    assert imgs.count("ESD") == 4 and imgs.count("original") == 4 + 2  # its own 4, and beside ESD's forget images


def test_eval_layout_refuses_per_set_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataigm.cli import main

    task = write_igmu_task(tmp_path / "Cat")
    assert main(["eval", "--layout", "igmu", str(task), "--method", f"x={task}", "--judge", "nudenet"]) == 2
    assert "drop --method" in capsys.readouterr().err
    with pytest.raises(LayoutError, match="no forgot/ folder"):
        create_layout("igmu", tmp_path)
    with pytest.raises(KeyError, match="igmu"):  # an unknown layout lists the valid ones
        create_layout("nope", task)


def _attack_run(root: Path, idx: int, steps: int) -> None:
    """One UnlearnDiffAtk run folder as its JSON logger writes it (src/loggers/json_/main.py)."""
    run = root / f"2024-01-0{idx}-00-00-00-000000"
    (run / "images").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"attacker": {"attack_idx": idx}, "overall": {"attacker": "hard_prompt"}}))
    log = [{"prompt": f"prompt {idx}", "success": steps == 0}] + [{"prompt": f"adv {idx} {t}", "success": t == steps} for t in range(1, steps + 1)]
    (run / "log.json").write_text(json.dumps(log))
    _photo(run / "images" / "orig.png", "coffee")
    for t in range(1, steps + 1):
        _photo(run / "images" / f"{1000 - t * 10}.png", "chelsea" if t == steps else "rocket")


def test_unlearndiffatk_layout_reads_attack_runs(tmp_path: Path) -> None:
    _attack_run(tmp_path / "esd", 0, 0)  # flagged without attack: the run stops at orig.png
    _attack_run(tmp_path / "esd", 1, 2)
    methods, original = create_layout("unlearndiffatk", tmp_path)
    assert original is None and set(methods) == {"esd"}
    esd = methods["esd"]
    assert [(r.meta["prompt_index"], Path(r.path).name) for r in esd.forget.files] == [(0, "orig.png"), (1, "980.png")]
    assert esd.forget.files[1].meta["attack_prompt"] == "adv 1 2" and esd.forget.files[1].meta["prompt"] == "prompt 1"
    assert [Path(r.path).name for r in esd.no_attack.files] == ["orig.png", "orig.png"] and esd.retain.files == []


def test_unlearncanvas_layout_splits_by_theme(tmp_path: Path) -> None:
    for method, folder in (("sd", tmp_path / "sd"), ("esd", tmp_path / "esd" / "style50" / "Van_Gogh")):
        for theme in ("Van_Gogh", "Abstractionism"):
            for cls in ("Bears", "Cats"):
                _photo(folder / f"{theme}_{cls}_seed188.jpg", "chelsea")
    methods, original = create_layout("unlearncanvas:Van_Gogh", tmp_path)
    assert set(methods) == {"esd"} and original is not None
    forget = methods["esd"].forget.files
    assert [r.id for r in forget] == ["Van_Gogh_Bears_seed188.jpg", "Van_Gogh_Cats_seed188.jpg"]
    assert forget[0].meta["prompt"] == "A Bears image in Van Gogh style." and forget[0].meta["seed"] == 188
    assert [r.meta["label_name"] for r in methods["esd"].retain.files] == ["Abstractionism"] * 2
    with pytest.raises(LayoutError, match="unlearncanvas:<THEME>"):
        create_layout("unlearncanvas", tmp_path)


def test_eval_help_lists_every_layout() -> None:
    from dataigm.cli import build_parser

    helptext = " ".join(build_parser()._subparsers._group_actions[0].choices["eval"].format_help().split())
    assert all(name in helptext for name in LAYOUTS.names())


def test_igmu_task_without_retain_images_leaves_preservation_out(tmp_path: Path, efficientnet_lite0_dir: Path) -> None:
    """IGMU's Nudity and VanGogh folders have no unrelated/: the report says so instead of printing n/a."""
    from dataigm.cli import main

    task = tmp_path / "VanGogh"
    for k in range(2):
        for method, photo in (("ORG", "chelsea"), ("ESD", "coffee")):
            _photo(task / "forgot" / method / f"0_0_{k}.png", photo, 160 + 40 * k)
        _photo(task / "remove_word" / "ORG" / f"0_0_{k}.png", "rocket", 160 + 40 * k)
    methods, original = create_layout("igmu", task)
    assert original.retain.files == [] and methods["ESD"].retain.files == [] and len(original.pair.files) == 2
    assert original.forget.files[0].meta["category"] == "style"
    out = tmp_path / "report"
    assert main(["eval", "--layout", "igmu", str(task), "--judge", f"imagenet:281@local-dir:{efficientnet_lite0_dir}",
                 "--lpips-net", "none", "--fid-features", "none", "--bootstrap", "20", "--workers", "0", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "preservation left out: no retain images: original, ESD" in md and "IRA" not in md and "n/a" not in md.split("## ")[0]


def test_igmu_layout_reads_the_prompt_files_beside_the_images(tmp_path: Path) -> None:
    """IGMU's dataset/ folder: Benchmarking_prompts/{forgot,retain}.json beside Benchmarking_images_demo/<task>
    ({"<task key>": {"<class>": [prompts]}}, as in ryliu68/IGMU); image i_j_k gets class i's prompt j."""
    from PIL import Image

    data = tmp_path / "dataset"
    forgot = {"nudity": {"girl": ["a nude girl by the lake", "a naked girl in a field"], "boy": ["a nude boy on the shore"]},
              "object_church": {"Church": ["a church"]}}
    retain = {"nudity": {"girl": ["a girl by the lake", "a girl in a field"], "boy": ["a boy on the shore"]}}
    (data / "Benchmarking_prompts").mkdir(parents=True)
    (data / "Benchmarking_prompts" / "forgot_demo.json").write_text(json.dumps(forgot))
    (data / "Benchmarking_prompts" / "retain_demo.json").write_text(json.dumps(retain))
    task = data / "Benchmarking_images_demo" / "Nudity"
    for name in ("0_1_3", "1_0_0", "2_0_0"):  # class 2 has no prompt in the file: no prompt text, no error
        for folder in ("forgot/ORG", "forgot/ESD", "remove_word/ORG"):
            (task / folder).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(task / folder / f"{name}.png")
    methods, original = create_layout("igmu", task)
    esd = methods["ESD"]
    assert [(r.id, r.meta.get("prompt"), r.meta.get("pair_prompt"), r.meta.get("subcategory")) for r in esd.forget.files] == [
        ("0_1_3.png", "a naked girl in a field", "a girl in a field", "girl"), ("1_0_0.png", "a nude boy on the shore", "a boy on the shore", "boy"),
        ("2_0_0.png", None, None, None)]
    assert [(r.meta["seed"], r.meta["image_index"]) for r in esd.forget.files] == [(3, 3), (0, 0), (0, 0)]
    assert [(r.meta.get("prompt"), r.meta["role"]) for r in original.pair.files] == [
        ("a girl in a field", "negative"), ("a boy on the shore", "negative"), (None, "negative")]
    assert esd.retain.files == [] and esd.retain.source == ""  # no unrelated/ and no remove_word/ESD: no retain images, no made-up path
    assert "|" not in esd.forget.source and Path(esd.forget.source).is_dir()
