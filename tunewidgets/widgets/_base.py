"""``BackgroundWidget``: a VBox that runs work in the background and shows it as it comes.

Subclasses give three hooks: ``_prepare()`` checks the controls and returns the worker
(``worker(emit, stop) -> result``; raise ValueError/TypeError for bad settings, which shows
inline and starts nothing), ``_on_records(records)`` updates plots and progress once per
tick (each plot gets one patch per tick), and ``_on_finish(session)`` shows the final state.
What ``_on_start`` changes in the plots (the last run's curves cleared) waits for the first tick
that ``_shows_point`` (or ``START_HOLD_S``): the page then clears and draws the first point at
once, where it used to redraw every plot empty first and the point only after.
The base wires the Run and Stop buttons, the error area, the ``status`` trait and the
:class:`BackgroundSession`.

Headless (scripts, tests): ``w.run(); w.wait()`` drains on the calling thread.
"""
from __future__ import annotations

import asyncio
import threading
import traceback
import weakref
from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from tunewidgets.widgets._bokeh import batched, close_batch, ensure_bokehjs, figure_views, in_kernel, open_batch
from tunewidgets.widgets._kernel import current_cell_id, flush_deferred, on_interrupt
from tunewidgets.widgets._embed import HTMLExport
from tunewidgets.widgets._session import BackgroundSession, Worker
from tunewidgets.widgets._ui import ErrorArea, RunBar, status_html
from tunewidgets.widgets._warm import warm_later

__all__ = ["BackgroundWidget", "running_widgets", "stop_all"]

START_HOLD_S = 0.3  # at most this long the start's plot changes wait for the first point

# every widget made in this process, to stop the ones a re-run cell replaced and on interrupt
_made: weakref.WeakSet[BackgroundWidget] = weakref.WeakSet()


def running_widgets() -> list[BackgroundWidget]:
    """The widgets whose run is in progress now."""
    return [w for w in list(_made) if w.session.running]


def stop_all(reason: str = "interrupted") -> int:
    """Ask every running widget to stop after its current step; returns how many were running.

    Safe in a signal handler: it only sets stop flags (the page follows at the next tick).
    """
    running = running_widgets()
    for w in running:
        w._stop_reason = reason
        w.session.stop()
    return len(running)


def _stop_on_interrupt() -> None:
    stop_all("interrupted")


class BackgroundWidget(HTMLExport, widgets.VBox):
    """Base of the widgets that train: run/stop/wait, one status, errors shown inline;
    ``to_html(path)`` writes the widget as it is now as one offline HTML page."""

    _warm_parts: tuple[str, ...] = ("torch",)  # see widgets._warm

    status = Unicode("idle", help="idle, running, stopping, finished, stopped, failed, or invalid "
                                  "(bad settings: nothing started)")

    def __init__(self, *, interval: float = 0.25, run_label: str = "Run", **kwargs: Any) -> None:
        self._held_views: list[Any] = []
        self._start_held: list[Any] = []
        self._start_run = 0
        self._resent = False
        self._stop_reason: str | None = None
        self.cell_id = current_cell_id()
        self.session = BackgroundSession(on_records=self._handle_records, on_done=self._handle_done,
                                         interval=interval)
        self.run_bar = RunBar(run_label=run_label)
        self.error_area = ErrorArea()
        self.status_line = widgets.HTML(value="")
        self.status_line.add_class("tw-status")
        self.run_bar.run_button.on_click(lambda _button: self.run())
        self.run_bar.stop_button.on_click(lambda _button: self.stop())
        super().__init__(**kwargs)
        self._replace_older()
        _made.add(self)
        on_interrupt(_stop_on_interrupt)

    # -- hooks ----------------------------------------------------------------------------
    def _prepare(self) -> Worker:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_start(self) -> None:
        """Reset plots before a run (on the UI thread)."""

    def _on_records(self, records: list[Any]) -> None:
        """Show the records of one tick."""

    def _on_finish(self, session: BackgroundSession) -> None:
        """Show the final state (the base then sets status and buttons)."""

    def _shows_point(self, records: list[Any]) -> bool:
        """True when these records put the run's first point in a plot."""
        return True

    def _replaces(self, other: BackgroundWidget) -> bool:
        """True when ``other`` is the widget this one replaces: the same class made by the same
        notebook cell, run again (JupyterLab names the cell; elsewhere nothing is replaced)."""
        return type(other) is type(self) and self.cell_id is not None and self.cell_id == other.cell_id

    # -- public ---------------------------------------------------------------------------
    def run(self) -> bool:
        """Check the controls and start in the background; False (error shown) if they are bad."""
        if self.session.running:
            self.error_area.show("Already running: press Stop, or wait for the run to end.")
            return False
        self.error_area.clear()
        try:
            worker = self._prepare()
        except (ValueError, TypeError) as exc:
            self.error_area.show(exc, title="Check the settings; nothing was started.")
            self._set_status("invalid", str(exc))
            return False
        # while it runs the plots get patches only; each re-renders once (for the saved state) at the end
        self._held_views = list(figure_views(self))
        for view in self._held_views:
            view.hold_renders()
        self._hold_start()
        try:
            self._on_start()
        except BaseException:
            self._release_start()
            raise
        self._resent = False
        self._stop_reason = None
        self.session.start(worker)
        self.run_bar.set_running(True)
        self._set_status("running", "running...")
        return True

    def stop(self) -> None:
        """Stop after the current step. Safe from any thread; the UI follows at the next tick."""
        self._stop_reason = self._stop_reason or "stopped"
        self.session.stop()
        if threading.current_thread() is threading.main_thread() and self.session.running:
            self.run_bar.stop_button.disabled = True
            self._set_status("stopping", "stopping after the current step...")

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run is over, draining here when no event loop does; returns its result.

        Interrupted (Ctrl+C, Kernel > Interrupt), it stops the run too."""
        try:
            result = self.session.wait(timeout)
        except KeyboardInterrupt:
            self._interrupted()
            raise
        self._after_wait()
        return result

    async def wait_async(self) -> Any:
        """``await widget.wait_async()`` in a notebook cell: wait without blocking the kernel.

        A notebook executed top to bottom (nbclient, nbconvert) saves the widget state that
        cells send: end it with this so the saved notebook shows the final plots. Interrupting
        the waiting cell (Kernel > Interrupt) stops the run too.
        """
        try:
            result = await self.session.wait_async()
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._interrupted()
            raise
        self._after_wait()
        return result

    def _interrupted(self) -> None:
        if self.session.running:
            self._stop_reason = "interrupted"
            self.session.stop()

    def _after_wait(self) -> None:
        # the final state went out from the loop task, tagged with the cell that started the
        # run; send it again from the waiting cell so a notebook executor keeps it (the page
        # gets the same values again and redraws nothing)
        if self.session.finished_on_loop and not self._resent and in_kernel():
            self._resent = True
            flush_deferred()
            _resend_states(self)

    def _replace_older(self) -> None:
        for other in list(_made):
            if other is not self and other.session.running and self._replaces(other):
                other._stop_reason = "replaced"
                other.session.stop()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the last run, or None."""
        return self.session.error

    # -- plumbing -------------------------------------------------------------------------
    def _handle_records(self, records: list[Any]) -> None:
        if self.session.status == "stopping" and self.status == "running":
            self._set_status("stopping", "stopping after the current step...")
        with batched(self._held_views or figure_views(self)):
            self._on_records(records)
        if self._start_held and self._shows_point(records):
            self._release_start()

    def _hold_start(self) -> None:
        self._start_run += 1
        self._start_held = open_batch(self._held_views)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script): released by the first tick, or the end
            return
        run = self._start_run
        loop.call_later(START_HOLD_S, lambda: self._release_start(run))

    def _release_start(self, run: int | None = None) -> None:
        """Send the start's plot changes (with the ticks' since); ``run``: only if still that run."""
        if run is not None and run != self._start_run:
            return
        views, self._start_held = self._start_held, []
        close_batch(views)

    def _handle_done(self, session: BackgroundSession) -> None:
        self._release_start()
        try:
            with batched(self._held_views or figure_views(self)):
                self._on_finish(session)
        except Exception as exc:  # a bug in showing the result: show it rather than lose it
            if session.error is None:
                session.error, session.error_traceback = exc, traceback.format_exc()
            session.status = "failed"
        finally:
            for view in getattr(self, "_held_views", ()):
                view.release_renders()
            self._held_views = []
        if session.error is not None:
            self.error_area.show(session.error, session.error_traceback, title="The run failed.")
            self._set_status("failed", f"failed: {type(session.error).__name__}: {session.error}")
        elif self.status in ("running", "stopping"):
            self._set_status(session.status, f"{session.status} after {session.elapsed:.1f} s"
                             + _stop_note(self._stop_reason if session.status == "stopped" else None))
        self.run_bar.set_running(False)

    def _set_status(self, status: str, text: str, tone: str | None = None) -> None:
        """Set ``status`` and the status line (coloured by ``tone``, default the status)."""
        self.status = status
        self.status_line.value = status_html(tone or status, text)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        ensure_bokehjs([view._model for view in figure_views(self)])
        warm_later(*self._warm_parts)  # the first click's one-time work, done once the cell ends
        for view in figure_views(self):  # show the figures as they are now, not as first made
            if view._stale:
                view.render_now()
        return super()._repr_mimebundle_(**kwargs)


def _stop_note(reason: str | None) -> str:
    return {"interrupted": " (Kernel > Interrupt)", "replaced": " (the cell was run again)"}.get(reason or "", "")


def _resend_states(widget: widgets.Widget) -> None:
    """Send the current state of ``widget``, its layout and style, and of all its descendants
    again (a Bokeh view: its last render)."""
    stack = [widget]
    while stack:
        w = stack.pop()
        if hasattr(w, "render_now"):
            if w._stale:
                w.render_now()
            w.send_state("render_bundle")
            continue
        for model in (w, getattr(w, "layout", None), getattr(w, "style", None)):
            if isinstance(model, widgets.Widget):
                model.send_state()
        stack.extend(getattr(w, "children", ()))
