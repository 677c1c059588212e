"""Notebook 00 (start here) runs headless in time, twice in one folder with the same text, and shows
what its tour says: the range test's lr handed to the schedule and the search, the best config as
code, and that config trained again on the same curve."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

import tunewidgets as tw
from support.notebooks import (assert_ran_clean, assert_same_text, cell_outputs_text, code_cell as cell,
                               committed_code, run_notebook_twice, shown_widget, widget_state)

pytestmark = pytest.mark.notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "00_start_here.ipynb"
BUDGET_S = 120  # printed, not asserted: the limit on a busy 2-core machine
HANG_S = 600  # a cell that runs this long hangs: the timeout catches hangs, not slowness


@pytest.fixture(scope="module")
def twice(tmp_path_factory) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode, float]:
    """The notebook run twice in one folder; the tests below read the second run."""
    return run_notebook_twice(NOTEBOOK, tmp_path_factory.mktemp("nb00"), timeout=HANG_S)


def test_a_second_run_in_the_same_folder_prints_what_the_first_did(twice):
    assert_same_text(twice[0], twice[1])


def test_runs_top_to_bottom_cleanly(twice):
    nb, elapsed = twice[1], twice[2]
    print(f"\nnotebook 00 ran in {elapsed:.1f} s (target {BUDGET_S} s on 2 CPU cores)")
    assert_ran_clean(nb)


def test_committed_notebook_is_clean_and_uses_its_own_runs_folder():
    nb, code = committed_code(NOTEBOOK)
    assert "torch.set_num_threads(1)" in code[0].source
    assert 'runs = "tunewidgets-runs/00-start-here"' in code[0].source and "shutil.rmtree(runs" in code[0].source


def test_the_dashboard_is_shown_with_its_three_tabs(twice):
    nb = twice[1]
    states = widget_state(nb)
    dash = states[shown_widget(cell(nb, "tw.widgets.Dashboard(task"))]
    assert "tw-dashboard" in dash["state"]["_dom_classes"]
    tabs = [s for s in states.values() if s["model_name"] == "TabModel"]
    assert [list(t["state"]["titles"]) for t in tabs] == [["1. LR range test", "2. Schedule", "3. Search"]]
    bokeh = [s for s in states.values() if s["model_name"] == "BokehModel"]
    assert any("lr_curve" in s["state"]["render_bundle"] for s in bokeh)


def test_the_hand_offs_say_where_each_value_comes_from(twice):
    nb = twice[1]
    text = cell_outputs_text(cell(nb, "dash.finder.run()"))
    lr = float(re.search(r"suggested lr: (\S+) \(100 steps\)", text).group(1))
    assert 1e-4 < lr < 1.0
    shown = tw.plots._common.fmt_lr(lr)
    assert f"tab 2 says: lr {shown} from the range test (the schedule's max_lr)" in text
    text = cell_outputs_text(cell(nb, "print(\"schedule:\""))
    assert f"schedule: tw.schedules.OneCycle(max_lr={shown})" in text
    assert f"tab 3 says: lr {shown} from the range test; schedule tw.schedules.OneCycle(max_lr={shown}) " \
           "from the preview" in text


def test_the_search_shows_its_best_config_and_trains_it_again_on_the_same_curve(twice):
    nb = twice[1]
    text = cell_outputs_text(cell(nb, "dash.search.launch()"))
    found = re.search(r"6 trials; best trial (\d+): val accuracy ([\d.]+)%", text)
    assert found and float(found.group(2)) > 80, text
    code = re.search(r"best config: (tw\.TrainConfig\(.*\))", text).group(1)
    config = eval(code, {"tw": tw})
    assert config.epochs == 3 and isinstance(config.schedule, tw.schedules.OneCycle)
    again = cell_outputs_text(cell(nb, "dash.train_best()"))
    assert f"trained again: val accuracy {found.group(2)}%; the same curve as in the search: True" in again
