"""Wrong results reported as normal, and errors that do not name the field: each probe, as a test."""
from __future__ import annotations

import dataclasses
import inspect
import json
import math

import numpy as np
import pytest
import torch
from engine_helpers import blob_task, blobs, mlp
from no_host_sync import no_host_reads
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import tunewidgets as tw
import tunewidgets.schedules as S
from tunewidgets.engine import checks, loop
from tunewidgets.engine.checks import check_first_batch, check_lr
from tunewidgets.engine.losses import get_loss
from tunewidgets.engine.optimizers import _CLASSES, _COMMON, _keywords, _takes_flag, build_from_config, build_optimizer

CPU = dict(device="cpu")
NOT_BOOLS = ("no", "False", 1, 0, 1.0, None)


def steps_of(task, cfg):
    """Train and return the number of STEP events fired (0 when it fails before training)."""
    steps = []
    try:
        tw.train(task, cfg, callbacks=[{"step": steps.append}])
    finally:
        steps_of.last = len(steps)
    return len(steps)


# ------------------------------------------------------------------ booleans are booleans
def bool_fields(cls):
    return [f.name for f in dataclasses.fields(cls) if "bool" in str(f.type)]


def test_every_flag_of_train_config_refuses_what_is_not_a_bool():
    assert {"nesterov", "amp"} <= set(bool_fields(tw.TrainConfig))
    for name in bool_fields(tw.TrainConfig):
        for bad in NOT_BOOLS:
            with pytest.raises((TypeError, ValueError), match=rf"^{name}: .*got {bad!r}"):
                tw.TrainConfig(momentum=0.9, **{name: bad})
        for good in (True, False, np.bool_(True)):
            value = getattr(tw.TrainConfig(momentum=0.9, **{name: good}), name)
            assert value is bool(good)  # stored as a Python bool


@pytest.mark.parametrize("bad", NOT_BOOLS)
def test_nesterov_no_does_not_turn_nesterov_on(bad):
    with pytest.raises(TypeError, match=rf"nesterov: expected True or False, got {bad!r}"):
        tw.TrainConfig(momentum=0.9, nesterov=bad)
    params = [nn.Parameter(torch.zeros(1))]
    with pytest.raises(TypeError, match="nesterov: expected True or False"):
        build_optimizer("sgd", params, lr=0.1, momentum=0.9, nesterov=bad)
    on = build_from_config(tw.TrainConfig(momentum=0.9, nesterov=True), params)
    off = build_from_config(tw.TrainConfig(momentum=0.9, nesterov=False), params)
    assert on.param_groups[0]["nesterov"] is True and off.param_groups[0]["nesterov"] is False


def optimizer_switches():
    for name, cls in _CLASSES.items():
        for key, p in _keywords(cls).items():
            if _takes_flag(p) and key not in _COMMON:
                yield name, key


@pytest.mark.parametrize("name, key", list(optimizer_switches()))
def test_every_torch_switch_in_optimizer_kwargs_must_be_a_bool(name, key):
    params = [nn.Parameter(torch.zeros(1))]
    for bad in ("no", 1, 0.0):
        with pytest.raises(TypeError, match=rf"optimizer_kwargs\['{key}'\]: expected True or False, got {bad!r}"):
            build_optimizer(name, params, lr=0.1, **{key: bad})
    opt = build_optimizer(name, params, lr=0.1, **{key: False})
    assert opt.defaults[key] is False


def test_optimizer_switches_are_found_and_numbers_refuse_bools():
    found = set(optimizer_switches())
    assert {("adam", "amsgrad"), ("rmsprop", "centered"), ("sgd", "maximize"), ("adamw", "foreach")} <= found
    params = [nn.Parameter(torch.zeros(1))]
    with pytest.raises(TypeError, match=r"optimizer_kwargs\['alpha'\]: expected a number, got True"):
        build_optimizer("rmsprop", params, lr=0.1, alpha=True)
    assert build_optimizer("adam", params, lr=0.1, foreach=None).defaults["foreach"] is None
    with pytest.raises(TypeError, match="momentum: expected a number, got True"):
        build_optimizer("sgd", params, lr=0.1, momentum=True)


def test_every_flag_of_every_schedule_spec_must_be_a_bool():
    flags = [(name, c.name) for name, cls in S.CATALOGUE.items() for c in cls.controls() if c.kind == "bool"]
    assert ("OneCycle", "three_phase") in flags and ("Cyclic", "cycle_momentum") in flags
    for name, field in flags:
        for bad in NOT_BOOLS:
            with pytest.raises(TypeError, match=rf"^{name}\.{field}: expected True or False"):
                S.CATALOGUE[name](**{field: bad})


def test_losses_refuse_bools_for_numbers_and_take_numpy_scalars():
    with pytest.raises(ValueError, match="label_smoothing must be a number"):
        get_loss("cross_entropy", label_smoothing=True)
    for weight in ([True, False, True], np.array([True, False, True]), torch.tensor([True, False, True])):
        with pytest.raises(ValueError, match="weight must be a 1-D sequence of numbers"):
            get_loss("cross_entropy", weight=weight)
    loss = get_loss("huber", delta=np.float32(0.5))
    assert loss.kwargs["delta"] == 0.5 and type(loss.kwargs["delta"]) is float
    assert float(get_loss("focal", gamma=np.int64(0), alpha=np.float64(0.5))(
        torch.zeros(4), torch.ones(4))) == pytest.approx(0.5 * math.log(2))


# ------------------------------------------------------------------ numpy scalars, seeds
NUMPY_CONFIG = dict(lr=np.float32(0.5), momentum=np.float64(0.5), epochs=np.int64(2), batch_size=np.int32(32),
                    max_steps=np.int64(12), grad_clip=np.float32(2.0), eval_every=np.int64(1),
                    log_every=np.int16(4), seed=np.uint32(7), weight_decay=np.float32(0.0),
                    eps=np.float64(1e-8), betas=(np.float32(0.5), np.float64(0.25)), grad_accum=np.int8(1))


def test_numpy_scalars_are_taken_wherever_a_number_is_and_stored_as_python_numbers():
    cfg = tw.TrainConfig(**NUMPY_CONFIG)
    plain = tw.TrainConfig(**{k: (tuple(float(b) for b in v) if isinstance(v, tuple) else v.item())
                              for k, v in NUMPY_CONFIG.items()})
    assert cfg == plain
    for name in NUMPY_CONFIG:
        value = getattr(cfg, name)
        assert type(value) in (int, float, tuple), (name, type(value))
    json.dumps(cfg.to_dict())  # plain JSON, no numpy types
    task = blob_task(batch_size=np.int64(32), num_workers=np.int64(0))
    assert type(task.batch_size) is int and type(task.num_workers) is int
    a, b = tw.train(task, cfg.replace(device="cpu")), tw.train(blob_task(), plain.replace(device="cpu"))
    assert a.status == b.status == "finished"
    assert a.history["loss"].dropna().tolist() == b.history["loss"].dropna().tolist()


@pytest.mark.parametrize("field, value", [
    ("lr", True), ("momentum", False), ("epochs", True), ("batch_size", True), ("max_steps", True),
    ("seed", False), ("grad_clip", True), ("eval_every", True), ("log_every", True), ("grad_accum", True),
    ("eps", True), ("weight_decay", True), ("betas", (True, 0.9)), ("lr", np.bool_(True)),
])
def test_bools_are_still_refused_for_numbers(field, value):
    with pytest.raises((TypeError, ValueError), match=rf"^{field}: "):
        tw.TrainConfig(**{field: value})


@pytest.mark.parametrize("field", ["batch_size", "num_workers"])
def test_task_whole_numbers_refuse_bools_floats_and_negatives(field):
    for bad, error in ((True, TypeError), (2.0, TypeError), ("2", TypeError), (-1, ValueError)):
        with pytest.raises(error, match=rf"^{field}: "):
            blob_task(**{field: bad})


@pytest.mark.parametrize("seed", [2**64, 2**32, -1, np.int64(-5), np.uint64(2**63)])
def test_seeds_outside_what_the_generators_take_are_refused_up_front(seed):
    with pytest.raises(ValueError, match=r"^seed: must be a whole number in \[0, 4294967295\].*got"):
        tw.TrainConfig(seed=seed)


def test_the_largest_seed_trains():
    run = tw.train(blob_task(), tw.TrainConfig(seed=2**32 - 1, epochs=1, **CPU))
    assert run.status == "finished" and run.config.seed == 4294967295


# ------------------------------------------------------------------ validation data
class Stream(IterableDataset):
    def __init__(self, data: TensorDataset) -> None:
        self.data = data

    def __iter__(self):
        return iter(self.data)


def test_an_empty_validation_loader_fails_before_the_first_step_naming_val():
    cfg = tw.TrainConfig(epochs=1, **CPU)
    empty = DataLoader(Stream(TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))))
    with pytest.raises(ValueError, match=r"^val: the validation data yields no batches"):
        steps_of(blob_task(val=empty), cfg)
    assert steps_of.last == 0
    with pytest.raises(ValueError, match=r"^val: the validation data yields no batches"):
        steps_of(blob_task(val=Stream(TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)))), cfg)
    with pytest.raises(ValueError, match=r"^val: the dataset is empty"):  # a sized one: the Task refuses it
        blob_task(val=TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)))


def test_validation_data_of_unknown_length_is_evaluated():
    val = blobs(128, 1)
    streamed = tw.train(blob_task(val=DataLoader(Stream(val), batch_size=64)), tw.TrainConfig(epochs=2, **CPU))
    sized = tw.train(blob_task(val=val), tw.TrainConfig(epochs=2, **CPU))
    assert streamed.final["val_loss"] == pytest.approx(sized.final["val_loss"], rel=1e-6)
    assert streamed.final["val_loss"] > 0


# ------------------------------------------------------------------ metric names
def test_two_lambda_metrics_are_refused_instead_of_one_replacing_the_other():
    with pytest.raises(ValueError, match=r"^metrics: two metrics are named '<lambda>' \(items 0 and 1\)"):
        blob_task(metrics=[lambda o, t: 0.25, lambda o, t: 0.75])
    with pytest.raises(ValueError, match=r"two metrics are named 'accuracy'"):
        blob_task(metrics=["accuracy", "accuracy"])
    with pytest.raises(ValueError, match=r"^metrics: the name 'loss' is taken"):
        blob_task(metrics={"loss": "accuracy"})


def test_metrics_named_by_a_dict_are_all_reported():
    task = blob_task(metrics={"quarter": lambda o, t: 0.25, "three_quarters": lambda o, t: 0.75, "acc": "accuracy"})
    run = tw.train(task, tw.TrainConfig(epochs=1, **CPU))
    assert run.final["val_quarter"] == pytest.approx(0.25) and run.final["val_three_quarters"] == pytest.approx(0.75)
    plain = tw.train(blob_task(metrics=("accuracy",)), tw.TrainConfig(epochs=1, **CPU))
    assert run.final["val_acc"] == plain.final["val_accuracy"]


def test_numpy_values_from_a_metric_callable_are_numbers():
    run = tw.train(blob_task(metrics={"half": lambda o, t: np.float32(0.5)}), tw.TrainConfig(epochs=1, **CPU))
    assert run.final["val_half"] == 0.5


# ------------------------------------------------------------------ the first batch
def frozen_mlp():
    net = mlp()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        with torch.no_grad():
            return self.net(x)


class Ragged(Dataset):
    """Items 0..n-1; every third one is a sequence one longer than the others."""

    def __init__(self, n: int = 12, late: bool = False) -> None:
        self.n, self.late = n, late

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        longer = (i == self.n - 1) if self.late else (i % 3 == 1)
        return torch.ones(3 + longer), i % 3


@pytest.mark.parametrize("factory, pattern", [
    (frozen_mlp, r"^model: all 4 parameter tensors of Sequential \(99 values\) are frozen \(requires_grad=False\)"),
    (lambda: nn.ReLU(), r"^model: ReLU has no parameters"),
    (Detached, r"^model: its output on the first batch \(shape \(32, 3\) \(float32\)\) does not depend on any "
               r"trainable parameter"),
    (lambda: nn.Linear(5, 3), r"^model: the forward pass failed on the first training batch, inputs of shape "
                              r"\(32, 2\) \(float32\): mat1 and mat2 shapes cannot be multiplied"),
])
def test_a_model_that_cannot_train_on_the_data_is_named_before_training(factory, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        steps_of(blob_task(model=factory), tw.TrainConfig(epochs=1, **CPU))
    assert steps_of.last == 0
    if "forward pass" in pattern:
        assert isinstance(info.value.__cause__, RuntimeError)  # torch's own message stays in the chain


def test_ragged_items_of_a_dataset_name_train_the_items_and_their_shapes():
    task = tw.Task(model=lambda: nn.Linear(3, 3), train=Ragged(), batch_size=4)
    with pytest.raises(ValueError) as info:
        steps_of(task, tw.TrainConfig(epochs=1, **CPU))
    message = str(info.value)
    assert message.startswith("train: the items of a batch cannot be stacked into one tensor: ")
    assert "inputs of shape (3,)" in message and "inputs of shape (4,)" in message
    assert "in the dataset, item 0 has inputs of shape (3,) and item 1 has inputs of shape (4,)" in message
    assert steps_of.last == 0


def test_ragged_items_in_a_later_batch_are_named_too():
    task = tw.Task(model=lambda: nn.Linear(3, 3), train=Ragged(late=True), batch_size=4)
    batches = task._batches(task.train, 4, shuffle=False, generator=None, device=None)
    with pytest.raises(ValueError, match=r"^train: the items of a batch cannot be stacked into one tensor: item 0 "
                                         r"has inputs of shape \(3,\) and item 3 has inputs of shape \(4,\)"):
        list(batches)


def test_a_users_own_loader_that_cannot_batch_its_items_names_train():
    task = tw.Task(model=lambda: nn.Linear(3, 3), train=DataLoader(Ragged(), batch_size=4))
    with pytest.raises(ValueError, match=r"^train: drawing the first training batch failed: stack expects each tensor "
                                         r"to be equal size.*in the dataset, item 0 has inputs of shape \(3,\) and "
                                         r"item 1 has inputs of shape \(4,\)"):
        steps_of(task, tw.TrainConfig(epochs=1, **CPU))


def test_check_first_batch_moved_to_its_own_module_and_keeps_its_signature():
    assert loop.check_first_batch is checks.check_first_batch
    assert list(inspect.signature(check_first_batch).parameters) == ["task", "model", "batches", "device",
                                                                     "amp_dtype"]
    task = blob_task()
    model = task.build_model()
    batches = task.train_batches(32, torch.Generator().manual_seed(0), torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    check_first_batch(task, model, batches, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # no update
    assert model.training


# ------------------------------------------------------------------ labels after the first batch
def late_bad_label(where: str) -> tw.Task:
    train, val = blobs(256, 0), blobs(128, 1)
    data = train if where == "train" else val
    y = data.tensors[1].clone()
    y[-1] = 7  # only in the last batch: the first-batch check cannot see it
    fixed = TensorDataset(data.tensors[0], y)
    return blob_task(**({"train": fixed} if where == "train" else {"val": fixed}))


@pytest.mark.parametrize("where", ["train", "val"])
def test_a_label_out_of_range_after_the_first_batch_names_the_field_label_and_classes(where):
    # tensor data: the whole label tensor is checked once, before the first step
    cfg = tw.TrainConfig(epochs=1, **CPU)
    n = 256 if where == "train" else 128
    with pytest.raises(ValueError, match=rf"^loss 'cross_entropy': target label 7 in the {where} data is out of "
                                         rf"range for 3 classes .*first at sample {n - 1} of {n}.*relabel the "
                                         r"classes 0..2 or give the model 8 outputs"):
        steps_of(late_bad_label(where), cfg)
    assert steps_of.last == 0


def test_a_late_bad_label_in_data_that_is_not_tensors_is_named_when_its_batch_comes():
    task = late_bad_label("train")
    x, y = task.train.tensors
    listed = [(x[i], y[i]) for i in range(len(y))]  # a plain list of samples: checked batch by batch
    with pytest.raises(ValueError, match=r"target label 7 in the train data is out of range") as info:
        steps_of(blob_task(train=listed), tw.TrainConfig(epochs=1, **CPU))
    assert isinstance(info.value.__cause__, IndexError) and steps_of.last > 0


def test_the_ignore_label_of_cross_entropy_passes_the_whole_label_check():
    data = blobs(256, 0)
    y = data.tensors[1].clone()
    y[-1] = -100
    run = tw.train(blob_task(train=TensorDataset(data.tensors[0], y)), tw.TrainConfig(epochs=1, **CPU))
    assert run.status == "finished"


def test_a_nan_validation_input_ends_the_run_diverged_naming_the_validation_data(tmp_path):
    val = blobs(128, 1)
    x = val.tensors[0].clone()
    x[5, 0] = float("nan")
    task = blob_task(val=TensorDataset(x, val.tensors[1]))
    run = tw.train(task, tw.TrainConfig(epochs=3, **CPU), store=tmp_path)
    assert run.status == "diverged" and math.isnan(run.final["val_loss"])
    assert "val_loss is nan at epoch 0" in run.reason and "check the validation data (val)" in run.reason
    clean = tw.train(blob_task(), tw.TrainConfig(epochs=3, **CPU))
    assert clean.status == "finished" and run.final["steps"] * 3 == clean.final["steps"]  # stopped at epoch 0's end
    with tw.Store(tmp_path) as store:
        assert store.run(run.run_id)["status"] == "diverged"


@pytest.mark.parametrize("name", ["cross_entropy", "focal", "ce_dice", "dice"])
def test_every_class_index_loss_names_the_bad_label(name):
    loss = get_loss(name)
    out = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[1, 2, 2] = 5
    with pytest.raises(ValueError, match=rf"loss '{name}': target label 5 in the train data .* 3 classes"):
        loss(out, target)
    target[1, 2, 2] = -100  # cross-entropy's ignore_index is not reported as a bad label
    if name == "cross_entropy":
        assert torch.isfinite(loss(out, target))


def test_the_label_check_costs_nothing_on_the_hot_path():
    loss = get_loss("cross_entropy")
    out, target = torch.randn(8, 3), torch.randint(0, 3, (8,))
    with no_host_reads():  # no value is read from the tensors when the labels are fine
        value = loss(out, target)
    assert torch.equal(value, torch.nn.functional.cross_entropy(out, target))


# ------------------------------------------------------------------ a schedule's lr
def test_check_lr_names_the_schedule_and_the_value():
    def to_negative(step):
        return 1.0 - step

    for lr in (0.0, 1e-9, 3.0, torch.tensor(0.1)):
        check_lr(lr, to_negative)
    with pytest.raises(ValueError, match=r"^schedule: .*to_negative set the lr to -0.5 at step 4; a learning rate "
                                         r"must be a number >= 0"):
        check_lr(-0.5, to_negative, step=4)
    with pytest.raises(ValueError, match=r"set the lr to nan"):
        check_lr(math.nan, to_negative)
    with pytest.raises(ValueError, match=r"^schedule: tw.schedules.Cosine\(\) set the lr to -1.0"):
        check_lr(-1.0, S.Cosine())


def test_check_lr_after_each_scheduler_step_stops_at_the_first_bad_lr():
    """What the train loop does: step the scheduler, then check the lr it set."""
    def ascent(step):
        return 1.0 if step < 3 else -1.0

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, ascent)
    seen = []
    with pytest.raises(ValueError, match=r"ascent set the lr to -0.1 at step 3"):
        for step in range(1, 10):
            opt.step()
            sched.step()
            check_lr(opt.param_groups[0]["lr"], ascent, step=step)
            seen.append(step)
    assert seen == [1, 2]


def test_a_schedule_callable_giving_a_negative_lr_fails_the_run_naming_it():
    def goes_negative(step):
        return 1.0 if step < 3 else -1.0

    with pytest.raises(ValueError, match=r"goes_negative set the lr to -0.1"):
        tw.train(blob_task(), tw.TrainConfig(lr=0.1, epochs=1, schedule=goes_negative, **CPU))


# ------------------------------------------------------------------ deep dicts
def deep_dict(levels: int, leaf=None) -> dict:
    d = {"x": leaf} if leaf is not None else {}
    for _ in range(levels):
        d = {"a": d}
    return d


@pytest.mark.parametrize("field", ["model_kwargs", "optimizer_kwargs"])
def test_a_3000_level_dict_in_a_train_config_is_refused_naming_the_field(field):
    with pytest.raises(ValueError, match=rf"^{field}: dicts and lists nest more than 32 levels deep \(at \['a'\]"):
        tw.TrainConfig(**{field: deep_dict(3000)})
    assert tw.TrainConfig(**{field: deep_dict(5)}).to_dict()[field] == deep_dict(5)


def test_a_3000_level_schedule_dict_is_refused_not_a_recursion_error():
    spec = {"type": "Warmup", "steps": 10, "then": {"type": "Cosine"}}
    for _ in range(3000):
        spec = {"type": "Warmup", "steps": 10, "then": spec}
    with pytest.raises(ValueError, match=r"^from_dict: dicts and lists nest more than 32 levels deep \(at \['then'\]"):
        S.from_dict(spec)
    with pytest.raises(ValueError, match=r"^from_dict: dicts and lists nest more than 32 levels deep"):
        S.from_dict({"type": "Cosine", "eta_min": deep_dict(3000)})
    shallow = S.Warmup(steps=10, then=S.Warmup(steps=5, then=S.Cosine()))
    assert S.from_dict(shallow.to_dict()) == shallow
