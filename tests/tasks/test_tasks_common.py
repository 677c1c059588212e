"""What every built-in task promises: a Task with a seeded, disjoint train/val split."""
from __future__ import annotations

import pytest
import torch
from tasks_helpers import rows

import tunewidgets as tw

# small sizes keep these checks in milliseconds
FACTORIES = {
    "digits": lambda **kw: tw.tasks.digits(**kw),
    "spirals": lambda **kw: tw.tasks.spirals(n=300, **kw),
    "shapes": lambda **kw: tw.tasks.shapes(n=64, size=16, **kw),
    "shapes-multiclass": lambda **kw: tw.tasks.shapes(n=64, size=16, classes=2, **kw),
    "sine": lambda **kw: tw.tasks.sine(n=300, **kw),
}
EXPECTED = {  # name: (loss, metrics, target dtype)
    "digits": ("cross_entropy", ("accuracy",), torch.int64),
    "spirals": ("cross_entropy", ("accuracy",), torch.int64),
    "shapes": ("dice", ("dice", "iou"), torch.float32),
    "shapes-multiclass": ("ce_dice", ("dice", "iou"), torch.int64),
    "sine": ("mse", ("mae",), torch.float32),
}


def test_package_exports_the_four_tasks():
    assert tw.tasks.__all__ == ["digits", "spirals", "shapes", "sine"]
    assert all(callable(getattr(tw.tasks, name)) for name in tw.tasks.__all__)


@pytest.mark.parametrize("key", sorted(FACTORIES))
def test_task_fields_and_recommended_config(key):
    task = FACTORIES[key]()
    loss, metrics, target_dtype = EXPECTED[key]
    assert isinstance(task, tw.Task)
    assert task.name == key
    assert (task.loss, tuple(task.metrics), task.batch_size) == (loss, metrics, 64)
    x, y = task.train.tensors
    assert x.dtype == torch.float32 and y.dtype == target_dtype
    assert task.val.tensors[0].dtype == torch.float32 and task.val.tensors[1].dtype == target_dtype
    cfg = tw.TrainConfig(**task.recommended)  # valid TrainConfig keywords
    assert cfg.optimizer == task.recommended["optimizer"] and cfg.epochs >= 1
    # the default model's output fits the loss and every metric
    out = task.build_model()(x[:8])
    task.loss_fn.check(out, y[:8])
    for make in task.metric_fns.values():
        metric = make()
        metric.update(out, y[:8])
        assert 0.0 <= metric.compute() < float("inf")


@pytest.mark.parametrize("key", sorted(FACTORIES))
def test_split_is_seeded_disjoint_and_sized(key):
    a, b, other = FACTORIES[key](seed=0), FACTORIES[key](seed=0), FACTORIES[key](seed=1)
    for part in ("train", "val"):
        for t_a, t_b in zip(getattr(a, part).tensors, getattr(b, part).tensors):
            assert torch.equal(t_a, t_b)
    assert rows(a.val.tensors[0]) != rows(other.val.tensors[0])
    assert not rows(a.train.tensors[0]) & rows(a.val.tensors[0])
    n = len(a.train) + len(a.val)
    assert len(a.val) == round(0.2 * n)
    small = FACTORIES[key](val_fraction=0.1)
    assert len(small.val) == round(0.1 * n) and len(small.train) == n - round(0.1 * n)


@pytest.mark.parametrize("key", sorted(FACTORIES))
def test_batch_size_is_passed_on(key):
    assert FACTORIES[key](batch_size=16).batch_size == 16


@pytest.mark.parametrize("key", sorted(FACTORIES))
@pytest.mark.parametrize("kwargs, field", [
    ({"val_fraction": 0}, "val_fraction"), ({"val_fraction": 1.0}, "val_fraction"),
    ({"val_fraction": float("nan")}, "val_fraction"), ({"val_fraction": "0.2"}, "val_fraction"),
    ({"val_fraction": 1e-6}, "val_fraction"),
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"seed": True}, "seed"),
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 8.0}, "batch_size"),
])
def test_bad_common_arguments_name_the_field(key, kwargs, field):
    with pytest.raises((ValueError, TypeError), match=f"^{field}: .*(e.g.|choose)"):
        FACTORIES[key](**kwargs)


@pytest.mark.parametrize("call, field", [
    (lambda: tw.tasks.spirals(n=1), "n"), (lambda: tw.tasks.spirals(arms=1), "arms"),
    (lambda: tw.tasks.spirals(noise=-0.1), "noise"), (lambda: tw.tasks.spirals(turns=float("inf")), "turns"),
    (lambda: tw.tasks.shapes(classes=3), "classes"), (lambda: tw.tasks.shapes(classes=0), "classes"),
    (lambda: tw.tasks.shapes(size=31), "size"), (lambda: tw.tasks.shapes(size=4), "size"),
    (lambda: tw.tasks.shapes(max_shapes=0), "max_shapes"), (lambda: tw.tasks.shapes(n=1.5), "n"),
    (lambda: tw.tasks.sine(noise=-1), "noise"), (lambda: tw.tasks.sine(periods=0), "periods"),
    (lambda: tw.tasks.sine(n=0), "n"),
])
def test_bad_task_arguments_name_the_field_and_a_fix(call, field):
    with pytest.raises((ValueError, TypeError), match=f"^{field}: .*e.g. {field}="):
        call()
