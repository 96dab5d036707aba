"""The build engine: planned shards -> batched pipeline calls -> PNG encoding and shard writing.

Generation runs in the calling thread; encoding and writing run in a writer thread fed through a bounded
queue, so the accelerator never waits on PNG encoding or disk and memory stays flat (at most a few batches
in flight). Each rank takes its own shards (:func:`dataigm.core.partition.partition`), skips shards that are
already done, and writes each shard atomically, so a killed build resumes exactly where it stopped.

Ctrl-C, SIGTERM and SIGUSR1 (:mod:`dataigm.core.interrupt`) stop the build after the batch in flight: it is
written, the unfinished shard is kept as a checkpoint (:meth:`dataigm.core.shards.ShardSink.checkpoint`), and a
rerun continues that shard at its next batch, giving the same bytes as a build that was never stopped.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from dataigm.core.atomic import json_sha256
from dataigm.core.datasets import refuse_exported
from dataigm.core.devices import pick_device
from dataigm.core.errors import DataigmError, InputError
from dataigm.core.interrupt import Interrupted, stop_at_boundary
from dataigm.core.manifest import PartRecord, finalize, part_path, write_model_record, write_part
from dataigm.core.partition import RankInfo, rank_from_env
from dataigm.core.schema import SampleMeta
from dataigm.core.shards import ShardSink, is_done, remove_checkpoint
from dataigm.core.stage import own_units, remove_own_tmp
from dataigm.distributors import check_distributor, require_single_driver
from dataigm.generate import determinism
from dataigm.generate.plan import Plan, plan_build
from dataigm.generate.sources import check_models
from dataigm.recipe import ModelSpec, Recipe

log = logging.getLogger(__name__)

QUEUE_BATCHES = 4  # batches in flight between generation and the writer
MAX_FAILURE_RATE = 0.05  # per shard: more failed images than this aborts the build without publishing the shard


class GenerationFailed(DataigmError):
    """A systematic generation failure (a whole batch, a CUDA error, too many failed images): the shard is not
    published and the build stops, naming the cause."""


@dataclass
class BuildOptions:
    """Run-time settings of a build."""

    device: str = "auto"
    dtype: str | None = None  # None: the recipe's (an override is recorded as part of the recipe)
    batch_size: int | None = None  # None: the recipe's (likewise)
    limit: int | None = None  # first N prompts of each class
    progress: bool = True
    deterministic: bool = False  # deterministic kernels, no TF32/autotuning, pinned threads (see determinism.py)
    # Memory and failure handling: they change where and whether an image is made, not the recipe (VAE slicing and
    # tiling may change the decoder's numerics slightly; they are recorded with the model).
    offload: str | None = None  # None | "model" | "sequential" (diffusers CPU offload)
    vae_slicing: bool = False
    vae_tiling: bool = False
    max_failure_rate: float = MAX_FAILURE_RATE
    encode_workers: int | None = None  # PNG encoder threads; None: one per core on a GPU, one on the CPU (see encoder_workers)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_failure_rate < 1.0:
            raise InputError(f"max_failure_rate must be in [0, 1), got {self.max_failure_rate}")
        if self.offload not in (None, "model", "sequential"):
            raise InputError(f"offload must be model or sequential, got {self.offload!r}")


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


def encoder_workers(device: str, requested: int | None = None) -> int:
    """PNG encoder threads: ``requested``, else one per core this process may use when a GPU generates (Pillow's
    zlib releases the GIL, so they encode in parallel and keep up with fast models), else one (on the CPU the
    pipeline's own threads already use every core)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"encode_workers must be >= 1, got {requested}")
        return requested
    if not device.startswith("cuda"):
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class _Writer(threading.Thread):
    """Consumes (event, payload) items: writes encoded images to the open shard, in order.

    Images are handed to a pool of encoder threads as soon as a batch is queued (:meth:`put`), so several batches
    encode at once while the writer waits on the oldest; the bytes and their order do not depend on the pool size.
    A finished shard is published (fsync, rename, stats) by a thread of its own while the writer goes on with the
    next one, so a shard boundary does not stall the queue and, through it, the generating thread. ``waited``: the
    seconds the generating thread spent blocked on a full queue (the accelerator idle, waiting for the CPU).
    """

    def __init__(self, root: Path, on_sample: Callable[[int], None], max_failure_rate: float = MAX_FAILURE_RATE,
                 encode_workers: int = 1) -> None:
        super().__init__(daemon=True, name="dataigm-writer")
        self.root = root
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=QUEUE_BATCHES)
        self.error: BaseException | None = None
        self.sink: ShardSink | None = None
        self.written = 0
        self.failed = 0
        self.closed = 0  # shards handed to the publisher
        self.held = 0  # samples kept in a checkpoint by a stop
        self.waited = 0.0
        self.on_sample = on_sample
        self.max_failure_rate = max_failure_rate
        self.pool = ThreadPoolExecutor(max_workers=encode_workers, thread_name_prefix="dataigm-png")
        self.publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataigm-publish")
        self.publishing: list[Future[Any]] = []

    def run(self) -> None:
        try:
            while (item := self.queue.get())[0] != "stop":
                self._unless_failed(self._handle, *item)
            self._unless_failed(self._published, True)  # every closed shard is on disk when the writer ends
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.publisher.shutdown(wait=True)  # shards closed before an error are complete: they are published

    def _unless_failed(self, step: Callable[..., None], *args: Any) -> None:
        """Run ``step`` unless an earlier one failed; a failure is kept for the generating thread, which stops the build."""
        if self.error is not None:
            return
        try:
            step(*args)
        except BaseException as e:
            self.error = e
            if self.sink is not None:
                self.sink.abort()
                self.sink = None

    def _published(self, wait: bool) -> None:
        """Raise the first error of the shards handed to the publisher: of those done, or with ``wait`` of all."""
        for future in list(self.publishing):
            if wait or future.done():
                self.publishing.remove(future)
                future.result()

    def _handle(self, event: str, payload: Any) -> None:
        if event == "open":
            self.sink = payload
        elif event == "batch":
            assert self.sink is not None
            for meta, encoded, error in payload:
                if error is None:
                    try:
                        self.sink.write(meta, encoded.result())
                        self.written += 1
                    except ValueError as e:
                        error = f"{type(e).__name__}: {e}"
                if error is not None:
                    self.sink.fail(meta.key, error)
                    self.failed += 1
            self.on_sample(len(payload))
        elif event == "checkpoint":  # a stop: keep what the shard holds for the rerun
            assert self.sink is not None
            sink, self.sink = self.sink, None
            self.held = sink.checkpoint()
        elif event == "close":
            assert self.sink is not None
            sink, self.sink = self.sink, None
            self.closed += 1
            self._check_failure_rate(sink)
            self.publishing.append(self.publisher.submit(_publish, sink))
            self._published(False)  # an earlier shard that failed to publish stops the build now
        elif event == "abort" and self.sink is not None:
            self.sink.abort()
            self.sink = None

    def _check_failure_rate(self, sink: ShardSink) -> None:
        stats = sink.stats
        if stats.failed > self.max_failure_rate * stats.planned:
            first = stats.errors[0]["error"] if stats.errors else ""
            sink.abort()
            raise GenerationFailed(f"shard {stats.shard}: {stats.failed} of {stats.planned} images failed "
                                   f"(more than max_failure_rate={self.max_failure_rate:g}; first: {first}); not published")

    def put(self, event: str, payload: Any = None) -> None:
        """Hand an event to the writer (a batch's images to the encoders first); blocks only while the queue is full."""
        self.check()
        if event == "batch":  # start encoding now; the writer takes the results in order
            payload = [(m, None if error is not None else self.pool.submit(encode_png, image), error) for m, image, error in payload]
        start = time.perf_counter()
        self.queue.put((event, payload))
        self.waited += time.perf_counter() - start

    def check(self) -> None:
        if isinstance(self.error, DataigmError):
            raise self.error
        if self.error is not None:
            raise RuntimeError(f"shard writer failed: {self.error}") from self.error


def _publish(sink: ShardSink) -> None:
    try:
        sink.close()
    except BaseException:
        sink.abort()  # its temp file; a tar renamed without its stats is not done and is redone on resume
        raise


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


GENERATOR_DEVICE = "cpu"  # the noise is drawn here for every device (see generate_batch)


def generate_batch(pipe: Any, batch: Sequence[SampleMeta], device: str) -> list[Any]:
    """Images for a batch: one seeded generator per image, so each image depends only on its own seed.

    The generators are CPU generators whatever ``device`` is; diffusers draws the noise on the CPU and moves it.
    CUDA's sampler maps elements to Philox offsets through a launch grid capped by the GPU's SM count, so above
    some size per sample (SDXL at 1024 px on a T4, SD3/Flux at 1024 px between A100 and H100) one seed gives other
    noise on another GPU; on the CPU it gives the same latents on any machine, and under CPU offload too.
    Arguments the pipeline does not take (``negative_prompt`` on Flux, see :func:`call_settings`) are not passed.
    """
    import torch

    from dataigm.generate.pipeline import call_settings

    generators = [torch.Generator(GENERATOR_DEVICE).manual_seed(m.seed) for m in batch]
    first = batch[0]
    takes = call_settings(pipe)
    kwargs: dict[str, Any] = dict(
        prompt=[m.prompt for m in batch],
        num_inference_steps=first.steps,
        height=first.height,
        width=first.width,
        generator=generators,
        output_type="np",
    )
    if takes["guidance_scale"]:
        kwargs["guidance_scale"] = first.guidance
    if takes["negative_prompt"] and any(m.negative_prompt for m in batch):
        kwargs["negative_prompt"] = [m.negative_prompt for m in batch]
    if "resolution_binning" in takes:
        kwargs["use_resolution_binning"] = takes["resolution_binning"]
    with torch.inference_mode():
        return list(pipe(**kwargs).images)


def is_fatal(error: BaseException) -> bool:
    """A CUDA error other than out-of-memory leaves the context broken: nothing after it can be trusted."""
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return False
    accelerator_error = getattr(torch, "AcceleratorError", None)
    return (accelerator_error is not None and isinstance(error, accelerator_error)) or "CUDA error" in str(error)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"


OOM_ADVICE = "lower batch_size=, or add offload=model (or offload=sequential), vae_slicing=True or vae_tiling=True"


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


@dataclass
class MemoryGuard:
    """Out-of-memory errors of one build: the first batch that runs out is retried image by image; another one,
    or one image alone, is fatal (the rest of the build would fail the same way, one slow image at a time)."""

    oom_batches: int = 0

    def on_oom(self, error: BaseException, batch: Sequence[SampleMeta]) -> None:
        release_memory()
        if len(batch) == 1 or self.oom_batches:
            what = "one image" if len(batch) == 1 else f"a batch of {len(batch)} again"
            raise GenerationFailed(f"out of memory generating {what} ({batch[0].key}, {batch[0].width}x{batch[0].height} px): "
                                   f"{OOM_ADVICE}") from error
        self.oom_batches += 1


def _generate_safely(pipe: Any, batch: list[SampleMeta], device: str,
                     guard: MemoryGuard | None = None) -> list[tuple[SampleMeta, Any, str | None]]:
    """Generate a batch; if the whole batch fails, retry its images one by one (recorded with batch size 1) and
    record what still fails.

    A CUDA error, a repeated out-of-memory error (:class:`MemoryGuard`), or a batch whose every image still fails
    one by one, is systematic (a broken context, the wrong pipeline class, a size the model cannot take): it
    raises :class:`GenerationFailed`.
    """
    guard = guard or MemoryGuard()
    try:
        return list(zip(batch, generate_batch(pipe, batch, device), [None] * len(batch)))
    except Exception as e:
        if is_fatal(e):
            raise GenerationFailed(f"CUDA error while generating {batch[0].key}: {_describe(e)}") from e
        if is_out_of_memory(e):
            guard.on_oom(e, batch)
        if len(batch) == 1:
            return [(batch[0], None, _describe(e))]
        log.warning("batch of %d failed (%s); retrying one image at a time", len(batch), e)
        results = []
        for m in (replace(m, batch_size=1) for m in batch):
            try:
                results.append((m, generate_batch(pipe, [m], device)[0], None))
            except Exception as one:
                if is_fatal(one):
                    raise GenerationFailed(f"CUDA error while generating {m.key}: {_describe(one)}") from one
                if is_out_of_memory(one):
                    guard.on_oom(one, [m])
                results.append((m, None, _describe(one)))
        if all(error is not None for _, _, error in results):
            raise GenerationFailed(f"every image of a batch of {len(batch)} failed, also one by one "
                                   f"(first: {batch[0].key}): {results[0][2]}") from e
        return results


def model_identity(spec: ModelSpec) -> dict[str, Any]:
    """What makes a model's images: its id, revision, class, config, and each overridden component with the sha256
    of its local file/folder. A Hub source is identified by its name and revision, not by the commit in the local
    cache: that is unknown before the first download and would change the identity between a run and its resume.
    Local weights are hashed once per node."""
    from dataigm.generate.lora import lora_identity
    from dataigm.generate.pipeline import TINY_ID, local_fingerprint

    identity = {
        "tag": spec.tag, "id": spec.id, "revision": spec.revision or "", "pipeline_class": spec.pipeline_class or "",
        "config": spec.config or "", "weights_sha256": local_fingerprint(spec.id) if spec.id != TINY_ID else "",
        "components": {name: {"source": src, "sha256": local_fingerprint(src)} for name, src in sorted(spec.components.items())},
    }
    if spec.variant:  # only when set, so the hashes of parts built before these fields existed stay as they were
        identity["variant"] = spec.variant
    if spec.loras:
        identity["loras"] = [lora_identity(lora) for lora in spec.loras]
    return identity


def models_sha256(identities: Sequence[dict[str, Any]]) -> str:
    """One hash over the models of a part (sources are paths and may move; only what identifies weights counts)."""
    keep = [{k: v for k, v in m.items() if k not in ("tag", "components")}
            | {"components": {n: c["sha256"] or c["source"] for n, c in m["components"].items()}} for m in identities]
    for m in keep:
        if m["weights_sha256"]:
            m["id"] = ""  # a local file/folder is identified by its hash, not by where it sits
    return json_sha256(keep)


def check_same_models(out: Path, category: str, models: Sequence[dict[str, Any]], digest: str) -> None:
    """Refuse a rebuild into ``out`` whose models differ from the part's recorded ones, naming the part and the change."""
    path = part_path(out, category, "")
    if not path.exists():
        return
    old = json.loads(path.read_text())
    if old.get("models_sha256", digest) == digest:
        return
    if not any((out / "_stats" / rel).with_suffix(".json").exists() for rel in old.get("shards", [])):
        path.unlink()  # nothing of that part was published (e.g. a build that failed at once): nothing to reuse
        return
    before = {m["tag"]: m for m in old.get("models", [])}
    changes = []
    for m in models:
        o = before.pop(m["tag"], None)
        if o is None:
            changes.append(f"new model {m['tag']!r}")
            continue
        for field_name in ("id", "revision", "pipeline_class", "config", "weights_sha256", "variant", "loras"):
            if o.get(field_name, "") != m.get(field_name, ""):
                changes.append(f"{m['tag']}.{field_name} {str(o.get(field_name, ''))[:16]!r} -> {str(m.get(field_name, ''))[:16]!r}")
        oc, nc = o.get("components", {}), m["components"]
        def ident(c: Any) -> str:  # a local component by its hash, a Hub one by its name
            return (c.get("sha256", "")[:12] or c.get("source", "")) if isinstance(c, dict) else ""

        for name in sorted(set(oc) | set(nc)):
            before_id, after_id = ident(oc.get(name)), ident(nc.get(name))
            if before_id != after_id:
                changes.append(f"{m['tag']}.{name} {before_id or 'base'} -> {after_id or 'base'}")
    changes += [f"model {t!r} removed" for t in before]
    raise InputError(f"{path}: part {category}/generated was built with other models ({'; '.join(changes) or 'models differ'}); "
                     "its images would be reused for the wrong model: use another out=DIR or delete that part")


def part_record(recipe: Recipe, plan: Plan, limit: int | None, identities: Sequence[dict[str, Any]] | None = None,
                dtypes: Sequence[str] = ()) -> PartRecord:
    """The generated part's record: the recipe, its planned shards and the identities of its models. ``dtypes``: each
    model's resolved dtype where its recipe says ``auto`` (fp16 on a V100, bf16 on an A100): in the hash, so a resume
    on other hardware cannot mix both in one part."""
    identities = list(identities) if identities is not None else [model_identity(m) for m in plan.models]
    digest = models_sha256(identities)
    resolved = f"-dtype{'+'.join(dtypes)}" if dtypes else ""
    return PartRecord(
        kind="generated",
        category=recipe.category,
        taxonomy=recipe.taxonomy_name,
        label_names=recipe.label_names(),
        config=recipe.model_dump(mode="json"),
        config_sha256=recipe.sha256() + (f"-limit{limit}" if limit is not None else "") + f"-models{digest[:16]}" + resolved,
        models_sha256=digest,
        resolved_dtypes=list(dtypes),
        limit=limit,
        shards=sorted(s.spec.relpath for s in plan.shards),
        n_planned=plan.n_samples,
        models=identities,
        skipped_negatives=plan.skipped_negatives[:100],
    )


def with_run_overrides(recipe: Recipe, options: BuildOptions) -> Recipe:
    """``recipe`` with ``batch_size``/``dtype`` applied to its generation block and over every model's own
    settings. Batch size and dtype change the pixels (batched kernels differ numerically), so they are recorded as
    part of the recipe."""
    overrides = {k: v for k, v in (("batch_size", options.batch_size), ("dtype", options.dtype)) if v is not None}
    if not overrides:
        return recipe
    models = [m.model_copy(update={"generation": m.generation.model_copy(update=overrides)}) if m.generation else m
              for m in recipe.models]
    return recipe.model_copy(update={"generation": recipe.generation.model_copy(update=overrides), "models": models})


def resolved_dtypes(recipe: Recipe, models: Sequence[ModelSpec], device: str) -> list[str]:
    """The dtype each model whose settings say ``auto`` resolves to on ``device`` (empty when none says auto)."""
    from dataigm.generate.pipeline import resolve_dtype

    dtypes = [recipe.model_generation(m).dtype for m in models]
    if "auto" not in dtypes:
        return []
    return [str(resolve_dtype(d, device)).removeprefix("torch.") for d in dtypes]


def build(
    recipe: Recipe,
    out: Path,
    options: BuildOptions | None = None,
    models: Sequence[ModelSpec] | None = None,
    rank: RankInfo | None = None,
    *,
    distributor: str = "local",
    ray_address: str | None = None,
) -> BuildResult:
    """Build ``recipe`` into the dataset folder ``out`` (this rank's share of it), resuming finished shards.

    ``distributor="ray"`` builds every shard on the Ray cluster at ``ray_address`` (default: ``RAY_ADDRESS`` or a
    local one) from this one process, one actor per GPU (see :mod:`dataigm.distributors.ray`); its shards are
    byte-identical to a one-process build's under ``options.deterministic``.

        >>> build(load_recipe("builders/church.yaml"), Path("church"), distributor="ray")  # doctest: +SKIP
    """
    options = options or BuildOptions()
    check_distributor(distributor)
    rank = rank or rank_from_env()
    if distributor == "ray":
        require_single_driver(rank, "build")
    out = Path(out)
    # 1. Plan and check everything that can be checked before any work
    recipe = with_run_overrides(recipe, options)
    if models is not None:
        models = with_run_overrides(recipe.model_copy(update={"models": list(models)}), options).models
    plan = plan_build(recipe, models, options.limit)
    if not plan.shards:
        raise InputError(f"recipe {recipe.name!r} plans no samples")
    check_models(plan.models)  # a mistyped path fails now, not after the first shards' work
    refuse_exported(out, "build")
    # The skeleton's partition, skip and own-temp steps (dataigm.core.stage); not run_units: one writer thread opens
    # and closes the shards' sinks while this thread generates, so a shard is no call of its own.
    units = own_units(plan.shards, rank.rank, rank.world_size,
                      lambda s: is_done(out, s.spec) and not _has_failures(out, s))  # a rerun retries failed images
    mine, todo = units.owned, units.todo
    remove_own_tmp(mine, lambda s: (s.spec.tar_path(out), s.spec.stats_path(out)))
    # 2. This rank's device, made current before any CUDA query (bf16 support, the dtype auto resolves to); on Ray,
    # the dtypes auto resolves to on the cluster's workers
    if distributor == "ray":
        dtypes = _resolved_dtypes_on_ray(recipe, plan, options, ray_address)
    else:
        device = pick_device(options.device, rank.local_rank)
        dtypes = resolved_dtypes(recipe, plan.models, device)
    log.info("rank %d/%d: %d of %d shards to build (%d already done)", rank.rank, rank.world_size, len(todo), len(mine), len(mine) - len(todo))
    # 3. Record the part's plan, then generate
    identities = [model_identity(m) for m in plan.models]
    record = part_record(recipe, plan, options.limit, identities, dtypes)
    check_same_models(out, recipe.category, identities, models_sha256(identities))
    write_part(out, recipe.category, "", record)
    if distributor == "ray":
        written, failed = _generate_on_ray(recipe, plan, todo, out, options, ray_address)
    else:
        restore_settings = determinism.prepare(recipe.generation.threads, options.deterministic)
        try:
            if todo:  # every rank records what it generates under (device, threads, TF32, versions...)
                determinism.record_build_settings(out, recipe.category, "", rank, device, recipe.generation.dtype, recipe.generation.batch_size,
                                                  options.deterministic, [s.spec.relpath for s in todo])
            written, failed = _generate_shards(recipe, plan, todo, out, options, device, rank)
        finally:
            restore_settings()

    if recipe.real_images:  # the recipe's real-image parts join the same category, splits and labels
        from dataigm.ingest.images import import_recipe_images

        import_recipe_images(recipe, out, rank=rank.rank, world_size=rank.world_size, progress=options.progress,
                             distributor=distributor, ray_address=ray_address)
    manifest = finalize(out).manifest  # written by the rank or array task that finishes last
    return BuildResult(out, len(plan.shards), len(todo), len(mine) - len(todo), written, failed, manifest)


def _load_for_shards(recipe: Recipe, spec: ModelSpec, out: Path, options: BuildOptions, device: str) -> Any:
    """Load one model, check the sizes it must render, record it."""
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.generate.sizes import check_size

    gen = recipe.model_generation(spec)
    model = load_pipeline(spec, device, gen.dtype, gen.scheduler, options.offload, options.vae_slicing, options.vae_tiling)
    check_size(model.pipe, gen.width, gen.height)
    write_model_record(out, model.record())
    return model


def _batches_as_run(model: Any, samples: Sequence[SampleMeta], batch_size: int) -> Iterator[list[SampleMeta]]:
    """Batches of a shard with what the pipeline really uses recorded per sample: its scheduler and revision, the
    batch size, where the noise is drawn, and no negative prompt where it takes none or ignores it (guidance <= 1
    turns classifier-free guidance off, and the negative prompt with it)."""
    used = {"model_revision": model.revision, "scheduler": type(model.pipe.scheduler).__name__, "generator_device": GENERATOR_DEVICE}
    for batch in iter_batches(samples, batch_size):
        yield [replace(m, **used, batch_size=len(batch),
                       negative_prompt=m.negative_prompt if model.call["negative_prompt"] and m.guidance > 1.0 else "") for m in batch]


def _generate_shards(recipe: Recipe, plan: Plan, todo: Sequence[Any], out: Path, options: BuildOptions, device: str,
                     rank: RankInfo, load: Callable[[int], Any] | None = None) -> tuple[int, int]:
    """Generate and write ``todo``'s shards, one pipeline in memory at a time; (images written, images failed).

    ``load(model_index)`` gives a shard's pipeline (default: loaded when the model changes, see
    :func:`_load_for_shards`); a Ray actor passes one that keeps its last pipeline between calls."""
    load = load or (lambda index: _load_for_shards(recipe, plan.models[index], out, options, device))
    from tqdm.auto import tqdm

    model: Any = None
    model_index = -1
    guard = MemoryGuard()
    bar = tqdm(total=sum(len(s.samples) for s in todo), unit="img", desc=f"build {recipe.name}", disable=not options.progress,
               position=rank.local_rank if rank.world_size > 1 else None, dynamic_ncols=True)
    workers = encoder_workers(device, options.encode_workers)
    writer = _Writer(out, bar.update, options.max_failure_rate, workers)
    writer.start()
    stop_signal: int | None = None
    try:
        with stop_at_boundary() as stop:
            for shard in todo:
                if stop:
                    break
                if shard.model_index != model_index:
                    if model is not None:  # free the previous pipeline before loading the next
                        model = None
                        release_memory()
                    model = load(shard.model_index)
                    model_index = shard.model_index
                batch_size = recipe.model_generation(plan.models[shard.model_index]).batch_size
                sink, batches = _resume_shard(out, shard, list(_batches_as_run(model, shard.samples, batch_size)))
                bar.update(sink.position)
                writer.put("open", sink)
                for i, batch in enumerate(batches, 1):
                    writer.put("batch", _generate_safely(model.pipe, batch, device, guard))
                    if stop and i < len(batches):  # the batch in flight is written; the shard waits in a checkpoint
                        writer.put("checkpoint")
                        break
                else:
                    writer.put("close")
            stop_signal = stop.signum
        writer.put("stop")
        if model is not None:  # free the pipeline (a GPU's memory for the judges) while the writer drains its queue
            model = None
            if device.startswith("cuda"):  # on the CPU dropping it frees it; a full collection (0.2-1.7 s) would
                release_memory()           # hold the GIL that the encoders and the writer need to drain the queue
        writer.join()
        writer.check()
        if stop_signal is not None:
            held = f", 1 checkpointed with {writer.held} images" if writer.held else ""
            raise Interrupted(stop_signal, f"{writer.closed} of {len(todo)} shards to do finished{held}")
        log.info("generation waited %.1f s on a full queue for PNG encoding and writing (%d encoder threads)", writer.waited, workers)
    except BaseException:
        if writer.is_alive():
            writer.queue.put(("abort", None))
            writer.queue.put(("stop", None))
            writer.join(timeout=60)
        raise
    finally:
        bar.close()
        if model is not None:  # give the pipeline's memory back before judges load on the same GPU
            model = None
            release_memory()
    return writer.written, writer.failed


def _resume_shard(out: Path, shard: Any, batches: list[list[SampleMeta]]) -> tuple[ShardSink, list[list[SampleMeta]]]:
    """The shard's sink, started from its checkpoint when a stopped run left one, and the batches still to generate.

    A checkpoint ends at a batch boundary, and batches are cut the same way on every run, so the remaining batches
    are the ones a run that was never stopped would generate; one that does not end on a boundary is dropped."""
    sink = ShardSink(out, shard.spec, len(shard.samples), resume=True)
    done, skip = 0, 0
    while done < sink.position and skip < len(batches):
        done += len(batches[skip])
        skip += 1
    if done != sink.position:
        sink.abort()
        remove_checkpoint(out, shard.spec)
        return ShardSink(out, shard.spec, len(shard.samples)), batches
    return sink, batches[skip:]


def _has_failures(out: Path, shard: Any) -> bool:
    path = shard.spec.stats_path(out)
    return path.exists() and json.loads(path.read_text()).get("failed", 0) > 0


def release_memory() -> None:
    """Return freed pipeline memory to the allocator and the GPU."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


# --- the Ray distributor: one shard per unit, on actors that keep their pipeline (see dataigm.distributors.ray) -----
class _RayBuildWorker:
    """Builds one shard per call inside a Ray actor: the device and ``--deterministic`` settings applied once, the
    last model kept loaded between shards. Returns (images written, images failed, the settings it generated under)."""

    def __init__(self, recipe: Recipe, plan: Plan, out: Path, options: BuildOptions) -> None:
        self.recipe, self.plan, self.out = recipe, plan, out
        self.options = replace(options, progress=False)
        self.device = pick_device(options.device)
        determinism.prepare(recipe.generation.threads, options.deterministic)  # for the actor's life
        from dataigm.generate.pipeline import resolve_dtype

        resolved = str(resolve_dtype(recipe.generation.dtype, self.device)).removeprefix("torch.")
        self.settings = determinism.capture_settings(self.device, resolved, recipe.generation.batch_size, options.deterministic)
        self.loaded: tuple[int, Any] = (-1, None)

    def load(self, index: int) -> Any:
        if self.loaded[0] != index:
            self.loaded = (-1, None)
            release_memory()
            self.loaded = (index, _load_for_shards(self.recipe, self.plan.models[index], self.out, self.options, self.device))
        return self.loaded[1]

    def __call__(self, shard: Any) -> tuple[int, int, dict[str, Any]]:
        written, failed = _generate_shards(self.recipe, self.plan, [shard], self.out, self.options, self.device, RankInfo(), self.load)
        return written, failed, self.settings


class _DtypeProbe:
    """Inside a Ray actor placed like the build's: the dtypes the recipe's ``auto`` models resolve to there."""

    def __init__(self, recipe: Recipe, models: Sequence[ModelSpec], device: str) -> None:
        self.dtypes = resolved_dtypes(recipe, models, pick_device(device))

    def __call__(self, _unit: Any) -> list[str]:
        return self.dtypes


def _resolved_dtypes_on_ray(recipe: Recipe, plan: Plan, options: BuildOptions, address: str | None) -> list[str]:
    """:func:`resolved_dtypes` on a Ray worker placed like the build's (the driver may have no GPU); on the CPU, here."""
    if all(recipe.model_generation(m).dtype != "auto" for m in plan.models):
        return []
    if options.device == "cpu":
        return resolved_dtypes(recipe, plan.models, "cpu")
    from dataigm.distributors import ray_distributor

    return ray_distributor().map_units([None], partial(_DtypeProbe, recipe, plan.models, options.device), address=address, gpu=True)[0]


def _generate_on_ray(recipe: Recipe, plan: Plan, todo: Sequence[Any], out: Path, options: BuildOptions,
                     address: str | None) -> tuple[int, int]:
    """Build ``todo``'s shards on the Ray cluster; record the settings each shard was generated under; remove the
    temp files of attempts whose worker died. Returns (images written, images failed)."""
    from dataigm.core.run_settings import record_rank_settings, settings_digest
    from dataigm.distributors import ray_distributor

    results = ray_distributor().map_units(todo, partial(_RayBuildWorker, recipe, plan, out, options), address=address, gpu=True,
                                          progress=options.progress)
    remove_own_tmp(todo, lambda s: (s.spec.tar_path(out), s.spec.stats_path(out)))  # no worker writes any more
    by_settings: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for shard, (_, _, settings) in zip(todo, results):
        by_settings.setdefault(settings_digest(settings), (settings, []))[1].append(shard.spec.relpath)
    for k, (settings, shards) in enumerate(sorted(by_settings.values(), key=lambda v: v[1][0])):
        record_rank_settings(out, recipe.category, "", k, len(by_settings), settings, shards)
    return sum(r[0] for r in results), sum(r[1] for r in results)
