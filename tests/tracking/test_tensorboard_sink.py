"""TensorBoard logging read back with TensorBoard's own reader, compared with what the store holds."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from sink_helpers import (decode_png, hparams_plugin_data, hparams_tags, one_torch_thread,  # noqa: F401
                          read_events, scalars)

import tunewidgets as tw
from tunewidgets.engine import Trainer, emit
from tunewidgets.tracking import Store, StudyLog, TensorBoardSink
from tunewidgets.tracking._tb_images import RIGHT, WRONG, cell_box, prediction_grid


def store_series(store: Store, run_id: int, name: str) -> tuple[list[int], np.ndarray]:
    m = store.metrics(run_id, name)
    return m["step"].tolist(), m["value"].to_numpy().astype(np.float32)


def test_run_scalars_and_perf_equal_the_store(tmp_path):
    runs = tmp_path / "runs"
    cfg = tw.TrainConfig(optimizer="adam", lr=0.01, epochs=3, log_every=5, device="cpu")
    run = tw.train(tw.tasks.digits(), cfg, store=runs, tensorboard=True)
    assert run.tensorboard_dir == str(runs / "tensorboard" / f"train-{run.run_id}")
    acc = read_events(run.tensorboard_dir)
    with Store(runs) as store:
        for name in ("train/loss", "lr", "train/epoch_loss", "val/loss", "val/accuracy"):
            steps, values = scalars(acc, name)
            want_steps, want = store_series(store, run.run_id, name)
            assert steps == want_steps, name
            np.testing.assert_array_equal(values, want, err_msg=name)  # float32 as TensorBoard keeps them
        assert len(scalars(acc, "train/loss")[0]) == run.final["steps"]
        assert scalars(acc, "val/loss")[0] == [23, 46, 69]  # per epoch, at the step it was taken
        perf = store.run(run.run_id)["perf"]
    for key in ("samples_per_sec", "step_time", "n_params", "train_time"):
        steps, values = scalars(acc, f"perf/{key}")
        assert steps == [run.final["steps"]] and values[0] == np.float32(perf[key]), key
    assert "perf/peak_memory" not in acc.Tags()["scalars"]  # None on the CPU: not written


def test_digits_predictions_grid_each_epoch(tmp_path):
    seen = []
    sink = TensorBoardSink(tmp_path / "tb")
    trainer = Trainer(tw.tasks.digits(), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu"),
                      callbacks=[sink, {"eval": seen.append}])
    assert trainer.eval_examples == 16  # the sink asked for the samples it shows
    trainer.fit()
    sink.close()
    images = read_events(sink.run_dir).Images("val/predictions")
    assert [im.step for im in images] == [rec["step"] for rec in seen] == [23, 46]
    for image, rec in zip(images, seen):
        ex = rec["examples"]
        grid = decode_png(image.encoded_image_string)
        np.testing.assert_array_equal(grid, prediction_grid(ex, (1, 8, 8)))
        pred, true = ex["outputs"].argmax(1), ex["targets"]
        for i in range(16):  # each cell framed green when right, red when wrong
            left, top, _, _ = cell_box(i, 16, 8, 8)
            assert tuple(grid[top, left]) == (RIGHT if pred[i] == true[i] else WRONG)
    later = seen[1]["examples"]
    assert (later["inputs"] == seen[0]["examples"]["inputs"]).all()  # the same images every epoch
    assert (later["outputs"].argmax(1) == later["targets"]).float().mean() > 0.5


def test_shapes_masks_grid(tmp_path):
    seen = []
    task = tw.tasks.shapes(n=64)
    run = tw.train(task, tw.TrainConfig(optimizer="adam", lr=0.01, epochs=1, device="cpu"),
                   tensorboard=tmp_path / "tb", callbacks=[{"eval": seen.append}])
    (image,) = read_events(run.tensorboard_dir).Images("val/predictions")
    grid = decode_png(image.encoded_image_string)
    ex = seen[0]["examples"]
    assert ex["inputs"].shape == (13, 1, 32, 32)  # all 13 validation images asked for, 8 shown
    np.testing.assert_array_equal(grid, prediction_grid(ex))
    assert grid.shape == (14 + 4 + 4 * (64 + 4), 4 + 2 * (3 * 64 + 4 + 12), 3)  # 8 images: 4 rows of 2


def test_range_test_loss_against_lr(tmp_path):
    runs = tmp_path / "runs"
    res = tw.lr_range_test(tw.tasks.digits(), steps=40, end_lr=10, device="cpu", store=runs, tensorboard=True)
    acc = read_events(res.tensorboard_dir)
    steps, losses = scalars(acc, "lr_range/loss")
    assert steps == [round(1000 * math.log10(lr)) for lr in res.lrs]  # the step axis is 1000 log10(lr)
    np.testing.assert_array_equal(losses, res.losses.astype(np.float32))
    np.testing.assert_array_equal(scalars(acc, "lr_range/smoothed")[1], res.smoothed.astype(np.float32))
    with Store(runs) as store:
        for name in ("train/loss", "train/smoothed", "lr"):
            got_steps, got = scalars(acc, name)
            want_steps, want = store_series(store, res.run_id, name)
            assert got_steps == want_steps and (got == want).all(), name
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.util import tensor_util

    (config,) = acc.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(tensor_util.make_ndarray(config.tensor_proto).item())
    charts = {c.title: list(c.multiline.tag) for c in layout.category[0].chart}
    assert layout.category[0].title == "LR range test"
    assert charts["loss by lr (step = 1000 log10 lr)"] == ["lr_range/loss", "lr_range/smoothed"]
    assert hparams_tags(acc) == set()  # a range test is no HParams session


def test_session_and_state_of_each_run(tmp_path):
    logdir = tmp_path / "tb"

    def prune(record):
        raise tw.StopRun("pruned", reason="test")

    cfg = tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu", model_kwargs={"width": 32})
    runs = {"finished": tw.train(tw.tasks.digits(), cfg, tensorboard=logdir),
            "pruned": tw.train(tw.tasks.digits(), cfg, tensorboard=logdir, callbacks=[{"eval": prune}])}
    for state, run in runs.items():
        assert run.status == state
        acc = read_events(run.tensorboard_dir)
        start = hparams_plugin_data(acc, "_hparams_/session_start_info")
        end = hparams_plugin_data(acc, "_hparams_/session_end_info")
        assert start.hparams["state"].string_value == state
        assert start.hparams["lr"].number_value == 0.01
        assert start.hparams["model_kwargs.width"].number_value == 32
        assert start.hparams["optimizer"].string_value == "adam" and start.hparams["amp"].bool_value is False
        assert "grad_clip" not in start.hparams  # None: left out
        assert end.status == 1  # STATUS_SUCCESS: it ended without an error


def test_a_folder_under_a_file_is_refused_before_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for logdir in (blocker, blocker / "tb"):
        with pytest.raises(ValueError, match=r"tensorboard: .* is a file"):
            tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=tmp_path / "runs",
                     tensorboard=logdir)
    with Store(tmp_path / "runs") as store:
        assert store.runs().empty  # refused before any run started


def test_a_write_that_fails_mid_run_does_not_stop_training(tmp_path, monkeypatch):
    from tunewidgets.tracking import tensorboard_sink

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tensorboard_sink.EventFile, "add", full)
    with pytest.warns(RuntimeWarning, match="tensorboard: writing"):
        run = tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), tensorboard=tmp_path / "tb")
    assert run.status == "finished"
    assert len(run.sink_errors) == 1 and "tensorboard" in run.sink_errors[0]


def test_missing_tensorboardx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"tunewidgets\[tensorboard\]"):
        tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=tmp_path, tensorboard=True)
    with Store(tmp_path) as store:
        assert store.runs().empty  # refused before any run started


def test_bad_tensorboard_value_fails_before_training(tmp_path):
    with pytest.raises(TypeError, match="tensorboard: expected True, False or a folder"):
        tw.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), store=tmp_path, tensorboard=3)
    with Store(tmp_path) as store:
        assert store.runs().empty


def test_trials_fed_by_handle_get_folders_and_images(tmp_path):
    """A search's path: records forwarded with emit (no trainer attached), sinks from a StudyLog."""
    log = StudyLog("grid", tensorboard=tmp_path / "tb", image_shape=(1, 8, 8))
    log.start()
    for trial in (0, 1):
        sinks = log.sinks(trial=trial)
        trainer = Trainer(tw.tasks.digits(), tw.TrainConfig(lr=0.1 * (trial + 1), epochs=1, device="cpu"),
                          trial=trial, eval_examples=16)
        emit(trainer, lambda event, record: [s.handle(event, record) for s in sinks])
        trainer.fit()
        for s in sinks:
            s.close()
    log.end()
    folders = sorted(p.name for p in log.tensorboard_dir.iterdir() if p.is_dir())
    assert folders == ["trial-0000", "trial-0001"]
    for name in folders:
        acc = read_events(log.tensorboard_dir / name)
        assert len(acc.Images("val/predictions")) == 1
        assert hparams_plugin_data(acc, "_hparams_/session_start_info").hparams["state"].string_value == "finished"
