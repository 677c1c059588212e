"""Notebook 05 (logging and reports) runs headless in time and does what its text says: a search
logged to TensorBoard (one folder and one HParams session per trial, with its state), the store read
as pandas, the best trial rerun with ``matches`` True, and a report that loads nothing from outside."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from support.notebooks import (assert_ran_clean, assert_same_text, cell_outputs_text, code_cell as cell,
                               committed_code, run_notebook_twice)

pytestmark = pytest.mark.notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_logging_and_reports.ipynb"
#: The issue's limit on 2 CPU cores; it ran in about 25 s there with others working.
BUDGET_S = 90
HANG_S = 600  # a cell that runs this long hangs: the timeout catches hangs, not slowness


@pytest.fixture(scope="module")
def twice(tmp_path_factory) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode, float, Path]:
    """The notebook run twice in one folder; the tests below read the second run."""
    workdir = tmp_path_factory.mktemp("nb05")
    first, second, elapsed = run_notebook_twice(NOTEBOOK, workdir, timeout=HANG_S)
    return first, second, elapsed, workdir / NOTEBOOK.parent.name  # the kernel ran in the copy


@pytest.fixture(scope="module")
def executed(twice) -> tuple[nbformat.NotebookNode, float, Path]:
    return twice[1:]


def test_a_second_run_in_the_same_folder_prints_what_the_first_did(twice):
    assert_same_text(twice[0], twice[1])


def test_runs_top_to_bottom_within_the_time_budget(executed):
    nb, elapsed, _ = executed
    print(f"\nnotebook 05 ran in {elapsed:.1f} s (target {BUDGET_S} s on 2 CPU cores)")
    assert_ran_clean(nb)


def test_committed_notebook_is_clean_and_names_python3():
    nb, code = committed_code(NOTEBOOK)
    assert "torch.set_num_threads(1)" in code[0].source
    # TensorBoard is shown, never started: the magics stay in markdown
    assert not any("%tensorboard" in c.source for c in code)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "%load_ext tensorboard" in text and "%tensorboard --logdir" in text and "tensorboard --logdir" in text


def test_each_trial_is_in_tensorboard_with_the_state_the_store_holds(executed):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    nb, _, workdir = executed
    text = cell_outputs_text(cell(nb, "tensorboard=True"))
    assert re.search(r"4 trials in [\d.]+ s: \{'finished': 3, 'diverged': 1\}", text)
    folder = workdir / "tunewidgets-runs" / "05-logging-and-reports" / "tensorboard" / "logging-demo"
    trials = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert trials == ["trial-0000", "trial-0001", "trial-0002", "trial-0003"]
    assert str(trials) in text

    from tunewidgets.tracking import Store, studies

    with Store(workdir / "tunewidgets-runs" / "05-logging-and-reports") as store:
        rows = {int(r["trial"]): r for r in studies.latest_trials(store, "logging-demo")}
    for name in trials:
        acc = EventAccumulator(str(folder / name), size_guidance={"tensors": 0, "scalars": 0})
        acc.Reload()
        content = acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
        start = metadata.parse_session_start_info_plugin_data(content)
        row = rows[int(name.split("-")[1])]
        assert start.hparams["state"].string_value == row["status"]
        assert start.hparams["lr"].number_value == pytest.approx(row["search"]["lr"])
        assert len(acc.Scalars("train/loss")) > 0


def test_the_store_reads_as_pandas_and_the_best_trial_reruns_exactly(executed):
    nb = executed[0]
    table = cell_outputs_text(cell(nb, "table = store.runs()"))
    assert "5 rows in the store" in table
    assert len(re.findall(r"^\s*\d+\s+\d+\s+trial\s+logging-demo\s+(finished|diverged)", table, re.M)) == 4
    text = cell_outputs_text(cell(nb, "tw.rerun("))
    assert re.search(r"best trial: \d with \{'lr': 0\.\d+\}, val accuracy [\d.]+%", text)
    assert "matches: True" in text and "mismatch: None" in text


def test_the_report_is_written_and_loads_nothing_from_outside(executed):
    nb, _, workdir = executed
    text = cell_outputs_text(cell(nb, "tw.report("))
    assert "files it loads from the network: none" in text
    report = workdir / "logging-demo-report.html"
    html = report.read_text(encoding="utf-8")
    assert len(html) > 100_000  # BokehJS is inside the file
    assert "logging-demo" in html
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', html) == []
