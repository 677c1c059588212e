"""``RunBase``: what every kind of run is, whatever it trains: a Trainer, an LR range test, a fused group.

A run owns one :class:`~tunewidgets.engine.events.EventBus` (``on()``), one stop flag
(``stop()``, chained to a parent's), the process-wide run slot, the seeding of every random
number generator (restored afterwards), START and END records, ``StopRun`` handling and the
buffer of pending step losses that goes out as one LOG record per flush. A subclass writes
only what its kind does between START and END:

- ``_prepare() -> (seed, device)``: checks and setup that may fail (they are inside the failure
  handling: a failure fires END with status "failed");
- ``_body()``: the steps; it fires START (:meth:`fire_start`) before the first, appends one row a
  step to ``self.pending`` (``{"step", "lr", "loss", ...}``; ``loss`` may be a device tensor) and
  calls :meth:`flush` every few steps; it returns normally, or a handler's ``StopRun`` ends it;
- ``_finish(error, started) -> result``: builds what the run returns and fires END
  (:meth:`fire_end`); ``error`` is the traceback text of a failure, else None; ``started`` is
  False when the run was stopped while it waited for the run slot.

:meth:`execute` holds it together: slot, seeding, ``_prepare``, ``_body``, the last flush,
``_finish``; an exception still fires END (once) and is raised again.

Steps are numbered from 1: the row with ``step=k`` is the k-th optimizer step and carries the
lr that step used; every kind of run numbers them so, and the store, plots and sinks rely on it.

Fused runs (K trials trained in one batched step) are one RunBase whose records belong to
several trials. Every method that builds or fires a record takes ``run_id=`` and ``trial=``
(default: the run's own ``self.run_id`` and ``self.trial``), and :meth:`flush` takes the
buffer to flush, so such a run keeps one ``pending`` list per trial and, per trial ``t``::

    self.fire_start(total_steps, device, params=params[t], run_id=ids[t], trial=t)
    self.flush(pending[t], run_id=ids[t], trial=t)            # that trial's rows only
    self.fire_end(status[t], final=final[t], run_id=ids[t], trial=t)

A sink attached to the run's bus then sees each trial as its own run (its records carry that
trial's id); the slot, the seeding, the stop flag and the failure handling stay the run's.
A failure is one END per trial: its ``_finish(error, started)`` fires them all.

Example:
    >>> import torch
    >>> from tunewidgets.engine.run_base import RunBase
    >>> class Count(RunBase):
    ...     kind = "count"
    ...     def _prepare(self):
    ...         return 0, torch.device("cpu")
    ...     def _body(self):
    ...         self.fire_start(3, torch.device("cpu"), params={})
    ...         for k in (1, 2, 3):
    ...             self.pending.append({"step": k, "lr": 0.1, "loss": torch.tensor(float(k))})
    ...     def _finish(self, error, started):
    ...         self.fire_end(self.status if error is None else "failed", error=error)
    ...         return self.status
    >>> run = Count(run_id=7)
    >>> rows = []
    >>> handle = run.on("log", lambda rec: rows.extend((r["step"], r["loss"], rec["run_id"]) for r in rec["rows"]))
    >>> run.execute(), rows
    ('finished', [(1, 1.0, 7), (2, 2.0, 7), (3, 3.0, 7)])
"""
from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import Any

import torch

from tunewidgets.engine import status as st
from tunewidgets.engine.control import RunStop, StopRun, run_slot
from tunewidgets.engine.env import environment
from tunewidgets.engine.events import EventBus, Events, Handle, attach_callbacks
from tunewidgets.engine.seeding import seeded

__all__ = ["RunBase"]

_OWN: Any = object()  # "the run's own run_id / trial"


class RunBase:
    """The run base; see the module docstring (written for the author of a new kind of run).

    Args:
        callbacks: sinks (objects with ``attach(run)``) or ``{event: handler}`` dicts.
        stop: a parent stop (``threading.Event`` or ``RunStop``): the run halts within one step
            of it or of its own :meth:`stop`.
        run_id, trial: what every record of the run carries (a sink that attaches may set
            ``run_id``).

    Attributes: ``bus``, ``stop_event``, ``run_id``, ``trial``, ``status`` ("pending",
    "running", then the final status), ``reason`` (why it ended early), ``pending`` (step rows
    not yet sent in a LOG record).
    """

    kind = "run"
    _callbacks_example = "{'end': print}"

    def __init__(self, *, callbacks: Iterable[Any] = (), stop: Any = None, run_id: int | None = None,
                 trial: int | None = None) -> None:
        for field, value in (("run_id", run_id), ("trial", trial)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{field}: expected a whole number or None, got {value!r}")
        self.bus = EventBus()
        self.stop_event = RunStop(parent=stop)
        self.run_id, self.trial = run_id, trial
        self.status = st.PENDING
        self.reason: str | None = None
        self.pending: list[dict[str, Any]] = []
        attach_callbacks(self, callbacks, self._callbacks_example)

    # -- public -------------------------------------------------------------------------
    def on(self, event: Events | str, handler: Any) -> Handle:
        """Attach ``handler(record)`` to an event; returns a handle with ``remove()``."""
        return self.bus.on(event, handler)

    def stop(self, status: str = st.STOPPED, reason: str | None = None) -> None:
        """Ask the run to halt; it stops within one step with ``status`` ("stopped" or "pruned")."""
        self.stop_event.set(status, reason)

    def execute(self) -> Any:
        """Run it: hold the run slot, seed, ``_prepare``, ``_body``, flush, ``_finish``; returns the result.

        A ``StopRun`` raised by a handler ends the body with its status and reason; any other
        exception fires END with status "failed" (once, even when END's own handler raised)
        and is raised again. A run stopped while it waited for the slot never starts.
        """
        with run_slot(self.stop_event) as got:
            if not got:  # stopped while another run held the slot
                self.status, self.reason = self.stop_event.status, "stopped before it started"
                return self._finish(None, False)
            self.status = st.RUNNING
            try:
                seed, device = self._prepare()
                with seeded(seed, device):
                    for part in (self._body, self.flush):  # the last rows go out after a StopRun too
                        try:
                            part()
                        except StopRun as halt:
                            self.status, self.reason = halt.status, halt.reason
                    if self.status == st.RUNNING:
                        self.status = st.FINISHED
                    return self._finish(None, True)
            except BaseException as exc:
                if self.status != st.ENDED:
                    self.status = "failed"
                    try:
                        self.flush()
                    except Exception:  # noqa: BLE001 - the run is ending; its own error wins
                        pass
                    self._finish("".join(traceback.format_exception(exc)), True)
                raise

    # -- records --------------------------------------------------------------------------
    def fire(self, event: Events, record: dict[str, Any], *, run_id: Any = _OWN, trial: Any = _OWN) -> None:
        """Fire ``record`` tagged with ``run_id`` and ``trial`` (default: the run's own)."""
        record["run_id"] = self.run_id if run_id is _OWN else run_id
        record["trial"] = self.trial if trial is _OWN else trial
        self.bus.fire(event, record)

    def fire_start(self, total_steps: int, device: torch.device, *, params: dict[str, Any],
                   run_id: Any = _OWN, trial: Any = _OWN, **fields: Any) -> None:
        """Fire START (only when someone listens): ``params``, ``kind``, ``trainer`` (this run),
        ``total_steps``, ``env`` (versions and device), plus ``fields``."""
        if self.bus.has(Events.START):
            self.fire(Events.START, {"params": params, "kind": self.kind, "trainer": self,
                                     "total_steps": total_steps, "env": environment(device), **fields},
                      run_id=run_id, trial=trial)

    def fire_end(self, status: str, *, final: dict[str, Any] | None = None, error: str | None = None,
                 perf: dict[str, Any] | None = None, reason: Any = _OWN, run_id: Any = _OWN,
                 trial: Any = _OWN) -> None:
        """Fire END: ``status``, ``reason``, ``final``, ``error``, ``perf``. While its handlers run,
        ``self.status`` reads "ended" (so a failing END handler does not fire END again)."""
        before = self.status
        self.status = st.ENDED  # stays so when a handler raises: execute() then fires no second END
        self.fire(Events.END, {"status": status, "reason": self.reason if reason is _OWN else reason,
                               "final": final or {}, "error": error, "perf": perf or {}},
                  run_id=run_id, trial=trial)
        self.status = before

    def flush(self, pending: list[dict[str, Any]] | None = None, *, run_id: Any = _OWN,
              trial: Any = _OWN) -> list[dict[str, Any]]:
        """Send the pending step rows (default ``self.pending``) as one LOG record and empty the buffer.

        Losses still on the device are fetched to the host in one sync. Returns the rows sent;
        ``_logged(rows)`` sees them first (a subclass keeps them or checks them there).
        """
        pending = self.pending if pending is None else pending
        if not pending:
            return []
        rows = list(pending)
        pending.clear()
        if isinstance(rows[0]["loss"], torch.Tensor):
            values = torch.stack([r["loss"] for r in rows]).float().tolist()
            for row, value in zip(rows, values):
                row["loss"] = value
        self._logged(rows)
        if self.bus.has(Events.LOG):
            self.fire(Events.LOG, {"rows": rows}, run_id=run_id, trial=trial)
        return rows

    # -- what a kind of run writes --------------------------------------------------------
    def _prepare(self) -> tuple[int | None, torch.device | None]:
        """Setup that may fail; returns ``(seed, device)`` for the seeding (seed None: unseeded)."""
        raise NotImplementedError

    def _body(self) -> None:
        """The steps, from START on."""
        raise NotImplementedError

    def _finish(self, error: str | None, started: bool) -> Any:
        """Fire END and return the run's result."""
        raise NotImplementedError

    def _logged(self, rows: list[dict[str, Any]]) -> None:
        """Called by :meth:`flush` with the host-side rows before LOG fires; nothing by default."""
