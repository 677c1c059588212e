"""``Search``: set ranges with sliders, press Launch, watch every trial of a search train.

The widget builds a ``tw.search`` from its controls and runs it in the background
(``background=True``): the search trains in its own thread, its records reach the widget
through a queue, and one task on the kernel's loop updates the plots a few times a second, so
the notebook stays usable. Stop halts the running trial within a step and keeps every trial
that ended (the same study name resumes the search). Running the cell again stops the search
the earlier widget of that cell started.

Example (headless, as in a script or a test; in a notebook, show ``w`` and press Launch):
    >>> import tempfile, tunewidgets as tw
    >>> w = tw.widgets.Search(tw.tasks.spirals(), {"lr": tw.space.LogUniform(1e-3, 1e-1)},
    ...                       base=tw.TrainConfig(optimizer="adam", epochs=2, device="cpu"),
    ...                       n_trials=3, store=tempfile.mkdtemp())
    >>> w.launch(), w.wait() is w.study
    (True, True)
    >>> w.status, w.study.trials["state"].tolist()
    ('finished', ['finished', 'finished', 'finished'])
    >>> w.best_config.lr == w.study.best["params"]["lr"]
    True
    >>> w.train_best(), w.wait().config == w.best_config   # trained again, its curve beside the search's
    (True, True)
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from html import escape as _escape
from typing import Any

import ipywidgets as widgets
from traitlets import Any as AnyTrait

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.devices import resolve_device
from tunewidgets.engine.task import Task
from tunewidgets.hpo.plan import metric_key
from tunewidgets.hpo.presets import as_config
from tunewidgets.hpo.pruners import PRUNERS
from tunewidgets.hpo.space import Space
from tunewidgets.hpo.strategies import STRATEGIES, STRATEGY_ALIASES
from tunewidgets.hpo.targets import valid_keys
from tunewidgets.plots.search import Axis, axes_of, trials_of_study
from tunewidgets.widgets._base import BackgroundWidget
from tunewidgets.widgets._input_lock import InputLock
from tunewidgets.widgets._log_paths import check_log_paths
from tunewidgets.widgets._logging import Logging, logged_text
from tunewidgets.widgets._search_controls import (
    COUNTED, NO_PRUNER, DimensionRow, SearchSettings, default_space, progress_text, space_of,
)
from tunewidgets.widgets._search_executor import ExecutorControls, where_text, with_notes
from tunewidgets.widgets._search_best import BestPanel, TrainBest
from tunewidgets.widgets._search_links import SearchLinks
from tunewidgets.widgets._search_live import Changes, LiveSources, params_from_config
from tunewidgets.widgets._search_status import best_trial, end_status, summary
from tunewidgets.widgets._search_views import SearchPlots
from tunewidgets.widgets._search_worker import Relay, search_worker
from tunewidgets.widgets._session import BackgroundSession, Worker

__all__ = ["Search"]

_STRATEGY_ALIASES = STRATEGY_ALIASES


class Search(TrainBest, BackgroundWidget):
    """A hyperparameter search with controls and live plots of every trial.

    Args:
        task: the :class:`tunewidgets.Task` each trial trains.
        space: ``{key: dimension}`` (see ``tw.space``): one row of controls per key, all on. None:
            a space around the base config (lr, momentum; weight decay, batch size, optimizer and
            the model's width and dropout switched off).
        base: the config every trial starts from: a ``tw.TrainConfig``, a preset or its name.
        lr_finder: an ``LRFinder``: its chosen lr (and the optimizer it tested) go into the base
            config, and the default space's lr range is centred on it (also when it changes).
        schedule: a ``SchedulePreview``: its schedule goes into the base config. When that
            schedule sets the lr itself (OneCycle, Cyclic), the lr row searches ``schedule.max_lr``,
            and a momentum row is left out when it cycles momentum.
        strategy, n_trials, metric, pruner, seed, store, study: as for ``tw.search`` (the first
            values of the controls). A study named here or in the study field is resumed by Launch
            (``tw.search(..., resume=True)``); left empty, each Launch starts a new study.
        executor: as for ``tw.search``: ``"local"``, ``"fused"``, ``"ray"``, ``tw.hpo.FusedExecutor(k=8)``,
            ``tw.hpo.RayExecutor(address="auto")``...; sets the executor controls (fused: ``k``, "auto"
            from free memory; Ray: ``address``, empty for a local Ray), which each Launch uses.
        tensorboard, mlflow: as for ``tw.search``: each trial in TensorBoard (HParams dashboard
            included) and as an MLflow child run of the study's run; checked now.
        epochs: epochs of each trial (default the base config's).
        max_curves: curves the browser keeps at most (running ones, the best half, the newest).
        max_rows: rows of the results table (running trials first, then best first).
        interval: seconds between plot updates.

    ``widget.study`` is the :class:`~tunewidgets.hpo.study.Study` of the last Launch;
    ``widget.best_config`` its best trial's config, ready for ``tw.train``.
    """

    _warm_parts = ("torch", "search")

    best = AnyTrait(None, allow_none=True, help="The best finished trial so far: {'trial', 'value', 'params'}.")

    def __init__(self, task: Task, space: Mapping[str, Any] | None = None, base: Any = None,
                 lr_finder: Any = None, schedule: Any = None, *, strategy: str = "random", n_trials: int = 20,
                 metric: str | None = None, pruner: str | None = None, epochs: int | None = None,
                 store: Any = "tunewidgets-runs", study: str | None = None, seed: int = 0,
                 tensorboard: Any = None, mlflow: Any = None, executor: Any = "local",
                 max_curves: int = 200, max_rows: int = 100, interval: float = 0.1) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a tunewidgets Task, got {type(task).__name__}; "
                            "e.g. Search(tw.tasks.digits())")
        base_cfg = TrainConfig() if base is None else as_config(base)
        self.links = SearchLinks(base_cfg, lr_finder, schedule)
        strategy = _STRATEGY_ALIASES.get(strategy, strategy) if isinstance(strategy, str) else strategy
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if pruner is not None and pruner not in PRUNERS:
            raise ValueError(f"pruner: must be None or one of {', '.join(PRUNERS)}, got {pruner!r}")
        for name, value, low in (("n_trials", n_trials, 1), ("max_curves", max_curves, 1),
                                 ("max_rows", max_rows, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: must be a whole number >= {low}, got {value!r}")
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"epochs: must be a whole number >= 1 (epochs of each trial), got {epochs!r}")
        check_log_paths(store, tensorboard)  # a file where a folder goes: refused now, not at Launch
        self.logging = Logging(store, tensorboard, mlflow, store_optional=False)
        metric = metric_key(metric, task)
        self.task, self.store, self.seed = task, store, seed
        self.max_curves, self.max_rows = max_curves, max_rows
        self._study: Any = None
        self._launch_seed: int | None = None  # the sampler's seed of the last Launch
        self._launched = 0.0
        self._ended_before = 0
        self._n_trials = n_trials
        if space is None:
            kwargs = [k[len("model."):] for k in valid_keys(base_cfg, task) if k.startswith("model.")]
            dims, on = default_space(self.links.base(), kwargs, self.links.finder_lr())
        else:
            dims = dict(Space(space, task=task))  # its shape is checked now, its keys at Launch
            on = set(dims)
        self._default_space = space is None
        super().__init__(interval=interval, run_label="Launch")

        # -- controls -----------------------------------------------------------------------
        self.rows = [DimensionRow(k, d, on=k in on) for k, d in dims.items()]
        metrics = (["val_loss", *(f"val_{m}" for m in task.metric_fns)] if task.val is not None else []) + [
            "train_loss"]
        self.settings = SearchSettings(strategy=strategy, n_trials=n_trials, pruner=pruner, metrics=metrics,
                                       metric=metric, epochs=epochs or base_cfg.epochs, study=study, seed=seed)
        self.executor_controls = ExecutorControls(executor)  # a bad value is refused here, before any control
        self.progress_line = widgets.HTML()
        for row in self.rows:
            for control in (row.switch, row.slider, row.points):
                if control is not None:
                    control.observe(lambda _c: self._show_grid(), names="value")
        self.settings.strategy.observe(lambda _c: self._show_grid(), names="value")
        self.settings.hide_pruned.observe(self._on_view_change, names="value")
        self.settings.top_k.observe(self._on_view_change, names="value")
        self.links.follow(self.rows, frozen=lambda: self.session.running or not self._default_space,
                          on_schedule=self._show_grid)

        # -- plots --------------------------------------------------------------------------
        self.plots = SearchPlots(max_curves=max_curves, max_rows=max_rows)
        self.input_lock = InputLock(self._disable_inputs)
        try:
            first = self._axes(self.search_space(grid=False)[0])
        except (ValueError, TypeError):  # e.g. every key switched off: plots without keys for now
            first = []
        self._build_figures(first, metric)
        self.best_panel = BestPanel(on_train=self.train_best)

        rows_box = widgets.VBox([widgets.HTML("<b>space</b>"), *self.rows],
                                layout=widgets.Layout(min_width="560px"))
        self.children = [
            widgets.HBox([rows_box, self.settings, self.executor_controls],
                         layout=widgets.Layout(flex_flow="row wrap")),
            self.run_bar, self.progress_line, self.error_area, self.plots, self.best_panel, self.status_line,
        ]
        self._show_grid()
        self.add_class("tw-search")
        self.observe(self._show_best, names="best")
        self.observe(lambda _c: self.best_panel.set_busy(self.session.running), names="status")

    # -- public ---------------------------------------------------------------------------
    @property
    def study(self) -> Any:
        """The Study of the last Launch (None before one)."""
        return self._study

    @property
    def best_config(self) -> TrainConfig:
        """The best finished trial's config, ready to train (``tw.train(task, widget.best_config)``)."""
        if self._study is None:
            raise ValueError("best_config: no search has run yet; press Launch (or call widget.launch())")
        return self._study.best_config

    def launch(self) -> bool:
        """Start the search the controls describe; False (error shown, nothing started) if they are bad."""
        return self.run()

    def stop(self) -> None:
        """Stop the search: the running trial halts within a step; the ended trials are kept."""
        if self._study is not None and self.session.running and self._job == "search":
            self._study.stop()
        super().stop()

    def base_config(self) -> TrainConfig:
        """The config every trial starts from now: the base, with the LR finder's lr, the schedule
        preview's spec and the epochs control."""
        return self.links.base().replace(epochs=int(self.settings.epochs.value))

    def search_space(self, grid: bool | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        """The space the controls describe (``{key: dimension}``) and a note per row left out or renamed."""
        if grid is None:
            grid = self.settings.strategy.value == "grid"
        return space_of(self.rows, self.links.base(), grid)

    def search_settings(self) -> dict[str, Any]:
        """The keyword arguments of ``tw.search`` the controls give now (raises ValueError if bad)."""
        dims, notes = self.search_space()
        self._show_notes(notes)
        s = self.settings
        strategy = s.strategy.value
        return {"space": dims, "base": self.base_config(), "strategy": strategy,
                "n_trials": None if strategy == "grid" else int(s.n_trials.value), "metric": s.metric.value,
                "pruner": None if s.pruner.value == NO_PRUNER else s.pruner.value,
                "study": s.study.value.strip() or None, "seed": int(s.seed.value),
                "executor": self.executor_controls.executor(self.task), **self.logging.kwargs()}

    def select_trial(self, trial: int | None) -> None:
        """Highlight ``trial``'s curve and its row in the table (None: no highlight)."""
        self.live.select(trial)

    @property
    def data(self) -> dict[str, dict[str, list[Any]]]:
        """The columns each named source holds now (what the page shows), by source name."""
        return {name: dict(part.data) for name, part in self.parts.items() if name != "mappers"}

    # -- BackgroundWidget hooks -----------------------------------------------------------
    def _prepare(self) -> Worker:
        if self._job == "best":
            return self._best_prepare()
        settings = self.search_settings()
        import tunewidgets as tw

        relay = Relay(metric_key(settings["metric"], self.task))
        self._device = str(resolve_device(settings["base"].device))  # an absent device: refused now
        try:
            # a study named in the controls is the one to continue (its name was typed for that)
            study = tw.search(self.task, background=True, callbacks=[relay], resume=settings["study"] is not None,
                              **settings)
        except RuntimeError as exc:  # e.g. the study is still being searched by an earlier Launch
            raise ValueError(str(exc)) from exc
        self._study, self._launch_seed = study, settings["seed"]
        self._resumed = settings["study"] is not None  # else a new study: no trials from before
        self._executor, self._where = settings["executor"], None  # said once the search has opened it
        self._n_trials = int(study.n_trials or settings["n_trials"] or 0)
        self._axes_now = self._axes(study.space)
        return search_worker(study, relay, self.session.interval)

    def _on_start(self) -> None:
        if self._job == "best":
            return self._best_start()
        try:
            self._start_plots()
        except BaseException:
            self._study.stop()  # the search started; do not leave it running unseen
            raise

    def _start_plots(self) -> None:
        study = self._study
        self._build_figures(self._axes_now, study.metric, study.direction)
        self.live.reset()
        self.live.trials.params_of = self._params_of
        # a resumed study shows the trials it ended before; a new one has none (reading the store
        # for them cost the first point about 0.1 s; what it ends comes through the relay)
        ended = [t for t in (trials_of_study(study) if self._resumed and len(study.trials) else [])
                 if t.state != "running"]
        self.live.trials.load(ended)
        self._ended_before = sum(t.state in COUNTED for t in ended)
        self.live.update(Changes(dirty={t.trial for t in ended}), force=True)
        self._launched = time.perf_counter()
        self.best = None
        self.input_lock.start()  # after the first point (see widgets._input_lock)
        self._show_progress()

    def _on_records(self, records: list[Any]) -> None:
        if self._job == "best":
            return self.best_panel.add(records)
        if self._where is None and any(r[0] == "start" for r in records):  # a trial started: the executor is open
            self._where = where_text(self._executor, self._device)
            if self.status == "running":
                self._set_status("running", f"running: {self._where}")
        if self._shows_point(records):
            self.input_lock.first_point()
        changes = self.live.trials.ingest(records)
        self.live.update(changes)
        self._show_progress()
        if changes.ended:
            self._update_best()

    def _shows_point(self, records: list[Any]) -> bool:
        return self._job != "search" or any(r[0] in ("eval", "end") for r in records)

    def _on_finish(self, session: BackgroundSession) -> None:
        if self._job == "best":
            return self._best_finish(session)
        study = self._study
        if study is not None:  # a Stop pressed after the search had ended changes nothing
            session.status = end_status(session.status, study.status)
        self._update_best()
        if session.error is None and study is not None:  # first: the page shows it before the rest
            self._set_status(session.status, self._summary(session))
            self.status_line.value = with_notes(self.status_line.value, self._executor)
        self._show_progress()
        self.live.flush_table()
        self.input_lock.finish()
        self._disable_inputs(False)
        # the plots' final renders (the saved state) come once the base releases them, a moment
        # after this tick: the status above reaches the page without waiting for them

    def _params_of(self, trial: int) -> dict[str, Any]:
        study = self._study
        try:
            return params_from_config(study.config(trial), study.space)
        except ValueError:  # its values made no valid config (the trial failed before training)
            row = study.trials.set_index("trial").loc[trial]
            return {k: row[k] for k in study.space if row[k] is not None and row[k] == row[k]}

    # -- plots ----------------------------------------------------------------------------
    def _axes(self, space: Mapping[str, Any]) -> list[Axis]:
        return axes_of({k: d for k, d in space.items()})

    def _build_figures(self, axes: list[Axis], metric: str, direction: str | None = None) -> None:
        self.plots.show(axes, metric, direction, hide_pruned=bool(self.settings.hide_pruned.value),
                        top_k=int(self.settings.top_k.value))

    @property
    def live(self) -> LiveSources:
        """The sources of the plots and the trials they show."""
        return self.plots.live

    @property
    def parts(self) -> dict[str, Any]:
        """The plots' named sources (and ``"mappers"``, their colour mappers)."""
        return self.plots.parts

    @property
    def views(self) -> list[Any]:
        """The Bokeh views: curves, slices, parallel coordinates, importance, table."""
        return self.plots.views

    def _on_view_change(self, _change: Any) -> None:
        self.live.hide_pruned = bool(self.settings.hide_pruned.value)
        self.live.top_k = int(self.settings.top_k.value)
        self.live.update(Changes(), force=True)

    # -- progress -------------------------------------------------------------------------
    def _show_progress(self) -> None:
        counts, total = self.live.trials.counts(), self._n_trials
        ended = sum(counts[s] for s in COUNTED)
        per_trial = None
        if self.session.running and ended > self._ended_before:
            per_trial = (time.perf_counter() - self._launched) / (ended - self._ended_before)
        self.run_bar.set_progress(ended, total, f"{ended} / {total} trials")
        self.progress_line.value = progress_text(counts, total, per_trial)

    def _update_best(self) -> None:
        study = self._study
        best = None if study is None else best_trial(self.live.trials.by_number.values(), study.direction)
        if best != self.best:
            self.best = best

    def _summary(self, session: BackgroundSession) -> str:
        study = self._study
        where = f"; {self._where}" if self._where else ""  # said once a trial started (the executor open)
        return summary(session.status, session.elapsed, self.live.trials.counts(), self.best, study.metric,
                       study.name, seed=self._launch_seed) + where + logged_text(study)

    # -- plumbing -------------------------------------------------------------------------
    @property
    def lr_finder(self) -> Any:
        """The linked ``LRFinder`` (or None)."""
        return self.links.lr_finder

    @property
    def schedule(self) -> Any:
        """The linked ``SchedulePreview`` (or None)."""
        return self.links.schedule

    def _show_grid(self) -> None:
        """Show the grid's size (grid strategy) and each row's note (a key renamed or left out)."""
        grid = self.settings.strategy.value == "grid"
        for row in self.rows:
            row.show_grid(grid)
        try:
            self._show_notes(self.search_space(grid=False)[1])
        except (ValueError, TypeError):
            pass
        info = self.settings.grid_info
        self.settings.n_trials.disabled = grid or self.session.running
        if not grid:
            info.value = ""
            return
        try:
            space = Space(self.search_space(grid=True)[0])
            size, shape = space.grid_size(), space.grid_shape()
        except (ValueError, TypeError) as exc:
            info.value = f'<span style="color:#b00020">{_escape(str(exc))}</span>'
            return
        self.settings.n_trials.value = max(1, size)
        info.value = f'<span style="color:#555">grid: {_escape(shape)}</span>'

    def _show_notes(self, notes: Mapping[str, str]) -> None:
        for row in self.rows:
            text = f'<span style="color:#777">{_escape(notes[row.key])}</span>' if row.key in notes else ""
            if row.note.value != text:
                row.note.value = text

    def _disable_inputs(self, disabled: bool) -> None:
        for row in self.rows:
            row.disable(disabled)
            if not disabled:
                row._show_enabled()
        for control in [*self.settings.inputs(), *self.executor_controls.inputs()]:
            control.disabled = disabled
        if not disabled:
            self._show_grid()
