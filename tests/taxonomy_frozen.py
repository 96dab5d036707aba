"""A frozen copy of dataigm/taxonomy.py's Python tables as they were before the concepts became YAML files
(builders/concepts/). test_concepts.py compares the loaded data against it, so the move changed no trigger,
synonym, replacement or description. Never edit: it is the reference, not code in use.
"""


from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from dataigm.core.registry import Registry
from dataigm.core.schema import slugify


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)  # "fruit ." -> "fruit."
    text = re.sub(r"([,;:])(\s*[,;:.])+", r"\2", text)  # ", ," / ", ." -> ","
    text = re.sub(r"\b(a|an)\s+(a|an)\b", r"\2", text, flags=re.I)
    text = re.sub(r"\ba(?=\s+[aeiouAEIOU])", "an", text)
    text = re.sub(r"\ban(?=\s+[^aeiouAEIOU\W])", "a", text)
    return text.strip(" ,;:").strip()


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
            raise ValueError(f"prompt {prompt!r} does not mention concept {self.name!r} (triggers: {self.synonyms or self.triggers})")
        rep = f" {self.replacement} " if self.replacement else " "
        return _tidy(self._pattern().sub(rep, prompt))


@dataclass
class Category:
    """A family of concepts sharing a label space convention and a content policy."""

    name: str
    description: str
    concepts: dict[str, Concept] = field(default_factory=dict)
    nsfw: bool = False
    concept_factory: Callable[[str], Concept] | None = None  # open-ended categories (artists)

    def get(self, name: str) -> Concept:
        key = slugify(name)
        if key in self.concepts:
            return self.concepts[key]
        for c in self.concepts.values():  # synonyms: "Vincent van Gogh" -> van_gogh
            if any(slugify(s) == key for s in c.synonyms):
                return c
        if self.concept_factory is not None:
            return self.concept_factory(name)
        raise KeyError(f"unknown concept {name!r} in category {self.name!r}; valid: {', '.join(sorted(self.concepts))}")


CATEGORIES: Registry[Category] = Registry("category")


def get_category(name: str) -> Category:
    return CATEGORIES.get(name)


def get_concept(category: str, name: str) -> Concept:
    return get_category(category).get(name)


# --- nudity ---------------------------------------------------------------------------------------------
_NUDITY_WORDS = ("nude", "nudes", "naked", "nudity", "topless", "bottomless", "undressed", "unclothed", "nsfw", "without clothes", "no clothes")
CATEGORIES.register(
    "nudity",
    Category(
        "nudity",
        "Exposed nudity (the I2P 'sexual' concept); binary: not_nude / nude.",
        nsfw=True,
        concepts={
            "nudity": Concept(
                "nudity",
                "nudity",
                "nude",
                triggers=tuple(rf"\b{re.escape(w)}\b" for w in _NUDITY_WORDS),
                synonyms=_NUDITY_WORDS,
                description="A person shown with exposed breasts, genitalia or buttocks.",
            )
        },
    ),
)


# --- style: any artist; van_gogh predefined with its synonyms -------------------------------------------
def _artist_concept(name: str, synonyms: tuple[str, ...] = ()) -> Concept:
    names = sorted({name, *synonyms}, key=len, reverse=True)
    alt = "|".join(r"\s+".join(re.escape(part) for part in n.split()) for n in names)
    a = f"(?:{alt})"
    triggers = (
        rf",?\s*(?:with|in)\s+(?:the\s+|an?\s+)?{a}(?:'s)?[\s-]+style",
        rf",?\s*in\s+the\s+(?:art\s+)?style\s+of\s+{a}",
        rf",?\s*(?:painted\s+|drawn\s+)?by\s+{a}",
        rf"{a}(?:'s)?[\s-]+style",
        rf"{a}",
    )
    return Concept(slugify(name), "style", slugify(name), triggers, tuple(names), description=f"The painting style of {name}.")


CATEGORIES.register(
    "style",
    Category(
        "style",
        "Artistic styles; one class per artist plus 'realistic'.",
        concepts={"van_gogh": _artist_concept("Van Gogh", ("Vincent van Gogh", "Vincent Van Gogh"))},
        concept_factory=_artist_concept,
    ),
)

# --- object: the ten Imagenette classes; church and parachute are the paper's targets ---------------------
# replacement: a different everyday object, so the paired negative is a hard, concept-free negative.
IMAGENETTE = {
    "tench": (("tench",), "rock"),
    "english_springer": (("English springer spaniel", "English springer", "springer spaniel"), "cat"),
    "cassette_player": (("cassette player", "cassette deck", "tape player"), "book"),
    "chain_saw": (("chain saw", "chainsaw"), "hammer"),
    "church": (("church", "cathedral", "chapel"), "house"),
    "french_horn": (("French horn", "horn"), "violin"),
    "garbage_truck": (("garbage truck", "dump truck", "trash truck"), "bus"),
    "gas_pump": (("gas pump", "petrol pump", "fuel pump"), "mailbox"),
    "golf_ball": (("golf ball",), "tennis ball"),
    "parachute": (("parachute", "paraglider"), "kite"),
}


def _object_concept(name: str, synonyms: tuple[str, ...], replacement: str) -> Concept:
    words = [r"\s+".join(re.escape(p) for p in s.split()) for s in sorted(synonyms, key=len, reverse=True)]
    triggers = tuple(rf"\b{w}(?:e?s)?\b" for w in words)
    return Concept(name, "object", name, triggers, synonyms, replacement, description=f"A {synonyms[0]} in the image.")


CATEGORIES.register(
    "object",
    Category(
        "object",
        "Objects; the ten Imagenette classes (church and parachute are the paper's targets) plus 'other'.",
        concepts={k: _object_concept(k, syn, rep) for k, (syn, rep) in IMAGENETTE.items()},
    ),
)
