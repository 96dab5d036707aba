import pytest

from dataigm.taxonomy import CATEGORIES, get_concept


@pytest.mark.parametrize(
    "category,concept,prompt,negative",
    [
        ("nudity", "nudity", "a nude woman by the lake", "a woman by the lake"),
        ("nudity", "nudity", "a naked man on a beach, oil painting, nsfw", "a man on a beach, oil painting"),
        ("style", "van_gogh", "a bowl of fruit with Van Gogh style.", "a bowl of fruit."),
        ("style", "van_gogh", "a starry night in the style of Vincent van Gogh", "a starry night"),
        ("style", "van_gogh", "a portrait, painted by van gogh, trending", "a portrait, trending"),
        ("style", "Claude Monet", "water lilies by Claude Monet", "water lilies"),
        ("object", "church", "a church in the snow", "a house in the snow"),
        ("object", "parachute", "an orange parachute over the sea", "an orange kite over the sea"),
        ("object", "english_springer", "an English springer spaniel in a park", "a cat in a park"),
    ],
)
def test_negative_rule(category, concept, prompt, negative):
    c = get_concept(category, concept)
    assert c.mentions(prompt)
    assert c.negative(prompt) == negative
    assert not c.mentions(c.negative(prompt))


def test_negative_of_prompt_without_concept_is_an_error():
    with pytest.raises(ValueError, match="does not mention"):
        get_concept("nudity", "nudity").negative("a cat on a sofa")


def test_unknown_names_list_valid_ones():
    with pytest.raises(KeyError, match="valid: celebrity, character, harm, nudity, object, style"):
        CATEGORIES.get("spaceships")
    with pytest.raises(KeyError, match="church"):
        get_concept("object", "spaceship")


def test_synonyms_resolve_to_one_concept():
    assert get_concept("style", "Vincent van Gogh").name == "van_gogh"
    assert get_concept("object", "French horn").name == "french_horn"
    assert CATEGORIES.get("nudity").nsfw and not CATEGORIES.get("object").nsfw
