"""The ``Search`` widget's best-config panel: the best trial's values, its code, and "Train best".

Once a search has a best finished trial the panel shows its values and the code of its config
(``tw.TrainConfig(...)``, which ``eval`` turns back into ``search.best_config``) in a text box.
"Copy code" puts that code in the box and selects nothing by itself (no script runs in the
page): the note says to click the box, press Ctrl+A and Ctrl+C; ``panel.copied`` holds the
text the button last wrote. "Train best" trains that config again in the widget's worker
(``Search.train_best()``: the same thread, Stop and status as Launch), and its curve is drawn
beside the search's curve of that trial in the panel's plot.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._search_best import BestPanel, config_code
    >>> cfg = tw.TrainConfig(optimizer="adam", lr=0.0123, schedule=tw.schedules.OneCycle(max_lr=0.05))
    >>> print(config_code(cfg))
    tw.TrainConfig(optimizer='adam', lr=0.0123, schedule=tw.schedules.OneCycle(max_lr=0.05))
    >>> eval(config_code(cfg), {"tw": tw}) == cfg
    True
    >>> panel = BestPanel()
    >>> panel.visible
    False
    >>> panel.show({"trial": 2, "value": 0.9, "params": {"lr": 0.0123}}, cfg, "val_accuracy")
    >>> panel.visible, panel.copy() == config_code(cfg) == panel.code.value
    (True, True)
"""
from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from tunewidgets.engine.config import TrainConfig
from tunewidgets.plots._common import fmt_lr
from tunewidgets.widgets._bokeh import bokeh_widget

__all__ = ["BestPanel", "config_code", "best_worker", "SEARCH_CURVE", "AGAIN_CURVE"]

SEARCH_CURVE = "best_search_curve"  # the best trial's curve, as the search trained it
AGAIN_CURVE = "best_again_curve"  # the same config trained again
_DEFAULTS = TrainConfig()
_COPY_NOTE = "Click the box, then Ctrl+A and Ctrl+C (Cmd on a Mac) to copy the code."


def config_code(config: TrainConfig) -> str:
    """Python that recreates ``config``: ``tw.TrainConfig(...)`` with the fields that differ from
    the defaults, numbers written exactly (``eval`` of it gives an equal config)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a tw.TrainConfig, got {type(config).__name__}; e.g. search.best_config")
    parts = []
    for f in dataclasses.fields(TrainConfig):
        value = getattr(config, f.name)
        if value == getattr(_DEFAULTS, f.name):
            continue
        if f.name == "schedule" and callable(value) and not hasattr(value, "to_code"):
            raise ValueError("config.schedule: a plain function has no code to write; use a tw.schedules spec")
        if isinstance(value, Mapping):
            value = dict(value)
        parts.append(f"{f.name}={value!r}")
    return f"tw.TrainConfig({', '.join(parts)})"


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def best_worker(task: Any, config: TrainConfig, metric: str, logging: Mapping[str, Any]) -> Callable[..., Any]:
    """The session worker that trains ``config`` once: emits ``("eval", epoch, value)`` per
    evaluation (``value`` the record's ``metric``) and returns the ``Run``; halts within a step
    of the session's stop."""

    def worker(emit: Any, stop: Any) -> Any:
        import tunewidgets as tw

        def relay(event: str, record: Mapping[str, Any]) -> None:
            if event == "eval":
                emit(("eval", int(record.get("epoch", 0)) + 1, _number(record.get(metric))))

        return tw.train(task, config, callbacks=[relay], stop=stop, name="best config, trained again", **logging)

    return worker


def _compare_figure() -> Any:
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    fig = figure(height=220, sizing_mode="stretch_width", min_width=320, x_axis_label="epoch",
                 title="best trial: in the search (solid, circles) and trained again (dashed, squares)",
                 toolbar_location="right", tools="pan,box_zoom,wheel_zoom,reset,save")
    search = ColumnDataSource({"epoch": [], "value": []}, name=SEARCH_CURVE)
    again = ColumnDataSource({"epoch": [], "value": []}, name=AGAIN_CURVE)
    fig.line("epoch", "value", source=search, line_width=2, color="#1f77b4")
    fig.scatter("epoch", "value", source=search, size=6, color="#1f77b4")  # a one-epoch run shows too
    fig.line("epoch", "value", source=again, line_width=2, color="#d62728", line_dash="dashed")
    fig.scatter("epoch", "value", source=again, size=6, color="#d62728", marker="square")
    return fig, search, again


class BestPanel(widgets.VBox):
    """The best trial's values and code, a copy button, "Train best" and the comparison plot.

    ``on_train``: called by the "Train best" button (the widget's ``train_best``). Hidden until
    :meth:`show` gives it a best trial.
    """

    def __init__(self, on_train: Callable[[], Any] | None = None) -> None:
        self.config: TrainConfig | None = None
        self.copied = ""
        self.title = widgets.HTML()
        self.values = widgets.HTML()
        self.values.add_class("tw-best-values")
        self.code = widgets.Textarea(value="", rows=2, layout=widgets.Layout(width="100%"),
                                     tooltip="the best config as code")
        self.code.add_class("tw-best-code")
        self.copy_button = widgets.Button(description="Copy code", icon="copy",
                                          tooltip="Put the code in the box, ready to select and copy")
        self.train_button = widgets.Button(description="Train best", icon="play",
                                           tooltip="Train the best config again, in the background")
        self.note = widgets.HTML()
        self.figure, self._search, self._again = _compare_figure()
        self.plot = bokeh_widget(self.figure)
        self.copy_button.on_click(lambda _b: self.copy())
        if on_train is not None:
            self.train_button.on_click(lambda _b: on_train())
        super().__init__(children=[self.title, self.values, self.code,
                                   widgets.HBox([self.copy_button, self.train_button, self.note]), self.plot])
        self.add_class("tw-search-best")
        self.layout.display = "none"

    @property
    def visible(self) -> bool:
        """True once a best trial is shown."""
        return self.layout.display != "none"

    @property
    def data(self) -> dict[str, dict[str, list[Any]]]:
        """The plot's two curves now: ``{"search": {...}, "again": {...}}`` (``epoch``, ``value``)."""
        return {"search": {k: list(v) for k, v in self._search.data.items()},
                "again": {k: list(v) for k, v in self._again.data.items()}}

    def show(self, best: Mapping[str, Any] | None, config: TrainConfig | None, metric: str) -> None:
        """Show ``best`` (``{'trial', 'value', 'params'}``) and its ``config``; None hides the panel."""
        if best is None or config is None:
            self.config = None
            self.layout.display = "none"
            return
        self.config = config
        self.title.value = (f"<b>Best config</b>: trial {int(best['trial'])}, "
                            f"{html.escape(metric)} {float(best['value']):.4g}")
        self.values.value = _values_html(best.get("params") or {})
        code = config_code(config)
        if self.code.value != code:
            self.code.value = code
        self.layout.display = None

    def copy(self) -> str:
        """Write the code into the box (and ``copied``); returns it."""
        if self.config is None:
            raise ValueError("copy: no best trial yet; launch a search and let a trial finish")
        self.copied = self.code.value = config_code(self.config)
        self.note.value = f'<span style="color:#555">{html.escape(_COPY_NOTE)}</span>'
        return self.copied

    def set_busy(self, busy: bool) -> None:
        """Disable "Train best" while the widget runs something."""
        self.train_button.disabled = busy

    def start(self, epochs: Sequence[int], values: Sequence[float]) -> None:
        """Before training again: the search's curve of the best trial, an empty "again" curve."""
        self._search.data = {"epoch": list(epochs), "value": [None if not math.isfinite(v) else v for v in values]}
        self._again.data = {"epoch": [], "value": []}
        self.plot.fit()

    def add(self, records: Sequence[tuple[Any, ...]]) -> None:
        """One tick's ``("eval", epoch, value)`` records: one stream of the "again" curve."""
        rows = [r for r in records if r[0] == "eval"]
        if rows:
            self._again.stream({"epoch": [r[1] for r in rows],
                                "value": [r[2] if math.isfinite(r[2]) else None for r in rows]})


def _values_html(params: Mapping[str, Any]) -> str:
    cells = []
    for key, value in params.items():
        if isinstance(value, float):
            text = fmt_lr(value) if ("lr" in key or "decay" in key) else f"{value:.4g}"
        else:
            text = str(value)
        cells.append(f"<code>{html.escape(str(key))}</code> = {html.escape(text)}")
    return '<span style="color:#333">' + ", ".join(cells) + "</span>" if cells else ""


class TrainBest:
    """The ``Search`` widget's side of the panel (mixed into it): :meth:`train_best`, and the
    widget hooks it runs through while ``_job`` is ``"best"``."""

    _job = "search"  # what the session runs now: "search" (Launch) or "best" (Train best)
    _again: dict[str, Any] | None = None

    def train_best(self) -> bool:
        """Train the best trial's config again in the background (the worker thread Launch uses;
        Stop stops it) and draw its curve beside that trial's curve from the search. False (error
        shown, nothing started) when there is no finished trial yet or something already runs."""
        self._job = "best"
        try:
            return self.run()  # type: ignore[attr-defined]
        finally:
            if not self.session.running:  # type: ignore[attr-defined]
                self._job = "search"

    def _best_prepare(self) -> Any:
        from tunewidgets.hpo.plan import metric_key

        study, best = self._study, self.best  # type: ignore[attr-defined]
        if study is None or best is None:
            raise ValueError("train_best: the search has no finished trial yet; press Launch and wait "
                             "for a trial to finish")
        config = study.config(best["trial"])
        self._again = {"trial": best["trial"], "value": best["value"], "metric": study.metric}
        return best_worker(self.task, config, metric_key(study.metric, self.task),  # type: ignore[attr-defined]
                           self.logging.kwargs())  # type: ignore[attr-defined]

    def _best_start(self) -> None:
        trial = self.live.trials.by_number.get(self._again["trial"])  # type: ignore[attr-defined]
        self.best_panel.start(trial.epochs if trial else [], trial.values if trial else [])  # type: ignore[attr-defined]
        self._disable_inputs(True)  # type: ignore[attr-defined]

    def _best_finish(self, session: Any) -> None:
        from tunewidgets.widgets._bokeh import refresh
        from tunewidgets.widgets._logging import logged_text

        self._job = "search"
        self._disable_inputs(False)  # type: ignore[attr-defined]
        again = self._again or {}
        run = session.result
        if session.error is None and run is not None:
            metric = again.get("metric", "")
            value = _number((run.final or {}).get(metric))
            text = (f"{session.status} after {session.elapsed:.1f} s: the best config (trial {again.get('trial')}) "
                    f"trained again: {metric} {value:.4g} (in the search {float(again.get('value', math.nan)):.4g})")
            self._set_status(session.status, text + logged_text(run))  # type: ignore[attr-defined]
        refresh(self.best_panel.plot)  # type: ignore[attr-defined]

    def _show_best(self, _change: Any = None) -> None:
        study, best = self._study, self.best  # type: ignore[attr-defined]
        config = None
        if study is not None and best is not None:
            try:
                config = study.config(best["trial"])
            except ValueError:
                config = None
        self.best_panel.show(best, config, "" if study is None else study.metric)  # type: ignore[attr-defined]
