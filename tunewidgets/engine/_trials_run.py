"""``TrialsRun``: a run of the engine's run base whose records belong to several trials (a fused group).

The run base's docstring says how such a run fires: one bus, one run slot, one seeding, and
each record built by the base (``fire_start``, ``flush``, ``fire``, ``fire_end``) under the
trial's own ``run_id`` and ``trial``. This class is that part of a fused run, apart from what
it trains: its ``members`` (each an ``engine._fused_trial.FusedTrial``: config, stop flag,
status, counters and rows), ``firing`` (the trial whose record is out), ``_as(m, fire, ...)``
to fire one of ``m``'s records so that a handler's ``StopRun`` or error ends ``m`` alone, and
``_end(m, error)``, which flushes ``m``'s last rows, fires its END and builds its ``Run``.
``stop()`` stops every trial; the run counts as stopped (for the run slot) when all are.

A subclass (``engine.fused.FusedRun``) writes ``_prepare``, ``_body`` and the steps, and may
override ``_flush(m)`` (fetch device losses first) and ``_trial_model(m)`` (the trained weights).

Example:
    >>> import torch, tunewidgets as tw
    >>> from tunewidgets.engine._fused_trial import FusedTrial
    >>> class Two(TrialsRun):
    ...     def __init__(self):
    ...         super().__init__([FusedTrial(self, tw.TrainConfig(), run_id=i, trial=i) for i in (5, 6)])
    ...     def _prepare(self):
    ...         return 0, torch.device("cpu")
    ...     def _body(self):
    ...         for m in self.members:
    ...             m.pending.append({"step": 1, "epoch": 0, "lr": 0.1, "loss": float(m.trial)})
    ...             m.step, m.status = 1, "finished"
    ...             self._end(m, None)
    >>> run = Two()
    >>> seen = []
    >>> handle = run.on("log", lambda rec: seen.append((rec["trial"], rec["rows"][0]["loss"])))
    >>> [(r.trial, r.status) for r in run.execute()], seen
    ([(5, 'finished'), (6, 'finished')], [(5, 5.0), (6, 6.0)])
"""
from __future__ import annotations

import math
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from tunewidgets.engine._fused_trial import FusedTrial
from tunewidgets.engine.control import StopRun
from tunewidgets.engine.run import HISTORY_COLUMNS, Run, history_frame
from tunewidgets.engine.run_base import RunBase

__all__ = ["TrialsRun"]


class _AllStopped:
    """Set once every trial's stop is: the run's own stop, for the run slot's wait."""

    def __init__(self, members: Sequence[FusedTrial]) -> None:
        self.members = members

    def is_set(self) -> bool:
        return all(m.stop_event.is_set() for m in self.members)


class TrialsRun(RunBase):
    """The run base for several trials at once; see the module docstring.

    Args:
        members: the trials (``FusedTrial``), in the order their Runs are returned.
        history: False leaves each ``Run.history`` empty (one shared empty table).
        callbacks: sinks or ``{event: handler}`` dicts on the run's bus: every trial's records.
    """

    kind = "train"

    def __init__(self, members: Sequence[FusedTrial], *, history: bool = True, callbacks: Iterable[Any] = ()) -> None:
        self.members = list(members)
        self.history = history
        self.firing: FusedTrial | None = None  # the trial whose record is being fired
        self._empty: pd.DataFrame | None = None
        self._handed_back = False  # set by a subclass whose trials go back to the caller untrained
        super().__init__(callbacks=callbacks, stop=_AllStopped(self.members))

    def stop(self, status: str = "stopped", reason: str | None = None) -> None:
        """Ask every trial to halt; each stops within one step with ``status``."""
        for m in self.members:
            m.stop(status, reason)

    # -- RunBase ----------------------------------------------------------------------------
    def _finish(self, error: str | None, started: bool) -> list[Run]:
        """End every trial not ended yet: stopped before the slot was free, or failed with the whole run."""
        if error is not None and self._handed_back:
            return []
        for m in self.members:
            if m.run is not None:
                continue
            if not started:
                m.status, m.reason = m.stop_event.status, self.reason
                self._end(m, None, started=False)
            elif error is not None:  # an error of the whole run (an interrupt): every trial still in it fails
                m.status, m.exception = "failed", m.exception or sys.exc_info()[1]
                self._end(m, error)
            else:
                self._end(m, None)
        return [m.run for m in self.members]  # type: ignore[misc]

    def _logged(self, rows: list[dict[str, Any]]) -> None:
        """The firing trial keeps its rows; a non-finite loss among them: it diverged."""
        m = self.firing
        m.step_rows.extend(rows)
        if m.status == "running" and not all(math.isfinite(r["loss"]) for r in rows):
            m.status = "diverged"

    # -- one trial's records ----------------------------------------------------------------
    def _as(self, m: FusedTrial, fire: Callable[..., Any], *args: Any, guard: bool = True, **fields: Any) -> Any:
        """``fire(*args, **fields)`` (one of the base's record methods) under ``m``'s run id and trial.

        With ``guard``, a StopRun or an error from the handlers ends ``m`` only (its status, or
        ``m.exception``); without, they propagate to the caller.
        """
        self.firing = m
        try:
            return fire(*args, run_id=m.run_id, trial=m.trial, **fields)
        except StopRun as halt:
            if not guard:
                raise
            if m.status == "running":
                m.status, m.reason = halt.status, halt.reason
        except Exception as exc:  # noqa: BLE001
            if not guard:
                raise
            m.exception = exc
        finally:
            self.firing = None
        return None

    def _flush(self, m: FusedTrial) -> None:
        """Fire ``m``'s pending rows in one LOG (the base's :meth:`flush`; see :meth:`_logged`)."""
        self._as(m, self.flush, m.pending)

    def _trial_model(self, m: FusedTrial) -> Any:
        """The model ``m``'s Run carries."""
        return m.model

    def _fail(self, m: FusedTrial, exc: BaseException) -> None:
        m.status, m.exception = "failed", exc
        self._end(m, "".join(traceback.format_exception(exc)))

    def _end(self, m: FusedTrial, error: str | None, started: bool = True) -> None:
        """``m``'s last rows and its END (the base's :meth:`fire_end`), then its Run."""
        if started:
            try:
                self._flush(m)
            except Exception:  # noqa: BLE001 - the run is ending; its own error wins
                pass
        perf, final = m.summary(started, getattr(self, "device", None))
        model = self._trial_model(m)
        status = self.status
        try:
            self._as(m, self.fire_end, m.status, final=final, error=error, perf=perf, reason=m.reason, guard=False)
        except Exception as exc:  # noqa: BLE001 - an END handler that fails fails the trial
            m.exception = m.exception or exc
        self.status = status  # the run goes on: "ended" was this trial's END only
        if self.history:
            history = history_frame(m.step_rows, m.eval_rows)
        else:  # one empty table for the run's trials (a frame costs a few milliseconds to make)
            if self._empty is None:
                self._empty = pd.DataFrame(columns=HISTORY_COLUMNS)
            history = self._empty
        m.run = Run(config=m.config, status=m.status, history=history, final=final,
                    model=model, perf=perf, run_id=m.run_id, error=error, params=m.params, trial=m.trial,
                    reason=m.reason)
