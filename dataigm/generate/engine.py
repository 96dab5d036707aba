"""The build engine: planned shards -> batched pipeline calls -> PNG encoding and shard writing.

Generation runs in the calling thread; encoding and writing run in a writer thread fed through a bounded
queue, so the accelerator never waits on PNG encoding or disk and memory stays flat (at most a few batches
in flight). Each rank takes its own shards (:func:`dataigm.core.partition.partition`), skips shards that are
already done, and writes each shard atomically, so a killed build resumes exactly where it stopped.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from dataigm.core.devices import pick_device
from dataigm.core.manifest import build_manifest, missing_shards, write_model_record, write_part
from dataigm.core.partition import RankInfo, partition, rank_from_env
from dataigm.core.schema import SampleMeta
from dataigm.core.shards import ShardSink, is_done
from dataigm.generate import determinism
from dataigm.generate.plan import Plan, plan_build
from dataigm.recipe import ModelSpec, Recipe

log = logging.getLogger(__name__)

QUEUE_BATCHES = 4  # batches in flight between generation and the writer


@dataclass
class BuildOptions:
    """Run-time settings of a build."""

    device: str = "auto"
    dtype: str | None = None  # None: the recipe's (an override is recorded as part of the recipe)
    batch_size: int | None = None  # None: the recipe's (likewise)
    limit: int | None = None  # first N prompts of each class
    progress: bool = True
    deterministic: bool = False  # deterministic kernels, no TF32/autotuning, pinned threads (see determinism.py)


@dataclass
class BuildResult:
    out: Path
    planned_shards: int
    written_shards: int
    skipped_shards: int
    samples_written: int
    samples_failed: int
    manifest: dict[str, Any] | None


def encode_png(image: Any) -> bytes:
    """Encode an HxWx3 float array in [0, 1] (diffusers ``output_type="np"``) as PNG bytes."""
    import numpy as np
    from PIL import Image

    if not np.isfinite(image).all():
        raise ValueError("NaN/inf in generated image")
    arr = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class _Writer(threading.Thread):
    """Consumes (event, payload) items: encodes images and writes them to the open shard."""

    def __init__(self, root: Path, on_sample: Callable[[int], None]) -> None:
        super().__init__(daemon=True, name="dataigm-writer")
        self.root = root
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=QUEUE_BATCHES)
        self.error: BaseException | None = None
        self.sink: ShardSink | None = None
        self.written = 0
        self.failed = 0
        self.on_sample = on_sample

    def run(self) -> None:
        while True:
            event, payload = self.queue.get()
            try:
                if event == "stop":
                    return
                if self.error is None:
                    self._handle(event, payload)
            except BaseException as e:  # reported to the generating thread, which stops the build
                self.error = e
                if self.sink is not None:
                    self.sink.abort()
                    self.sink = None

    def _handle(self, event: str, payload: Any) -> None:
        if event == "open":
            spec, planned = payload
            self.sink = ShardSink(self.root, spec, planned)
        elif event == "batch":
            assert self.sink is not None
            for meta, image, error in payload:
                if error is None:
                    try:
                        self.sink.write(meta, encode_png(image))
                        self.written += 1
                    except ValueError as e:
                        error = f"{type(e).__name__}: {e}"
                if error is not None:
                    self.sink.fail(meta.key, error)
                    self.failed += 1
            self.on_sample(len(payload))
        elif event == "close":
            assert self.sink is not None
            self.sink.close()
            self.sink = None
        elif event == "abort" and self.sink is not None:
            self.sink.abort()
            self.sink = None

    def put(self, event: str, payload: Any = None) -> None:
        if self.error is not None:
            raise RuntimeError(f"shard writer failed: {self.error}") from self.error
        self.queue.put((event, payload))


def iter_batches(samples: Sequence[SampleMeta], batch_size: int) -> Iterator[list[SampleMeta]]:
    """Consecutive batches of at most ``batch_size`` samples sharing one guidance scale (one pipeline call)."""
    batch: list[SampleMeta] = []
    for m in samples:
        if batch and (len(batch) == batch_size or m.guidance != batch[0].guidance):
            yield batch
            batch = []
        batch.append(m)
    if batch:
        yield batch


def generate_batch(pipe: Any, batch: Sequence[SampleMeta], device: str) -> list[Any]:
    """Images for a batch: one seeded generator per image, so each image depends only on its own seed."""
    import torch

    gen_device = "cpu" if device.startswith("mps") else device
    generators = [torch.Generator(gen_device).manual_seed(m.seed) for m in batch]
    first = batch[0]
    kwargs: dict[str, Any] = dict(
        prompt=[m.prompt for m in batch],
        num_inference_steps=first.steps,
        guidance_scale=first.guidance,
        height=first.height,
        width=first.width,
        generator=generators,
        output_type="np",
    )
    if any(m.negative_prompt for m in batch):
        kwargs["negative_prompt"] = [m.negative_prompt for m in batch]
    with torch.inference_mode():
        return list(pipe(**kwargs).images)


def _generate_safely(pipe: Any, batch: list[SampleMeta], device: str) -> list[tuple[SampleMeta, Any, str | None]]:
    """Generate a batch; if the whole batch fails, retry its images one by one and record what still fails."""
    try:
        return list(zip(batch, generate_batch(pipe, batch, device), [None] * len(batch)))
    except Exception as e:
        if len(batch) == 1:
            return [(batch[0], None, f"{type(e).__name__}: {e}")]
        log.warning("batch of %d failed (%s); retrying one image at a time", len(batch), e)
        return [item for m in batch for item in _generate_safely(pipe, [m], device)]


def part_record(recipe: Recipe, plan: Plan, limit: int | None) -> dict[str, Any]:
    return {
        "kind": "generated",
        "category": recipe.category,
        "taxonomy": recipe.taxonomy_name,
        "label_names": recipe.label_names(),
        "config": recipe.model_dump(mode="json"),
        "config_sha256": recipe.sha256() + (f"-limit{limit}" if limit is not None else ""),
        "limit": limit,
        "shards": sorted(s.spec.relpath for s in plan.shards),
        "n_planned": plan.n_samples,
        "models": [{"tag": m.tag, "id": m.id, "revision": m.revision or "", "components": m.components} for m in plan.models],
        "skipped_negatives": plan.skipped_negatives[:100],
    }


def build(
    recipe: Recipe,
    out: Path,
    options: BuildOptions | None = None,
    models: Sequence[ModelSpec] | None = None,
    rank: RankInfo | None = None,
) -> BuildResult:
    """Build ``recipe`` into the dataset folder ``out`` (this rank's share of it), resuming finished shards."""
    from tqdm.auto import tqdm

    from dataigm.generate.pipeline import load_pipeline

    options = options or BuildOptions()
    rank = rank or rank_from_env()
    out = Path(out)
    # Batch size and dtype change the pixels (batched kernels differ numerically), so they are part of the recipe.
    overrides = {k: v for k, v in (("batch_size", options.batch_size), ("dtype", options.dtype)) if v is not None}
    if overrides:
        recipe = recipe.model_copy(update={"generation": recipe.generation.model_copy(update=overrides)})
    plan = plan_build(recipe, models, options.limit)
    if not plan.shards:
        raise ValueError(f"recipe {recipe.name!r} plans no samples")
    mine = partition(plan.shards, rank.rank, rank.world_size)
    todo = [s for s in mine if not is_done(out, s.spec)]
    for s in mine:  # temp files of this rank's shards left by a killed run
        for stale in s.spec.tar_path(out).parent.glob(f".{s.spec.name}.tar.tmp-*"):
            stale.unlink(missing_ok=True)
    device = pick_device(options.device, rank.local_rank)
    log.info("rank %d/%d: %d of %d shards to build (%d already done)", rank.rank, rank.world_size, len(todo), len(mine), len(mine) - len(todo))

    write_part(out, recipe.category, "", part_record(recipe, plan, options.limit))
    restore_settings = determinism.prepare(recipe.generation.threads, options.deterministic)
    if todo:  # every rank records what it generates under (device, threads, TF32, versions...)
        determinism.record_build_settings(out, recipe.category, "", rank, device, recipe.generation.dtype, recipe.generation.batch_size,
                                          options.deterministic, [s.spec.relpath for s in todo])
    loaded: dict[int, Any] = {}
    bar = tqdm(total=sum(len(s.samples) for s in todo), unit="img", desc=f"build {recipe.name}", disable=not options.progress,
               position=rank.local_rank if rank.world_size > 1 else None, dynamic_ncols=True)
    writer = _Writer(out, bar.update)
    writer.start()
    try:
        for shard in todo:
            if shard.model_index not in loaded:
                loaded.clear()  # one pipeline in memory at a time
                loaded[shard.model_index] = load_pipeline(plan.models[shard.model_index], device, recipe.generation.dtype, recipe.generation.scheduler)
                write_model_record(out, loaded[shard.model_index].record())
            model = loaded[shard.model_index]
            writer.put("open", (shard.spec, len(shard.samples)))
            for batch in iter_batches(shard.samples, recipe.generation.batch_size):
                batch = [replace(m, model_revision=model.revision) for m in batch]
                writer.put("batch", _generate_safely(model.pipe, batch, device))
            writer.put("close")
        writer.put("stop")
        writer.join()
        if writer.error is not None:
            raise RuntimeError(f"shard writer failed: {writer.error}") from writer.error
    except BaseException:
        if writer.is_alive():
            writer.queue.put(("abort", None))
            writer.queue.put(("stop", None))
            writer.join(timeout=60)
        raise
    finally:
        bar.close()
        restore_settings()

    if recipe.real_images:  # the recipe's real-image parts join the same category, splits and labels
        from dataigm.ingest.images import import_recipe_images

        import_recipe_images(recipe, out, rank=rank.rank, world_size=rank.world_size, progress=options.progress)
    manifest = finalize(out)
    return BuildResult(out, len(plan.shards), len(todo), len(mine) - len(todo), writer.written, writer.failed, manifest)


def finalize(out: Path) -> dict[str, Any] | None:
    """Write the manifest once every planned shard of every part is done (any rank may be the last)."""
    if missing_shards(out):
        return None
    return build_manifest(out)
