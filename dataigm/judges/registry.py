"""The judge registry: every judge kind is one :class:`JudgeKind` class, registered with :func:`register_judge`.

A judge spec is ``KIND[:NAME][@LOCATION]`` (``nudenet:rece``, ``imagenet:church@local-dir:PATH``,
``igmu:object_church@DIR``), or a dataigm detector's location (a folder, ``local-dir:PATH``, ``hf-hub:org/name``,
``org/name[@revision]``, ``dataigm:<any of those>``). :func:`parse_judge_spec` finds the kind; the kind's class then

* ``check_spec``: checks the spec's names (preset, class, task) without loading any weights (commands call it up
  front, before any work); most kinds only declare ``names`` (:class:`NoName`, :class:`NameIn`, :class:`NameBy`);
* ``from_spec``: builds the judge (see :class:`dataigm.judges.types.Judge`);
* describes itself for ``dataigm list-judges``: what it decides and how, the reference it reproduces, where its weights
  come from, their licence and whether they are available offline (``offline``).

:func:`create_judge` and :func:`check_judge_spec` are the only entry points; neither knows any kind by name. This
module imports no heavy framework: kinds import theirs inside ``from_spec``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Collection, Protocol, Sequence

from dataigm.core.errors import DataigmError
from dataigm.core.precision import DEFAULT_JUDGE_PRECISION, check_precision
from dataigm.core.registry import Registry, did_you_mean
from dataigm.core.versions import installed_version
from dataigm.judges.types import precision_name

if TYPE_CHECKING:
    from dataigm.judges.types import Judge


class JudgeSpecError(DataigmError, ValueError):
    """A judge spec or option that cannot be used (unknown preset, class, task, or an option the kind ignores)."""


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec: ``kind``, the ``name`` after ``kind:`` and the ``location`` after ``@`` ("" when absent)."""

    text: str
    kind: str
    name: str = ""
    location: str = ""


@dataclass
class JudgeOptions:
    """Settings beside the spec. ``device``, ``precision`` and ``threshold`` apply to every kind; the others only
    to the kinds that list them in :attr:`JudgeKind.options` (any other kind refuses them in one line)."""

    concept: str | None = None  # the class a multi-class judge decides on
    threshold: float | None = None  # overrides the kind's default decision threshold
    classes: Sequence[str] | None = None  # NudeNet: the classes that count
    device: str | None = None
    precision: str = DEFAULT_JUDGE_PRECISION  # fp32 unless asked: thresholds were chosen in fp32
    model: str | None = None  # where the judge's weights are (a file, folder or Hub id), when not in the spec
    clip_model: str | None = None  # overrides the CLIP model of CLIP-based judges
    settings: dict[str, Any] = field(default_factory=dict)  # kind-specific settings, documented by each kind

    COMMON: ClassVar[frozenset[str]] = frozenset({"device", "precision", "threshold", "settings"})

    def given(self) -> set[str]:
        """The option names set to something other than their default."""
        defaults = JudgeOptions()
        return {f.name for f in fields(self) if getattr(self, f.name) != getattr(defaults, f.name)}


class NameRule(Protocol):
    """How a kind checks the NAME of ``KIND:NAME`` up front: ``check`` raises a user error for a NAME it refuses."""

    def check(self, kind: str, name: str) -> None: ...


@dataclass(frozen=True)
class AnyName:
    """Any NAME (or none): ``from_spec`` reads it."""

    def check(self, kind: str, name: str) -> None:
        """Accept every name."""


@dataclass(frozen=True)
class NoName:
    """The kind takes no NAME; ``usage`` is the spec to type instead (the error ends with it)."""

    usage: str

    def check(self, kind: str, name: str) -> None:
        """Refuse any name."""
        if name:
            raise JudgeSpecError(f"{kind} takes no name (got {name!r}); use {self.usage}")


@dataclass(frozen=True, eq=False)
class NameIn:
    """NAME, when given, is one of ``choices`` (a dict's keys, read at each check); the ``error`` calls them ``what``
    and lists them in their order, or sorted with ``sort``."""

    choices: Collection[str]
    what: str
    sort: bool = False
    error: type[DataigmError] = JudgeSpecError

    def check(self, kind: str, name: str) -> None:
        """Refuse a name outside ``choices``."""
        if name and name not in self.choices:
            valid = sorted(self.choices) if self.sort else self.choices
            raise self.error(f"unknown {self.what} {name!r}{did_you_mean(name, self.choices)}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class NameBy:
    """NAME, when given, must pass ``lookup`` (the kind's own name resolver, which raises the user error)."""

    lookup: Callable[[str], object]

    def check(self, kind: str, name: str) -> None:
        """Refuse a name ``lookup`` refuses."""
        if name:
            self.lookup(name)


class JudgeKind:
    """One judge kind. Subclasses set the class attributes and implement :meth:`from_spec`; ``syntax`` is the spec
    form users type. :meth:`weights_location` and :meth:`description` are the parts every kind's judge shares."""

    kind: ClassVar[str]
    syntax: ClassVar[str]
    decides: ClassVar[str]  # what it decides and how: model, rule, threshold
    reference: ClassVar[str]  # the repository and file it reproduces
    weights: ClassVar[str]  # where its weights come from
    licence: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset()  # JudgeOptions fields it uses beyond JudgeOptions.COMMON
    settings: ClassVar[frozenset[str]] = frozenset()  # the keys of JudgeOptions.settings it reads (documented per kind)
    names: ClassVar[NameRule] = AnyName()  # how check_spec checks the NAME

    @classmethod
    def parse(cls, spec: str) -> JudgeSpec:
        """``KIND[:NAME][@LOCATION]`` -> :class:`JudgeSpec`."""
        body = spec[len(cls.kind):].removeprefix(":")
        name, _, location = body.partition("@")
        return JudgeSpec(spec, cls.kind, name, location)

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        """Check names and syntax without loading weights; raise :class:`JudgeSpecError` (or a DataigmError)."""
        cls.names.check(cls.kind, spec.name)

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> "Judge":
        raise NotImplementedError

    @staticmethod
    def weights_location(spec: JudgeSpec, options: JudgeOptions, *, needed: str = "") -> str | None:
        """Where the judge's weights are: ``options.model``, else the spec's ``@LOCATION``, else None (the kind's
        default); with ``needed``, a kind that has no default raises it as a :class:`JudgeSpecError` instead."""
        location = options.model or spec.location or None
        if location is None and needed:
            raise JudgeSpecError(needed)
        return location

    @classmethod
    def description(cls, judge: Any, runtime: str = "", **fields: Any) -> dict[str, Any]:
        """A judge's ``describe()``: this ``kind`` and the judge's ``name``, then ``fields`` in order; with ``runtime``
        (the package that builds its torch model), that package's version and the judge's device and precision last."""
        described = {"kind": cls.kind, "name": judge.name, **fields}
        if runtime:
            described.update({runtime: installed_version(runtime), "device": judge.device, "precision": precision_name(judge.autocast_dtype)})
        return described

    @classmethod
    def offline(cls) -> str:
        """"yes" when the weights are on this machine (or ship with an installed package), else what is missing."""
        return "needs its weights (see 'weights')"

    @classmethod
    def catalogue_entry(cls) -> dict[str, Any]:
        """The row ``dataigm list-judges`` prints for this kind."""
        return {"kind": cls.kind, "syntax": cls.syntax, "decides": cls.decides, "reference": cls.reference,
                "weights": cls.weights, "licence": cls.licence, "offline": cls.offline(),
                "options": sorted(cls.options), "settings": sorted(cls.settings)}


JUDGE_KINDS: Registry[type[JudgeKind]] = Registry("judge kind")
DATAIGM_KIND = "dataigm"  # the exported dataigm detectors: the kind of any spec that is a location


def register_judge(cls: type[JudgeKind]) -> type[JudgeKind]:  # pragma: no mutate block, runs at import, before a mutant is chosen
    """Class decorator: add a judge kind to :data:`JUDGE_KINDS` under ``cls.kind``."""
    JUDGE_KINDS.register(cls.kind, cls)
    return cls


def judge_kinds() -> list[type[JudgeKind]]:
    """Every registered kind, in name order."""
    return [JUDGE_KINDS.get(name) for name in JUDGE_KINDS.names()]


def parse_judge_spec(spec: str) -> tuple[type[JudgeKind], JudgeSpec]:
    """Find the kind of ``spec`` and parse it (see the module docstring)."""
    if not spec or not spec.strip():
        raise JudgeSpecError(f"empty detector spec; use one of: {', '.join(k.syntax for k in judge_kinds())}")
    head = spec.split(":", 1)[0].split("@", 1)[0]
    if head in JUDGE_KINDS:
        kind = JUDGE_KINDS.get(head)
        return kind, kind.parse(spec)
    if _misspelt_kind(head, spec):
        JUDGE_KINDS.get(head)  # the error suggests the kind it is close to
    if "/" in head or spec.startswith(("local-dir:", "hf-hub:")) or ":" not in spec or Path(spec).expanduser().exists():
        kind = JUDGE_KINDS.get(DATAIGM_KIND)
        return kind, kind.parse(spec)
    JUDGE_KINDS.get(head)  # an unknown prefix: the error lists the valid kinds
    raise AssertionError("unreachable")


def _misspelt_kind(head: str, spec: str) -> bool:
    """A bare word close to a kind's name (``nudnet``) that is no existing path: a typo, not a detector's location."""
    import difflib

    if "/" in head or "\\" in head or Path(spec).expanduser().exists() or spec.startswith(("local-dir:", "hf-hub:")):
        return False
    return bool(difflib.get_close_matches(head, JUDGE_KINDS.names(), n=1, cutoff=0.6))


def check_judge_spec(spec: str) -> str:
    """Check a judge spec's syntax and names without loading any weights; returns the judge kind."""
    kind, parsed = parse_judge_spec(spec)
    kind.check_spec(parsed)
    return kind.kind


def takes_option(spec: str, option: str) -> bool:
    """Whether the judge of ``spec`` uses the :class:`JudgeOptions` field ``option`` (so a setting shared by several
    judges goes only to those that take it)."""
    kind, _ = parse_judge_spec(spec)
    return option in JudgeOptions.COMMON or option in kind.options


def _check_options(kind: type[JudgeKind], options: JudgeOptions) -> None:
    check_precision(options.precision)
    if options.threshold is not None and not 0.0 <= options.threshold <= 1.0:
        raise JudgeSpecError(f"threshold must be in [0, 1], got {options.threshold}")
    refused = sorted(options.given() - JudgeOptions.COMMON - kind.options)
    if refused:
        users = {o: [k.kind for k in judge_kinds() if o in k.options] for o in refused}
        said = "; ".join(f"{o} applies to {', '.join(users[o]) or 'no judge'}" for o in refused)
        raise JudgeSpecError(f"judge {kind.kind}: {said}")
    unknown = sorted(set(options.settings) - kind.settings)
    if unknown:  # a misspelt option or a setting of another kind would otherwise be ignored without a word
        known = sorted(kind.settings | kind.options | JudgeOptions.COMMON)
        raise JudgeSpecError(f"judge {kind.kind} takes no setting {unknown[0]!r}{did_you_mean(unknown[0], known)}; its settings: "
                             f"{', '.join(sorted(kind.settings)) or 'none'}")


# The option names older callers pass; each is JudgeOptions.model for the kind it names.
_MODEL_ALIASES = ("imagenet_model", "igmu_head", "nudenet_model")


def create_judge(spec: str, **options: Any) -> "Judge":
    """Build a judge from a spec string and :class:`JudgeOptions` fields as keyword arguments.

    ``dataigm list-judges`` lists every kind with its syntax. ``imagenet_model=``, ``igmu_head=`` and
    ``nudenet_model=`` are accepted as the ``model=`` of the kind they name; ``None`` values are ignored.
    """
    kind, parsed = parse_judge_spec(spec)
    kind.check_spec(parsed)
    for alias in _MODEL_ALIASES:
        value = options.pop(alias, None)
        if value is not None and alias.split("_")[0] == kind.kind and not options.get("model"):
            options["model"] = value
    opts = JudgeOptions(**{k: v for k, v in options.items() if v is not None})
    _check_options(kind, opts)
    return kind.from_spec(parsed, opts)
