"""``Dashboard``: the LR range test, the schedule preview and the search as one workflow, in tabs.

Step 1 finds a learning rate (``LRFinder``); its chosen lr sets the peak lr of the schedule in
step 2 (``SchedulePreview``); the search of step 3 (``Search(lr_finder=, schedule=)``) starts
every trial from that lr and schedule, and its best trial can be trained again beside its curve
(``Search.train_best``). Each hand-off is said in a line of the step it reaches ("lr 3.16e-3
from the range test") and can be overridden there: a peak set by hand in the preview wins (see
``_dashboard_handoffs``), and the search's switches drop the lr or the schedule handed over.

A task picker offers the built-in tasks (``tw.tasks``) and the ``task`` given; picking another
stops what runs and builds the three steps anew for it. Running the cell again stops the
workers of the dashboard that cell made before.

Example (headless; in a notebook, show ``dash`` and use its tabs):
    >>> import tempfile, tunewidgets as tw
    >>> dash = tw.widgets.Dashboard(tw.tasks.spirals(), store=tempfile.mkdtemp(), steps=40, n_trials=2,
    ...                             epochs=2, device="cpu")
    >>> dash.finder.run(), dash.finder.wait() is dash.finder.result
    (True, True)
    >>> dash.handoffs["schedule"].text == f"lr {tw.plots._common.fmt_lr(dash.finder.lr)} from the range test (the schedule's max_lr)"
    True
    >>> dash.search.launch(), dash.search.wait() is dash.search.study
    (True, True)
    >>> dash.train_best(), dash.search.wait().config == dash.search.best_config
    (True, True)
    >>> dash.task_picker.value = "digits"; dash.task.name, dash.finder.status
    ('digits', 'idle')
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.task import Task
from tunewidgets.widgets._bokeh import ensure_bokehjs, figure_views
from tunewidgets.widgets._dashboard_handoffs import PeakHandoff, SearchHandoff
from tunewidgets.widgets._dashboard_text import INTRO, STEP_TITLES, task_line
from tunewidgets.widgets._embed import HTMLExport
from tunewidgets.widgets._kernel import current_cell_id
from tunewidgets.widgets._ui import close_tree
from tunewidgets.widgets._warm import warm_later
from tunewidgets.widgets.lr_finder import LRFinder
from tunewidgets.widgets.schedule_preview import SchedulePreview
from tunewidgets.widgets.search import Search

__all__ = ["Dashboard", "BUILT_IN"]

_made: weakref.WeakSet[Dashboard] = weakref.WeakSet()


def _built_in() -> dict[str, Callable[[], Task]]:
    import tunewidgets.tasks as tasks

    return {name: getattr(tasks, name) for name in tasks.__all__}


BUILT_IN = ("digits", "spirals", "shapes", "sine")  # the task picker's built-in tasks (tw.tasks)
_GIVEN = "(given)"


class Dashboard(HTMLExport, widgets.VBox):
    """The three widgets as one workflow: range test -> schedule -> search, sharing their settings.

    Args:
        task: a ``tw.Task`` to start on (the picker lists it first), or None for ``tw.tasks.digits()``.
        store: the runs folder every step logs to (range tests, trials, the best config trained again).
        steps: the range test's optimizer steps.
        n_trials, epochs, strategy: the search's first settings (``epochs`` also sets the length of
            the previewed schedule: epochs x steps per epoch).
        optimizer: the optimizer the range test tries and the search trains (default: the task's
            recommended one, else ``"sgd"``).
        device, seed: for every run.

    ``finder``, ``preview`` and ``search`` are the three widgets of the current task;
    ``handoffs`` their links (``"schedule"``: lr -> preview, ``"search"``: lr and schedule -> search).

    Example:
        >>> import tunewidgets as tw
        >>> dash = tw.widgets.Dashboard(tw.tasks.spirals(), steps=20, n_trials=2, epochs=1, device="cpu")
        >>> [dash.tabs.get_title(i) for i in range(3)]
        ['1. LR range test', '2. Schedule', '3. Search']
        >>> dash.finder.status, dash.search.links is not None
        ('idle', True)
        >>> dash.close()
    """

    def __init__(self, task: Task | None = None, *, store: Any = "tunewidgets-runs", steps: int = 100,
                 n_trials: int = 8, epochs: int = 3, strategy: str = "random", optimizer: str | None = None,
                 device: str = "auto", seed: int = 0) -> None:
        if task is not None and not isinstance(task, Task):
            raise TypeError(f"task: expected a tunewidgets Task or None, got {type(task).__name__}; "
                            "e.g. Dashboard(tw.tasks.digits())")
        for name, value in (("steps", steps), ("n_trials", n_trials), ("epochs", epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "steps" else 1):
                raise ValueError(f"{name}: must be a whole number >= {2 if name == 'steps' else 1}, got {value!r}")
        self.settings = {"store": store, "steps": steps, "n_trials": n_trials, "epochs": epochs,
                         "strategy": strategy, "optimizer": optimizer, "device": device, "seed": seed}
        self._factories = _built_in()
        self._tasks: dict[str, Task] = {}
        options = [(name, name) for name in BUILT_IN if name in self._factories]
        if task is not None:
            self._tasks[_GIVEN] = task
            options.insert(0, (f"{task.name} (given)", _GIVEN))
        self.cell_id = current_cell_id()
        self.task_picker = widgets.Dropdown(options=options, value=options[0][1], description="task",
                                            style={"description_width": "40px"},
                                            layout=widgets.Layout(width="240px"))
        self.task_line = widgets.HTML()
        self.intro = widgets.HTML(INTRO)
        self.tabs = widgets.Tab()
        self.finder: LRFinder | None = None
        self.preview: SchedulePreview | None = None
        self.search: Search | None = None
        self.handoffs: dict[str, Any] = {}
        self._owned: list[widgets.Widget] = []  # every widget model the steps made: closed with them
        super().__init__()
        self.add_class("tw-dashboard")
        self._build(self._task(self.task_picker.value))  # a bad setting fails here, before any widget is kept
        self.children = [widgets.HBox([self.task_picker, self.task_line], layout=widgets.Layout(align_items="center")),
                         self.intro, self.tabs]
        self.task_picker.observe(self._on_task, names="value")
        self._replace_older()
        _made.add(self)

    # -- public ---------------------------------------------------------------------------
    @property
    def task(self) -> Task:
        """The task the three steps train now."""
        return self._task(self.task_picker.value)

    @property
    def steps(self) -> list[Any]:
        """The three widgets, in workflow order."""
        return [self.finder, self.preview, self.search]

    @property
    def running(self) -> bool:
        """True while the range test, the search or a best-config run is in progress."""
        return any(w.session.running for w in (self.finder, self.search) if w is not None)

    def stop(self, reason: str = "stopped") -> None:
        """Stop the range test and the search (each after its current step)."""
        for w in (self.finder, self.search):
            if w is not None and w.session.running:
                w._stop_reason = reason
                w.stop()

    def set_task(self, task: str | Task) -> None:
        """Switch to a built-in task by name (``"digits"``...) or to a ``tw.Task``: stops what
        runs and builds the three steps anew for it."""
        if isinstance(task, Task):
            self._tasks[_GIVEN] = task
            options = [o for o in self.task_picker.options if o[1] != _GIVEN]
            self.task_picker.unobserve(self._on_task, names="value")
            try:
                self.task_picker.options = [(f"{task.name} (given)", _GIVEN), *options]
                self.task_picker.value = _GIVEN
            finally:
                self.task_picker.observe(self._on_task, names="value")
            self._rebuild()
            return
        names = [o[1] for o in self.task_picker.options]
        if task not in names:
            raise ValueError(f"task: {task!r} is not one of the picker's tasks ({', '.join(map(repr, names))}); "
                             "give a tw.Task to add one")
        self.task_picker.value = task  # rebuilds (through the observer) when it changes

    def train_best(self) -> bool:
        """Train the search's best config again beside its curve (``Search.train_best``)."""
        return self.search.train_best()

    # -- building -------------------------------------------------------------------------
    def _task(self, key: str) -> Task:
        if key not in self._tasks:
            self._tasks[key] = self._factories[key]()
        return self._tasks[key]

    def _on_task(self, _change: Any) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        self.stop("task changed")
        pages, owned, preview = list(self.tabs.children), self._owned, self.preview
        for handoff in self.handoffs.values():
            handoff.close()
        self._build(self.task)
        if preview is not None:  # its fields own controls they do not show (a field's "None" box)
            for field in list(preview.editor.fields.values()):
                field.close()
        for page in pages:  # the old widgets are in them: closed with them
            close_tree(page)
        for w in owned:  # and what they made but do not show now (another shape's controls...)
            w.close()

    def _build(self, task: Task) -> None:
        s = self.settings
        before = set(_instances())
        optimizer = s["optimizer"] or task.recommended.get("optimizer", "sgd")
        steps_per_epoch = _steps_per_epoch(task)
        finder = LRFinder(task, optimizer=optimizer, start_lr=1e-5, end_lr=1.0, steps=s["steps"],
                          device=s["device"], seed=s["seed"], store=s["store"])
        total = s["epochs"] * steps_per_epoch if steps_per_epoch else 1000
        preview = SchedulePreview(total_steps=total, steps_per_epoch=steps_per_epoch,
                                  optimizer=optimizer if optimizer in ("sgd", "adam", "adamw", "rmsprop") else "sgd")
        base = TrainConfig(optimizer=optimizer, epochs=s["epochs"], device=s["device"], seed=s["seed"],
                           **({"lr": task.recommended["lr"]} if "lr" in task.recommended else {}))
        search = Search(task, None, base=base, lr_finder=finder, schedule=preview, strategy=s["strategy"],
                        n_trials=s["n_trials"], store=s["store"], seed=s["seed"])
        if steps_per_epoch:
            search.settings.epochs.observe(
                lambda change: setattr(preview, "total_steps", int(change["new"]) * steps_per_epoch), names="value")
        for w in (finder, search):
            w.cell_id = self.cell_id  # made again by this cell (also after a task change): replaced
        self.finder, self.preview, self.search = finder, preview, search
        self.handoffs = {"schedule": PeakHandoff(finder, preview), "search": SearchHandoff(finder, preview, search)}
        self.task_line.value = task_line(task, steps_per_epoch)
        pages = [widgets.VBox([widgets.HTML(STEP_TITLES[0][1]), finder]),
                 widgets.VBox([widgets.HTML(STEP_TITLES[1][1]), self.handoffs["schedule"].box, preview]),
                 widgets.VBox([widgets.HTML(STEP_TITLES[2][1]), self.handoffs["search"].box, search])]
        self._owned = [w for key, w in list(_instances().items()) if key not in before]
        selected = self.tabs.selected_index
        self.tabs.children = pages
        self.tabs.titles = [title for title, _ in STEP_TITLES]
        self.tabs.selected_index = selected if selected is not None else 0

    def _replace_older(self) -> None:
        if self.cell_id is None:
            return
        for other in list(_made):
            if other is not self and other.cell_id == self.cell_id:
                other.stop("replaced")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        views = list(figure_views(self))
        ensure_bokehjs([view._model for view in views])
        warm_later("torch", "search")  # the first click's one-time work, done once the cell ends
        for view in views:  # show the figures as they are now, not as first made
            if view._stale:
                view.render_now()
        return super()._repr_mimebundle_(**kwargs)


def _instances() -> dict[str, widgets.Widget]:
    from ipywidgets.widgets import widget as widget_module

    return widget_module._instances


def _steps_per_epoch(task: Task) -> int | None:
    try:
        return max(1, len(task.train_batches()))
    except TypeError:  # data without a length (an iterable loader)
        return None
