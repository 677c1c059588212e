"""A search's trials carry what repeats them: ``tw.rerun`` on a trial gives the same curve."""
from __future__ import annotations

import tunewidgets as tw


def test_a_trial_reruns_with_the_same_curve(tmp_path):
    space = {"lr": tw.space.Choice([0.05, 0.2])}
    study = tw.search(tw.tasks.spirals(), space, base=tw.TrainConfig(epochs=1, device="cpu"), strategy="grid",
                      store=tmp_path, study="again", background=False)
    trial = study.trials.iloc[1]
    again = tw.rerun(tmp_path, int(trial["run_id"]))
    assert again.matches, again.mismatch
    with tw.Store(tmp_path) as store:
        before = store.metrics(int(trial["run_id"]), "train/loss")["value"].tolist()
        after = store.metrics(again.run_id, "train/loss")["value"].tolist()
        assert store.run(int(trial["run_id"]))["env"]["repro"]["config"]["lr"] == trial["lr"]
    assert before == after and len(before) > 5
