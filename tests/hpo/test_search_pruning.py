"""Pruners fed the per-epoch metric stop poor trials early; a pruned trial says so everywhere."""
from __future__ import annotations

import optuna
import pytest

import tunewidgets as tw
from hpo_helpers import BASE, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.space import Choice, LogUniform
from tunewidgets.tracking import studies

EPOCHS = 6


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband"])
def test_pruning_prunes_poor_trials_early(tmp_path, pruner):
    ends = []
    space = {"lr": LogUniform(1e-4, 0.3)}
    study = tw.search(blob_task(), space, base=BASE.replace(epochs=EPOCHS), n_trials=14, pruner=pruner, seed=1,
                      store=tmp_path, study="p", background=False,
                      callbacks=[lambda event, record: ends.append(record) if event == "end" else None])
    trials = study.trials
    pruned = trials[trials["state"] == "pruned"]
    finished = trials[trials["state"] == "finished"]
    assert len(pruned) >= 3 and len(finished) >= 2, trials[["lr", "state", "epochs"]]
    assert (pruned["epochs"] < EPOCHS).all() and (finished["epochs"] == EPOCHS).all()
    assert trials["epochs"].sum() < 0.8 * len(trials) * EPOCHS        # training saved
    # pruned trials were poorer where they stopped than the best finished one at that epoch
    assert pruned["best_val_accuracy"].max() <= finished["best_val_accuracy"].max()
    # the END record and the store say "pruned", with the pruner's reason
    reasons = {r["trial"]: r.get("reason") for r in ends if r["status"] == "pruned"}
    assert set(reasons) == set(pruned["trial"]) and all(f"{pruner} pruner" in r for r in reasons.values())
    with tw.Store(tmp_path) as store:
        rows = {r["trial"]: r for r in studies.latest_trials(store, "p")}
        assert {n for n, r in rows.items() if r["status"] == "pruned"} == set(pruned["trial"])
        # the per-epoch metric of a pruned trial is stored up to where it stopped
        one = pruned.iloc[0]
        stored = store.metrics(int(one["run_id"]), "val/accuracy")
        assert len(stored) == one["epochs"]


def test_the_last_epoch_never_prunes(tmp_path):
    # a pruner that prunes everything: trials still finish when only their last epoch is left
    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    study = tw.search(blob_task(), {"lr": Choice([0.05, 0.1])}, base=BASE.replace(epochs=1), strategy="grid",
                      pruner=Always(), store=tmp_path, background=False)
    assert study.trials["state"].tolist() == ["finished", "finished"]
    study = tw.search(blob_task(), {"lr": Choice([0.05, 0.1])}, base=BASE.replace(epochs=3), strategy="grid",
                      pruner=Always(), store=tmp_path, background=False)
    assert study.trials["state"].tolist() == ["pruned", "pruned"]
    assert study.trials["epochs"].tolist() == [1, 1]


def test_unknown_pruner():
    with pytest.raises(ValueError, match=r"pruner: unknown pruner 'medain' \(did you mean 'median'\?\)"):
        tw.search(blob_task(), {"lr": Choice([0.1])}, pruner="medain", n_trials=1)


def test_the_same_hyperband_search_prunes_the_same_trials(tmp_path):
    # Hyperband puts each trial in a bracket by a hash of the Optuna study's name: an unnamed
    # Optuna study has a random one, and the same search pruned other trials each time
    def epochs(folder):
        study = tw.search(blob_task(), {"lr": LogUniform(1e-4, 0.3)}, base=BASE.replace(epochs=EPOCHS), n_trials=8,
                          pruner="hyperband", seed=1, store=folder, study="h", background=False)
        return study.trials["epochs"].tolist()

    runs = [epochs(tmp_path / f"run{i}") for i in range(3)]
    assert runs[0] == runs[1] == runs[2], runs
    assert any(e < EPOCHS for e in runs[0]), runs[0]  # some trial was pruned
