"""The search's objects: the driver uses the Study's public API only, and our trial states map onto
Optuna's in one place."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import tunewidgets
from hpo_helpers import BASE, blob_task, one_thread  # noqa: F401 (autouse)
from tunewidgets.hpo.plan import make_plan
from tunewidgets.hpo.space import LogUniform
from tunewidgets.hpo.study import Study, TrialRecord

PACKAGE = Path(tunewidgets.__file__).resolve().parent


def _private_writes(path: Path) -> list[str]:
    """``x._field = ...`` (or ``x._field += ...``) where x is not ``self``: a write to another object's field."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            if (isinstance(target, ast.Attribute) and target.attr.startswith("_")
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(target)}")
    return found


def _private_reads_of_study(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and "study" in ast.unparse(node.value):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_the_search_loop_uses_only_the_studys_public_api():
    for path in (PACKAGE / "hpo" / "driver.py", PACKAGE / "hpo" / "resume.py", PACKAGE / "_search_api.py"):
        assert _private_writes(path) == []
        assert _private_reads_of_study(path) == []


def test_trial_states_map_onto_optuna_in_one_module():
    holders = sorted(p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "hpo").rglob("*.py")
                     if "TrialState.COMPLETE" in p.read_text() or "TrialState.PRUNED" in p.read_text())
    assert holders == ["hpo/_optuna_trials.py"]


def test_the_study_api_the_driver_uses():
    plan = make_plan(blob_task(), {"lr": LogUniform(1e-3, 0.3)}, base=BASE, n_trials=3)
    study = Study(plan, "api", Path("unused.sqlite"))
    one, two = TrialRecord(0, {"lr": 0.1}, 7), TrialRecord(1, {"lr": 0.2}, 8)
    study.keep(one)
    study.keep(two)
    study.update(one, state="finished", value=0.9)
    study.update(two, state="failed", reason="RuntimeError: boom")
    assert [r.number for r in study.records()] == [0, 1] and study.counts()["finished"] == 1
    assert not study.done and not study.stop_flag.is_set()
    study.stop()
    assert study.stop_flag.is_set()
    study.end("stopped")
    assert study.done and study.wait() is study and study.status == "stopped"
    assert study.summary == "stopped, 1 of 2 trials succeeded; most common error (1 of 1): RuntimeError: boom"
    assert math.isclose(study.trials["val_accuracy"].iloc[0], 0.9)
