"""Every public function and class (what the package's ``__all__`` lists: ``tw.*``, ``tw.engine.*``,
``tw.widgets.*``...) has a docstring of its own with an example that ``tests/test_doctests.py``
runs, so a new public name without one fails here.

``WITHOUT_EXAMPLE`` lists the names that had none when this test came: it may only shrink (a name
given an example must leave it, and no name may join it).
"""
from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import tunewidgets

WITHOUT_EXAMPLE = {
    "tunewidgets.Events",
    "tunewidgets.LRRangeTestResult",
    "tunewidgets.Run",
    "tunewidgets.RunStop",
    "tunewidgets.StopRun",
    "tunewidgets.Store",
    "tunewidgets.engine.EventBus",
    "tunewidgets.engine.Handle",
    "tunewidgets.engine.RunBase",
    "tunewidgets.engine.TrainStep",
    "tunewidgets.engine.emit",
    "tunewidgets.engine.evaluate",
    "tunewidgets.engine.run_slot",
    "tunewidgets.engine.run_slot_busy",
    "tunewidgets.export.MissingWidgetStateError",
    "tunewidgets.export.NotebookExecutionError",
    "tunewidgets.export.NotebookTimeoutError",
    "tunewidgets.export.external_references",
    "tunewidgets.hpo.Choice",
    "tunewidgets.hpo.Executor",
    "tunewidgets.hpo.Fixed",
    "tunewidgets.hpo.FusedExecutor",
    "tunewidgets.hpo.Int",
    "tunewidgets.hpo.LocalExecutor",
    "tunewidgets.hpo.LogUniform",
    "tunewidgets.hpo.Space",
    "tunewidgets.hpo.SpaceError",
    "tunewidgets.hpo.Uniform",
    "tunewidgets.lr.Suggestions",
    "tunewidgets.lr.suggest",
    "tunewidgets.lr.suggest_minimum",
    "tunewidgets.lr.suggest_steepest",
    "tunewidgets.lr.suggest_valley",
    "tunewidgets.plots.LRPlotData",
    "tunewidgets.plots.live_lr_figure",
    "tunewidgets.plots.lr_plot_data",
    "tunewidgets.plots.lr_range_figure",
    "tunewidgets.plots.schedule_figure",
    "tunewidgets.plots.schedule_plot_data",
    "tunewidgets.plots.search_figures",
    "tunewidgets.report",
    "tunewidgets.schedules.Control",
    "tunewidgets.schedules.Cosine",
    "tunewidgets.schedules.CosineWarmRestarts",
    "tunewidgets.schedules.Cyclic",
    "tunewidgets.schedules.Exponential",
    "tunewidgets.schedules.InverseSqrt",
    "tunewidgets.schedules.OneCycle",
    "tunewidgets.schedules.PhasedLR",
    "tunewidgets.schedules.Polynomial",
    "tunewidgets.schedules.ReduceOnPlateau",
    "tunewidgets.schedules.ScheduleSpec",
    "tunewidgets.schedules.Sequential",
    "tunewidgets.schedules.Step",
    "tunewidgets.schedules.WSD",
    "tunewidgets.schedules.Warmup",
    "tunewidgets.schedules.from_dict",
    "tunewidgets.search",
    "tunewidgets.tasks.digits",
    "tunewidgets.tasks.shapes",
    "tunewidgets.tasks.sine",
    "tunewidgets.tasks.spirals",
    "tunewidgets.tracking.MLflowSink",
    "tunewidgets.tracking.StoreSink",
    "tunewidgets.tracking.StoreVersionError",
    "tunewidgets.tracking.StoreWarning",
    "tunewidgets.tracking.StoreWriteError",
    "tunewidgets.tracking.StudyLog",
    "tunewidgets.tracking.TensorBoardSink",
    "tunewidgets.tracking.WriteFailure",
    "tunewidgets.tracking.attach_store",
    "tunewidgets.tracking.collect_env",
    "tunewidgets.tracking.metric_name",
    "tunewidgets.tracking.metric_rows",
    "tunewidgets.widgets.LRFinder",
    "tunewidgets.widgets.SchedulePreview",
    "tunewidgets.widgets.Search",
    "tunewidgets.widgets.bokeh_widget",
}


def _modules() -> list[str]:
    return ["tunewidgets", *sorted(i.name for i in pkgutil.walk_packages(tunewidgets.__path__,
                                                                         prefix="tunewidgets."))]


def _public() -> dict[str, object]:
    """``"tunewidgets.engine.emit"`` -> the object, for each class and function a package's
    ``__all__`` names (the first name of an object exported twice)."""
    out, seen = {}, set()
    for name in _modules():
        module = importlib.import_module(name)
        if not hasattr(module, "__path__") and name != "tunewidgets":
            continue  # packages only: their __all__ is the public surface
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr, None)
            if ((inspect.isclass(obj) or inspect.isfunction(obj))
                    and (obj.__module__ or "").startswith("tunewidgets") and id(obj) not in seen):
                seen.add(id(obj))
                out[f"{name}.{attr}"] = obj
    return out


def _with_examples() -> set[str]:
    """``module.qualname`` of every docstring in which doctest finds examples to run."""
    finder = doctest.DocTestFinder()
    return {test.name for name in _modules() for test in finder.find(importlib.import_module(name))
            if test.examples}


def test_every_public_name_has_an_example_that_runs():
    public, found = _public(), _with_examples()
    assert len(public) > 50  # the enumeration itself works
    lacking = {name for name, obj in public.items() if f"{obj.__module__}.{obj.__qualname__}" not in found}
    new = sorted(lacking - WITHOUT_EXAMPLE)
    assert new == [], f"public names without a docstring example (add one that runs): {new}"
    fixed = sorted(WITHOUT_EXAMPLE - lacking)
    assert fixed == [], f"these have an example now (or are gone): take them out of WITHOUT_EXAMPLE: {fixed}"
