"""The NudeNet detector files the presets run, where each comes from, and the ONNX session that runs it.

* ``320n``: ``nudenet/320n.onnx`` of the nudenet 3.4.2 wheel (MACE's and ANT's NudeNet), the installed package's
  copy (or, with another nudenet installed, a fetched one).
* ``best``: ``nudenet/best.onnx`` of the nudenet 3.0.8 wheel, the file RECE (``utils/metrics/nudenet/best_new.onnx``,
  the same git blob) and UnlearnDiffAtk (``files/best.onnx``) ran. It is never vendored: on first use the 3.0.8
  wheel is fetched from PyPI into ``$DATAIGM_CACHE/nudenet/3.0.8/`` (:func:`dataigm.generate.tiny.cache_dir`)
  and the file is checked against its sha256. Offline machines pass a local copy (``nudenet[:PRESET]@PATH``: the
  ``.onnx`` file or the ``.whl``).

Every file is checked against its pinned sha256 before a session is made from it.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dataigm.core.atomic import publish, sha256_file, tmp_path_for
from dataigm.core.errors import DataigmError

log = logging.getLogger(__name__)
PYPI_SIMPLE = "https://pypi.org/simple/nudenet/"
TIMEOUT_S = 60


class NudeNetModelError(DataigmError):
    """A NudeNet detector file that is missing, cannot be fetched, or is not the pinned file."""


@dataclass(frozen=True)
class NudeNetModelFile:
    """One detector file: its name inside the nudenet wheel of ``version``, and the sha256 of file and wheel."""

    key: str
    file: str
    version: str
    sha256: str
    wheel: str
    wheel_sha256: str

    @property
    def requirement(self) -> str:
        return f"nudenet=={self.version}"


NUDENET_MODEL_FILES: dict[str, NudeNetModelFile] = {
    "320n": NudeNetModelFile("320n", "320n.onnx", "3.4.2", "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
                             "nudenet-3.4.2-py3-none-any.whl", "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331"),
    "best": NudeNetModelFile("best", "best.onnx", "3.0.8", "9832f15515bdb06bcb5a77beb60bc8ea54439bd7ecbaac46dac3b760b3dd13cc",
                             "nudenet-3.0.8-py3-none-any.whl", "e36e30bab3fb02d928190285794f6b759c034ce6bd4d19811b10095c8e52366e"),
}


def _installed(spec: NudeNetModelFile) -> Path | None:
    """The file inside the installed nudenet package, when that package is the file's version."""
    try:
        import nudenet
    except ImportError:
        return None
    path = Path(nudenet.__file__).parent / spec.file
    return path if path.is_file() else None


def cached_model_path(spec: NudeNetModelFile) -> Path:
    """Where a fetched detector file lives: ``$DATAIGM_CACHE/nudenet/<version>/<file>``."""
    from dataigm.generate.tiny import cache_dir

    return cache_dir() / "nudenet" / spec.version / spec.file


def _check(path: Path, spec: NudeNetModelFile, origin: str) -> Path:
    found = sha256_file(path)
    if found != spec.sha256:
        raise NudeNetModelError(f"{origin}: sha256 {found} is not {spec.requirement}'s {spec.file} ({spec.sha256})")
    return path


def _extract(wheel: Path, spec: NudeNetModelFile, dest: Path) -> Path:
    """``nudenet/<file>`` of ``wheel``, checked, published at ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(dest)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(f"nudenet/{spec.file}") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
        _check(tmp, spec, f"nudenet/{spec.file} of {wheel}")
        publish(tmp, dest)
    except (KeyError, zipfile.BadZipFile) as e:
        raise NudeNetModelError(f"{wheel}: not a nudenet wheel holding nudenet/{spec.file} ({e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _wheel_url(spec: NudeNetModelFile) -> str:
    """The wheel's download URL, from PyPI's simple index (PEP 691 JSON)."""
    req = urllib.request.Request(PYPI_SIMPLE, headers={"Accept": "application/vnd.pypi.simple.v1+json", "User-Agent": "dataigm"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        files = json.load(resp)["files"]
    for f in files:
        if f["filename"] == spec.wheel:
            return str(f["url"])
    raise NudeNetModelError(f"PyPI lists no {spec.wheel}")


def fetch_model(spec: NudeNetModelFile) -> Path:
    """Download ``spec``'s wheel from PyPI, check the wheel's sha256, extract and check the detector file."""
    dest = cached_model_path(spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    wheel = tmp_path_for(dest.with_name(spec.wheel))
    try:
        url = _wheel_url(spec)
        log.info("downloading %s", url)
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "dataigm"}), timeout=TIMEOUT_S) as resp, \
                open(wheel, "wb") as out:
            shutil.copyfileobj(resp, out)
        if sha256_file(wheel) != spec.wheel_sha256:
            raise NudeNetModelError(f"{url}: sha256 is not {spec.wheel}'s ({spec.wheel_sha256})")
        return _extract(wheel, spec, dest)
    except OSError as e:  # URLError, HTTPError, timeouts
        raise NudeNetModelError(
            f"{spec.requirement}'s {spec.file} is not on this machine and could not be fetched from PyPI ({e}); offline, "
            f"give a local copy as the judge's weights, nudenet[:PRESET]@PATH (the {spec.wheel} from 'pip download --no-deps {spec.requirement}', "
            f"or its nudenet/{spec.file})") from None
    finally:
        wheel.unlink(missing_ok=True)


def resolve_model(key: str, given: str | Path | None = None, *, fetch: bool = True) -> Path:
    """The checked local path of detector file ``key``: ``given`` (a file or the wheel), the installed package's
    copy, the cache, or (``fetch``) a fresh download from PyPI."""
    spec = NUDENET_MODEL_FILES[key]
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise NudeNetModelError(f"NudeNet weights {path}: no such file (give {spec.file} or {spec.wheel})")
        if path.suffix == ".whl":
            return _extract(path, spec, cached_model_path(spec))
        return _check(path, spec, f"NudeNet weights {path}")
    installed = _installed(spec)
    if installed is not None and sha256_file(installed) == spec.sha256:
        return installed
    cached = cached_model_path(spec)
    if cached.is_file() and sha256_file(cached) == spec.sha256:
        return cached
    if not fetch:
        raise NudeNetModelError(f"{spec.requirement}'s {spec.file} is not on this machine; give a local copy as the judge's weights, nudenet[:PRESET]@PATH")
    return fetch_model(spec)


def model_available(key: str) -> str:
    """"yes" when detector file ``key`` is installed or cached, else what to do (no download)."""
    spec = NUDENET_MODEL_FILES[key]
    if _installed(spec) is not None or cached_model_path(spec).is_file():
        return "yes"
    return f"no: {spec.file} of {spec.requirement} is fetched from PyPI on first use (offline: a local copy, nudenet[:PRESET]@PATH)"


class NudeNetDeviceError(DataigmError, ValueError):
    """A device an onnxruntime session (NudeNet's, open_nsfw's) cannot run on."""


def _providers(device: str | None, local_rank: int = 0) -> tuple[list, bool]:
    """onnxruntime providers for ``device`` and whether CUDA was asked for explicitly.

    The device is :func:`dataigm.core.devices.pick_device`'s on onnxruntime: None/"auto" is this local rank's GPU
    when onnxruntime has its CUDA provider and a GPU is visible, else the CPU; a bare ``cuda`` is this rank's GPU."""
    import onnxruntime

    from dataigm.core.devices import AUTO, onnx_cuda_providers, pick_device

    explicit = device not in AUTO
    if explicit and device != "cpu" and device != "cuda" and not str(device).startswith("cuda:"):
        raise NudeNetDeviceError(f"device {device!r}: onnxruntime runs on cpu or cuda[:N]")
    available = onnxruntime.get_available_providers()
    if explicit and device != "cpu" and "CUDAExecutionProvider" not in available:
        raise NudeNetDeviceError(f"device {device!r}: this onnxruntime has no CUDAExecutionProvider "
                                 f"({', '.join(available)}); install onnxruntime-gpu or use device=cpu")
    wanted = pick_device(device, local_rank, runtime="onnx")
    if wanted == "cpu":
        return ["CPUExecutionProvider"], False
    return onnx_cuda_providers(wanted), explicit


def onnx_session(path: Path, device: str | None = None, local_rank: int = 0):  # noqa: ANN201 (an onnxruntime.InferenceSession)
    """An onnxruntime session for ``path`` on ``device`` (``local_rank`` picks the GPU of "auto" and a bare
    ``cuda``); asking for CUDA and getting the CPU is an error, "auto" falls back to the CPU with a warning."""
    import onnxruntime

    from dataigm.core.devices import check_onnx_providers

    providers, explicit = _providers(device, local_rank)
    session = onnxruntime.InferenceSession(str(path), providers=providers)
    if explicit:
        check_onnx_providers(str(device), session.get_providers(), f"onnxruntime session of {path.name}")
    elif providers[0] != "CPUExecutionProvider" and "CUDAExecutionProvider" not in session.get_providers():
        log.warning("onnxruntime's CUDA provider did not start for %s; running on the CPU", path.name)
    return session
