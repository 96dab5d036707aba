from pathlib import Path

import pytest

from dataigm.recipe import RecipeError, load_recipe, parse_recipe

BUILDERS = Path(__file__).resolve().parents[1] / "builders"
SHIPPED = sorted(p.name for p in BUILDERS.glob("*.yaml"))


def minimal(**over):
    data = {
        "name": "t",
        "category": "nudity",
        "labels": ["not_nude", "nude"],
        "classes": [{"name": "nude", "concept": "nudity", "negatives": "not_nude", "prompts": {"prompts": ["a nude man"]}}],
    }
    data.update(over)
    return data


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_validate(name):
    recipe = load_recipe(BUILDERS / name)
    assert recipe.expanded_classes()
    assert set(c.name for c in recipe.expanded_classes()) <= set(recipe.label_names())


def test_paper_targets_and_multiclass_recipes_are_shipped():
    assert {"nudity.yaml", "van_gogh.yaml", "church.yaml", "parachute.yaml", "object_imagenette.yaml", "style_artists.yaml"} <= set(SHIPPED)
    assert len(load_recipe(BUILDERS / "object_imagenette.yaml").label_names()) == 11
    assert load_recipe(BUILDERS / "style_artists.yaml").label_names()[-1] == "realistic"


@pytest.mark.parametrize(
    "override,field,fragment",
    [
        ({"category": "Nudity Set"}, "category", "lowercase"),
        ({"taxonomy": "spaceships"}, "taxonomy", "allowed: celebrity, character, harm, nudity, object, style"),
        ({"generation": {"dtype": "fp8"}}, "generation.dtype", "'auto', 'float32', 'float16' or 'bfloat16'"),
        ({"generation": {"width": 500}}, "generation.width", "multiple of 8"),
        ({"generation": {"steps": 0}}, "generation.steps", "greater than or equal to 1"),
        ({"splits": {"train": 0.5, "test": 0.2}}, "splits", "sum to 1"),
        ({"splits": {"train": 0.5, "dev": 0.5}}, "splits", "allowed: ['train', 'val', 'test']"),
        ({"images_per_prompt": 0}, "images_per_prompt", "greater than or equal to 1"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"imags_per_prompt": 2}, "imags_per_prompt", "unknown field (did you mean 'images_per_prompt'?)"),
    ],
)
def test_bad_recipe_names_file_field_and_value(tmp_path, override, field, fragment):
    path = tmp_path / "bad.yaml"
    import yaml

    path.write_text(yaml.safe_dump(minimal(**override)))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    msg = str(err.value)
    assert str(path) in msg and f"'{field}" in msg and fragment in msg


def test_class_errors_name_the_bad_value():
    bad_concept = minimal(classes=[{"name": "nude", "concept": "violence", "prompts": {"prompts": ["x"]}}])
    with pytest.raises(RecipeError, match="unknown concept 'violence'"):
        parse_recipe(bad_concept)
    bad_label = minimal(classes=[{"name": "nude", "concept": "nudity", "negatives": "clothed", "prompts": {"prompts": ["x"]}}])
    with pytest.raises(RecipeError, match="negatives label 'clothed' is not in labels"):
        parse_recipe(bad_label)
    no_subjects = minimal(classes=[{"name": "nude", "prompts": {"templates": ["a nude {subject}"]}}])
    with pytest.raises(RecipeError, match="subjects' is empty"):
        parse_recipe(no_subjects)


def test_not_a_mapping_and_bad_yaml(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="must be a YAML mapping"):
        load_recipe(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "broken.yaml")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_overrides_apply_and_are_validated(tmp_path):
    recipe = load_recipe(BUILDERS / "nudity.yaml", ["generation.width=64", "models=[tiny]"])
    assert recipe.generation.width == 64 and recipe.models[0].id == "tiny"
    with pytest.raises(RecipeError, match="generation.width"):
        load_recipe(BUILDERS / "nudity.yaml", ["generation.width=65"])


def test_for_each_expands_classes_and_slugifies_names():
    r = parse_recipe(
        {
            "name": "s",
            "category": "style",
            "classes": [
                {"for_each": ["Claude Monet", "Van Gogh"], "name": "{item}", "concept": "{item}", "negatives": "realistic",
                 "prompts": {"templates": ["a {subject} by {item}"], "subjects": ["cat"]}},
            ],
        }
    )
    assert r.label_names() == ["claude_monet", "van_gogh", "realistic"]
    assert r.expanded_classes()[0].prompts.templates == ["a {subject} by Claude Monet"]
