"""The suite registry: one YAML per suite in ``builders/suites/`` (a suite may also be given as a path).

A suite without ``source`` names local prompt files, relative to the suite file (``dataigm new-concept`` writes
such suites); ``concepts_file`` adds the suite's own concepts to the taxonomy, as a recipe's does.

A suite names its prompt files (repository, pinned commit, path, sha256, format), which prompts are forgotten and
which retained, the seeds, the generation settings the reference used, and the judges and metrics to report.
Everything is data: judge specs are plain strings handed to :func:`dataigm.judges.person.create_judge`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from dataigm.core.registry import did_you_mean
from dataigm.core.atomic import json_sha256
from dataigm.core.errors import InputError
from dataigm.core.settings import SettingsError, StrictModel, read_yaml_mapping, validate
from dataigm.prompts import PromptRecord
from dataigm.recipe import GenerationSpec

ROLES = ("forget", "retain")


class SuiteError(SettingsError):
    """An unknown or invalid suite; the message names the suite file, field and value."""


class SourceSpec(StrictModel):
    """The repository the prompt files come from, pinned to one commit."""

    repo: str = Field(pattern=r"^[\w.\-]+/[\w.\-]+$")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    license: str = ""
    url: str = ""  # the project page, for the docs


class FileSpec(StrictModel):
    """One pinned prompt file: its path in the repository, sha256, importer format and number of prompts."""

    path: str
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # required for a pinned source; optional for local files
    format: str
    prompts: int | None = Field(None, ge=1)  # rows in the file (documentation; checked by the tests on real files)


class Selection(StrictModel):
    """Which records of a file a set keeps. Criteria combine with ``match`` (any/all); no criterion keeps all."""

    task: str | None = None  # igmu: the task key (nudity, style_vangogh, object_church, object_parachute)
    categories: list[str] = []  # i2p-style tags (e.g. sexual)
    min_nudity_percentage: float | None = Field(None, ge=0, le=100)
    match: Literal["any", "all"] = "any"
    limit: int | None = Field(None, ge=1)  # the first N selected prompts

    def keep(self, rec: PromptRecord) -> bool:
        tests = []
        if self.task is not None:
            tests.append(rec.extra.get("task") == self.task)
        if self.categories:
            tags = rec.extra.get("categories") or []
            tests.append(any(t in tags for t in self.categories))
        if self.min_nudity_percentage is not None:
            value = rec.extra.get("nudity_percentage")
            tests.append(value is not None and value >= self.min_nudity_percentage)
        if not tests:
            return True
        return any(tests) if self.match == "any" else all(tests)


class SetSource(StrictModel):
    """Prompts of a set from one file: a selection, and the category/concept the importer should assign."""

    file: str  # a key of ``files``
    select: Selection = Selection()
    category: str = ""
    concept: str = ""


class SeedSpec(StrictModel):
    """``from_file``: a prompt's own seed (image k: seed + k); otherwise, and for prompts without one, ``start + k``."""

    from_file: bool = True
    start: int = Field(0, ge=0)


class JudgeSpec(StrictModel):
    """A judge of the suite's images (a :func:`~dataigm.judges.person.create_judge` spec) and its options."""

    detector: str
    concept: str | None = None
    threshold: float | None = Field(None, ge=0, le=1)
    person_detector: str | None = None


Metric = Literal["forgetting", "preservation", "person_presence", "lpips", "fid", "csdr"]


class Suite(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]*$")
    description: str
    reference: str = ""  # the protocol reproduced (paper, script)
    source: SourceSpec | None = None  # None: the files are local, relative to the suite file
    files: dict[str, FileSpec] = Field(min_length=1)
    concepts_file: str | None = None  # YAML with the suite's own concepts, relative to the suite file
    taxonomy: str  # a taxonomy category (dataigm concepts)
    target: str  # label of the forgotten concept in the generated sets (e.g. nude, church, van_gogh)
    retain_label: str = "other"  # label of the retained prompts
    forget: list[SetSource] = []
    retain: list[SetSource] = []
    variants: dict[str, dict[Literal["forget", "retain"], Selection]] = {}  # name -> selection replacing a set's
    seeds: SeedSpec = SeedSpec()
    images_per_prompt: int = Field(1, ge=1, le=100)
    generation: GenerationSpec = GenerationSpec()
    judges: list[JudgeSpec] = []
    metrics: list[Metric] = ["forgetting", "preservation", "lpips", "fid"]

    @model_validator(mode="after")
    def _check(self) -> "Suite":
        from dataigm.ingest.prompt_formats import PROMPT_FORMATS
        from dataigm.taxonomy import CATEGORIES

        if self.taxonomy not in CATEGORIES:
            raise InputError(f"taxonomy: unknown taxonomy category {self.taxonomy!r}; valid: {', '.join(CATEGORIES.names())}")
        for key, f in self.files.items():
            if f.format not in PROMPT_FORMATS:
                raise InputError(f"files.{key}.format: unknown format {f.format!r}; valid: {', '.join(PROMPT_FORMATS.names())}")
            if self.source is not None and f.sha256 is None:
                raise InputError(f"files.{key}.sha256: required for a file of a pinned source ({self.source.repo})")
        for role in ROLES:
            for s in getattr(self, role):
                if s.file not in self.files:
                    raise InputError(f"{role}: file {s.file!r} is not in files ({', '.join(self.files)})")
        if not self.forget and not self.retain:
            raise InputError("a suite needs forget and/or retain prompts")
        if self.forget and not self.judges:
            raise InputError("a suite with forget prompts needs at least one judge")
        return self

    @property
    def utility_only(self) -> bool:
        """A suite without forget prompts measures fidelity to the original model only (e.g. COCO)."""
        return not self.forget

    def url(self, key: str) -> str:
        """The raw download URL of file ``key`` at the pinned commit."""
        if self.source is None:
            raise SuiteError(f"suite {self.name}: file {key!r} is local ({self.files[key].path}); it has no URL")
        return f"https://raw.githubusercontent.com/{self.source.repo}/{self.source.commit}/{self.files[key].path}"

    def sha256(self) -> str:
        """A digest of the whole suite (part of the original-image cache key)."""
        data = self.model_dump(mode="json")
        if data["concepts_file"] is None:  # unset: the digests of suites written before the field existed
            del data["concepts_file"]
        return json_sha256(data)

    def sets(self, variant: str | None = None) -> dict[str, list[SetSource]]:
        """forget/retain sources, with ``variant``'s selections applied."""
        if variant is not None and variant not in self.variants:
            valid = ", ".join(self.variants) or "none"
            raise SuiteError(f"suite {self.name}: unknown prompt set {variant!r}{did_you_mean(variant, self.variants)}; valid: {valid}")
        out = {}
        for role in ROLES:
            sources = getattr(self, role)
            if variant is not None and role in self.variants[variant]:
                sources = [s.model_copy(update={"select": self.variants[variant][role]}) for s in sources]
            out[role] = sources
        return out


def suites_dir() -> Path:
    """The shipped suites folder (``builders/suites``)."""
    from dataigm.resources import resource_dir

    return resource_dir("builders") / "suites"


def suite_names() -> list[str]:
    """Names of the shipped suites, sorted."""
    folder = suites_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_suite(name_or_path: str | Path) -> Suite:
    """A shipped suite by name, or a suite YAML by path; errors name the file, field and the valid names."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = suites_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise SuiteError(f"unknown suite {str(name_or_path)!r}{did_you_mean(str(name_or_path), suite_names())}; valid: {', '.join(suite_names())} (or a path to a suite YAML)")
    from dataigm.taxonomy import register_concepts_file

    data = read_yaml_mapping(path, "suite", SuiteError)
    register_concepts_file(data.get("concepts_file"), path.parent, str(path), SuiteError)
    suite = validate(Suite, data, str(path), "suite", SuiteError)
    if path.parent == suites_dir() and suite.name != path.stem:
        raise SuiteError(f"{path}: field 'name' is {suite.name!r} but the file is named {path.stem!r}")
    suite._base_dir = path.parent.resolve()  # type: ignore[attr-defined]
    return suite


def suite_base_dir(suite: Suite) -> Path:
    """The folder a suite's local files and ``concepts_file`` are relative to (the suite file's)."""
    return getattr(suite, "_base_dir", Path.cwd())


def load_set(suite: Suite, role: str, files: dict[str, Path], variant: str | None = None, limit: int | None = None) -> list[PromptRecord]:
    """The records of one set (``forget`` or ``retain``) read from the fetched ``files`` (key -> local path).

    Indices are the files' own (IGMU: position in the subcategory; UnlearnDiffAtk: ``case_number``) unless they
    repeat within the set, in which case records are numbered by position and the file's index is kept in
    ``extra["file_index"]``: image pairing needs one index per prompt. ``limit`` keeps the first N of each source.
    """
    from dataigm.ingest.prompt_formats import import_prompts

    records: list[PromptRecord] = []
    for source in suite.sets(variant)[role]:
        spec = suite.files[source.file]
        recs = import_prompts(files[source.file], spec.format, role, category=source.category, concept=source.concept)
        recs = [r for r in recs if source.select.keep(r)]
        if source.select.limit is not None:
            recs = recs[: source.select.limit]
        if limit is not None:
            recs = recs[:limit]
        if not recs:
            raise SuiteError(f"suite {suite.name}: the {role} selection of {spec.path} keeps no prompt ({source.select.model_dump(exclude_defaults=True)})")
        records += recs
    if len({r.index for r in records}) != len(records):
        for i, r in enumerate(records):
            r.extra["file_index"] = r.index
            r.index = i
    return records
