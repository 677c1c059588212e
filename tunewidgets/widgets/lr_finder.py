"""``LRFinder``: run an LR range test from sliders, watch the loss curve grow, pick a learning rate.

Example (headless, as in a script or a test; in a notebook, show ``finder`` and press Run):
    >>> import tunewidgets as tw
    >>> finder = tw.widgets.LRFinder(tw.tasks.spirals(), optimizer="adam", start_lr=1e-4, steps=30,
    ...                              device="cpu")
    >>> finder.run(), finder.wait() is finder.result
    (True, True)
    >>> finder.status, finder.lr == finder.result.suggested
    ('finished', True)
    >>> finder.config(epochs=2).lr == finder.lr
    True
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from typing import Any

import ipywidgets as widgets
from bokeh.events import Tap
from traitlets import Any as AnyTrait
from traitlets import Float, TraitError, observe, validate

from tunewidgets.engine._values import is_real, is_whole
from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.optimizers import OPTIMIZERS, check_optimizer
from tunewidgets.engine.task import Task
from tunewidgets.plots._common import finite_or_nan, fmt_lr
from tunewidgets.plots.lr import (
    CURVE, CURVE_COLUMNS, LRPlotData, band_columns, live_lr_figure, lr_parts, marker_columns, set_chosen_lr,
    show_lr_data,
)
from tunewidgets.widgets._base import BackgroundWidget
from tunewidgets.widgets._bokeh import bokeh_widget
from tunewidgets.widgets._logging import Logging, logged_text
from tunewidgets.widgets._lr_picker import LRPicker
from tunewidgets.widgets._lr_trust import coverage_problem, curve_problem
from tunewidgets.widgets._session import BackgroundSession, Worker
from tunewidgets.widgets._stream import CappedStream, columns_of

__all__ = ["LRFinder", "MODES"]

MODES = ("exp", "linear")
_EXP_MIN, _EXP_MAX = -10.0, 2.0
_MIN_ITER, _MAX_ITER, _MAX_SMOOTHING = 2, 1_000_000, 0.999  # the ranges of the steps and smoothing controls
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
# set by the controls or by the widget itself, so not accepted as extra settings
_OWN_SETTINGS = {"task", "optimizer", "start_lr", "end_lr", "steps", "mode", "smoothing", "stop", "on_step"}


class LRFinder(BackgroundWidget):
    """An LR range test with controls, a live loss-vs-lr plot and a learning-rate picker.

    Args:
        task: the :class:`tunewidgets.Task` to test (a fresh model is built for each run).
        start_lr, end_lr, steps, optimizer, smoothing, mode: the controls' first values
            (see :func:`tunewidgets.lr_range_test`; ``num_iter`` is the old name of ``steps``, still
            accepted with a DeprecationWarning, as are the range test's other old names).
        max_points: the plot keeps at most this many points of a long test (thinned evenly).
        interval: seconds between plot updates while the test runs.
        store, tensorboard, mlflow: where each run is logged, as for ``tw.lr_range_test`` (a
            runs folder or ``tw.Store``; True or a folder; True or a tracking URI); checked now.
        **test_kwargs: passed on to ``lr_range_test`` (e.g. ``device``, ``seed``, ``model``,
            ``optimizer_kwargs={"momentum": 0.9, "weight_decay": 1e-4}`` or ``config=``);
            TrainConfig fields among them also go into :meth:`config`.

    After a run, ``lr`` holds the suggested learning rate; pick another suggestion from the
    list, type one in the "chosen lr" box, drag its slider or click the plot. ``config()`` hands
    it on as a :class:`~tunewidgets.TrainConfig`. A curve too short or too flat to trust (a test
    stopped before the loss fell, a sweep that never reached useful rates) leaves ``lr`` as it
    was, and the status line says so.
    """

    lr = Float(None, allow_none=True, help="The chosen learning rate: the suggestion after a run, a pick "
                                           "from the list or the slider, or a click on the plot.")
    result = AnyTrait(None, allow_none=True, help="The last LRRangeTestResult, or None before a run ends.")

    def __init__(self, task: Task, *, start_lr: float = 1e-7, end_lr: float = 1.0, steps: int = 100,
                 optimizer: str = "sgd", smoothing: float = 0.98, mode: str = "exp",
                 max_points: int = 2000, interval: float = 0.1, store: Any = None, tensorboard: Any = None,
                 mlflow: Any = None, **test_kwargs: Any) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task: expected a tunewidgets Task, got {type(task).__name__}; "
                            "e.g. LRFinder(tw.tasks.digits())")
        check_optimizer(optimizer)
        if mode not in MODES:
            raise ValueError(f"mode: unknown ramp {mode!r}; use 'exp' or 'linear'")
        _check_range(start_lr, end_lr)
        steps = _renamed_kwargs(test_kwargs, steps)
        _check_controls(steps, smoothing)
        _check_test_kwargs(test_kwargs)
        self.logging = Logging(store, tensorboard, mlflow)
        self.task = task
        self.test_kwargs = dict(test_kwargs)
        super().__init__(interval=interval, run_label="Run test")

        # -- controls -------------------------------------------------------------------
        style = {"description_width": "90px"}
        self.lr_range = widgets.FloatRangeSlider(
            value=(_clamp_exp(start_lr), _clamp_exp(end_lr)), min=_EXP_MIN, max=_EXP_MAX, step=0.1,
            description="LR range", readout=False, style=style, layout=widgets.Layout(width="360px"),
            tooltip="log10 of the first and last learning rate")
        self.lr_range_label = widgets.HTML()
        self.steps = widgets.BoundedIntText(value=int(steps), min=_MIN_ITER, max=_MAX_ITER,
                                            description="steps", style=style, tooltip="optimizer steps of the test",
                                            layout=widgets.Layout(width="200px"))
        self.optimizer = widgets.Dropdown(options=list(OPTIMIZERS), value=optimizer, description="optimizer",
                                          style=style, layout=widgets.Layout(width="220px"))
        self.smoothing = widgets.FloatSlider(value=float(smoothing), min=0.0, max=_MAX_SMOOTHING, step=0.001,
                                             readout_format=".3f", description="smoothing", style=style)
        self.mode = widgets.ToggleButtons(options=list(MODES), value=mode, description="ramp", style=style,
                                          tooltips=["even steps in log lr (usual)", "even steps in lr"])
        self._start_lr, self._end_lr = float(start_lr), float(end_lr)  # exact until the slider moves
        self._total = int(steps)
        self._set_by_hand = False  # lr set (from code) while this run ran: the run keeps it
        self.lr_range.observe(self._on_range_change, names="value")
        self._show_range()
        self._settings = (self.lr_range, self.steps, self.optimizer, self.smoothing, self.mode)

        # -- plot and picker ------------------------------------------------------------
        self.figure = live_lr_figure()
        self._parts = lr_parts(self.figure)
        self.curve = CappedStream(self._parts[CURVE], max_points=max_points)
        self.figure.on_event(Tap, self._on_tap)
        self.plot = bokeh_widget(self.figure)
        self.picker = LRPicker(self._on_pick, low=start_lr, high=end_lr, description_width="90px")
        self.pick, self.chosen, self.value_box = self.picker.pick, self.picker.chosen, self.picker.value_box

        self.children = [
            widgets.HBox([self.lr_range, self.lr_range_label]),
            widgets.HBox([self.steps, self.optimizer]),
            widgets.HBox([self.smoothing, self.mode]),
            self.run_bar,
            self.error_area,
            self.plot,
            self.picker,
            self.status_line,
        ]
        self.add_class("tw-lr-finder")

    # -- public ---------------------------------------------------------------------------
    @property
    def iterations(self) -> widgets.BoundedIntText:
        """The old name of the ``steps`` control."""
        return self.steps

    @property
    def start_lr(self) -> float:
        return self._start_lr

    @property
    def end_lr(self) -> float:
        return self._end_lr

    def set_range(self, start_lr: float, end_lr: float) -> None:
        """Set the LR range exactly (the slider shows it rounded to its step)."""
        _check_range(start_lr, end_lr)
        self.lr_range.value = (_clamp_exp(start_lr), _clamp_exp(end_lr))
        self._start_lr, self._end_lr = float(start_lr), float(end_lr)
        self._show_range()

    def test_settings(self) -> dict[str, Any]:
        """The keyword arguments the controls give ``lr_range_test`` (raises ValueError if bad)."""
        start, end = self._start_lr, self._end_lr
        if not start < end:
            raise ValueError(f"LR range: the start ({fmt_lr(start)}) must be below the end ({fmt_lr(end)}); "
                             "widen the range, e.g. 1e-7 to 1")
        return {"optimizer": self.optimizer.value, "start_lr": start, "end_lr": end,
                "steps": int(self.steps.value), "mode": self.mode.value,
                "smoothing": float(self.smoothing.value), **self.test_kwargs}

    def config(self, base: TrainConfig | None = None, **overrides: Any) -> TrainConfig:
        """A TrainConfig with the chosen ``lr``, the tested optimizer and its settings, plus ``overrides``.

        ``base`` (default: the ``config`` given to the finder, if any) supplies the other fields.
        """
        if self.lr is None:
            raise ValueError("lr: no learning rate chosen yet; run the test (finder.run()) or set finder.lr")
        if base is None:
            base = self.test_kwargs.get("config")
        if base is not None and not isinstance(base, TrainConfig):
            raise TypeError(f"base: expected a TrainConfig, got {type(base).__name__}")
        fields = {k: self.test_kwargs[k] for k in ("device", "seed", "batch_size", "amp")
                  if self.test_kwargs.get(k) is not None}
        for name in ("grad_accum", "accum_steps"):  # accum_steps: the range test's old name
            if self.test_kwargs.get(name) is not None:
                fields["grad_accum"] = self.test_kwargs[name]
        extra = dict(self.test_kwargs.get("optimizer_kwargs") or {})
        fields.update({k: extra.pop(k) for k in list(extra) if k in _CONFIG_FIELDS})
        if extra:
            fields["optimizer_kwargs"] = extra
        fields.update(optimizer=self.optimizer.value, lr=float(self.lr))
        fields.update(overrides)
        return TrainConfig(**fields) if base is None else base.replace(**fields)

    # -- BackgroundWidget hooks -----------------------------------------------------------
    def _prepare(self) -> Worker:
        settings = self.test_settings()
        from tunewidgets.api import lr_range_test

        task, logging = self.task, self.logging.kwargs()

        def worker(emit: Any, stop: Any) -> Any:
            return lr_range_test(task, stop=stop, on_step=emit, **logging, **settings)

        self._total = settings["steps"]
        return worker

    def _on_start(self) -> None:
        # a new run: the plot fits its data again (a zoom is kept only until now), and the last
        # run's chosen-lr line and suggestions go until this run has its own
        zoomed = self.plot.zoomed or getattr(self.plot, "_restores", False)
        self.plot.fit()
        self.curve.reset()
        show_lr_data(self._parts, LRPlotData(), curve=False)
        set_chosen_lr(self._parts, None)
        self.result = None
        self._set_by_hand = False
        self.picker.set_suggestions(None, "(running...)")
        self.picker.disabled = True
        self.run_bar.set_progress(0, self._total, f"0 / {self._total}")
        for control in self._settings:  # a run uses the settings it started with
            control.disabled = True
        if zoomed:  # the page drops a zoom only in a fresh render; else the patches above fit it
            self.plot.render_now()  # (a full render costs the first point about 0.1 s here and more in the page)

    def _on_records(self, records: list[dict[str, Any]]) -> None:
        rows = columns_of(records, CURVE_COLUMNS)
        rows["step"] = [r.get("step") for r in records]
        for name in ("lr", "loss", "smoothed"):
            rows[name] = finite_or_nan(rows[name])
        self.curve.push(rows)
        last = records[-1]
        step = last.get("step")  # counted from 1: the steps done
        done = int(step if step is not None else self.session.records_seen)
        self.run_bar.set_progress(done, self._total, f"{done} / {self._total} · lr {fmt_lr(last.get('lr'))}"
                                                     f" · loss {_fmt_loss(last.get('smoothed'))}")

    def _on_finish(self, session: BackgroundSession) -> None:
        for control in self._settings:
            control.disabled = False
        self.picker.disabled = False
        self.curve.finish()
        result = session.result
        settings = (result.settings if result is not None else None) or {}
        self.picker.set_range(settings.get("start_lr", self._start_lr), settings.get("end_lr", self._end_lr))
        if result is None:
            self.picker.set_suggestions(None, "(no result)")
            set_chosen_lr(self._parts, self.lr)
            return
        sliver = None
        if session.status == "stopped":  # a sweep stopped near its start suggests nothing
            sliver = coverage_problem(result.lrs, settings.get("start_lr", self._start_lr),
                                      settings.get("end_lr", self._end_lr), settings.get("mode", "exp"))
        suggestions = {} if sliver is not None else result.suggestions
        markers = marker_columns(suggestions, result.lrs, result.smoothed)
        show_lr_data(self._parts, LRPlotData(markers=markers, band=band_columns(result.band)), curve=False)
        self.result = result
        if sliver is not None:
            self.picker.set_suggestions(None, "(stopped early: run it to the end)")
        else:
            self.picker.set_suggestions(result.suggestions)
        problem = sliver or curve_problem(result.smoothed)
        if result.suggested is not None and problem is None and not self._set_by_hand:
            self.lr = float(result.suggested)
            best = result.method if result.suggestions.get(result.method) == result.suggested else None
            if best is not None:
                self.pick.value = best
        set_chosen_lr(self._parts, self.lr)
        self.picker.show(self.lr)
        n = len(result)
        self.run_bar.set_progress(n, self._total, f"{n} / {self._total}")
        summary = _summary(session, result, problem, self.lr, self._stop_reason, early=sliver is not None)
        if self._set_by_hand and problem is None and self.lr is not None:
            summary += f"; lr stays {fmt_lr(self.lr)}, set while the test ran"
        self._set_status(session.status, summary,
                         tone="doubtful" if problem is not None else None)

    # -- picking --------------------------------------------------------------------------
    @validate("lr")
    def _check_lr(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and not _positive(value):
            raise TraitError(f"lr: must be a finite number > 0, got {value!r}; e.g. finder.lr = 3e-3")
        return value

    @observe("lr")
    def _lr_changed(self, change: Any) -> None:
        value = change["new"]
        if self.session.running:  # this run's line shows once it has its own suggestion
            self._set_by_hand = True
            set_chosen_lr(self._parts, None)
        else:
            set_chosen_lr(self._parts, value)
        self.picker.show(value)

    def _on_pick(self, value: float) -> None:
        """A pick from the list, the value box or the slider."""
        self.lr = float(value)

    def _on_tap(self, event: Any) -> None:
        if event.x is not None and _positive(event.x) and not self.session.running:
            self.lr = float(f"{float(event.x):.3g}")

    # -- range control --------------------------------------------------------------------
    def _on_range_change(self, change: Any) -> None:
        lo, hi = change["new"]
        step = self.lr_range.step
        # an end the page only snapped to the slider's step (it sends that back) keeps its exact value
        if not _same_step(lo, _clamp_exp(self._start_lr), step):
            self._start_lr = 10.0 ** lo
        if not _same_step(hi, _clamp_exp(self._end_lr), step):
            self._end_lr = 10.0 ** hi
        self._show_range()

    def _show_range(self) -> None:
        self.lr_range_label.value = f"{fmt_lr(self._start_lr)} &rarr; {fmt_lr(self._end_lr)}"


def _check_range(start_lr: Any, end_lr: Any) -> None:
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if not _positive(value):
            raise ValueError(f"{name}: must be a finite number > 0, got {value!r}; e.g. {name}=1e-3")
    if not start_lr < end_lr:
        raise ValueError(f"start_lr: must be below end_lr ({fmt_lr(end_lr)}), got {fmt_lr(start_lr)}; "
                         "e.g. start_lr=1e-7, end_lr=1")


def _renamed_kwargs(kwargs: dict[str, Any], steps: Any) -> Any:
    """The range test's old keyword names in ``kwargs`` renamed in place (each warns); returns ``steps``."""
    from tunewidgets.lr.range_test import RENAMED

    for old in [k for k in kwargs if k in RENAMED]:
        new = RENAMED[old]
        warnings.warn(f"LRFinder: {old}= is now {new}=; {old} will be removed", DeprecationWarning, stacklevel=3)
        value = kwargs.pop(old)
        if new == "steps":
            steps = value if steps == 100 else steps
        else:
            kwargs.setdefault(new, value)
    return steps


def _check_controls(steps: Any, smoothing: Any) -> None:
    """Values the controls cannot show are refused, not clamped to the controls' ranges."""
    if not is_whole(steps):
        raise TypeError(f"steps: expected a whole number in [{_MIN_ITER}, {_MAX_ITER}], got {steps!r}; "
                        "e.g. steps=100")
    if not _MIN_ITER <= steps <= _MAX_ITER:
        raise ValueError(f"steps: must be in [{_MIN_ITER}, {_MAX_ITER}] (the ramp needs a first and a last "
                         f"step), got {steps!r}; e.g. steps=100")
    if not is_real(smoothing) or not 0.0 <= smoothing <= _MAX_SMOOTHING:
        raise ValueError(f"smoothing: must be a number in [0, {_MAX_SMOOTHING}], got {smoothing!r}; 0.98 is usual, "
                         "0 turns smoothing off")


def _check_test_kwargs(kwargs: dict[str, Any]) -> None:
    from tunewidgets.lr import lr_range_test

    taken = set(inspect.signature(lr_range_test).parameters) - _OWN_SETTINGS
    unknown = sorted(set(kwargs) - taken)
    if unknown:
        raise TypeError(f"LRFinder: unknown setting(s) {unknown} for lr_range_test; it also takes "
                        f"{sorted(taken - {'task'})}")


def _positive(value: Any) -> bool:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(f) and f > 0 and not isinstance(value, bool)


def _same_step(exp_a: float, exp_b: float, step: float) -> bool:
    """True when two slider positions (log10 lr) are within half a step: the same slider notch."""
    return abs(exp_a - exp_b) <= step / 2 + 1e-9


def _clamp_exp(lr: float) -> float:
    return min(max(math.log10(float(lr)), _EXP_MIN), _EXP_MAX)


def _fmt_loss(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return "-"


def _summary(session: BackgroundSession, result: Any, problem: str | None, lr: float | None,
             stop_reason: str | None, early: bool = False) -> str:
    n = len(result)
    reason = result.stop_reason
    if session.status == "stopped":
        text = f"stopped at step {n}"
        text += {"interrupted": " (Kernel > Interrupt)", "replaced": " (the cell was run again)"}.get(
            stop_reason or "", "")
    elif reason == "diverged":
        text = f"{n} steps; ended early ({'loss not finite' if result.nonfinite else 'loss diverged'})"
    else:
        text = f"{n} steps"
    text += f" in {session.elapsed:.1f} s"
    if early:
        kept = f"lr stays {fmt_lr(lr)}" if lr is not None else "no lr chosen"
        text += (f"; the test {problem}, so it suggests nothing and {kept}. Run it again and let it run "
                 "to the end, or pick an lr yourself")
        return text + logged_text(result)  # its warnings are about a range it did not sweep
    if problem is not None:
        kept = f"lr stays {fmt_lr(lr)}" if lr is not None else "no lr chosen"
        text += (f"; the curve is {problem}, so {kept}. Run it again over a wider range or with more "
                 "steps, or pick an lr yourself")
    elif result.suggested is not None:
        text += f"; suggested lr {fmt_lr(result.suggested)} ({result.method})"
    text += logged_text(result)
    if result.warning:
        text += f". Note: {result.warning}"
    return text
