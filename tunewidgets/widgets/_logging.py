"""Where a widget's runs are logged: ``store=``, ``tensorboard=`` and ``mlflow=`` as ``tw.lr_range_test``
and ``tw.search`` take them, checked when the widget is made by the same
``tunewidgets.tracking.destinations.resolve`` the facades use (a bad value, a missing package or an
unreachable server is an error then, not after the first Run), and a short line saying where a
finished run went.

Example:
    >>> from types import SimpleNamespace
    >>> logged_text(SimpleNamespace(run_id=3, logged={"store": "runs/runs.sqlite", "tensorboard": "tb/x"},
    ...                             sink_errors=[]))
    '; logged as run 3, to TensorBoard'
"""
from __future__ import annotations

from typing import Any

from tunewidgets.tracking.destinations import DESTINATIONS, resolve

__all__ = ["Logging", "logged_text"]


class Logging:
    """The logging settings of a widget, checked now; ``kwargs()`` hands them to the run."""

    def __init__(self, store: Any = None, tensorboard: Any = None, mlflow: Any = None, *,
                 store_optional: bool = True, **more: Any) -> None:
        self.destinations = resolve(store, store_required=not store_optional, tensorboard=tensorboard,
                                    mlflow=mlflow, **more)
        self.store, self.tensorboard, self.mlflow = store, tensorboard, mlflow

    def kwargs(self) -> dict[str, Any]:
        """``store=`` and the destinations for the run (only the ones set)."""
        return self.destinations.kwargs()

    def __repr__(self) -> str:
        return f"Logging(store={self.store!r}, tensorboard={self.tensorboard!r}, mlflow={self.mlflow!r})"


def logged_text(result: Any) -> str:
    """``"; logged as run 3, to TensorBoard and MLflow"`` for a result that went somewhere, else ``""``.

    What a sink could not record (``sink_errors``) is said too: the curves shown are complete, the
    record is not.
    """
    places = []
    run_id = getattr(result, "run_id", None)
    if run_id is not None:
        places.append(f"as run {run_id}")
    logged = getattr(result, "logged", None) or {}
    outside = [DESTINATIONS[k].label for k in DESTINATIONS if logged.get(k)]
    if outside:
        places.append("to " + " and ".join(outside))
    text = f"; logged {', '.join(places)}" if places else ""
    errors = list(getattr(result, "sink_errors", None) or ())
    if errors:
        text += f" (not all recorded: {errors[0]}{f' and {len(errors) - 1} more' if len(errors) > 1 else ''})"
    return text
