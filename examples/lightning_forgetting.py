"""Log how much of a concept a generator still shows while it is fine-tuned: a Lightning callback that judges a few
samples at the end of every epoch with :class:`dataigm.metrics.ForgettingRate`.

    python examples/lightning_forgetting.py [SPEC] [THRESHOLD]

The "generator" here is a tiny stand-in (noise around one learnable brightness) fine-tuned to darken its output, so
the script runs in seconds on a CPU; an unlearning method puts its own model and loss in ``training_step`` and its own
sampler in ``sample``. SPEC is any judge spec (default ``nudenet``); the metric sums its counts across DDP ranks.
Needs the train extra: ``pip install 'dataigm[train]'``.
"""

from __future__ import annotations

import sys

import lightning as L
import torch

import dataigm
from dataigm.metrics import ForgettingRate


class TinyGenerator(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.brightness = torch.nn.Parameter(torch.tensor(2.0))

    def sample(self, n: int) -> torch.Tensor:
        """``n`` images as uint8 NCHW, the form a judge takes."""
        noise = torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.5
        return (torch.sigmoid(self.brightness + noise) * 255).round().to(torch.uint8)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = torch.sigmoid(self.brightness)  # the "unlearning" objective: darker images
        self.log("loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=2.0)


class LogForgetting(L.Callback):
    """Judge ``n`` samples at each epoch's end and log the share the judge still finds the concept in."""

    def __init__(self, judge: dataigm.Judge, n: int = 8) -> None:
        self.metric = ForgettingRate(judge)
        self.n = n
        self.history: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: TinyGenerator) -> None:
        with torch.no_grad():
            self.metric.update(pl_module.sample(self.n).cpu())
        rate = self.metric.compute()
        pl_module.log("forgetting_rate", rate.float())
        self.history.append(rate.item())
        self.metric.reset()


def main(spec: str = "nudenet", threshold: float | None = None) -> list[float]:
    judge = dataigm.load_judge(spec, device="cpu", **({"threshold": threshold} if threshold is not None else {}))
    callback = LogForgetting(judge)
    data = torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=1)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])
    trainer.fit(TinyGenerator(), data)
    for epoch, rate in enumerate(callback.history):
        print(f"epoch {epoch}: forgetting_rate={rate:.3f}")
    return callback.history


if __name__ == "__main__":
    main(*sys.argv[1:2], *(float(t) for t in sys.argv[2:3]))
