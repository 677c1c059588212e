"""The ``Search`` widget's executor controls: where its trials train, and how many at once.

:class:`ExecutorControls` shows the executor as three buttons, ``local`` (one trial at a time),
``fused`` (same-shape trials side by side on one device, with a ``k`` field: ``auto`` chooses it
from the device's free memory) and ``ray`` (trials on Ray workers, with an ``address`` field: empty
starts a local Ray, ``auto`` joins this machine's cluster, ``ray://host:port`` a remote one). It
takes the values ``tw.search(executor=...)`` takes (a name, an executor or an executor class) and
sets its controls from them; :meth:`ExecutorControls.executor` gives what the controls describe
now, a fresh executor for each Launch, or raises ValueError naming the field, the value and the fix.
:func:`where_text` says how many trials an opened executor runs at once, and where.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._search_executor import ExecutorControls, where_text
    >>> c = ExecutorControls(tw.hpo.FusedExecutor(k=4))
    >>> c.kind.value, c.k.value
    ('fused', '4')
    >>> ex = c.executor()
    >>> type(ex).__name__, ex.k, where_text(ex, "cpu")
    ('FusedExecutor', 4, '4 trials at once, fused on cpu')
    >>> c.k.value = "0"
    >>> c.executor()
    Traceback (most recent call last):
    ...
    ValueError: k: must be 'auto' (chosen from the device's free memory) or a whole number >= 1, got '0'; e.g. 8
    >>> c.kind.value = "local"
    >>> where_text(c.executor(), "cpu")
    'one trial at a time on cpu'
"""
from __future__ import annotations

import html
import re
from typing import Any

import ipywidgets as widgets

from tunewidgets.hpo.executors import Executor, FusedExecutor, LocalExecutor, make_executor

__all__ = ["ExecutorControls", "where_text", "fallback_notes", "with_notes", "KINDS"]

KINDS = ("local", "fused", "ray")
_RAY_URL = re.compile(r"^ray://[^\s:/]+:\d{1,5}$")
_RAY_SETTINGS = ("cpus_per_trial", "gpus_per_trial", "max_retries", "workers", "keep_workers")


class ExecutorControls(widgets.VBox):
    """Executor buttons, with ``k`` for fused and ``address`` for Ray; see the module docstring.

    Args:
        executor: ``"local"``, ``"fused"``, ``"ray"``, an executor (``tw.hpo.FusedExecutor(k=8)``,
            ``tw.hpo.RayExecutor(address="auto")``) or an executor class. A Ray executor's other
            settings (``cpus_per_trial``, ``gpus_per_trial``, ``max_retries``, ``workers``,
            ``keep_workers``) are kept for every Launch; an executor of another kind (a subclass
            included) is offered as a fourth button under its name, and every Launch with that
            button uses that same instance.
    """

    def __init__(self, executor: Any = "local") -> None:
        style = {"description_width": "70px"}
        self._ray_settings: dict[str, Any] = {}
        self._other: Executor | None = None
        kind, k, address = self._parse(executor)
        options = list(KINDS) + ([self._other_name()] if self._other is not None else [])
        self.kind = widgets.ToggleButtons(
            options=options, value=kind, description="executor",
            style={"description_width": "70px", "button_width": "80px"},
            tooltips=["one trial at a time on the config's device",
                      "same-shape trials side by side on one device (torch.func)",
                      "each trial on a Ray worker (a local Ray or a cluster)"][:len(options)])
        self.k = widgets.Text(value=k, description="k", style=style, layout=widgets.Layout(width="170px"),
                              tooltip="trials trained side by side: 'auto' (from the device's free memory) "
                                      "or a whole number")
        self.address = widgets.Text(value=address, placeholder="empty: a local Ray", description="address",
                                    style=style, layout=widgets.Layout(width="250px"),
                                    tooltip="empty: start a local Ray; 'auto': this machine's cluster; "
                                            "ray://host:port: a remote cluster")
        super().__init__(children=[self.kind, self.k, self.address])
        self.kind.observe(lambda _c: self._show_fields(), names="value")
        self._show_fields()

    # -- public ---------------------------------------------------------------------------
    def executor(self, task: Any = None) -> Any:
        """A fresh executor for one Launch, as the controls say (ValueError, naming the field, if bad).

        With ``task``, Ray also checks now that the task can be sent to its workers
        (``TaskNotSendable``, a TypeError naming the part that does not pickle)."""
        kind = self.kind.value
        if kind == "local":
            return LocalExecutor()
        if kind == "fused":
            return FusedExecutor(k=self.k_value())
        if kind == "ray":
            address = self.address_value()
            try:
                from tunewidgets.hpo.ray_executor import RayExecutor
            except ImportError as exc:  # pragma: no cover - ray is a dev extra
                raise ValueError(f"executor: 'ray' needs Ray: {exc}") from exc
            try:
                made = RayExecutor(address=address, **self._ray_settings)
            except ImportError as exc:
                raise ValueError(f"executor: 'ray' needs Ray: {exc}") from exc
            if task is not None:
                from tunewidgets.hpo._ray_worker import pack_task

                pack_task(task)  # refused here, in the status line, rather than by the search's thread
            return made
        return self._other

    def k_value(self) -> int | None:
        """The ``k`` field: None for ``auto`` (or empty), else a whole number >= 1."""
        text = self.k.value.strip()
        if text.lower() in ("", "auto"):
            return None
        if re.fullmatch(r"\d+", text) and int(text) >= 1:
            return int(text)
        raise ValueError(f"k: must be 'auto' (chosen from the device's free memory) or a whole number >= 1, "
                         f"got {self.k.value!r}; e.g. 8")

    def address_value(self) -> str | None:
        """The ``address`` field: None when empty (a local Ray), ``"auto"`` or ``"ray://host:port"``."""
        text = self.address.value.strip()
        if not text:
            return None
        if text == "auto" or _RAY_URL.match(text):
            return text
        raise ValueError(f"address: must be empty (a local Ray), 'auto' (this machine's cluster) or "
                         f"'ray://host:port', got {self.address.value!r}; e.g. ray://10.0.0.5:10001")

    def inputs(self) -> list[Any]:
        """The controls a running search uses as it started (disabled while it runs)."""
        return [self.kind, self.k, self.address]

    # -- plumbing -------------------------------------------------------------------------
    def _parse(self, executor: Any) -> tuple[str, str, str]:
        """(kind, k text, address text) of a value ``tw.search(executor=...)`` takes."""
        if isinstance(executor, str):
            if executor not in KINDS:
                make_executor(executor)  # raises its ValueError: the unknown name, the close one, the choices
            return executor, "auto", ""
        if isinstance(executor, type) and issubclass(executor, Executor):
            if executor.name in KINDS:
                return executor.name, "auto", ""
            executor = executor()
        if not isinstance(executor, Executor):
            raise TypeError(f"executor: expected a name ({', '.join(KINDS)}) or an Executor, "
                            f"got {type(executor).__name__} {executor!r}")
        if type(executor) is FusedExecutor:  # a subclass may train otherwise: used as it is, below
            return "fused", "auto" if executor.k is None else str(executor.k), ""
        if type(executor) is LocalExecutor:
            return "local", "auto", ""
        if type(executor).__name__ == "RayExecutor" and executor.name == "ray":
            self._ray_settings = {name: getattr(executor, name) for name in _RAY_SETTINGS}
            return "ray", "auto", executor.address or ""
        self._other = executor
        return self._other_name(), "auto", ""

    def _other_name(self) -> str:
        assert self._other is not None
        name = self._other.name or type(self._other).__name__
        return name if name not in KINDS else type(self._other).__name__

    def _show_fields(self) -> None:
        self.k.layout.display = None if self.kind.value == "fused" else "none"
        self.address.layout.display = None if self.kind.value == "ray" else "none"


def where_text(executor: Any, device: str) -> str:
    """How many trials run at once, and where: ``"16 trials at once, fused on cpu"``, ``"2 trials at once
    on Ray (local)"``, ``"one trial at a time on cpu"`` (for an executor the search has opened)."""
    slots = int(getattr(executor, "slots", 1) or 1)
    at_once = "one trial at a time" if slots == 1 else f"{slots} trials at once"
    if isinstance(executor, FusedExecutor):
        return f"{at_once}, fused on {device}"
    if type(executor) is LocalExecutor:  # a subclass may train elsewhere: named below
        return f"{at_once} on {device}"
    if getattr(executor, "name", "") == "ray":
        return f"{at_once} on Ray ({executor.address or 'local'})"
    return f"{at_once} ({getattr(executor, 'name', '') or type(executor).__name__})"


def fallback_notes(executor: Any) -> list[str]:
    """A fused executor's one line per reason some trials trained on the local executor (else none).

    >>> import tunewidgets as tw
    >>> fused = tw.hpo.FusedExecutor(k=2)
    >>> fused.fallbacks = {0: "grad_accum=2: the fused step makes one optimizer step per batch"}
    >>> fallback_notes(fused), fallback_notes(tw.hpo.LocalExecutor())
    (['trial 0 trained on the local executor: grad_accum=2: the fused step makes one optimizer step per batch'], [])
    """
    return list(executor.notes()) if isinstance(executor, FusedExecutor) else []


def with_notes(status: str, executor: Any) -> str:
    """The status line's HTML ``status`` with the executor's :func:`fallback_notes` below it, one a line.

    >>> import tunewidgets as tw
    >>> with_notes("<span>finished</span>", tw.hpo.LocalExecutor())
    '<span>finished</span>'
    """
    return status + "".join(f'<br><span style="color:#777">{html.escape(n)}</span>' for n in fallback_notes(executor))
