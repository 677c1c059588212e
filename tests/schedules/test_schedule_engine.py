"""End to end: the lr the engine records at every step equals the spec's preview."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import tunewidgets as tw
import tunewidgets.schedules as S


def _task() -> tw.Task:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=g)
    y = (x[:, 0] > 0).long()
    data = TensorDataset(x, y)
    return tw.Task(model=lambda: torch.nn.Linear(2, 2), train=data, val=data, loss="cross_entropy", batch_size=8)


SPECS = [
    S.OneCycle(max_lr=0.5, pct_start=0.4),
    S.Step(step_size=1, gamma=0.5, interval="epoch"),
    S.Warmup(steps=4, then=S.Cosine(eta_min=1e-3)),
    S.Sequential(specs=[S.Cyclic(base_lr=0.01, max_lr=0.2, step_size_up=2), S.Exponential(gamma=0.9)],
                 milestones=[9]),
    S.WSD(warmup_steps=2, decay_fraction=0.3, decay="1-sqrt"),
    S.CosineWarmRestarts(T_0=2, T_mult=2, interval="epoch"),
]


@pytest.mark.parametrize("spec", SPECS, ids=repr)
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_engine_lr_equals_preview(spec, optimizer):
    cfg = tw.TrainConfig(optimizer=optimizer, lr=0.1, momentum=0.9, epochs=4, max_steps=18, schedule=spec,
                         device="cpu")
    run = tw.train(_task(), cfg)
    steps = run.steps()
    assert len(steps) == 18  # 5 steps per epoch, cut short in the 4th epoch
    preview = spec.preview(18, cfg.lr, steps_per_epoch=5, optimizer=optimizer, momentum=0.9)
    np.testing.assert_allclose(steps["lr"].to_numpy(), preview["lr"].to_numpy(), rtol=1e-12, atol=0)
    assert steps["step"].tolist() == preview["step"].tolist()
    assert steps["epoch"].tolist() == preview["epoch"].tolist()


def test_engine_plateau_lr_equals_preview_fed_the_run_val_losses():
    spec = S.ReduceOnPlateau(factor=0.5, patience=0, threshold=0.2)  # needs a 20% gain, so it cuts often
    run = tw.train(_task(), tw.TrainConfig(optimizer="sgd", lr=0.5, epochs=5, schedule=spec, device="cpu"))
    losses = run.evals()["val_loss"].tolist()
    preview = spec.preview(25, 0.5, steps_per_epoch=5, metrics=losses)
    np.testing.assert_allclose(run.steps()["lr"].to_numpy(), preview["lr"].to_numpy(), rtol=1e-12, atol=0)
    assert preview["lr"].iloc[-1] < 0.5  # the metric did cut the lr
