"""Where a widget's runs are logged: ``store=``, ``tensorboard=`` and ``mlflow=`` as ``tw.lr_range_test``
and ``tw.search`` take them, checked when the widget is made (a bad value or a missing package is
an error then, not after the first Run), and a short line saying where a finished run went.
"""
from __future__ import annotations

import os
from typing import Any

from tunewidgets.api import mlflow_uri, tensorboard_dir
from tunewidgets.tracking.store import Store

__all__ = ["Logging", "logged_text"]


class Logging:
    """The three logging settings of a widget, checked now; ``kwargs()`` hands them to the run."""

    def __init__(self, store: Any = None, tensorboard: Any = None, mlflow: Any = None, *,
                 store_optional: bool = True) -> None:
        if not ((store is None and store_optional) or isinstance(store, Store)
                or (isinstance(store, (str, os.PathLike)) and not isinstance(store, bytes) and str(store).strip())):
            raise TypeError(f"store: expected {'None, ' if store_optional else ''}a runs folder such as "
                            f"'tunewidgets-runs' or a tw.Store, got {store!r}")
        tensorboard_dir(tensorboard, store)  # raises naming tensorboard= (and how to install it)
        mlflow_uri(mlflow, store)  # likewise for mlflow=
        self.store, self.tensorboard, self.mlflow = store, tensorboard, mlflow

    def kwargs(self) -> dict[str, Any]:
        """``store=``, ``tensorboard=`` and ``mlflow=`` for the run (only the ones set)."""
        out = {"store": self.store, "tensorboard": self.tensorboard, "mlflow": self.mlflow}
        return {k: v for k, v in out.items() if v is not None and v is not False}

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
    outside = [name for name, attr in (("TensorBoard", "tensorboard_dir"), ("MLflow", "mlflow_uri"))
               if getattr(result, attr, None)]
    if outside:
        places.append("to " + " and ".join(outside))
    text = f"; logged {', '.join(places)}" if places else ""
    errors = list(getattr(result, "sink_errors", None) or ())
    if errors:
        text += f" (not all recorded: {errors[0]}{f' and {len(errors) - 1} more' if len(errors) > 1 else ''})"
    return text
