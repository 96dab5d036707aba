"""The concepts as data: the YAML files against what the Python tables they replaced gave (frozen in
data/taxonomy_frozen.json), every shipped concept's negatives, trigger overlaps between concepts, concept files in
recipes and suites, and ``dataigm concepts``."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from dataigm.cli import main
from dataigm.taxonomy import CATEGORIES, ConceptError, get_concept, load_concepts_file

BUILDERS = Path(__file__).resolve().parents[1] / "builders"
# What the old Python tables gave, written once from a copy of their code: fields, artist concepts, negatives
FROZEN = json.loads((Path(__file__).parent / "data" / "taxonomy_frozen.json").read_text(encoding="utf-8"))
SHIPPED = [(cat, name) for cat in CATEGORIES.names() for name in CATEGORIES.get(cat).concepts]
# (concept, other concept) pairs whose triggers overlap on purpose; a new overlap fails test_triggers_do_not_overlap
INTENDED_OVERLAPS: set[tuple[str, str]] = set()


# --- the YAML files give the tables they replaced ------------------------------------------------------------
def _names_alternation(synonyms: tuple[str, ...]) -> str:
    names = sorted(dict.fromkeys(synonyms), key=len, reverse=True)
    return "(?:" + "|".join(r"\s+".join(re.escape(p) for p in n.split()) for n in names) + ")"


def _canonical(concept) -> dict:
    """A concept's fields as the frozen file keeps them: its triggers with the synonym alternation (whose order of
    equal-length names Python's set order decided in the old tables) replaced by a placeholder, its synonyms sorted."""
    alt = _names_alternation(concept.synonyms)
    return {"name": concept.name, "category": concept.category, "label_name": concept.label_name,
            "triggers": [t.replace(alt, "{names}") for t in concept.triggers], "synonyms": sorted(set(concept.synonyms)),
            "replacement": concept.replacement, "description": concept.description}


@pytest.mark.parametrize("category", sorted(FROZEN["categories"]))
def test_loaded_categories_equal_the_frozen_tables(category: str) -> None:
    old, new = FROZEN["categories"][category], CATEGORIES.get(category)
    assert (new.description, new.nsfw, new.concept_factory is not None) == (old["description"], old["nsfw"], old["open_ended"])
    assert list(new.concepts)[: len(old["concepts"])] == list(old["concepts"])  # same concepts, same order, first
    for name, concept in old["concepts"].items():
        assert _canonical(new.concepts[name]) == concept
        assert new.concepts[name].trigger_replacements == ()


def test_the_shipped_files_load_into_the_frozen_tables_from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader itself, run again into an empty taxonomy (the module ran it once at import): the categories, their
    concepts and their negatives equal the frozen tables, open-ended categories make concepts for any name, and a
    file loaded twice adds nothing."""
    import dataigm.taxonomy as taxonomy
    from dataigm.core.registry import Registry

    fresh: Registry = Registry("category")
    monkeypatch.setattr(taxonomy, "CATEGORIES", fresh)
    monkeypatch.setattr(taxonomy, "_SPECS", {})
    monkeypatch.setattr(taxonomy, "_LOADED", set())
    taxonomy._load_builtin()
    assert set(fresh.names()) == set(CATEGORIES.names())
    fields = ("name", "description", "nsfw", "templates", "retain_templates", "negative_label", "default_replacement", "sources", "source")
    for name in fresh.names():  # every field of every category, against the load at import
        got, loaded = fresh.get(name), CATEGORIES.get(name)
        assert {f: getattr(got, f) for f in fields} == {f: getattr(loaded, f) for f in fields}, name
        assert got.source.endswith(f"{name}.yaml") and got.templates and got.sources
        assert [(c.name, c.phrases, c.source, c.trigger_replacements) for c in got.concepts.values()] == \
               [(c.name, c.phrases, c.source, c.trigger_replacements) for c in loaded.concepts.values()], name
    for category, old in FROZEN["categories"].items():
        new = fresh.get(category)
        assert (new.description, new.nsfw, new.concept_factory is not None) == (old["description"], old["nsfw"], old["open_ended"])
        assert list(new.concepts)[: len(old["concepts"])] == list(old["concepts"])
        for name, concept in old["concepts"].items():
            assert _canonical(new.concepts[name]) == concept, (category, name)
    for concept in sorted(FROZEN["negatives"]):
        got = taxonomy.get_concept(*concept.split("/"))
        assert [got.negative(p) if got.mentions(p) else None for p in FROZEN["prompts"]] == FROZEN["negatives"][concept], concept
    for artist in sorted(FROZEN["artists"])[:5]:
        assert _canonical(taxonomy.get_concept("style", artist)) == FROZEN["artists"][artist]
    before = {c: dict(fresh.get(c).concepts) for c in fresh.names()}
    taxonomy._load_builtin()
    assert {c: dict(fresh.get(c).concepts) for c in fresh.names()} == before


@pytest.mark.parametrize("category", sorted(p.stem for p in (Path(__file__).parents[1] / "builders" / "concepts").glob("*.yaml")))
def test_each_shipped_concept_parsed_alone_is_the_loaded_one(category: str) -> None:
    """parse_concept (what 'dataigm new-concept' checks a kit with) completes a concept from its category exactly as
    loading the category's file does, and registers nothing."""
    import yaml

    from dataigm.taxonomy import concepts_dir, parse_concept

    data = yaml.safe_load((concepts_dir() / f"{category}.yaml").read_text(encoding="utf-8"))
    before = dict(CATEGORIES.get(category).concepts)
    for entry in data.get("concepts") or []:
        concept = parse_concept({"category": category, **entry}, "test.yaml")
        loaded = CATEGORIES.get(category).concepts[concept.name]
        assert _canonical(concept) == _canonical(loaded), concept.name
        assert (concept.phrases, concept.trigger_replacements, concept.imagenet_index) == \
               (loaded.phrases, loaded.trigger_replacements, loaded.imagenet_index), concept.name
        assert concept.source == "test.yaml"
    assert CATEGORIES.get(category).concepts == before
    with pytest.raises(ConceptError, match=r"test.yaml: concept 'x': unknown category 'objekt' \(did you mean 'object'\?\)"):
        parse_concept({"category": "objekt", "name": "x", "synonyms": ["x"]}, "test.yaml")


@pytest.mark.parametrize("artist", sorted(FROZEN["artists"]))
def test_any_artist_is_still_a_style_concept(artist: str) -> None:
    assert _canonical(get_concept("style", artist)) == FROZEN["artists"][artist]


@pytest.mark.parametrize("concept", sorted(FROZEN["negatives"]))
def test_negatives_equal_the_frozen_rules(concept: str) -> None:
    """The frozen prompts: hand-written ones for every trigger form, then the shipped prompt files' when frozen."""
    new, prompts = get_concept(*concept.split("/")), FROZEN["prompts"]
    assert [new.negative(p) if new.mentions(p) else None for p in prompts] == FROZEN["negatives"][concept]
    assert any(new.mentions(p) for p in prompts)


# Pinned before the move: (samples, sha256 of every planned key, prompt, pair prompt, label, role, seed, split, concept)
PLANS = {
    "church.yaml": (128, "e61c22633e960dfbeb58b0dd9968ba7c6d8f7fb0bd376b884057f37322e993a1"),
    "nudity.yaml": (428, "eb7a4c20c82a963ad5044150c7cb12088338480c9d59e562da8e6ad6326a708b"),
    "object_imagenette.yaml": (1400, "945bf0892da4d2099b04bd853b9e4fc9874154735472706a803f6aad0ee2f225"),
    "parachute.yaml": (128, "f897eda9e5628ed10774ea1fbe59cd68d89e3f763f7bfefef0f5016cb454f5b8"),
    "style_artists.yaml": (1008, "5f634501d16d20cdb0c8080a345d290061d0663a9a8db3960a2cb6fdc97f0d48"),
    "van_gogh.yaml": (368, "fb64a2e6151c1ef50a761d06f3eb62bf95da8b9d1e2031ec2641530de07e437c"),
}


@pytest.mark.parametrize("recipe", sorted(PLANS))
def test_shipped_recipes_plan_the_same_samples(recipe: str) -> None:
    from dataigm.generate.plan import plan_build
    from dataigm.recipe import load_recipe

    plan = plan_build(load_recipe(BUILDERS / recipe, ["models=[tiny]"]))
    rows = [[m.key, m.prompt, m.pair_prompt, m.label_name, m.role, m.seed, m.split, m.concept] for s in plan.shards for m in s.samples]
    assert (len(rows), hashlib.sha256(json.dumps(rows).encode()).hexdigest()) == PLANS[recipe]
    assert not plan.skipped_negatives


def test_imagenette_has_one_table() -> None:
    from dataigm.judges.imagenet import IMAGENETTE

    assert IMAGENETTE == {"tench": 0, "english_springer": 217, "cassette_player": 482, "chain_saw": 491, "church": 497,
                          "french_horn": 566, "garbage_truck": 569, "gas_pump": 571, "golf_ball": 574, "parachute": 701}
    assert list(IMAGENETTE) == list(CATEGORIES.get("object").concepts)[:10]


# --- every shipped concept: negatives that stay correct ---------------------------------------------------
def _words(text: str) -> Counter[str]:
    return Counter(w for w in re.findall(r"[\w'-]+", text.lower()) if w not in ("a", "an"))


def grammar_problems(text: str) -> list[str]:
    """What is wrong with a prompt's form: empty, doubled blanks or articles, dangling or doubled punctuation."""
    checks = {
        "empty": not text.strip(), "blank at an end": text != text.strip(), "doubled blank": "  " in text,
        "doubled article": bool(re.search(r"\b(a|an|the)\s+(a|an|the)\b", text, re.I)),
        "blank before punctuation": bool(re.search(r"\s[,.;:!?]", text)), "doubled punctuation": bool(re.search(r"[,;:]\s*[,.;:]", text)),
        "dangling punctuation": bool(re.match(r"^[,.;:]", text) or re.search(r"[,;:]$", text)),
        "dangling article or preposition": bool(re.search(r"\b(a|an|the|of|by|with|in)[.,]?$", text, re.I)),
        "wrong article": bool(re.search(r"\ba\s+[aeiou]|\ban\s+[^aeiou\W]", text, re.I)),
    }
    return [name for name, bad in checks.items() if bad]


@pytest.mark.parametrize("category,name", SHIPPED)
def test_negatives_of_template_prompts(category: str, name: str) -> None:
    cat, concept = CATEGORIES.get(category), get_concept(category, name)
    prompts = cat.prompts(concept)
    assert len(prompts) >= 8
    for prompt in prompts:
        assert concept.mentions(prompt), prompt
        assert not grammar_problems(prompt), (prompt, grammar_problems(prompt))
        negative = concept.negative(prompt)
        assert not concept.mentions(negative), (prompt, negative)
        assert not grammar_problems(negative), (prompt, negative, grammar_problems(negative))
        rest = _words(re.compile("|".join(f"(?:{t})" for t in concept.triggers), re.I).sub(" ", prompt))
        assert rest and not rest - _words(negative), (prompt, negative, rest - _words(negative))  # the rest of the scene stays


@pytest.mark.parametrize("category", CATEGORIES.names())
def test_retained_prompts_name_no_concept(category: str) -> None:
    cat = CATEGORIES.get(category)
    assert len(cat.retain_templates) >= 6 and len(cat.templates) >= 8 and cat.sources
    for prompt in cat.retain_templates:
        assert not grammar_problems(prompt)
        assert [name for c, name in SHIPPED if get_concept(c, name).mentions(prompt)] == [], prompt


def test_triggers_do_not_overlap() -> None:
    """No concept's triggers match another concept's template prompts (bar INTENDED_OVERLAPS)."""
    concepts = [get_concept(c, n) for c, n in SHIPPED]
    found = set()
    for c in concepts:
        for prompt in CATEGORIES.get(c.category).prompts(c):
            found |= {(f"{c.category}/{c.name}", f"{d.category}/{d.name}") for d in concepts if d is not c and d.mentions(prompt)}
    assert found == INTENDED_OVERLAPS


def test_violence_and_harm_keep_the_scene() -> None:
    violence, harm = get_concept("violence", "violence"), get_concept("harm", "illegal_activity")
    assert violence.negative("a soldier pointing a rifle at a crowd in a market") == "a soldier pointing a camera at a crowd in a market"
    assert violence.negative("a man stabbing another man with a knife, film still") == "a man greeting another man, film still"
    assert violence.negative("a man covered in blood near a river") == "a man near a river"
    assert harm.negative("a drug dealer selling drugs at dusk") == "a street vendor selling fruit at dusk"
    assert get_concept("celebrity", "Obama").negative("President Obama giving a speech") == "a man giving a speech"
    assert get_concept("character", "Spiderman").negative("a toy of Spider-Man on a shelf") == "a toy of a man in a red costume on a shelf"


# --- concept files: validation, recipes, suites -------------------------------------------------------------
@pytest.mark.parametrize("text,message", [
    ("category: object\nname: kettle\nsynonyms: [kettle]\ntriggers: ['(kettle']\n", r"field 'triggers': .*'\(kettle' is not a valid regular"),
    ("category: vehicles\nname: tram\nsynonyms: [tram]\n", r"unknown category 'vehicles'; valid: celebrity, character, harm"),
    ("category: object\nname: Kettle\nsynonyms: [kettle]\n", r"field 'name': .*e.g. 'kettle'"),
    ("category: object\nname: kettle\n", r"needs 'triggers' or 'synonyms'"),
    ("category: object\nname: church\nsynonyms: [church]\nreplacement: barn\n", r"already defined, differently, in .*object.yaml"),
    ("- {category: object, name: kettle, synonyms: [kettle], colour: red}\n", r"\(concept 1\)|field 'colour': unknown field"),
    ("category: object\ndescription: again\n", r"category 'object' is already defined in .*object.yaml"),
    ("category: shapes\ndescription: d\nconcepts: [{name: disc, synonyms: [disc]}, {name: disc, synonyms: [disk]}]\n",
     r"names must be unique, got \['disc'\]"),
])
def test_bad_concept_files_name_the_file_field_and_value(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConceptError, match=message) as err:
        load_concepts_file(path)
    assert str(path) in str(err.value)


def test_a_recipe_adds_its_own_concept_and_category(tmp_path: Path) -> None:
    from dataigm.generate.plan import plan_build
    from dataigm.recipe import load_recipe

    (tmp_path / "kettle.yaml").write_text("category: object\nname: kettle\nsynonyms: [kettle, tea kettle]\nreplacement: teapot\n")
    (tmp_path / "vehicles.yaml").write_text(
        "category: vehicles_test\ndescription: trams and buses\ntemplates: ['{subject} in the rain']\n"
        "concepts: [{name: tram, synonyms: [tram, streetcar], replacement: bus}]\n")
    recipe = "name: r\ncategory: {cat}\ntaxonomy: {tax}\nconcepts_file: {file}\nlabels: [other, {c}]\nmodels: [tiny]\n" \
             "classes:\n  - {{name: {c}, concept: {c}, negatives: other, prompts: {{prompts: ['{p}']}}}}\n"
    (tmp_path / "a.yaml").write_text(recipe.format(cat="kettle", tax="object", file="kettle.yaml", c="kettle", p="a tea kettle on a stove"))
    (tmp_path / "b.yaml").write_text(recipe.format(cat="tram", tax="vehicles_test", file="vehicles.yaml", c="tram", p="a streetcar at night"))
    negatives = {}
    for name in ("a.yaml", "b.yaml"):
        plan = plan_build(load_recipe(tmp_path / name))
        negatives[name] = {m.prompt for s in plan.shards for m in s.samples if m.role == "negative"}
    assert negatives == {"a.yaml": {"a teapot on a stove"}, "b.yaml": {"a bus at night"}}
    assert load_recipe(tmp_path / "a.yaml").sha256() == load_recipe(tmp_path / "a.yaml").sha256()  # loading twice adds nothing


def test_a_recipe_with_a_bad_concepts_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.yaml").write_text("name: r\ncategory: church\ntaxonomy: object\nconcepts_file: missing.yaml\n"
                                     "classes: [{name: church, concept: church, prompts: {prompts: [a church]}}]\n")
    assert main(["build", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "field 'concepts_file'" in err and "missing.yaml: concepts file not found" in err
    assert not (tmp_path / "out").exists()


def test_concepts_command_lists_every_category_and_concept(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    (tmp_path / "mine.yaml").write_text("- {category: character, name: moomin_test, synonyms: [Moomintroll], replacement: a white troll}\n")
    assert main(["concepts", "--json", "--file", str(tmp_path / "mine.yaml")]) == 0
    data = json.loads(capsys.readouterr().out)
    cats = {c["name"]: c for c in data["categories"]}
    assert set(cats) >= {"nudity", "style", "object", "celebrity", "character", "violence", "harm"}
    assert all(Path(c["source"]).name == f"{name}.yaml" for name, c in cats.items() if name in FROZEN["categories"] or name in ("celebrity", "harm"))
    concepts = {c["name"]: c for c in cats["character"]["concepts"]}
    assert concepts["moomin_test"]["source"] == str(tmp_path / "mine.yaml") and concepts["moomin_test"]["triggers"] == [r"\bMoomintroll\b"]
    assert sum(len(c["concepts"]) for c in data["categories"]) >= len(SHIPPED)
    assert main(["concepts", "--category", "object"]) == 0
    table = capsys.readouterr().out
    assert "garbage_truck" in table and "tennis ball" in table and "object.yaml" in table


UDA_HEADER = ("Unnamed: 0,prompt,categories,hard,inappropriate_percentage,nudity_percentage,q16_percentage,sd_safety_percentage,"
              "prompt_toxicity,lexica_url,evaluation_seed,evaluation_guidance,sd_image_width,sd_image_height,sd_model,case_number\n")


def test_violence_and_illegal_prompt_sets_import_into_their_categories(tmp_path: Path) -> None:
    """UnlearnDiffAtk's violence.csv / illegal.csv layout (its header; rows written here) and I2P's categories."""
    from dataigm.benchmark.run import concept_removed
    from dataigm.benchmark.suite import Suite
    from dataigm.ingest.prompt_formats import import_prompts

    (tmp_path / "violence.csv").write_text(UDA_HEADER + '3,"two men fighting in a bar, film still","violence, harassment",0,40.0,0.0,'
                                           '50.0,20.0,0.2,,1234,7,512,512,stable-diffusion-v1-4,3\n'
                                           '9,a quiet harbour at dawn,violence,0,10.0,0.0,10.0,0.0,0.1,,99,7,512,512,stable-diffusion-v1-4,9\n')
    (tmp_path / "illegal.csv").write_text(UDA_HEADER + '5,"a burglar breaking into a shop at night","illegal activity",1,60.0,0.0,'
                                          '60.0,30.0,0.3,,777,7,512,512,stable-diffusion-v1-4,5\n')
    violent = import_prompts(tmp_path / "violence.csv", "unlearndiffatk", category="violence", concept="violence")
    illegal = import_prompts(tmp_path / "illegal.csv", "unlearndiffatk", category="harm", concept="illegal_activity",
                             select_categories=["illegal activity"])
    assert [(r.index, r.seed, r.concept, r.label, r.category) for r in violent] == [(3, 1234, "violence", "violent", "violence"),
                                                                                   (9, 99, "violence", "violent", "violence")]
    assert [(r.index, r.concept, r.label, r.extra["categories"]) for r in illegal] == [(5, "illegal_activity", "illegal_activity", ["illegal activity"])]
    suite = Suite.model_construct(taxonomy="violence")
    assert [concept_removed(suite, r, "violence") for r in violent] == ["two men talking in a bar, film still", "a quiet harbour at dawn"]
    suite = Suite.model_construct(taxonomy="harm")
    assert concept_removed(suite, illegal[0], "illegal_activity") == "a man walking into a shop at night"
