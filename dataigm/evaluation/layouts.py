"""Other benchmarks' output folders, read as they are (``dataigm eval --layout NAME ROOT``): no symlinks, no renaming.

Each layout turns one folder into ``(methods, original)``: :class:`~dataigm.evaluation.evaluate.ImageSet` per
unlearned method and the original model's set, with the metadata its file names carry (prompt, class, seed).
``create_layout(spec, root)`` looks a layout up in :data:`LAYOUTS`; ``spec`` is ``NAME`` or ``NAME:OPTION``.

* ``igmu`` (ryliu68/IGMU ``benchmark.py``, ``benchmark_configs.py``): ``<task>/forgot/<METHOD>/<i>_<j>_<k>.png``
  (``i``: prompt class, ``j``: prompt, ``k``: image of that prompt), ``<task>/unrelated/<METHOD>/<class>/`` (the
  retain images, labelled with their class), ``<task>/remove_word/<METHOD>/`` (images of the concept-removed
  prompts, same names as ``forgot/``); ``ORG`` is the original model, and ``remove_word/ORG`` the reference IGMU's
  LPIPS, FID and CSDR compare the forget images with. Tasks without ``unrelated/`` (Nudity, VanGogh) use a
  method's own ``remove_word/<METHOD>/`` as its retain set when it has one. Where IGMU's prompt files ship beside
  the images (``Benchmarking_prompts/forgot.json`` and ``retain.json``, or their ``_demo`` versions, in the task
  folder or up to two folders above it: ``{"<task key>": {"<class>": ["prompt", ...]}}``, task keys ``nudity``,
  ``style_vangogh``, ``object_church``, ``object_parachute``), image ``<i>_<j>_<k>`` gets the ``j``-th prompt of
  the ``i``-th class as its prompt (``retain.json``'s as its concept-removed prompt), and the class as its
  subcategory.
* ``unlearndiffatk`` (OPTML-Group/Diffusion-MU-Attack ``src/loggers/json_/main.py``, ``src/attackers/*``,
  ``scripts/analysis/check_asr.py``): ``<METHOD>/<run>/{config.json, log.json, images/}`` per attacked prompt, one
  run folder per ``attacker.attack_idx``; ``images/orig.png`` is the prompt without attack, the last logged step's
  image (``images/<t>.png``) the attacked one. Forget = attacked images, no-attack = ``orig.png`` (the attack
  success rate). A ``<METHOD>/retain/`` folder, if present, is the retain set. No original model.
* ``unlearncanvas:<THEME>`` (OPTML-Group/UnlearnCanvas ``machine_unlearning/evaluation/sampling_unlearned_models/
  *.py`` and ``quantitative/accuracy.py``): ``<METHOD>/[style50/]<THEME>/<test theme>_<class>_seed<seed>.jpg``
  for a model that unlearned ``THEME``; the method named ``sd`` (flat: ``sd/<test theme>_<class>_seed<seed>.jpg``)
  is the original. Forget = images of ``THEME``, retain = the other themes, labelled with their theme.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from dataigm.core.errors import DataigmError
from dataigm.core.registry import Registry
from dataigm.evaluation.evaluate import ImageSet
from dataigm.core.images import walk_images
from dataigm.judges.images import ImageInput, ImageRef

Layout = Callable[[Path, str], tuple[dict[str, ImageSet], ImageSet | None]]
LAYOUTS: Registry[Layout] = Registry("eval layout")
IGMU_ORIGINAL = "ORG"
IGMU_NAME = re.compile(r"^(?P<cls>\d+)_(?P<prompt>\d+)_(?P<image>\d+)$")
UNLEARNCANVAS_NAME = re.compile(r"^(?P<theme>.+)_(?P<cls>[^_]+)_seed(?P<seed>\d+)$")
UNLEARNCANVAS_ORIGINAL = "sd"


class LayoutError(DataigmError):
    """A folder does not have the layout it was read as; the message names the folder and what is missing."""


def image_files(folder: Path) -> list[Path]:
    """The image files below ``folder`` (recursively, hidden folders skipped), sorted."""
    return list(walk_images(folder))


def input_of(source: str, refs: list[ImageRef]) -> ImageInput:
    """An image input of ready-made refs (the layout set their metadata)."""
    return ImageInput(source, files=refs)


def create_layout(spec: str, root: Path) -> tuple[dict[str, ImageSet], ImageSet | None]:
    """Read ``root`` with the layout ``spec`` (``NAME`` or ``NAME:OPTION``): (methods, original or None)."""
    name, _, option = spec.partition(":")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LayoutError(f"layout={spec} {root}: {root} is not a folder")
    methods, original = LAYOUTS.get(name)(root, option)
    if not methods:
        raise LayoutError(f"layout={spec} {root}: no unlearned method found below {root}")
    return methods, original


# --- IGMU ----------------------------------------------------------------------------------------------------------
def _igmu_task(root: Path) -> tuple[str, str]:
    """(concept, category) of an IGMU task folder (Church, Parachute, Nudity, VanGogh)."""
    from dataigm.judges.igmu import IGMU_TASKS, igmu_task

    try:
        task = igmu_task(root.name)
    except ValueError:
        return root.name.lower(), "object"
    return IGMU_TASKS[task].concept, {"nudity": "nudity", "vangogh": "style"}.get(task, "object")


IGMU_PROMPT_DIR = "Benchmarking_prompts"
IGMU_PROMPT_KEYS = {"nudity": "nudity", "vangogh": "style_vangogh", "church": "object_church", "parachute": "object_parachute"}
IgmuPrompts = dict[tuple[int, int], tuple[str, str]]  # (class index, prompt index) -> (class, prompt)


def _igmu_prompt_file(root: Path, stem: str) -> Path | None:
    """``Benchmarking_prompts/<stem>.json`` (else ``<stem>_demo.json``) in ``root`` or up to two folders above it."""
    for folder in (root, root.parent, root.parent.parent):
        for name in (f"{stem}.json", f"{stem}_demo.json"):
            path = folder / IGMU_PROMPT_DIR / name
            if path.is_file():
                return path
    return None


def read_igmu_prompts(path: Path, task: str) -> IgmuPrompts:
    """IGMU's prompt file (``{"<task key>": {"<class>": [prompts]}}``) as ``{(class index, prompt index): (class,
    prompt)}`` for ``task`` (our task name or IGMU's key; a file of one task is read whatever its key)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise LayoutError(f"{path}: not a JSON prompt file ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise LayoutError(f"{path}: expected {{\"<task>\": {{\"<class>\": [\"prompt\", ...]}}}}")
    key = IGMU_PROMPT_KEYS.get(task, task)
    classes = data.get(key) if key in data else next(iter(data.values())) if len(data) == 1 else None
    if classes is None:
        return {}
    return {(i, j): (str(cls), str(prompt)) for i, (cls, prompts) in enumerate(classes.items()) for j, prompt in enumerate(prompts)}


def _igmu_refs(folder: Path, base: Path, meta: dict[str, Any], label: str = "", prompts: IgmuPrompts | None = None,
               pair_prompts: IgmuPrompts | None = None) -> list[ImageRef]:
    refs = []
    for path in image_files(folder):
        m = IGMU_NAME.match(path.stem)
        if not m:
            raise LayoutError(f"{path}: IGMU names images <class>_<prompt>_<image>.png")
        cls, prompt = int(m["cls"]), int(m["prompt"])
        pair = f"{label or meta.get('concept', '')}:{m['cls']}_{m['prompt']}"
        text = {}
        if prompts and (cls, prompt) in prompts:
            text = {"prompt": prompts[(cls, prompt)][1], "subcategory": prompts[(cls, prompt)][0]}
        if pair_prompts and (cls, prompt) in pair_prompts:
            text["pair_prompt"] = pair_prompts[(cls, prompt)][1]
        refs.append(ImageRef(path.relative_to(base).as_posix(), str(path), "", {
            **meta, **text, "pair_id": pair, "seed": int(m["image"]), "seed_name": "image", "image_index": int(m["image"]), "igmu_class": cls, "igmu_prompt": prompt,
            **({"label_name": label, "concept": label, "subcategory": label} if label else {})}))
    return refs


def _igmu_retain(root: Path, method: str, category: str, removed_prompts: IgmuPrompts | None = None) -> tuple[str, list[ImageRef]]:
    """(the folder read, its refs): ``unrelated/<METHOD>/`` with one folder per class, else ``remove_word/<METHOD>/``,
    else no folder ("") and no images."""
    unrelated = root / "unrelated" / method
    if unrelated.is_dir():
        return str(unrelated), [r for cls in sorted(p for p in unrelated.iterdir() if p.is_dir())
                                for r in _igmu_refs(cls, unrelated, {"category": category, "role": "unrelated"}, cls.name)]
    removed = root / "remove_word" / method
    if removed.is_dir():
        return str(removed), _igmu_refs(removed, removed, {"category": category, "role": "unrelated"}, prompts=removed_prompts)
    return "", []


@LAYOUTS.register("igmu")
def read_igmu(root: Path, option: str = "") -> tuple[dict[str, ImageSet], ImageSet | None]:
    """IGMU's benchmark folders of one task (see the module docstring)."""
    forgot = root / "forgot"
    if not forgot.is_dir():
        raise LayoutError(f"{root}: no forgot/ folder; give the task folder of IGMU's layout (e.g. Benchmarking_images_demo/Church)")
    concept, category = _igmu_task(root)
    task = _igmu_task_key(root)
    forgot_file, retain_file = _igmu_prompt_file(root, "forgot"), _igmu_prompt_file(root, "retain")
    prompts = read_igmu_prompts(forgot_file, task) if forgot_file else {}
    removed = read_igmu_prompts(retain_file, task) if retain_file else {}
    forget_meta = {"concept": concept, "category": category, "role": "positive"}
    sets = {}
    for folder in sorted(p for p in forgot.iterdir() if p.is_dir()):
        source, retain = _igmu_retain(root, folder.name, category, removed)
        sets[folder.name] = ImageSet(input_of(str(folder), _igmu_refs(folder, folder, forget_meta, prompts=prompts, pair_prompts=removed)),
                                     input_of(source, retain))
    original = sets.pop(IGMU_ORIGINAL, None)
    if original is not None and not any(m.retain.files for m in sets.values()):
        original.retain = input_of(original.retain.source, [])  # no method has retain images to pair with the original's
    pair = root / "remove_word" / IGMU_ORIGINAL
    if original is not None and pair.is_dir():
        pair_meta = {**forget_meta, "role": "negative"}
        original.pair = input_of(str(pair), _igmu_refs(pair, pair, pair_meta, prompts=removed))
    return sets, original


def _igmu_task_key(root: Path) -> str:
    """Our name of the IGMU task of ``root`` (church, nudity...), or the folder's name in lower case."""
    from dataigm.judges.igmu import igmu_task

    try:
        return igmu_task(root.name)
    except ValueError:
        return root.name.lower()


# --- UnlearnDiffAtk ------------------------------------------------------------------------------------------------
def _attack_idx(config: dict[str, Any]) -> int | None:
    value = config.get("attacker", {}).get("attack_idx") if isinstance(config.get("attacker"), dict) else config.get("attacker.attack_idx")
    return int(value) if value is not None else None


def _attacked_image(run: Path, log: list[dict[str, Any]]) -> Path | None:
    """The image of the attack's last step: ``orig.png`` when the run stopped unattacked (one log entry), else the
    step image written last (attackers save one ``images/<t>.png`` per step and stop at the first success)."""
    images = run / "images"
    steps = [p for p in images.glob("*.png") if p.stem != "orig"]
    if len(log) <= 1 or not steps:
        return images / "orig.png" if (images / "orig.png").is_file() else None
    return max(steps, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _unlearndiffatk_method(folder: Path) -> ImageSet:
    forget, no_attack = [], []
    for run in sorted(p for p in folder.iterdir() if (p / "config.json").is_file() and (p / "log.json").is_file()):
        config, log = json.loads((run / "config.json").read_text()), json.loads((run / "log.json").read_text())
        idx = _attack_idx(config)
        if idx is None or not log:
            raise LayoutError(f"{run}: config.json has no attacker.attack_idx or log.json is empty")
        meta = {"prompt_index": idx, "seed": 0, "prompt": str(log[0].get("prompt", "")), "role": "positive", "run": run.name}
        attacked = _attacked_image(run, log)
        if attacked is not None:
            forget.append(ImageRef(f"{run.name}/{attacked.name}", str(attacked), "", {**meta, "attack_prompt": str(log[-1].get("prompt", ""))}))
        if (run / "images" / "orig.png").is_file():
            no_attack.append(ImageRef(f"{run.name}/orig.png", str(run / "images" / "orig.png"), "", meta))
    if not forget:
        raise LayoutError(f"{folder}: no UnlearnDiffAtk runs (<run>/config.json, log.json, images/)")
    retain = folder / "retain"
    retain_refs = [ImageRef(p.relative_to(retain).as_posix(), str(p), "", {"role": "unrelated"}) for p in image_files(retain)] if retain.is_dir() else []
    return ImageSet(input_of(str(folder), forget), input_of(str(retain), retain_refs), no_attack=input_of(f"{folder} (orig.png)", no_attack))


@LAYOUTS.register("unlearndiffatk")
def read_unlearndiffatk(root: Path, option: str = "") -> tuple[dict[str, ImageSet], ImageSet | None]:
    """One folder of UnlearnDiffAtk attack runs per method (see the module docstring)."""
    return {p.name: _unlearndiffatk_method(p) for p in sorted(root.iterdir()) if p.is_dir()}, None


# --- UnlearnCanvas -------------------------------------------------------------------------------------------------
def _unlearncanvas_set(folder: Path, theme: str) -> ImageSet:
    forget, retain = [], []
    for path in image_files(folder):
        m = UNLEARNCANVAS_NAME.match(path.stem)
        if not m:
            raise LayoutError(f"{path}: UnlearnCanvas names images <theme>_<class>_seed<seed>.jpg")
        meta = {"seed": int(m["seed"]), "pair_id": f"{m['theme']}_{m['cls']}", "prompt": f"A {m['cls']} image in {m['theme'].replace('_', ' ')} style.",
                "category": "style", "subcategory": m["cls"], "object_class": m["cls"]}
        ref = ImageRef(path.relative_to(folder).as_posix(), str(path), "", meta)
        if m["theme"] == theme:
            ref.meta.update(concept=theme, role="positive")
            forget.append(ref)
        else:
            ref.meta.update(concept=m["theme"], label_name=m["theme"], role="unrelated")
            retain.append(ref)
    if not forget:
        raise LayoutError(f"{folder}: no images of theme {theme!r} (<theme>_<class>_seed<seed>.jpg)")
    return ImageSet(input_of(str(folder), forget), input_of(str(folder), retain))


@LAYOUTS.register("unlearncanvas")
def read_unlearncanvas(root: Path, option: str = "") -> tuple[dict[str, ImageSet], ImageSet | None]:
    """UnlearnCanvas' sampled images of models that unlearned the theme ``option`` (see the module docstring)."""
    if not option:
        raise LayoutError("layout=unlearncanvas needs the unlearned theme: unlearncanvas:<THEME> (e.g. unlearncanvas:Van_Gogh)")
    sets, original = {}, None
    for method in sorted(p for p in root.iterdir() if p.is_dir()):
        if method.name == UNLEARNCANVAS_ORIGINAL:
            original = _unlearncanvas_set(method, option)
            continue
        folder = next((f for f in (method / "style50" / option, method / option) if f.is_dir()), None)
        if folder is not None:
            sets[method.name] = _unlearncanvas_set(folder, option)
    return sets, original
