"""Judge the same images in every input form ``Judge.__call__`` takes, and with ``dataigm judge``, for each spec.

``python tests/blocked_extras.py tests/judge_every_form.py FOLDER OUT.json JUDGES.json`` (the folder holds ``0.png``,
``1.png``, ...; JUDGES.json lists ``[spec, options]`` pairs): OUT.json maps each spec to its verdicts per form, the
command's JSONL records, and the blocked frameworks that got imported (none).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def as_json(v) -> dict:
    return {"ids": v.ids, "scores": v.scores.tolist(), "positive": v.positive.tolist(), "predicted": v.predicted,
            "classes": v.classes, "class_scores": None if v.class_scores is None else v.class_scores.tolist(),
            "n_failed": len(v.failed)}


FLAGS = {"clip_model": "--clip-model", "threshold": "--threshold", "concept": "--concept"}  # the command's flag for each option used here


def main(folder: Path, out: Path, judges: list[tuple[str, dict]]) -> None:
    import numpy as np
    import torch
    from PIL import Image

    import dataigm
    from dataigm.cli import main as cli

    files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))
    pictures = [Image.open(p) for p in files]
    nchw = torch.from_numpy(np.stack([np.asarray(p.convert("RGB")) for p in pictures])).permute(0, 3, 1, 2).contiguous()
    results = {}
    for spec, options in judges:
        judge = dataigm.load_judge(spec, device="cpu", **options)
        forms = {
            "folder": judge(folder),
            "paths": judge([str(p) for p in reversed(files)]),  # a list of files: verdicts in its order
            "pil": judge(pictures),
            "nchw": judge(nchw),
            "batch_1": judge(pictures, batch_size=1),
            "batch_7": judge(folder, batch_size=7),
        }
        jsonl = out.with_name(f"cli-{len(results)}.jsonl")
        flags = [x for k, v in options.items() for x in (FLAGS[k], str(v))]
        code = cli(["judge", str(folder), "--judge", spec, *flags, "--device", "cpu", "--out", str(jsonl), "--json"])
        results[spec] = {"forms": {k: as_json(v) for k, v in forms.items()}, "cli_code": code,
                         "cli": [json.loads(line) for line in jsonl.read_text().splitlines()]}
    from blocked_extras import still_blocked

    out.write_text(json.dumps({"results": results, "imported": still_blocked()}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text()))
