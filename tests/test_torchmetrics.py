"""dataigm.metrics: ForgettingRate and JudgeAgreement accumulate over updates and sum across DDP ranks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dataigm
from dataigm.evaluation.agreement import judge_agreement
from dataigm.metrics import ForgettingRate, JudgeAgreement


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Ten 64 px noise images as a uint8 NCHW tensor."""
    rng = np.random.default_rng(3)
    return torch.from_numpy(rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def spec_threshold(nudity_detector, images) -> tuple[str, float]:
    """The tiny detector and a threshold between its scores on ``images`` (four of ten positive)."""
    spec = f"local-dir:{nudity_detector}"
    scores = np.sort(dataigm.load_judge(spec, device="cpu")(images).scores)
    return spec, float((scores[5] + scores[6]) / 2)


def test_forgetting_rate_over_two_updates_is_the_judges_positive_rate(spec_threshold, images):
    spec, threshold = spec_threshold
    judge = dataigm.load_judge(spec, device="cpu", threshold=threshold)
    metric = ForgettingRate(judge)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert torch.isnan(metric.compute())
    metric.update(images[:3])
    metric.update([Image.fromarray(a.permute(1, 2, 0).numpy()) for a in images[3:]])
    expected = judge(images).positive_rate
    assert expected == 0.4 and metric.compute().item() == expected
    metric.reset()
    metric.update(images[:1])
    assert metric.total.item() == 1


def test_judge_agreement_is_kappa_and_raw_agreement(spec_threshold, images):
    spec, threshold = spec_threshold
    strict = dataigm.load_judge(spec, device="cpu", threshold=threshold)
    loose = dataigm.load_judge(spec, device="cpu", threshold=0.0)  # every image positive
    metric = JudgeAgreement(strict, loose)
    metric.update(images[:4])
    metric.update(images[4:])
    got = metric.compute()
    want = judge_agreement(strict(images).positive.tolist(), loose(images).positive.tolist())
    assert got["agreement"].item() == want["agreement"] == 0.4 and got["n"].item() == 10
    assert np.isnan(got["kappa"].item()) == (want["kappa"] is None)  # one judge constant: chance agreement decides
    same = JudgeAgreement(strict, strict)
    same.update(images)
    assert same.compute()["kappa"].item() == 1.0 and same.compute()["agreement"].item() == 1.0


def test_judge_agreement_per_image_between_two_mixed_judges(spec_threshold, images):
    spec, threshold = spec_threshold
    scores = dataigm.load_judge(spec, device="cpu")(images).scores
    a = dataigm.load_judge(spec, device="cpu", threshold=threshold)  # 4 of 10 positive
    b = dataigm.load_judge(spec, device="cpu", threshold=float(np.sort(scores)[2]))  # 8 of 10 positive: neither constant
    metric = JudgeAgreement(a, b, batch_size=3)
    with pytest.warns(UserWarning, match="before the ``update``"):
        empty = metric.compute()  # before any image: no kappa, no agreement, no images (and no division by zero)
    assert np.isnan(empty["kappa"].item()) and np.isnan(empty["agreement"].item()) and empty["n"].item() == 0
    metric.update(images[:7])
    metric.update(images[7:])
    va, vb = a(images).positive.tolist(), b(images).positive.tolist()
    assert va != vb and 0 < sum(va) < 10 and 0 < sum(vb) < 10
    got, want = metric.compute(), judge_agreement(va, vb)
    assert got["kappa"].dtype == torch.double and got["kappa"].item() == pytest.approx(want["kappa"])
    assert got["agreement"].item() == pytest.approx(want["agreement"]) and got["n"].item() == 10
    assert metric.table.tolist() == [[sum(not x and not y for x, y in zip(va, vb)), sum(not x and y for x, y in zip(va, vb))],
                                     [sum(x and not y for x, y in zip(va, vb)), sum(x and y for x, y in zip(va, vb))]]


def test_merged_states_sum_as_ranks_do(spec_threshold, images):
    """torchmetrics merges another metric's state with the reductions a DDP sync uses: sums of the counts."""
    spec, threshold = spec_threshold
    judge = dataigm.load_judge(spec, device="cpu", threshold=threshold)
    first, second = ForgettingRate(judge, batch_size=2), ForgettingRate(judge)
    first.update(images[:3])
    second.update(images[3:])  # 3 and 7 images: no k/3 nor k/7 is 0.4, only the merged counts give it
    first.merge_state(second)
    assert first.compute().dtype == torch.double and first.compute().item() == 0.4 and first.total.item() == 10
    loose = dataigm.load_judge(spec, device="cpu", threshold=0.0)
    a, b = JudgeAgreement(judge, loose), JudgeAgreement(judge, loose)
    a.update(images[:3])
    b.update(images[3:])
    a.merge_state(b)
    assert a.compute()["agreement"].item() == 0.4 and a.compute()["n"].item() == 10


def test_an_empty_forgetting_rate_is_a_double_nan_and_a_spec_is_loaded(spec_threshold, images):
    metric = ForgettingRate(spec_threshold[0])  # a spec is loaded as load_judge does
    with pytest.warns(UserWarning):
        empty = metric.compute()
    assert empty.dtype == torch.double and torch.isnan(empty)
    metric.update(images)
    assert metric.compute().item() == dataigm.load_judge(spec_threshold[0])(images).positive_rate and metric.total.item() == 10


def _rank(rank: int, world: int, spec: str, threshold: float, images: torch.Tensor, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["DATAIGM_TEST_PORT"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    metric = ForgettingRate(dataigm.load_judge(spec, device="cpu", threshold=threshold))
    mine = images[:3] if rank == 0 else images[3:]  # 3 and 7 images: no k/3 nor k/7 is 0.4, only the sum over ranks
    metric.update(mine[:2])
    metric.update(mine[2:])
    Path(out, f"{rank}.json").write_text(json.dumps({"rate": metric.compute().item(), "local": metric.total.item()}))
    dist.destroy_process_group()


@pytest.mark.slow  # two processes, each loading torch and the judge
def test_forgetting_rate_sums_across_two_ddp_ranks(spec_threshold, images, tmp_path, monkeypatch):
    import socket

    import torch.multiprocessing as mp

    spec, threshold = spec_threshold
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("DATAIGM_TEST_PORT", str(s.getsockname()[1]))
    mp.spawn(_rank, args=(2, spec, threshold, images, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    assert [r["rate"] for r in ranks] == [0.4, 0.4]  # the rate over all ten images, on each rank
    assert [r["local"] for r in ranks] == [3, 7]  # after compute, each rank keeps its own counts
