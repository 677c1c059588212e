"""Options and input paths: accumulation, validation loss, cycling, param groups, own objects, amp, store."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from lr_helpers import FLAT, RecordingSGD, blob_data, blob_loader, bn_net, scripted
from torch import nn
from torch.utils.data import DataLoader

import tunewidgets as tw


def _blob_task(**kwargs):
    return tw.Task(model=lambda: nn.Linear(4, 3), train=blob_data(), val=blob_data(48, seed=1), batch_size=16,
                   **kwargs)


def test_accumulation_consumes_n_batches_per_step_and_records_one_lr_and_their_mean():
    values = [float(i % 7) + 1.0 for i in range(30)]
    objects = scripted(values)
    opt = RecordingSGD(objects["model"].parameters(), lr=0.1)
    consumed = []
    inner = objects["batch_loss"]

    def batch_loss(batch):
        consumed.append(int(batch))
        return inner(batch)

    res = tw.lr_range_test(**{**objects, "optimizer": opt, "batch_loss": batch_loss}, steps=10,
                           grad_accum=3, smoothing=0.0, **FLAT)
    assert consumed == list(range(30))            # 3 mini-batches per optimizer step
    assert len(opt.seen) == len(res.lrs) == 10    # one optimizer step (and one lr) per 3 batches
    np.testing.assert_allclose(res.losses, np.mean(np.reshape(values, (10, 3)), axis=1), rtol=1e-6)
    assert not res.cycled_data and res.data_passes == 1


def test_accumulation_gives_the_same_steps_as_a_big_batch():
    task = tw.Task(model=lambda: nn.Linear(4, 3), train=blob_data(), batch_size=32)
    small = tw.TrainConfig(batch_size=16, grad_accum=2, seed=0, device="cpu")
    big = tw.lr_range_test(task, config=small.replace(batch_size=32, grad_accum=1), steps=3, **FLAT)
    accumulated = tw.lr_range_test(task, config=small, steps=3, **FLAT)
    # same seed, so the same order of samples: pairs of 16 make the batches of 32
    np.testing.assert_allclose(accumulated.losses, big.losses, rtol=1e-5)


def test_validation_loss_every_k_steps_and_at_the_last():
    task = _blob_task()
    seen = []
    res = tw.lr_range_test(task, start_lr=1e-9, end_lr=1e-8, steps=8, val=True, eval_every_steps=3, device="cpu",
                           on_step=seen.append, **FLAT)
    evaluated = [i for i, v in enumerate(res.val_losses) if not math.isnan(v)]
    assert evaluated == [2, 5, 7]  # steps 3, 6 and the last, 8
    assert [r["step"] for r in seen if "val_loss" in r] == [3, 6, 8]
    # lrs of 1e-9 barely move the weights: every val loss is the fresh model's val loss
    torch.manual_seed(0)
    model = task.build_model()
    x, y = task.val.tensors
    with torch.no_grad():
        want = nn.functional.cross_entropy(model(x), y).item()
    np.testing.assert_allclose(res.val_losses[evaluated], want, rtol=1e-5)
    assert list(res.to_frame().columns) == ["lr", "loss", "smoothed", "val_loss"]


def test_validation_with_own_loader():
    res = tw.lr_range_test(model=bn_net(), optimizer="sgd", loss="cross_entropy", data=blob_loader(),
                           val=blob_loader(shuffle=False), steps=4, **FLAT)
    assert np.isfinite(res.val_losses).all() and len(res.val_losses) == 4


@pytest.mark.parametrize("val", [None, False])
def test_no_validation_by_default_or_when_false(val):
    res = tw.lr_range_test(_blob_task(), steps=3, device="cpu", val=val)
    assert res.val_losses is None and list(res.to_frame().columns) == ["lr", "loss", "smoothed"]
    assert res.settings["validation"] is False


def test_a_short_loader_is_cycled_and_the_result_says_so():
    objects = scripted([1.0, 2.0, 3.0, 4.0])
    seen = []
    res = tw.lr_range_test(**{**objects, "batch_loss": lambda b: seen.append(int(b)) or objects["batch_loss"](b)},
                           steps=10, **FLAT)
    assert seen == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert res.cycled_data and res.data_passes == 3 and len(res.lrs) == 10


def test_an_empty_loader_is_an_error():
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="data: yields no batches"):
        tw.lr_range_test(model=model, loss="mse", data=[], steps=5)


def test_a_generator_that_runs_out_is_named_and_the_model_is_restored():
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    before = [p.detach().clone() for p in model.parameters()]
    batches = ((torch.randn(4, 1), torch.randn(4, 1)) for _ in range(3))  # one pass only
    with pytest.raises(ValueError, match=r"data: yielded batches on its first pass but none on pass 2"):
        tw.lr_range_test(model=model, loss="mse", data=batches, steps=10)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_param_groups_keep_their_lr_ratios():
    model = bn_net()
    opt = RecordingSGD([{"params": model[0].parameters(), "lr": 0.1},
                        {"params": model[4].parameters(), "lr": 0.01},
                        {"params": model[1].parameters(), "lr": 0.0}], lr=0.5)
    res = tw.lr_range_test(model=model, optimizer=opt, loss="cross_entropy", data=blob_loader(), steps=6,
                           start_lr=1e-5, end_lr=1e-1, **FLAT)
    seen = np.array(opt.seen)
    np.testing.assert_allclose(seen[:, 0], res.lrs, rtol=1e-12)       # the first group follows the ramp
    np.testing.assert_allclose(seen[:, 1], res.lrs * 0.1, rtol=1e-12)  # the others keep their ratio to it
    assert (seen[:, 2] == 0).all()
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01, 0.0]


def test_too_few_iterations_give_a_warning_result_not_a_crash():
    res = tw.lr_range_test(_blob_task(), steps=5, device="cpu")
    assert len(res.lrs) == 5 and res.stop_reason == "finished"
    assert res.suggested is None and res.band is None and "fewer than the 10" in res.warning


def test_own_model_optimizer_callable_loss_and_dataloader():
    model = bn_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    calls = []

    def my_loss(output, target):
        if torch.is_grad_enabled():  # not the no-grad shape check on the first batch
            calls.append(output.shape)
        return nn.functional.cross_entropy(output, target)

    res = tw.lr_range_test(model=model, optimizer=opt, loss=my_loss, data=blob_loader(), steps=15,
                           start_lr=1e-4, end_lr=1.0)
    assert len(calls) == len(res.lrs) and calls[0] == (16, 3)
    assert res.settings["optimizer"] == "SGD"


def test_dict_batches_are_unpacked_by_their_keys():
    ds = blob_data()
    batches = [{"x": ds.tensors[0][i:i + 16], "label": ds.tensors[1][i:i + 16]} for i in range(0, 96, 16)]
    res = tw.lr_range_test(model=bn_net(), optimizer="adam", loss="cross_entropy", data=batches, steps=12,
                           start_lr=1e-4, end_lr=1.0, **FLAT)
    assert len(res.lrs) == 12 and np.isfinite(res.losses).all() and res.data_passes == 2


def test_a_custom_unpack_function():
    batches = [(y, "meta", x) for x, y in blob_loader()]
    res = tw.lr_range_test(model=bn_net(), loss="cross_entropy", data=batches, steps=4,
                           unpack=lambda b: (b[2], b[0]), **FLAT)
    assert np.isfinite(res.losses).all()


def test_a_batch_to_loss_function():
    model = nn.Linear(4, 3)
    batches = [{"features": x, "labels": y} for x, y in blob_loader()]

    def batch_loss(batch):
        return nn.functional.cross_entropy(model(batch["features"]), batch["labels"])

    with torch.no_grad():
        first = batch_loss(batches[0]).item()
    res = tw.lr_range_test(model=model, optimizer=torch.optim.Adam(model.parameters()), batch_loss=batch_loss,
                           data=batches, steps=12, start_lr=1e-4, end_lr=1.0, **FLAT)
    assert len(res.lrs) == 12 and res.losses[0] == pytest.approx(first, rel=1e-6)
    assert res.losses[-1] != res.losses[0]
    with torch.no_grad():
        assert batch_loss(batches[0]).item() == pytest.approx(first, rel=1e-6)  # weights restored


def test_task_optimizer_settings_from_kwargs_or_config():
    task = _blob_task()
    plain = tw.lr_range_test(task, steps=12, device="cpu", **FLAT)
    momentum = tw.lr_range_test(task, optimizer_kwargs={"momentum": 0.9}, steps=12, device="cpu", **FLAT)
    from_config = tw.lr_range_test(task, config=tw.TrainConfig(momentum=0.9, device="cpu"), steps=12, **FLAT)
    assert momentum.settings["optimizer_settings"]["momentum"] == 0.9
    np.testing.assert_allclose(momentum.losses, from_config.losses)
    assert not np.allclose(momentum.losses, plain.losses)
    adam = tw.lr_range_test(task, optimizer="adam", steps=12, device="cpu", **FLAT)
    assert adam.settings["optimizer"] == "adam" and not np.allclose(adam.losses, plain.losses)


def test_task_mode_is_seeded():
    task = _blob_task()
    a = tw.lr_range_test(task, steps=12, device="cpu", seed=1, **FLAT)
    b = tw.lr_range_test(task, steps=12, device="cpu", seed=1, **FLAT)
    c = tw.lr_range_test(task, steps=12, device="cpu", seed=2, **FLAT)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.losses, c.losses)


def test_bf16_autocast_on_the_cpu():
    dtypes = []

    def loss(output, target):
        if torch.is_grad_enabled():  # not the no-grad shape check on the first batch
            dtypes.append(output.dtype)
        return nn.functional.cross_entropy(output.float(), target)

    res = tw.lr_range_test(model=nn.Linear(4, 3), loss=loss, data=blob_loader(), steps=6, amp="bf16", **FLAT)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert np.isfinite(res.losses).all()
    res = tw.lr_range_test(_blob_task(), config=tw.TrainConfig(amp=True, device="cpu"), steps=4)
    assert np.isfinite(res.losses).all()


def test_on_step_gets_host_floats_each_step():
    seen = []
    res = tw.lr_range_test(_blob_task(), steps=7, device="cpu", on_step=seen.append)
    assert [r["step"] for r in seen] == list(range(1, 8))
    for r, lr, loss, sm in zip(seen, res.lrs, res.losses, res.smoothed):
        assert set(r) == {"step", "lr", "loss", "smoothed"}
        assert all(type(r[k]) is float for k in ("lr", "loss", "smoothed"))
        assert (r["lr"], r["loss"], r["smoothed"]) == (lr, loss, sm)


def test_result_frame_and_repr():
    res = tw.lr_range_test(_blob_task(), steps=20, device="cpu", **FLAT)
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "step" and len(frame) == len(res) == 20
    np.testing.assert_array_equal(frame["lr"], res.lrs)
    np.testing.assert_array_equal(frame["smoothed"], res.smoothed)
    assert repr(res).startswith("LRRangeTestResult(20 steps, finished, suggested=")


def test_plot_delegates_to_the_plots_module():
    from tunewidgets.plots.lr import CURVE

    res = tw.lr_range_test(_blob_task(), steps=12, device="cpu", **FLAT)
    fig = res.plot()
    np.testing.assert_allclose(fig.select_one({"name": CURVE}).data["loss"], res.losses)


@pytest.mark.parametrize("outcome", ["finished", "diverged", "stopped", "failed"])
def test_store_records_a_run_with_params_metrics_and_status(tmp_path, outcome):
    import threading

    from tunewidgets.tracking import Store

    values = [1.0] * 12 + ([50.0] * 5 if outcome == "diverged" else [1.0] * 5)
    objects = scripted(values)
    stop = threading.Event()
    kwargs = dict(steps=len(values), smoothing=0.0, store=tmp_path)
    if outcome == "stopped":
        kwargs["on_step"] = lambda r: r["step"] == 6 and stop.set()
        kwargs["stop"] = stop
    if outcome == "failed":
        inner = objects["batch_loss"]

        def bad(batch):
            if int(batch) == 7:
                raise RuntimeError("bad batch")
            return inner(batch)
        objects["batch_loss"] = bad
        with pytest.raises(RuntimeError, match="bad batch"):
            tw.lr_range_test(**objects, **kwargs)
    else:
        res = tw.lr_range_test(**objects, **kwargs)
        assert res.run_id is not None
    with Store(tmp_path) as store:
        runs = store.runs(kind="lr_range_test")
        assert len(runs) == 1
        run = runs.iloc[0]
        assert run["status"] == outcome
        assert run["params"]["steps"] == len(values) and run["params"]["mode"] == "exp"
        metrics = store.metrics(int(run["id"]))
        losses = metrics[metrics["name"] == "train/loss"]
        n = {"finished": 17, "diverged": 13, "stopped": 6, "failed": 7}[outcome]
        assert list(losses["step"]) == list(range(1, n + 1))
        assert len(metrics[metrics["name"] == "train/smoothed"]) == n
        if outcome == "failed":
            assert "bad batch" in run["error"]


def test_a_store_given_as_an_object_stays_open(tmp_path):
    from tunewidgets.tracking import Store

    with Store(tmp_path) as store:
        res = tw.lr_range_test(_blob_task(), steps=10, device="cpu", store=store)
        assert store.run(res.run_id)["final"]["suggested"] == res.suggested


def test_the_first_batch_is_checked_then_used_for_the_first_step():
    ds = blob_data()
    batches = [(ds.tensors[0][i:i + 16], ds.tensors[1][i:i + 16]) for i in range(0, 48, 16)]
    seen = []

    def loss(output, target):
        seen.append((torch.is_grad_enabled(), int(target[0]), len(target)))
        return nn.functional.cross_entropy(output, target)

    tw.lr_range_test(model=nn.Linear(4, 3), loss=loss, data=batches, steps=4, **FLAT)
    first = [int(y[0]) for _, y in batches]
    assert seen == [(False, first[0], 16)] + [(True, first[i % 3], 16) for i in range(4)]


def test_a_shape_mismatch_fails_on_the_first_batch_with_the_shapes_and_leaves_the_model_alone():
    model = nn.Linear(4, 1)
    weight = model.weight.detach().clone()
    x, y = torch.randn(32, 4), torch.randn(32)
    with pytest.raises(ValueError, match=r"output shape \(32, 1\) and target shape \(32,\)"):
        tw.lr_range_test(model=model, loss="mse", data=[(x, y)], steps=5)
    assert torch.equal(model.weight, weight)


@pytest.mark.parametrize("device", [None, "auto", "cpu", torch.device("cpu")])
def test_a_given_model_stays_on_its_device(device):
    model = nn.Linear(4, 3)
    res = tw.lr_range_test(model=model, loss="cross_entropy", data=blob_loader(), steps=3, device=device)
    assert res.settings["device"] == "cpu" and model.weight.device.type == "cpu"


def test_the_fp16_grad_scaler_path_trains():
    # amp="fp16" is for CUDA; the same code path (fp16 autocast, grad scaler, accumulation) runs on the CPU here
    from tunewidgets.lr._loop import RangeTestLoop
    from tunewidgets.lr._sources import check_sources

    model = nn.Linear(4, 3)
    sources = check_sources(None, model=model, optimizer="sgd", loss="cross_entropy", data=blob_loader(),
                            batch_loss=None, unpack=None, val=None, config=None, optimizer_kwargs=None,
                            device=None, seed=None, batch_size=None, amp=False, start_lr=1e-3)
    sources.amp_dtype, sources.use_scaler = torch.float16, True
    built = sources.build(1e-3)
    before = model.weight.detach().clone()
    loop = RangeTestLoop(sources, [1e-3, 1e-2, 1e-1, 1.0], smoothing=0.9, diverge=math.inf, grad_accum=2,
                         eval_every_steps=1)
    loop.run(*built)
    assert len(loop.losses) == 4 and np.isfinite(loop.losses).all() and loop.passes == 2  # 8 of 6 batches
    assert not torch.equal(model.weight, before)
