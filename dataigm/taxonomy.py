"""The concept taxonomy, in the spirit of the paper's CatIGMU: categories, their concepts, trigger words,
synonyms and the rule that turns a concept prompt into its paired negative.

The concepts are data, not code: one YAML file per category under ``builders/concepts/`` (see docs/build.md,
"Adding a concept"), loaded into :data:`CATEGORIES` on import; a recipe or suite adds its own with
``concepts_file`` (:func:`load_concepts_file`). This module only loads and applies them.

A concept's negative rule removes (or replaces) every trigger phrase and tidies the sentence::

    >>> get_concept("nudity", "nudity").negative("a nude woman by the lake")
    'a woman by the lake'
    >>> get_concept("style", "van_gogh").negative("a bowl of fruit with Van Gogh style.")
    'a bowl of fruit.'
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import Field, field_validator, model_validator

from dataigm.core.errors import InputError, UnknownNameError
from dataigm.core.registry import Registry, did_you_mean
from dataigm.core.schema import slugify
from dataigm.core.settings import SettingsError, StrictModel, slug_name, validate, yaml_error_line


class ConceptError(SettingsError):
    """An invalid concept file; the message names the file, the field and the value."""


def fix_articles(text: str) -> str:
    """``a`` before a vowel becomes ``an`` and ``an`` before a consonant ``a`` (``a apple`` -> ``an apple``)."""
    text = re.sub(r"\ba(?=\s+[aeiouAEIOU])", "an", text)
    return re.sub(r"\ban(?=\s+[^aeiouAEIOU\W])", "a", text)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)  # "fruit ." -> "fruit."
    text = re.sub(r"([,;:])(\s*[,;:.])+", r"\2", text)  # ", ," / ", ." -> ","
    text = re.sub(r"\b(a|an)\s+(a|an)\b", r"\2", text, flags=re.I)
    return fix_articles(text).strip(" ,;:").strip()


@dataclass(frozen=True)
class Concept:
    """One concept a detector judges: its label name, trigger phrases (regexes) and synonyms."""

    name: str
    category: str
    label_name: str
    triggers: tuple[str, ...]
    synonyms: tuple[str, ...] = ()
    replacement: str = ""  # what a trigger becomes in the paired negative ("" removes it)
    description: str = ""
    trigger_replacements: tuple[str | None, ...] = ()  # a trigger's own replacement; None: ``replacement``
    phrases: tuple[str, ...] = ()  # how the category's templates name the concept ({subject})
    imagenet_index: int | None = None  # the ImageNet-1k class (Imagenette objects), for the imagenet judge
    source: str = field(default="", compare=False)  # the file it was loaded from

    def _pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{t})" for t in self.triggers), re.IGNORECASE)

    def mentions(self, prompt: str) -> bool:
        """Whether ``prompt`` contains one of the concept's trigger phrases."""
        return bool(self._pattern().search(prompt))

    def negative(self, prompt: str) -> str:
        """The paired negative of ``prompt``: trigger phrases removed or replaced, the sentence tidied.

        Raises ValueError when no trigger occurs, since the "negative" would show the same thing.
        """
        if not self.mentions(prompt):
            raise InputError(f"prompt {prompt!r} does not mention concept {self.name!r} (triggers: {self.synonyms or self.triggers})")
        if not any(r is not None for r in self.trigger_replacements):
            rep = f" {self.replacement} " if self.replacement else " "
            return _tidy(self._pattern().sub(rep, prompt))
        # one group per trigger, tried in the same order as _pattern's alternatives
        named = re.compile("|".join(f"(?P<t{i}>{t})" for i, t in enumerate(self.triggers)), re.IGNORECASE)
        return _tidy(named.sub(self._replace_match, prompt))

    def _replace_match(self, match: re.Match[str]) -> str:
        index = next(i for i in range(len(self.triggers)) if match.group(f"t{i}") is not None)
        own = self.trigger_replacements[index] if index < len(self.trigger_replacements) else None
        rep = self.replacement if own is None else own
        return f" {rep} " if rep else " "


@dataclass
class Category:
    """A family of concepts sharing a label space convention, a content policy and prompt templates."""

    name: str
    description: str
    concepts: dict[str, Concept] = field(default_factory=dict)
    nsfw: bool = False
    concept_factory: Callable[[str], Concept] | None = None  # open-ended categories (artists)
    templates: tuple[str, ...] = ()  # prompts showing a concept; {subject} is one of its phrases
    retain_templates: tuple[str, ...] = ()  # prompts showing none of the category's concepts
    negative_label: str = "other"  # label of the paired negatives and the retained prompts
    default_replacement: str = ""  # the replacement of a concept added without one (dataigm new-concept)
    sources: tuple[str, ...] = ()  # where the lists and templates come from, and their licences
    source: str = ""  # the file it was loaded from

    def get(self, name: str) -> Concept:
        key = slugify(name)
        if key in self.concepts:
            return self.concepts[key]
        for c in self.concepts.values():  # synonyms: "Vincent van Gogh" -> van_gogh
            if any(slugify(s) == key for s in c.synonyms):
                return c
        if self.concept_factory is not None:
            return self.concept_factory(name)
        raise UnknownNameError(f"unknown concept {name!r} in category {self.name!r}{did_you_mean(name, self.concepts)}; valid: {', '.join(sorted(self.concepts))}")

    def prompts(self, concept: Concept) -> list[str]:
        """The category's templates filled with each of the concept's phrases (articles fixed)."""
        phrases = concept.phrases or concept.synonyms[:1] or (concept.name,)
        return [fix_articles(t.replace("{subject}", p)) for t in self.templates for p in phrases]


CATEGORIES: Registry[Category] = Registry("category")


def get_category(name: str) -> Category:
    return CATEGORIES.get(name)


def get_concept(category: str, name: str) -> Concept:
    return get_category(category).get(name)


# --- the concept files ----------------------------------------------------------------------------------
class TriggerSpec(StrictModel):
    """A trigger with its own replacement (``gun`` -> ``camera``), where the concept's one word does not fit."""

    pattern: str
    replacement: str


class ConceptSpec(StrictModel):
    """One concept in a YAML file; triggers default to the category's ``trigger_rule`` over the synonyms."""

    category: str | None = None  # may be left out inside a category file
    name: str
    label_name: str | None = None  # default: the name
    triggers: list[str | TriggerSpec] = []
    synonyms: list[str] = []
    replacement: str = ""
    description: str = ""
    phrases: list[str] = []  # how prompts name it; default: the category's default_phrase of the first synonym
    imagenet_index: int | None = Field(None, ge=0, lt=1000)

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return slug_name(v, "labels")

    @field_validator("triggers")
    @classmethod
    def _compiles(cls, v: list[str | TriggerSpec]) -> list[str | TriggerSpec]:
        for t in v:
            pattern = t if isinstance(t, str) else t.pattern
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"trigger {pattern!r} is not a valid regular expression ({e})") from None
        return v

    @model_validator(mode="after")
    def _check(self) -> "ConceptSpec":
        if not self.triggers and not self.synonyms:
            raise ValueError(f"concept {self.name!r} needs 'triggers' or 'synonyms' (its trigger rule runs over the synonyms)")
        return self


class CategorySpec(StrictModel):
    """A category file: the category, its trigger rule, its prompt templates and its concepts."""

    category: str
    description: str
    nsfw: bool = False
    open: bool = False  # any name is a concept of it (artists): built from the name by trigger_rule
    # regexes with {name} (one trigger per synonym, longest first) or {names} (one alternation over all synonyms)
    trigger_rule: list[str] = [r"\b{name}\b"]
    concept_description: str = ""  # description of a concept that gives none; {name} is its first synonym
    default_phrase: str = "{name}"  # the phrase of a concept that gives none
    negative_label: str = "other"
    default_replacement: str = ""  # the replacement a new concept gets when it names none (dataigm new-concept)
    templates: list[str] = []
    retain_templates: list[str] = []
    sources: list[str] = []
    concepts: list[ConceptSpec] = []

    @field_validator("category")
    @classmethod
    def _slug(cls, v: str) -> str:
        return slug_name(v)

    @field_validator("templates")
    @classmethod
    def _has_subject(cls, v: list[str]) -> list[str]:
        for t in v:
            if "{subject}" not in t:
                raise ValueError(f"template {t!r} has no {{subject}} (where the concept's phrase goes)")
        return v

    @model_validator(mode="after")
    def _own_concepts(self) -> "CategorySpec":
        names = [c.name for c in self.concepts]
        if len(set(names)) != len(names):
            raise ValueError(f"concepts: names must be unique, got {sorted(n for n in set(names) if names.count(n) > 1)} more than once")
        others = sorted({c.category for c in self.concepts if c.category not in (None, self.category)})
        if others:
            raise ValueError(f"concepts: a category file holds its own category's concepts ({self.category!r}), not {others}")
        return self


def _as_regex(name: str) -> str:
    return r"\s+".join(re.escape(part) for part in name.split())


def rule_triggers(rule: list[str], synonyms: list[str] | tuple[str, ...]) -> list[str]:
    """A category's trigger rule applied to a concept's synonyms (longest first, so the longest phrase wins)."""
    names = sorted(dict.fromkeys(synonyms), key=len, reverse=True)
    alternation = "(?:" + "|".join(_as_regex(n) for n in names) + ")"
    out: list[str] = []
    for template in rule:
        if "{names}" in template:
            out.append(template.replace("{names}", alternation))
        else:
            out += [template.replace("{name}", _as_regex(n)) for n in names]
    return out


def build_concept(spec: ConceptSpec, category: CategorySpec, source: str) -> Concept:
    """The :class:`Concept` of ``spec``, with the category's defaults filled in."""
    first = spec.synonyms[0] if spec.synonyms else spec.name
    if spec.triggers:
        triggers = [t if isinstance(t, str) else t.pattern for t in spec.triggers]
        own = [None if isinstance(t, str) else t.replacement for t in spec.triggers]
    else:
        triggers, own = rule_triggers(category.trigger_rule, spec.synonyms), []
    return Concept(
        spec.name, category.category, spec.label_name or spec.name, tuple(triggers), tuple(spec.synonyms), spec.replacement,
        spec.description or category.concept_description.replace("{name}", first),
        trigger_replacements=tuple(own) if any(r is not None for r in own) else (),
        phrases=tuple(spec.phrases) or (fix_articles(category.default_phrase.replace("{name}", first)),),
        imagenet_index=spec.imagenet_index, source=source,
    )


def _open_factory(spec: CategorySpec, source: str) -> Callable[[str], Concept]:
    def make(name: str) -> Concept:
        return build_concept(ConceptSpec(name=slugify(name), synonyms=[name]), spec, source)

    return make


def _category(spec: CategorySpec, source: str) -> Category:
    return Category(
        spec.category, spec.description, {}, spec.nsfw, _open_factory(spec, source) if spec.open else None,
        tuple(spec.templates), tuple(spec.retain_templates), spec.negative_label, spec.default_replacement, tuple(spec.sources), source,
    )


_SPECS: dict[str, CategorySpec] = {}  # category name -> its spec (trigger rule and defaults for added concepts)
_LOADED: set[tuple[str, str]] = set()  # (resolved path, sha256): a file loaded twice adds nothing the second time


def _category_spec(spec: ConceptSpec, category: str | None, source: str) -> CategorySpec:
    name = spec.category or category
    if name is None:
        raise ConceptError(f"{source}: concept {spec.name!r}: field 'category' is required (one of {', '.join(CATEGORIES.names())})")
    if name not in _SPECS:
        raise ConceptError(f"{source}: concept {spec.name!r}: unknown category {name!r}{did_you_mean(name, CATEGORIES.names())}; valid: {', '.join(CATEGORIES.names())} "
                           "(or a category file of its own)")
    return _SPECS[name]


def parse_concept(data: dict[str, Any], source: str = "<concept>") -> Concept:
    """A concept from a mapping (as in a concept file), validated and completed by its category; not registered."""
    spec = validate(ConceptSpec, data, source, "concept", ConceptError)
    return build_concept(spec, _category_spec(spec, None, source), source)


def _add_concept(spec: ConceptSpec, category: str | None, source: str) -> Concept:
    name = _category_spec(spec, category, source).category
    concept = build_concept(spec, _SPECS[name], source)
    existing = CATEGORIES.get(name).concepts.get(concept.name)
    if existing is not None and existing != concept:
        raise ConceptError(f"{source}: concept {concept.name!r} of category {name!r} is already defined, differently, in {existing.source}")
    CATEGORIES.get(name).concepts.setdefault(concept.name, concept)
    return concept


def _add_category(spec: CategorySpec, source: str) -> None:
    if spec.category in CATEGORIES:
        raise ConceptError(f"{source}: category {spec.category!r} is already defined in {CATEGORIES.get(spec.category).source}; "
                           "add concepts to it with a concept file (a mapping with 'category' and 'name', or a list of them)")
    _SPECS[spec.category] = spec
    CATEGORIES.register(spec.category, _category(spec, source))
    for c in spec.concepts:
        _add_concept(c, spec.category, source)


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise ConceptError(f"{path}: concepts file not found") from None
    except yaml.YAMLError as e:
        raise ConceptError(f"{path}: not valid YAML: {yaml_error_line(e)}") from None


def load_concepts_file(path: str | Path) -> list[Concept]:
    """Register the concepts of one YAML file: a category (with ``description``), one concept, or a list of concepts.

    Returns the concepts it defines. A file already loaded (same path and content) adds nothing.
    """
    path = Path(path)
    data = _read(path)
    key = (str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest())
    source = str(path)
    if isinstance(data, dict) and "name" not in data:
        spec = validate(CategorySpec, data, source, "category file", ConceptError)
        if key not in _LOADED:
            _add_category(spec, source)
        _LOADED.add(key)
        return list(CATEGORIES.get(spec.category).concepts.values())
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, dict) for i in items):
        raise ConceptError(f"{path}: a concepts file holds a category (a mapping with 'category' and 'description'), "
                           f"a concept (a mapping with 'category' and 'name') or a list of concepts; got {type(data).__name__}")
    specs = [validate(ConceptSpec, item, f"{source} (concept {i + 1})" if len(items) > 1 else source, "concept", ConceptError)
             for i, item in enumerate(items)]
    concepts = [_add_concept(s, None, source) for s in specs]
    _LOADED.add(key)
    return concepts


def register_concepts_file(value: Any, base_dir: Path, source: str, error: type[Exception] = ConceptError) -> None:
    """Load a recipe's or suite's ``concepts_file`` (relative to ``base_dir``) into the taxonomy, before it is
    validated; a bad file raises ``error`` naming the recipe (or suite), the field and the concept file's problem."""
    if not value:
        return
    path = Path(str(value)) if Path(str(value)).is_absolute() else base_dir / str(value)
    try:
        load_concepts_file(path)
    except ConceptError as e:
        raise error(f"{source}: field 'concepts_file': {e}") from None


def concepts_dir() -> Path:
    """The shipped concept files (``builders/concepts``)."""
    from dataigm.resources import resource_dir

    return resource_dir("builders") / "concepts"


def _load_builtin() -> None:
    files = sorted(concepts_dir().glob("*.yaml"))
    categories = [f for f in files if isinstance(data := _read(f), dict) and "name" not in data]
    for f in categories + [f for f in files if f not in categories]:
        load_concepts_file(f)


_load_builtin()
