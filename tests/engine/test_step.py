"""The shared step and evaluation pass: the fast path equals the general one, accumulation
equals one big batch, evaluation matches a hand computation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tunewidgets.engine.losses import get_loss
from tunewidgets.engine.metrics import get_metric
from tunewidgets.engine.step import TrainStep, batch_len, evaluate

CPU = torch.device("cpu")


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _batches(n=6, size=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, generator=g), torch.randint(0, 2, (size,), generator=g)) for _ in range(n)]


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_the_fast_path_and_the_general_path_give_the_same_weights():
    batches = _batches()
    fast_model, slow_model = _model(), _model()
    fast = TrainStep(fast_model, torch.optim.SGD(fast_model.parameters(), lr=0.1, momentum=0.9), F.cross_entropy,
                     device=CPU)
    # a clip far above any gradient norm takes the general path and changes nothing
    slow = TrainStep(slow_model, torch.optim.SGD(slow_model.parameters(), lr=0.1, momentum=0.9), F.cross_entropy,
                     device=CPU, grad_clip=1e12)
    assert fast.plain is not None and slow.plain is None
    fast_losses = [fast.plain(b).item() for b in batches]
    slow_losses = []
    for b in batches:
        slow_losses.append(slow.micro(b).item())
        slow.update()
    assert fast_losses == slow_losses
    assert all(torch.equal(a, b) for a, b in zip(_params(fast_model), _params(slow_model)))
    assert fast.samples == slow.samples == 24
    assert all(p.grad is None for p in fast_model.parameters())  # cleared after each update


def test_accumulating_two_half_batches_equals_one_whole_batch():
    (x1, y1), (x2, y2) = _batches(2, 4)
    whole_model, accum_model = _model(), _model()
    whole = TrainStep(whole_model, torch.optim.SGD(whole_model.parameters(), lr=0.5), F.cross_entropy, device=CPU)
    accum = TrainStep(accum_model, torch.optim.SGD(accum_model.parameters(), lr=0.5), F.cross_entropy, device=CPU,
                      grad_accum=2)
    loss_whole = whole.plain((torch.cat([x1, x2]), torch.cat([y1, y2]))).item()
    loss_accum = (accum.micro((x1, y1)) + accum.micro((x2, y2))).item()
    accum.update()
    assert loss_accum == pytest.approx(loss_whole, rel=1e-6)
    for a, b in zip(_params(whole_model), _params(accum_model)):
        assert torch.allclose(a, b, atol=1e-6)


def test_clipping_bounds_the_update():
    model = _model()
    before = _params(model)
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=1.0), F.cross_entropy, device=CPU, grad_clip=1e-3)
    step.micro(_batches(1)[0])
    step.update()
    moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(_params(model), before)))
    assert moved.item() == pytest.approx(1e-3, rel=1e-4)  # lr 1 x gradient norm clipped to 1e-3


def test_the_first_batch_runs_the_loss_check_once():
    model = torch.nn.Linear(3, 5)
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), get_loss("cross_entropy"), device=CPU)
    with pytest.raises(ValueError, match="cross_entropy"):
        step.plain((torch.randn(4, 3), torch.tensor([0, 1, 2, 9])))  # class 9 of 5


def test_batch_loss_and_dict_batches():
    model = _model()
    calls = []

    def batch_loss(batch):
        calls.append(batch_len(batch))
        return F.cross_entropy(model(batch["x"]), batch["y"])
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), None, device=CPU, batch_loss=batch_loss)
    assert step.plain is None
    x, y = _batches(1)[0]
    step.micro({"x": x, "y": y})
    step.update()
    assert calls == [4] and step.samples == 4


def test_evaluate_matches_a_hand_computation_and_restores_the_mode():
    model = _model()
    model.train()
    batches = _batches(3, 5)
    record = evaluate(model, batches, device=CPU, loss_fn=F.cross_entropy, metrics={"accuracy": get_metric("accuracy")[1]()})
    with torch.no_grad():
        x = torch.cat([b[0] for b in batches])
        y = torch.cat([b[1] for b in batches])
        out = model(x)
    assert record["val_loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-6)
    assert record["val_accuracy"] == pytest.approx((out.argmax(1) == y).float().mean().item())
    assert model.training
    with pytest.raises(ValueError, match="val_data: the validation data yields no batches"):
        evaluate(model, [], device=CPU, loss_fn=F.cross_entropy, field="val_data")
