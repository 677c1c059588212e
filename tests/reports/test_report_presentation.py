"""``tw.report``: what its tables and figures say: the environment a search's trials ran in,
axis labels with readable numbers, and ranges of bounded metrics that stay inside their bounds."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

import tunewidgets as tw
from tunewidgets.reports import _figures as figs
from tunewidgets.reports._load import load


@pytest.fixture(scope="module")
def search_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report_env")
    tw.search(tw.tasks.spirals(), {"lr": tw.space.LogUniform(1e-3, 1e-1)},
              base=tw.TrainConfig(epochs=1, device="cpu"), n_trials=2, store=folder, study="env", seed=0)
    return folder


def test_the_environment_of_a_search_names_numpy_and_the_device(search_store: Path) -> None:
    import numpy

    with tw.Store(search_store, create=False) as store:
        envs = load(store).envs
    assert [(e["numpy"], e["device"], e["runs"]) for e in envs] == [(numpy.__version__, "cpu", 2)]
    page = tw.report(search_store, search_store / "report.html").read_text()
    env_table = page[page.index('id="environment"'):]
    assert f"<td>{numpy.__version__}</td>" in env_table and "<td>cpu</td>" in env_table


def test_parallel_labels_give_three_digits_and_no_nan_bound() -> None:
    fig = figs.parallel_figure(["lr", "opt", "val_accuracy"],
                               [[0.0012345, "adam", 0.4233983286908078], [0.0456789, "sgd", 0.6101],
                                [0.01, "sgd", math.nan]],
                               [0.4233983286908078, 0.6101, math.nan], "val_accuracy")
    labels = fig.xaxis[0].major_label_overrides
    assert labels == {0: "lr (log 0.00123-0.0457)", 1: "opt (adam | sgd)", 2: "val_accuracy (0.423-0.61)"}
    ys = fig.select_one({"name": "parallel_lines"}).data["ys"]
    assert math.isnan(ys[2][2]) and ys[0][2] == 0.0 and ys[1][2] == 1.0  # the failed trial: a gap


def test_numbers_among_categories_are_short() -> None:
    fig = figs.parallel_figure(["width", "val_loss"], [[16, 0.5], ["wide", 0.25]], [0.5, 0.25], "val_loss")
    assert fig.xaxis[0].major_label_overrides[0] == "width (16 | wide)"
