"""What a ``Search`` widget takes from the widgets linked to it, and the controls that follow them.

- an ``LRFinder``: its chosen lr (and the optimizer it tested) go into the base config, and the
  lr row of a default space is centred on it, also when the finder's lr changes later;
- a ``SchedulePreview``: its schedule goes into the base config; when it changes, the search's
  rows show again what they will search (a schedule that sets the lr itself renames the lr row).

Both are checked when the search widget is made.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.widgets._search_links import SearchLinks
    >>> links = SearchLinks(tw.TrainConfig(lr=0.1))
    >>> links.finder_lr(), links.base().lr
    (None, 0.1)
    >>> SearchLinks(tw.TrainConfig(), lr_finder="0.01")
    Traceback (most recent call last):
    ...
    TypeError: lr_finder: expected an LRFinder widget, got str; e.g. Search(task, lr_finder=tw.widgets.LRFinder(task))
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tunewidgets.engine.config import TrainConfig

__all__ = ["SearchLinks"]


class SearchLinks:
    """The base config with a linked finder's lr and a linked preview's schedule."""

    def __init__(self, base: TrainConfig, lr_finder: Any = None, schedule: Any = None) -> None:
        _check_finder(lr_finder)
        _check_preview(schedule)
        self._base, self.lr_finder, self.schedule = base, lr_finder, schedule

    def finder_lr(self) -> float | None:
        """The linked finder's chosen lr (None without a finder, or before it has chosen one)."""
        return None if self.lr_finder is None else self.lr_finder.lr

    def base(self) -> TrainConfig:
        """The base config as the links make it now."""
        cfg = self._base
        if self.finder_lr() is not None:
            cfg = self.lr_finder.config(cfg)
        if self.schedule is not None:
            cfg = cfg.replace(schedule=self.schedule.spec)
        return cfg

    def follow(self, rows: Iterable[Any], *, frozen: Callable[[], bool], on_schedule: Callable[[], None]) -> None:
        """Keep ``rows`` following the links: the ``lr`` row spans a decade each side of the
        finder's lr whenever it changes (unless ``frozen()``: a search runs, or the space was
        given), and ``on_schedule()`` runs when the preview's schedule changes."""
        rows = list(rows)

        def on_lr(change: Any) -> None:
            lr = change["new"]
            if lr is None or frozen():
                return
            for row in rows:
                if row.key == "lr":
                    row.set_range(float(f"{lr / 10:.3g}"), float(f"{lr * 10:.3g}"))

        if self.lr_finder is not None:
            self.lr_finder.observe(on_lr, names="lr")
        if self.schedule is not None and hasattr(self.schedule, "observe"):
            self.schedule.observe(lambda _change: on_schedule(), names="spec")


def _check_finder(finder: Any) -> None:
    if finder is not None and not (hasattr(finder, "observe") and hasattr(finder, "has_trait")
                                   and finder.has_trait("lr") and hasattr(finder, "config")):
        raise TypeError(f"lr_finder: expected an LRFinder widget, got {type(finder).__name__}; "
                        "e.g. Search(task, lr_finder=tw.widgets.LRFinder(task))")


def _check_preview(preview: Any) -> None:
    if preview is not None and not hasattr(getattr(preview, "spec", None), "build"):
        raise TypeError(f"schedule: expected a SchedulePreview widget (with a .spec), got {type(preview).__name__}; "
                        "e.g. Search(task, schedule=tw.widgets.SchedulePreview())")
