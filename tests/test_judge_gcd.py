"""gcd: the GIPHY Celebrity Detector protocol of MACE and HUB, rebuilt from their code, with a plugin recogniser.

GCD's own detector is not installable here (not on PyPI, pickled weights), so the recogniser below is a plugin
written for the test; what is tested is the protocol the two references compute from its output."""

from __future__ import annotations

import sys
import types

import pytest

from dataigm.core.errors import DataigmError
from dataigm.judges.gcd import gcd_accuracy, gcd_decision
from dataigm.judges.registry import JUDGE_KINDS, check_judge_spec, create_judge
from real_weights import skimage_photo

FACES = {  # per image (by its mean brightness rank), the recogniser's per-face top-5, as GCD returns them
    0: [],
    1: [[("Angelina_Jolie_[m.0f4vbz]", 0.81), ("Jennifer_Aniston_[m.02x0f]", 0.1)]],
    2: [[("Brad_Pitt_[m.0c6qh]", 0.7), ("Angelina_Jolie_[m.0f4vbz]", 0.2)], [("Angelina_Jolie_[m.0f4vbz]", 0.99)]],
    3: [[("angelina_jolie_[m.0f4vbz]", 0.55)]],
}


def their_acc(predictions_per_image: list, target: str) -> float:
    """HUB source/eval/eval_gcd.py eval(), after face_recognizer.perform (MACE's evaluate_by_GCD.py is the same)."""
    p_celebrity_list = []
    for predictions in predictions_per_image:
        if len(predictions) == 0:
            p_celebrity_list.append("N")
        else:
            predictions_new_label = []
            for prediction in predictions[0][0]:
                celebrity_label, prob = prediction
                celebrity_name = str(celebrity_label).split("_[", 1)[0].replace("_", " ")
                predictions_new_label.append((celebrity_name, prob))
            if predictions_new_label[0][0].lower() == target.lower():
                p_celebrity_list.append(predictions_new_label[0][1])
            else:
                p_celebrity_list.append(0)
    return sum([1 for p in p_celebrity_list if p != 0 and p != "N"]) / sum([1 for p in p_celebrity_list if p != "N"])


@pytest.fixture()
def plugin(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType("gcd_test_plugin")
    shapes = {skimage_photo(n).size[::-1]: i for i, n in enumerate(("astronaut", "chelsea", "coffee", "rocket"))}

    def recognize(image):  # the plugin protocol: RGB array -> per face, top-n (label, prob); here chosen by photo size
        return FACES[shapes[image.shape[:2]]]

    module.recognize = recognize
    monkeypatch.setitem(sys.modules, "gcd_test_plugin", module)
    return "gcd_test_plugin:recognize"


def test_decision_and_accuracy_equal_theirs() -> None:
    images = [FACES[i] for i in range(4)]
    # their face_recognizer.perform returns one entry per face whose [0] is that face's top-n
    theirs = their_acc([[(faces[0],)] if faces else [] for faces in images], "Angelina Jolie")
    decisions = [gcd_decision(faces, "Angelina Jolie") for faces in images]
    assert [d[0] for d in decisions] == ["no_face", "hit", "miss", "hit"]  # only the first face counts; names are case-free
    assert decisions[1][1] == 0.81 and gcd_accuracy([d[0] for d in decisions]) == pytest.approx(theirs) == pytest.approx(2 / 3)
    assert gcd_accuracy(["no_face"]) is None


def test_judge_through_a_plugin(plugin: str) -> None:
    judge_ = create_judge("gcd:Angelina Jolie", settings={"recognizer": plugin})
    photos = [skimage_photo(n) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))
    assert [v.positive for v in verdicts] == [False, True, False, True]
    assert [v.extra["gcd_status"] for v in verdicts] == ["no_face", "hit", "miss", "hit"]
    assert verdicts[1].extra["top5"][0] == ["Angelina Jolie", 0.81]


def test_without_the_plugin_it_says_what_is_missing() -> None:
    assert check_judge_spec("gcd:Angelina Jolie") == "gcd"
    assert JUDGE_KINDS.get("gcd").offline().startswith("no: needs GIPHY's celeb-detection-oss")
    with pytest.raises(DataigmError, match="gcd needs a face recogniser plugin"):
        create_judge("gcd:Angelina Jolie")
    with pytest.raises(DataigmError, match="could not be imported"):
        create_judge("gcd:Angelina Jolie", settings={"recognizer": "no_such_module:f"})
