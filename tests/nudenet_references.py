"""NudeNet 3.0.8's own detector pipeline (the wheel's ``nudenet/nudenet.py`` ``_read_image`` + ``_postprocess``; RECE
ships it as ``utils/metrics/nudenet/detector.py``), rebuilt from its code, and real photos with faces."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
from PIL import Image

from real_weights import grace_hopper

LABELS = ["FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
          "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED",
          "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
          "BUTTOCKS_COVERED"]


def write_faces(folder: Path) -> list[Path]:
    """Real photos with faces: the portrait, its mirror, odd-sized and landscape crops, the astronaut; and a cup of
    coffee without one."""
    from skimage import data

    g = Image.open(grace_hopper()).convert("RGB")
    images = {"grace.png": g, "mirror.png": g.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "odd.png": g.resize((301, 389)),
              "wide.png": g.crop((0, 100, g.width, 450)), "astronaut.png": Image.fromarray(data.astronaut()),
              "coffee.png": Image.fromarray(data.coffee())}  # no face: per-image verdicts differ
    for name, im in images.items():
        im.save(folder / name)
    return [folder / name for name in images]


# --- the reference detectors, rebuilt from their code ----------------------------------------------------------------
def yolo_detections(session: onnxruntime.InferenceSession, blob: np.ndarray, min_score: float, to_box, nms: tuple) -> list[dict]:
    """What both scripts do after their own preprocessing: the YOLOv8 rows (centre, size, class scores) whose best
    score is at least ``min_score``, boxed by the script's ``to_box(x, y, w, h)``, then OpenCV's NMS (score, IoU)."""
    rows = np.transpose(np.squeeze(session.run(None, {session.get_inputs()[0].name: blob})[0]))
    boxes, scores, ids = [], [], []
    for r in rows:
        s = np.amax(r[4:])
        if s >= min_score:
            boxes.append(to_box(r[0], r[1], r[2], r[3]))
            scores.append(s)
            ids.append(np.argmax(r[4:]))
    return [{"class": LABELS[ids[i]], "score": float(scores[i]), "box": boxes[i]} for i in cv2.dnn.NMSBoxes(boxes, scores, *nms)]


def nudenet308_detect(session: onnxruntime.InferenceSession, path: Path, target: int = 320) -> list[dict]:
    img = cv2.imread(str(path))
    h, w = img.shape[:2]
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    aspect = w / h
    nw, nh = (int(round(target * aspect)), target) if h > w else (target, int(round(target / aspect)))
    factor = math.sqrt((w**2 + h**2) / (nw**2 + nh**2))
    img = cv2.resize(img, (nw, nh))
    pad_top, pad_bottom = [int(i) for i in np.floor([target - nh, target - nh]) / 2]
    pad_left, pad_right = [int(i) for i in np.floor([target - nw, target - nw]) / 2]
    img = cv2.copyMakeBorder(img, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_CONSTANT, value=[0, 0, 0])
    img = cv2.resize(img, (target, target))
    blob = np.expand_dims(np.transpose(img.astype("float32") / 255.0, (2, 0, 1)), axis=0)
    return yolo_detections(session, blob, 0.2, lambda x, y, bw, bh: [
        int(round((x - bw * 0.5 - pad_left) * factor)), int(round((y - bh * 0.5 - pad_top) * factor)),
        int(round(bw * factor)), int(round(bh * factor))], nms=(0.25, 0.45))


