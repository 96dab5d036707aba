"""Image inputs for judging: a folder (every image below it, hidden folders skipped), a list file, WebDataset shards or a dataigm
dataset folder, or images already in memory (PIL images, uint8 arrays and tensors: :func:`as_image_input`); decoded
and preprocessed in DataLoader workers, in batches.

Every input becomes :class:`ImageRef` items. An unreadable image is never dropped: the loader yields it as a
failure (id + reason) that the caller lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import IterableDataset, get_worker_info

from dataigm.core.datasets import dataset_shards
from dataigm.core.errors import InputError
from dataigm.core.images import IMAGE_SUFFIXES, decode_rgb, is_image_path, loaded_rgb, walk_images
from dataigm.core.shards import iter_tar

LIST_EXTENSIONS = (".txt", ".lst", ".list")
# "<prompt index>_<seed>.png", "<prompt index>-<seed>.png" (or "<prompt index>_<image index>.png", the ESD naming)
INDEX_SEED_RE = re.compile(r"^(?P<index>\d+)[_\-](?P<seed>\d+)$")
INDEX_RE = re.compile(r"^(?P<index>\d+)$")


@dataclass
class ImageRef:
    """One image to judge: a file, or a sample inside a shard."""

    id: str  # relative path for files, "<shard>#<key>" for shard samples: unique within an input
    path: str  # the file or the shard
    key: str = ""  # sample key inside a shard ("" for files)
    meta: dict[str, Any] = field(default_factory=dict)  # the sample's json for shards, parsed name fields for files


@dataclass
class ImageInput:
    """A resolved input: loose files, shards (read sample by sample), or images in memory (RGB PIL images)."""

    source: str
    files: list[ImageRef] = field(default_factory=list)
    shards: list[Path] = field(default_factory=list)
    images: list[tuple[ImageRef, Any]] = field(default_factory=list)
    in_order: bool = False  # a caller's list of image files: verdicts follow its order, not the ids'
    split: str | None = None
    category: str | None = None

    def refs(self) -> list[ImageRef]:
        """Every image of the input, sorted by id (shards are read to list their samples)."""
        return sorted((ref for ref, data, _ in iter_refs_with_bytes(self) if data is not None), key=lambda r: r.id)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "files": len(self.files), "shards": len(self.shards), "split": self.split or "", "category": self.category or "",
                **({"in_memory": len(self.images)} if self.images else {})}


def name_fields(path: Path) -> dict[str, Any]:
    """prompt_index / seed parsed from a file name (``12_345.png`` or ``12.png``); empty if it has neither."""
    m = INDEX_SEED_RE.match(path.stem)
    if m:
        return {"prompt_index": int(m["index"]), "seed": int(m["seed"])}
    m = INDEX_RE.match(path.stem)
    return {"prompt_index": int(m["index"])} if m else {}


def _file_ref(path: Path, base: Path) -> ImageRef:
    try:
        rel = path.relative_to(base).as_posix()
    except ValueError:
        rel = path.as_posix()
    return ImageRef(rel, str(path), "", name_fields(path))


def resolve_images(images: str | Path | Sequence[str | Path], *, split: str | None = None, category: str | None = None) -> ImageInput:
    """Resolve ``images`` (folder, list file, .tar shard(s), dataset folder, or a list of those paths) to an input.

    A folder with a ``manifest.json`` or holding ``.tar`` shards is read as shards (optionally one split and/or
    category of a dataset); otherwise its image files are listed recursively.
    """
    if isinstance(images, (list, tuple)):
        parts = [resolve_images(p, split=split, category=category) for p in images]
        merged = ImageInput(",".join(p.source for p in parts), split=split, category=category)
        for p in parts:
            merged.files += p.files
            merged.shards += p.shards
        return merged
    path = Path(images).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"images {path} not found: give a folder, a list file or .tar shards")
    inp = ImageInput(str(path), split=split, category=category)
    if path.is_file() and path.suffix == ".tar":
        inp.shards = [path]
    elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        inp.files, inp.shards = _read_list(path)
    elif path.is_file() and is_image_path(path):
        inp.files = [_file_ref(path, path.parent)]
    elif path.is_dir():
        shards = dataset_shards(path, category, split)  # build, exported or pulled layout
        if (path / "manifest.json").exists() or (shards and not _has_images(path)):
            if not shards:
                raise FileNotFoundError(f"no shards in {path} for category={category or '*'} split={split or '*'}")
            inp.shards = shards
        else:
            if split or category:
                raise InputError(f"split/category filters apply to dataset folders of shards; {path} is an image folder")
            inp.files = [_file_ref(p, path) for p in walk_images(path)]
            if not inp.files:
                raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) below {path}")
    else:
        raise InputError(f"images {path}: unsupported input; allowed: a folder, a list file ({', '.join(LIST_EXTENSIONS)}), .tar shards, an image")
    return inp


def as_image_input(images: Any, *, split: str | None = None, category: str | None = None) -> ImageInput:
    """Any image input a caller holds -> an :class:`ImageInput` the judging loop reads.

    Paths (a folder, a list file, ``.tar`` shards, a dataset folder, an image, or a list of those) go to
    :func:`resolve_images`; a list of image files keeps its order (``in_order``), each image's id the path as given. Images in memory (a PIL image, a numpy ``HxWx3`` / ``NxHxWx3`` uint8 array, a torch uint8
    ``CHW`` / ``NCHW`` tensor, or a list of those) become the RGB PIL image the decoder gives for the same pixels
    (:func:`dataigm.core.images.loaded_rgb`), with ids ``0``, ``1``, ... zero-padded so they sort in input order.

        >>> inp = as_image_input([Image.new("RGB", (64, 64))] * 3)      # doctest: +SKIP
        >>> [ref.id for ref, _ in inp.images]
        ['0', '1', '2']
    """
    if isinstance(images, ImageInput):
        return images
    if isinstance(images, (str, Path)):
        return resolve_images(images, split=split, category=category)
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    paths = [isinstance(i, (str, Path)) for i in items]
    if items and all(paths) and all(is_image_path(i) and not Path(i).is_dir() for i in items) and not (split or category):
        inp = ImageInput(f"{len(items)} image files", in_order=True)  # ids: the paths as given (a missing one: a failure)
        inp.files = [ImageRef(str(i), str(Path(i).expanduser()), "", name_fields(Path(i))) for i in items]
        return inp
    if items and all(paths):
        return resolve_images(items, split=split, category=category)
    if any(paths):
        raise InputError("images: give paths or images in memory, not both in one list")
    if split or category:
        raise InputError("split/category filters apply to dataset folders of shards, not to images in memory")
    pictures = [picture for item in items for picture in _in_memory(item)]
    if not pictures:
        raise InputError("images: no images given")
    width = len(str(len(pictures) - 1))
    inp = ImageInput(f"{len(pictures)} images in memory")
    inp.images = [(ImageRef(f"{i:0{width}d}", ""), picture) for i, picture in enumerate(pictures)]
    return inp


def _in_memory(item: Any) -> list[Any]:
    """One in-memory item -> its RGB PIL images (an array or tensor with a batch dimension gives several)."""
    import numpy as np
    from PIL import Image

    if isinstance(item, Image.Image):
        return [loaded_rgb(item.copy())]
    if isinstance(item, torch.Tensor):
        if item.dtype != torch.uint8:
            raise InputError(f"images: a torch tensor of dtype {str(item.dtype).replace('torch.', '')}; give uint8 (0..255) CHW or NCHW")
        if item.ndim not in (3, 4) or item.shape[-3] not in (1, 3, 4):
            raise InputError(f"images: a torch tensor of shape {tuple(item.shape)}; give CHW or NCHW with 1, 3 or 4 channels")
        item = item.detach().cpu().movedim(-3, -1).numpy()
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise InputError(f"images: a numpy array of dtype {item.dtype}; give uint8 (0..255) HxWx3 or NxHxWx3")
        if item.ndim == 2:  # HxW grey
            item = item[..., None]
        if item.ndim == 3:
            item = item[None]
        if item.ndim != 4 or item.shape[-1] not in (1, 3, 4):
            raise InputError(f"images: a numpy array of shape {item.shape}; give HxWx3 or NxHxWx3 (uint8)")
        return [loaded_rgb(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)) for a in np.ascontiguousarray(item)]
    raise InputError(f"images: cannot judge a {type(item).__name__}; give a folder, paths, PIL images, uint8 arrays or tensors")


def _has_images(folder: Path) -> bool:
    return next(walk_images(folder), None) is not None


def _read_list(path: Path) -> tuple[list[ImageRef], list[Path]]:
    """A list file: one image or .tar path per line, relative to the list's folder; '#' comments allowed."""
    files, shards = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line).expanduser()
        p = p if p.is_absolute() else path.parent / p
        if p.suffix == ".tar":
            shards.append(p)
        elif is_image_path(p):
            files.append(_file_ref(p, path.parent))  # a missing file becomes a listed failure, not a crash
        else:
            raise InputError(f"{path}:{lineno}: {line!r} is neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a .tar shard")
    if not files and not shards:
        raise InputError(f"{path}: lists no images")
    return files, shards


def iter_refs_with_bytes(inp: ImageInput, worker: int = 0, n_workers: int = 1) -> Iterator[tuple[ImageRef, bytes | None, str]]:
    """(ref, encoded bytes or None, error) for this worker's share: every n-th file and every n-th shard."""
    for ref in inp.files[worker::n_workers]:
        try:
            yield ref, Path(ref.path).read_bytes(), ""
        except OSError as e:
            yield ref, None, f"{type(e).__name__}: {e}"
    for shard in inp.shards[worker::n_workers]:
        try:
            for s in iter_tar(shard):
                meta = s.meta if isinstance(s.meta, dict) else {}
                if inp.split and meta.get("split") not in (None, inp.split):
                    continue
                yield ImageRef(f"{Path(shard).name}#{s.key}", str(shard), s.key, meta), s.image, ""
        except Exception as e:  # a truncated or corrupt tar: record it and go on with the others
            yield ImageRef(str(shard), str(shard)), None, f"unreadable shard: {type(e).__name__}: {e}"


def decode(data: bytes) -> Any:
    """Decode image bytes to an RGB PIL image (fully loaded, so truncation errors surface here)."""
    return decode_rgb(data)


class ImageDataset(IterableDataset):
    """Yields ``{"ref", "input"}`` or ``{"ref", "error"}`` per image; DataLoader workers split the input."""

    def __init__(self, inp: ImageInput, preprocess: Callable[[Any], Any]) -> None:
        self.inp = inp
        self.preprocess = preprocess

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, n = (info.id, info.num_workers) if info else (0, 1)
        if info:
            torch.set_num_threads(1)  # workers decode; the main process owns the cores for the model
        for ref, image in self.inp.images[worker::n]:  # already RGB (as_image_input): the decoder's output
            yield {"ref": ref, "input": self.preprocess(image)}
        for ref, data, error in iter_refs_with_bytes(self.inp, worker, n):
            if data is None:
                yield {"ref": ref, "error": error}
                continue
            try:
                yield {"ref": ref, "input": self.preprocess(decode(data))}
            except Exception as e:  # any decoder error means "unreadable", recorded per image
                yield {"ref": ref, "error": f"unreadable image: {type(e).__name__}: {e}"}


def split_batch(items: list[dict[str, Any]]) -> tuple[list[ImageRef], list[Any], list[tuple[ImageRef, str]]]:
    """DataLoader collate: (refs of decoded images, their inputs, failures)."""
    ok = [i for i in items if "input" in i]
    return [i["ref"] for i in ok], [i["input"] for i in ok], [(i["ref"], i["error"]) for i in items if "error" in i]


def default_workers(inp: ImageInput, batch_size: int, on_gpu: bool = True) -> int:
    """Decoding workers: none on CPU (the model's threads already use every core; measured faster) or for a
    handful of images, else up to 4 (and no more than there are work units)."""
    import os

    if not on_gpu:
        return 0
    units = max(len(inp.files) // max(batch_size, 1), len(inp.shards))
    if len(inp.files) < 2 * batch_size and len(inp.shards) <= 1:
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1, units))


def iter_batches(
    inp: ImageInput, preprocess: Callable[[Any], Any], collate: Callable[[list[Any]], Any], *, batch_size: int = 32,
    workers: int | None = None, on_gpu: bool = True, start_method: str | None = None,
) -> Iterator[tuple[list[ImageRef], Any, list[tuple[ImageRef, str]]]]:
    """Batches ``(refs, collated inputs, failures)`` decoded by ``workers`` DataLoader workers.

    Workers unpickle ``preprocess`` under ``spawn``/``forkserver`` (``start_method``; default: Python's), so it must
    be a small picklable callable (the judges' transforms are), never a judge's bound method.
    """
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    n_workers = default_workers(inp, batch_size, on_gpu) if workers is None else workers
    if n_workers < 0:
        raise InputError(f"workers must be >= 0, got {workers}")

    loader = DataLoader(
        ImageDataset(inp, preprocess), batch_size=batch_size, num_workers=n_workers, collate_fn=split_batch,
        prefetch_factor=4 if n_workers else None, multiprocessing_context=start_method if n_workers else None,
    )
    for refs, inputs, failures in loader:
        yield refs, (collate(inputs) if inputs else None), failures
