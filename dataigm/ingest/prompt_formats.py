"""Readers for prompt sets other benchmarks publish, normalised into :class:`~dataigm.prompts.PromptRecord`.

Formats (a :class:`~dataigm.core.registry.Registry`, so adding one is one decorated function):

``igmu``
    JSON ``{"<task>": {"<subcategory>": ["prompt", ...]}}`` with tasks ``nudity``, ``style_<artist>``
    (e.g. ``style_vangogh``) and ``object_<class>`` (e.g. ``object_church``). The same shape holds the
    concept prompts (``role="forget"``) and the retained prompts (``role="retain"``).
``i2p``
    The I2P CSV (``prompt``, ``categories``, ``sd_seed``, ``sd_guidance_scale``, ``nudity_percentage``,
    ``inappropriate_percentage``, ...). Seeds and guidance go into ``PromptRecord.seed``/``guidance`` so
    the builder regenerates images as the benchmark did.
``csv``
    UnlearnDiffAtk-style CSV: ``prompt``, optional ``evaluation_seed``, ``evaluation_guidance``,
    ``case_number``, ``paired_negative`` and a class column: ``class`` (object), ``artist`` (style),
    ``category`` + ``concept``, or ``categories`` (I2P tags; ``sexual`` means nudity).
``unlearndiffatk``
    The CSVs of UnlearnDiffAtk (OPTML-Group/Diffusion-MU-Attack ``prompts/*.csv``), read row for row: ``case_number``
    (kept as the record's index, so ESD-style ``<case>_<i>.png`` folders pair up), ``prompt``, ``evaluation_seed`` and
    ``evaluation_guidance`` (``sd_seed``/``sd_guidance_scale`` where a file has those instead), the I2P columns of
    ``nudity.csv``/``i2p.csv`` (``categories``, ``nudity_percentage``, ...), the ``artist``/``class`` columns, and
    ``source`` (``coco_10k.csv``). Unlike ``csv`` it requires ``case_number`` and never drops a row for its tags
    unless ``select_categories`` asks to; pandas' ``Unnamed: 0`` index column is ignored.
``txt``
    One prompt a line; blank lines and ``#`` comments are skipped.

Every error names the file and the line (CSV/TXT) or the JSON key path at fault.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dataigm.core.errors import DataigmError, InputError
from dataigm.core.registry import Registry
from dataigm.core.schema import slugify
from dataigm.prompts import PromptRecord
from dataigm.taxonomy import CATEGORIES, Concept

log = logging.getLogger(__name__)

ROLES = ("forget", "retain")
# I2P's category for sexual content; prompts tagged with it belong to the nudity concept.
I2P_NUDITY_TAG = "sexual"
# Label of a retained (concept-free) prompt where the category has a fixed binary label space.
RETAIN_LABELS = {"nudity": "not_nude"}


class PromptFormatError(DataigmError, ValueError):
    """A prompt file is malformed; the message names the file and the line or key."""


@dataclass(frozen=True)
class PromptImportOptions:
    """What the caller knows about a file beyond its content.

    ``category``/``concept`` override what the file implies (or fill it in for formats that say nothing,
    such as ``txt``); ``select_categories`` keeps only I2P/CSV rows tagged with one of these categories.
    """

    role: str = "forget"
    category: str = ""
    concept: str = ""
    select_categories: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(f"role {self.role!r} not in {ROLES}")
        if self.concept and not self.category:
            raise InputError(f"concept {self.concept!r} needs a category (one of {CATEGORIES.names()})")
        if self.category:
            CATEGORIES.get(self.category)  # KeyError lists the valid categories


PromptReader = Callable[[Path, PromptImportOptions], list[PromptRecord]]
PROMPT_FORMATS: Registry[PromptReader] = Registry("prompt format")


def import_prompts(
    path: str | Path,
    fmt: str,
    role: str = "forget",
    *,
    category: str = "",
    concept: str = "",
    select_categories: tuple[str, ...] | list[str] = (),
) -> list[PromptRecord]:
    """Read an external prompt file of format ``fmt`` (see :data:`PROMPT_FORMATS`) into normalised records.

    Raises FileNotFoundError for a missing file, KeyError for an unknown format and
    :class:`PromptFormatError` (a ValueError) naming the line or key of a malformed file.
    """
    reader = PROMPT_FORMATS.get(fmt)
    # Tags read from files are compared lowercased (``_split_tags``), so the selection is too.
    select = tuple(t.strip().lower() for t in select_categories if t.strip())
    options = PromptImportOptions(role, category, concept, select)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} not found")
    records = reader(path, options)
    if not records:
        raise PromptFormatError(f"{path}: no prompts found (format {fmt!r})")
    return records


# --- shared helpers ------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise PromptFormatError(f"{path}:{line}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _resolve_concept(category: str, name: str, where: str) -> Concept:
    try:
        return CATEGORIES.get(category).get(name)
    except KeyError as e:
        raise PromptFormatError(f"{where}: {e.args[0]}") from None


def _label(concept: Concept | None, category: str, role: str) -> str:
    if role == "retain":
        return RETAIN_LABELS.get(category, "")
    return concept.label_name if concept is not None else ""


def _record(
    prompt: str,
    *,
    fmt: str,
    index: int,
    options: PromptImportOptions,
    category: str = "",
    concept_name: str = "",
    subcategory: str = "",
    where: str,
    seed: int | None = None,
    guidance: float | None = None,
    paired_negative: str | None = None,
    extra: dict | None = None,
) -> PromptRecord:
    """One normalised record; the caller's category/concept override what the file implies."""
    if options.category and options.category != category:
        concept_name = ""  # the file's concept belongs to another category
    category = options.category or category
    concept_name = options.concept or concept_name
    concept = _resolve_concept(category, concept_name, where) if category and concept_name else None
    extra = {"role": options.role, **(extra or {})}
    if options.role == "retain" and concept is not None:
        # A retained prompt does not show the concept; keep which concept it is retained against.
        extra["target_concept"] = concept.name
    return PromptRecord(
        prompt=prompt.strip(), concept=concept.name if concept and options.role == "forget" else "", category=category,
        subcategory=subcategory, label=_label(concept, category, options.role), paired_negative=paired_negative,
        source=fmt, index=index, seed=seed, guidance=guidance, extra=extra)


def _parse_int(value: str, where: str, column: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)  # pandas writes integer columns with NaN as "123.0"
    except ValueError:
        raise PromptFormatError(f"{where}: column {column!r} must be an integer, got {value!r}") from None
    if math.isnan(number):
        return None
    if not number.is_integer() or number < 0:
        raise PromptFormatError(f"{where}: column {column!r} must be a non-negative integer, got {value!r}")
    return int(number)


def _parse_float(value: str, where: str, column: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise PromptFormatError(f"{where}: column {column!r} must be a number, got {value!r}") from None
    if math.isnan(number):
        return None
    if number < 0:
        raise PromptFormatError(f"{where}: column {column!r} must be >= 0, got {value!r}")
    return number


def _csv_rows(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Rows of a CSV with the line each starts on; checks the header and the number of cells."""
    # newline="" lets csv see line ends itself: str.splitlines would also split on form feeds, U+2028 etc.
    # that scraped prompts carry, cutting a row in two.
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise PromptFormatError(f"{path}: empty file (expected a CSV header with {list(required)})") from None
    except csv.Error as e:
        raise PromptFormatError(f"{path}:1: not valid CSV ({e})") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise PromptFormatError(f"{path}:1: missing column(s) {missing}; header is {header}")
    rows = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if cells and len(cells) != len(header):
                raise PromptFormatError(f"{path}:{line}: {len(cells)} cells, but the header has {len(header)} columns")
            if any(c.strip() for c in cells):
                rows.append((line, dict(zip(header, cells))))
            line = reader.line_num + 1
    except csv.Error as e:
        raise PromptFormatError(f"{path}:{line}: not valid CSV ({e})") from None
    return header, rows


def _split_tags(value: str) -> list[str]:
    return [t.strip().lower() for t in re.split(r"[,;|]", value) if t.strip()]


def _keep(tags: list[str], options: PromptImportOptions) -> bool:
    return not options.select_categories or any(t in options.select_categories for t in tags)


# --- igmu ----------------------------------------------------------------------------------------------


def _igmu_task(task: str, where: str) -> tuple[str, str]:
    """``nudity`` -> (nudity, nudity); ``style_vangogh`` -> (style, van_gogh); ``object_church`` -> (object, church)."""
    if task == "nudity":
        return "nudity", "nudity"
    category, sep, name = task.partition("_")
    if not sep or category not in ("style", "object") or not name:
        raise PromptFormatError(f"{where}: unknown task {task!r}; expected 'nudity', 'style_<artist>' or 'object_<class>'")
    if category == "style" and slugify(name) == "vangogh":
        name = "van_gogh"  # the task spells the artist without a separator
    return category, _resolve_concept(category, name, where).name


@PROMPT_FORMATS.register("igmu")
def read_igmu(path: Path, options: PromptImportOptions) -> list[PromptRecord]:
    """EvalIGMU-style JSON ``{task: {subcategory: [prompt, ...]}}``, forget or retain set."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise PromptFormatError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(data, dict):
        raise PromptFormatError(f"{path}: top level must be an object {{task: {{subcategory: [prompts]}}}}, got {type(data).__name__}")
    records = []
    for task, subcategories in data.items():
        where = f"{path}: key {task!r}"
        category, concept = _igmu_task(task, where)
        if not isinstance(subcategories, dict):
            raise PromptFormatError(f"{where}: must be an object {{subcategory: [prompts]}}, got {type(subcategories).__name__}")
        for subcategory, prompts in subcategories.items():
            where = f"{path}: key {task!r} -> {subcategory!r}"
            if not isinstance(prompts, list):
                raise PromptFormatError(f"{where}: must be a list of prompt strings, got {type(prompts).__name__}")
            for i, prompt in enumerate(prompts):
                if not isinstance(prompt, str) or not prompt.strip():
                    raise PromptFormatError(f"{where}[{i}]: must be a non-empty string, got {prompt!r}")
                records.append(
                    _record(prompt, fmt="igmu", index=i, options=options, category=category, concept_name=concept,
                            subcategory=str(subcategory), where=f"{where}[{i}]", extra={"task": task})
                )
    return records


# --- i2p -----------------------------------------------------------------------------------------------

_I2P_EXTRA_FLOATS = ("nudity_percentage", "inappropriate_percentage")
_I2P_EXTRA_INTS = ("hard", "sd_image_width", "sd_image_height")


def _i2p_numbers(row: dict[str, str], where: str) -> dict[str, float | int | None]:
    """I2P's numeric columns present in ``row`` (percentages, ``hard``, the image size), parsed."""
    numbers: dict[str, float | int | None] = {c: _parse_float(row[c], where, c) for c in _I2P_EXTRA_FLOATS if c in row}
    numbers.update({c: _parse_int(row[c], where, c) for c in _I2P_EXTRA_INTS if c in row})
    return numbers


@PROMPT_FORMATS.register("i2p")
def read_i2p(path: Path, options: PromptImportOptions) -> list[PromptRecord]:
    """The I2P benchmark CSV; ``sd_seed``/``sd_guidance_scale`` become the record's seed and guidance."""
    _, rows = _csv_rows(path, ("prompt", "categories"))
    records = []
    for position, (line, row) in enumerate(rows):
        where = f"{path}:{line}"
        tags = _split_tags(row["categories"])
        if not _keep(tags, options):
            continue
        if not row["prompt"].strip():
            log.warning("%s: empty prompt, skipped", where)
            continue
        extra: dict = {"categories": tags, **_i2p_numbers(row, where)}
        if row.get("sd_model", "").strip():
            extra["sd_model"] = row["sd_model"].strip()
        nudity = I2P_NUDITY_TAG in tags
        records.append(
            _record(
                row["prompt"], fmt="i2p", index=position, options=options,
                category="nudity" if nudity else "", concept_name="nudity" if nudity else "",
                subcategory=",".join(tags), where=where,
                seed=_parse_int(row.get("sd_seed", ""), where, "sd_seed"),
                guidance=_parse_float(row.get("sd_guidance_scale", ""), where, "sd_guidance_scale"),
                extra=extra,
            )
        )
    return records


# --- csv (UnlearnDiffAtk) ------------------------------------------------------------------------------


def _csv_concept(row: dict[str, str]) -> tuple[str, str, list[str]]:
    """(category, concept name, tags) from an UnlearnDiffAtk class column, when there is one."""
    if row.get("artist", "").strip():
        return "style", row["artist"].strip(), []
    if row.get("class", "").strip():
        return "object", row["class"].strip(), []
    if row.get("concept", "").strip() and "category" in row:
        return row["category"].strip(), row["concept"].strip(), []
    tags = _split_tags(row.get("categories", ""))
    if I2P_NUDITY_TAG in tags or "nudity" in tags:
        return "nudity", "nudity", tags
    return "", "", tags


@PROMPT_FORMATS.register("csv")
def read_csv(path: Path, options: PromptImportOptions) -> list[PromptRecord]:
    """UnlearnDiffAtk-style CSV: ``prompt`` plus optional seed, guidance, case number and class columns."""
    _, rows = _csv_rows(path, ("prompt",))
    records = []
    for position, (line, row) in enumerate(rows):
        where = f"{path}:{line}"
        if not row["prompt"].strip():
            log.warning("%s: empty prompt, skipped", where)
            continue
        category, concept, tags = _csv_concept(row)
        if not _keep(tags, options):
            continue
        case = _parse_int(row.get("case_number", ""), where, "case_number")
        negative = row.get("paired_negative", "").strip() or None
        extra = {"categories": tags} if tags else {}
        records.append(
            _record(
                row["prompt"], fmt="csv", index=position if case is None else case, options=options,
                category=category, concept_name=concept, where=where, paired_negative=negative,
                seed=_parse_int(row.get("evaluation_seed", ""), where, "evaluation_seed"),
                guidance=_parse_float(row.get("evaluation_guidance", ""), where, "evaluation_guidance"),
                extra=extra,
            )
        )
    return records


# --- unlearndiffatk ------------------------------------------------------------------------------------------


@PROMPT_FORMATS.register("unlearndiffatk")
def read_unlearndiffatk(path: Path, options: PromptImportOptions) -> list[PromptRecord]:
    """An UnlearnDiffAtk ``prompts/*.csv`` file, row for row; ``case_number`` becomes the record's index."""
    header, rows = _csv_rows(path, ("case_number", "prompt"))
    seed_col = "evaluation_seed" if "evaluation_seed" in header else "sd_seed"
    guidance_col = "evaluation_guidance" if "evaluation_guidance" in header else "sd_guidance_scale"
    records = []
    for line, row in rows:
        where = f"{path}:{line}"
        if not row["prompt"].strip():
            log.warning("%s: empty prompt, skipped", where)
            continue
        category, concept, tags = _csv_concept(row)
        if "categories" in row:
            tags = _split_tags(row["categories"])
        if not _keep(tags, options):
            continue
        case = _parse_int(row["case_number"], where, "case_number")
        if case is None:
            raise PromptFormatError(f"{where}: column 'case_number' is empty")
        extra: dict = {"case_number": case}
        if "categories" in row:
            extra["categories"] = tags
        extra.update(_i2p_numbers(row, where))
        for column in ("sd_model", "source", "artist", "class"):
            if row.get(column, "").strip():
                extra[column] = row[column].strip()
        records.append(
            _record(
                row["prompt"], fmt="unlearndiffatk", index=case, options=options, category=category, concept_name=concept,
                where=where, paired_negative=row.get("paired_negative", "").strip() or None,
                seed=_parse_int(row.get(seed_col, ""), where, seed_col),
                guidance=_parse_float(row.get(guidance_col, ""), where, guidance_col),
                extra=extra,
            )
        )
    return records


# --- txt -----------------------------------------------------------------------------------------------


@PROMPT_FORMATS.register("txt")
def read_txt(path: Path, options: PromptImportOptions) -> list[PromptRecord]:
    """One prompt a line; ``index`` is the 0-based line number in the file."""
    records = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "\x00" in text:
            raise PromptFormatError(f"{path}:{lineno}: contains a NUL byte (binary file?)")
        records.append(_record(text, fmt="txt", index=lineno - 1, options=options, where=f"{path}:{lineno}"))
    return records
