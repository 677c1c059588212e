"""What the widgets need from the IPython kernel they run in: whether there is one, which cell
runs now, work deferred to the end of the cell or a moment later, and Kernel > Interrupt.

- :func:`in_kernel`: True inside a Jupyter kernel.
- :func:`current_cell_id`: the id JupyterLab gives the running cell (None elsewhere).
- :func:`defer`: run a callback once, soon: at the end of the running cell (so a notebook
  executor records what it sends as that cell's output) or, outside a cell (a click in the
  page), ``delay`` seconds after the last request, on the kernel's loop.
- :func:`on_interrupt`: call a function when the user interrupts the kernel (Kernel >
  Interrupt sends SIGINT), also while it is idle, when IPython itself ignores the signal.

Outside a kernel :func:`defer` runs the callback at once and :func:`on_interrupt` does nothing.

Example:
    >>> from tunewidgets.widgets._kernel import current_cell_id, defer, in_kernel
    >>> in_kernel(), current_cell_id()
    (False, None)
    >>> seen = []
    >>> defer("example", lambda: seen.append(1)); seen
    [1]
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["in_kernel", "current_cell_id", "defer", "flush_deferred", "on_interrupt"]

_log = logging.getLogger(__name__)

_pending: dict[Any, Callable[[], None]] = {}  # key -> callback, in request order
_timer: asyncio.TimerHandle | None = None
_first_request = 0.0
_hooked_cells = False
_interrupt_callbacks: list[Callable[[], None]] = []
_hooked_interrupt = False
_MAX_WAIT = 1.0  # seconds: a stream of requests still flushes this often


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    return get_ipython()


def in_kernel() -> bool:
    """True inside a running IPython kernel (Jupyter), False in scripts and tests."""
    shell = _shell()
    return shell is not None and getattr(shell, "kernel", None) is not None


def current_cell_id() -> str | None:
    """The id of the notebook cell being run (JupyterLab sends it with each execution), or None."""
    if not in_kernel():
        return None
    try:
        parent = _shell().kernel.get_parent()
    except Exception:  # noqa: BLE001 - an older kernel without get_parent
        return None
    if not isinstance(parent, dict):
        return None
    header = parent.get("header") or {}
    if header.get("msg_type") != "execute_request":
        return None
    cell = (parent.get("metadata") or {}).get("cellId")
    return cell if isinstance(cell, str) and cell else None


def defer(key: Any, callback: Callable[[], None], delay: float = 0.3) -> None:
    """Run ``callback`` once soon; a later request with the same ``key`` replaces it.

    In a cell: at the end of the cell. Otherwise: ``delay`` seconds after the last request (at
    most about a second after the first), on the kernel's loop. Outside a kernel: now.
    """
    global _timer, _first_request
    if not in_kernel() or threading.current_thread() is not threading.main_thread():
        callback()
        return
    _hook_cells()
    if not _pending:
        _first_request = time.monotonic()
    _pending[key] = callback
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:  # pragma: no cover - a kernel always has a loop
            flush_deferred()
            return
    if _timer is not None:
        _timer.cancel()
    wait = max(0.0, min(delay, _first_request + _MAX_WAIT - time.monotonic()))
    _timer = loop.call_later(wait, flush_deferred)


def flush_deferred(*_args: Any) -> None:
    """Run every deferred callback now (also called at the end of each cell)."""
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None
    while _pending:
        key = next(iter(_pending))
        callback = _pending.pop(key)
        try:
            callback()
        except Exception:  # a view that cannot re-render must not break the cell or the loop
            _log.exception("tunewidgets: a deferred widget update failed")


def _hook_cells() -> None:
    global _hooked_cells
    if not _hooked_cells:
        _shell().events.register("post_run_cell", flush_deferred)
        _hooked_cells = True


def on_interrupt(callback: Callable[[], None]) -> None:
    """Call ``callback()`` (on the main thread) whenever the kernel is interrupted; then the
    interrupt goes on as usual (a running cell still gets its KeyboardInterrupt)."""
    if not in_kernel():
        return
    if callback not in _interrupt_callbacks:
        _interrupt_callbacks.append(callback)
    _hook_interrupt()


def _chained(previous: Any) -> Any:
    """A SIGINT handler that tells the callbacks, then does what ``previous`` did."""
    if getattr(previous, "_tunewidgets", False):
        return previous

    def handler(signum: int, frame: Any) -> None:
        for callback in list(_interrupt_callbacks):
            try:
                callback()
            except Exception:  # noqa: BLE001
                _log.exception("tunewidgets: stopping on interrupt failed")
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt

    handler._tunewidgets = True  # type: ignore[attr-defined]
    return handler


def _wrap_sigint() -> None:
    try:
        signal.signal(signal.SIGINT, _chained(signal.getsignal(signal.SIGINT)))
    except (ValueError, TypeError):  # not the main thread, or no handler to chain
        pass


def _hook_interrupt() -> None:
    """ipykernel ignores SIGINT while idle and swaps its handler around each message; chain ours
    to whichever it installs, so an interrupt is seen idle or busy."""
    global _hooked_interrupt
    if _hooked_interrupt or threading.current_thread() is not threading.main_thread():
        return
    kernel = _shell().kernel
    pre, post = getattr(kernel, "pre_handler_hook", None), getattr(kernel, "post_handler_hook", None)
    if pre is None or post is None:  # pragma: no cover - every ipykernel has them
        return

    def pre_handler_hook() -> None:
        pre()
        _wrap_sigint()

    def post_handler_hook() -> None:
        post()
        _wrap_sigint()

    kernel.pre_handler_hook = pre_handler_hook
    kernel.post_handler_hook = post_handler_hook
    _wrap_sigint()
    _hooked_interrupt = True
