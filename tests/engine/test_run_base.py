"""The one run base: the Trainer and the range test share the step (accumulation included), number
their steps the same way (from 1) and write the same rows to a store."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from engine_helpers import blobs, mlp
from torch.utils.data import DataLoader

import tunewidgets as tw
from tunewidgets.engine.run_base import RunBase
from tunewidgets.lr.range_test import RangeTest
from tunewidgets.tracking import Store

BATCHES, ACCUM, LR = 10, 3, 0.1


def _loader() -> DataLoader:
    return DataLoader(blobs(BATCHES * 8, 0), batch_size=8, shuffle=False)


def _by_hand(lrs: list[float], batches: list, seed: int = 0) -> tuple[list[float], torch.nn.Module]:
    """Gradient accumulation as one writes it: ACCUM mini-batches per step, each loss / ACCUM, a shorter last group."""
    torch.manual_seed(seed)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=lrs[0])
    losses, it = [], iter(batches)
    for lr in lrs:
        for g in opt.param_groups:
            g["lr"] = lr
        total = None
        for _ in range(ACCUM):
            batch = next(it, None)
            if batch is None:
                break
            x, y = batch
            loss = F.cross_entropy(model(x), y) / ACCUM
            loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(total))
    return losses, model


def test_the_trainer_accumulates_as_a_hand_written_loop():
    task = tw.Task(model=mlp, train=_loader(), loss="cross_entropy")
    cfg = tw.TrainConfig(optimizer="sgd", lr=LR, momentum=0.0, weight_decay=0.0, epochs=1, grad_accum=ACCUM,
                         device="cpu", seed=0, log_every=1)
    run = tw.Trainer(task, cfg).fit()
    want, model = _by_hand([LR] * 4, list(_loader()))  # 3 + 3 + 3 + 1 mini-batches
    steps = run.steps()
    assert steps["step"].tolist() == [1, 2, 3, 4]
    torch.testing.assert_close(torch.tensor(steps["loss"].tolist()), torch.tensor(want), rtol=1e-6, atol=0)
    for got, expected in zip(run.model.parameters(), model.parameters()):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_the_range_test_accumulates_as_the_same_hand_written_loop():
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    res = tw.lr_range_test(model=model, optimizer=opt, loss="cross_entropy", data=_loader(), start_lr=1e-3,
                           end_lr=1e-1, steps=3, mode="linear", grad_accum=ACCUM, diverge=float("inf"))
    lrs = [1e-3, 1e-3 + (1e-1 - 1e-3) * 0.5, 1e-1]
    assert res.lrs.tolist() == lrs
    want, _ = _by_hand(lrs, list(_loader()))
    torch.testing.assert_close(torch.tensor(res.losses.tolist()), torch.tensor(want), rtol=1e-6, atol=0)


def test_both_runs_number_steps_from_one_in_events_results_and_the_store(tmp_path):
    task = tw.Task(model=mlp, train=blobs(64, 0), loss="cross_entropy", batch_size=16)
    logged: dict[str, list[int]] = {"train": [], "lr_range_test": []}

    def rows(kind):
        return {"log": lambda rec: logged[kind].extend(r["step"] for r in rec["rows"])}

    run = tw.train(task, tw.TrainConfig(epochs=2, device="cpu", log_every=3), store=tmp_path,
                   callbacks=[rows("train")])
    seen = []
    res = tw.lr_range_test(task, steps=6, device="cpu", diverge=float("inf"), store=tmp_path, log_every=4,
                           callbacks=[rows("lr_range_test")], on_step=lambda r: seen.append(r["step"]))
    assert logged["train"] == list(range(1, 9)) and run.steps()["step"].tolist() == list(range(1, 9))
    assert logged["lr_range_test"] == seen == list(range(1, 7))
    assert res.to_frame().index.tolist() == list(range(1, 7))
    with Store(tmp_path) as store:
        assert store.metrics(run.run_id, "train/loss")["step"].tolist() == list(range(1, 9))
        assert store.metrics(res.run_id, "train/loss")["step"].tolist() == list(range(1, 7))
        assert store.metrics(res.run_id, "lr")["value"].tolist() == res.lrs.tolist()


def test_both_are_the_run_base():
    task = tw.Task(model=mlp, train=blobs(64, 0), loss="cross_entropy", batch_size=16)
    runs, ends = [], []
    res = tw.lr_range_test(task, steps=5, device="cpu", trial=3,
                           callbacks=[{"start": lambda rec: runs.append(rec["trainer"]), "end": ends.append}])
    assert isinstance(runs[0], RangeTest) and isinstance(runs[0], RunBase) and isinstance(tw.Trainer(task), RunBase)
    assert len(res) == 5 and ends[0]["trial"] == 3 and ends[0]["status"] == "finished"


def test_records_can_be_fired_for_another_trial_as_a_fused_run_does():
    class Fused(RunBase):
        def _prepare(self):
            return 0, torch.device("cpu")

        def _body(self):
            buffers = {t: [] for t in (0, 1)}
            for t in (0, 1):
                self.fire_start(2, torch.device("cpu"), params={"t": t}, run_id=10 + t, trial=t)
            for step in (1, 2):
                for t in (0, 1):
                    buffers[t].append({"step": step, "lr": 0.1, "loss": torch.tensor(float(t))})
            for t in (0, 1):
                self.flush(buffers[t], run_id=10 + t, trial=t)

        def _finish(self, error, started):
            for t in (0, 1):
                self.fire_end(self.status, run_id=10 + t, trial=t)

    run, got = Fused(), []
    for event in ("start", "log", "end"):
        run.on(event, lambda rec, _e=event: got.append((_e, rec["run_id"], rec["trial"],
                                                          [r["loss"] for r in rec.get("rows", ())])))
    run.execute()
    assert got == [("start", 10, 0, []), ("start", 11, 1, []), ("log", 10, 0, [0.0, 0.0]),
                   ("log", 11, 1, [1.0, 1.0]), ("end", 10, 0, []), ("end", 11, 1, [])]
