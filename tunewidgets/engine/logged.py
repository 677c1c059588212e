"""``Logged``: where a result (a Run, a range test's result, a Study) was logged, in one mapping.

``result.logged`` maps each destination to where it went: ``"store"`` (the SQLite file),
``"tensorboard"`` (the run's folder; a study's folder for a Study), ``"mlflow"`` (the tracking
URI), and any other destination by its keyword. ``tensorboard_dir`` and ``mlflow_uri`` are the
former names of two of its entries, kept as properties.

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Result(Logged):
    ...     logged: dict = field(default_factory=dict)
    >>> r = Result()
    >>> r.tensorboard_dir = "runs/tensorboard/train-1"
    >>> r.logged, r.mlflow_uri
    ({'tensorboard': 'runs/tensorboard/train-1'}, None)
"""
from __future__ import annotations

from typing import Any

__all__ = ["Logged"]


class Logged:
    """A result's ``logged`` mapping, with ``tensorboard_dir`` and ``mlflow_uri`` read from it (see the module doc)."""

    logged: dict[str, Any]

    def _set_logged(self, destination: str, value: Any) -> None:
        if value is None:
            self.logged.pop(destination, None)
        else:
            self.logged[destination] = value

    @property
    def tensorboard_dir(self) -> str | None:
        """The TensorBoard folder (``logged["tensorboard"]``), else None."""
        return self.logged.get("tensorboard")

    @tensorboard_dir.setter
    def tensorboard_dir(self, value: str | None) -> None:
        self._set_logged("tensorboard", value)

    @property
    def mlflow_uri(self) -> str | None:
        """The MLflow tracking URI (``logged["mlflow"]``), else None."""
        return self.logged.get("mlflow")

    @mlflow_uri.setter
    def mlflow_uri(self, value: str | None) -> None:
        self._set_logged("mlflow", value)
