"""Learning-rate suggestions from the smoothed loss curve of a range test.

Three rules, each a function ``(lrs, smoothed) -> lr or None``:

- ``steepest``: the lr where the smoothed loss falls fastest against ``log(lr)`` (the most
  negative central difference ``(s[i+1] - s[i-1]) / (log lr[i+1] - log lr[i-1])``), ignoring
  the first 10% and the last 5% of the points (and always the two ends), where the moving
  average warms up and where the loss blows up.
- ``valley``: fastai's rule. Find the longest strictly descending subsequence of the
  smoothed loss (the longest stretch over which the loss keeps falling, noise skipped), of
  length ``L`` ending at index ``end``; the valley is the ``L`` points before ``end``
  (noise skipped inside it moves its start to the right of the subsequence's first point),
  and the suggestion sits halfway through it, at ``start + int(L/3) + int(L/6)`` with
  ``start = end - L`` (in index, so about halfway in ``log(lr)`` for an exponential ramp). It is the default: it depends on the whole descent rather than on
  one noisy slope (steepest) or on where the loss happened to blow up (minimum).
- ``minimum``: the lr at the lowest smoothed loss, divided by 10.

Only the points before the first non-finite loss (or lr) are used. With fewer than
``MIN_POINTS`` usable points a rule returns None; :func:`suggest` then also says why.

Example:
    >>> import numpy as np
    >>> lrs = np.logspace(-5, 0, 51)
    >>> drop = 1.0 / (1.0 + np.exp(-4 * (np.log10(lrs) + 2)))   # falls fastest at lr = 1e-2
    >>> smoothed = 2.0 - drop + 5 * lrs ** 2                        # and blows up towards lr = 1
    >>> float(suggest_steepest(lrs, smoothed))
    0.01
    >>> s = suggest(lrs, smoothed)
    >>> s.method, s.suggested == s.values["valley"], s.warning is None
    ('valley', True, True)
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MIN_POINTS", "RULES", "Suggestions", "suggest", "suggest_steepest", "suggest_valley",
           "suggest_minimum", "check_method"]

MIN_POINTS = 10
RULES = ("valley", "steepest", "minimum")


@dataclass(frozen=True)
class Suggestions:
    """What :func:`suggest` found: one lr (or None) per rule, the chosen one and the band they span.

    ``band`` is ``(lowest, highest)`` of the rules' lrs: a narrow band means the rules agree.
    ``warning`` explains missing suggestions or a doubtful curve; None when all is well.
    """

    values: dict[str, float | None]
    suggested: float | None
    method: str
    band: tuple[float, float] | None
    warning: str | None


def _usable(lrs: Any, smoothed: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both curves as float arrays, cut before the first non-finite point; checks their shapes."""
    x = np.asarray(lrs, dtype=float)
    y = np.asarray(smoothed, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"lrs, smoothed: expected two 1-D sequences of the same length, got shapes "
                         f"{x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if not ok.all():
        cut = int(ok.argmin())
        x, y = x[:cut], y[:cut]
    if len(x) > 1 and not (x[1:] > x[:-1]).all():
        raise ValueError("lrs: must increase strictly, as a range test's ramp does; sort the points by lr")
    return x, y


def _steepest(x: np.ndarray, y: np.ndarray) -> float | None:
    # central differences against log(lr) at points 1 .. n-2; window [n//10, n - n//20) of the points
    t = np.log(x)
    slope = (y[2:] - y[:-2]) / (t[2:] - t[:-2])
    n = len(x)
    lo, hi = max(n // 10, 1), min(n - n // 20, n - 1)
    i = lo + int(slope[lo - 1:hi - 1].argmin())
    return float(x[i]) if slope[i - 1] < 0 else None


def _longest_descent(y: np.ndarray) -> tuple[int, int]:
    """Last index and length of the longest strictly descending subsequence of ``y`` (patience sorting)."""
    tails: list[float] = []      # tails[k]: smallest -y ending a descent of length k + 1
    best_end, best_length = 0, 0
    for i, v in enumerate(y.tolist()):
        k = bisect_left(tails, -v)
        if k == len(tails):
            tails.append(-v)
        else:
            tails[k] = -v
        if k + 1 > best_length:
            best_end, best_length = i, k + 1
    return best_end, best_length


def _valley(x: np.ndarray, y: np.ndarray) -> float | None:
    end, length = _longest_descent(y)
    if length < 2:
        return None
    start = end - length
    sections = (end - start) / 3
    return float(x[max(start + int(sections) + int(sections / 2), 0)])


def _minimum(x: np.ndarray, y: np.ndarray) -> float | None:
    return float(x[int(y.argmin())] / 10.0)


def suggest_steepest(lrs: Any, smoothed: Any) -> float | None:
    """The lr of the most negative slope of ``smoothed`` against ``log(lr)``, ends trimmed.

    None with fewer than ``MIN_POINTS`` usable points or when the loss never falls.
    """
    x, y = _usable(lrs, smoothed)
    return _steepest(x, y) if len(x) >= MIN_POINTS else None


def suggest_valley(lrs: Any, smoothed: Any) -> float | None:
    """The lr halfway through the longest descent of ``smoothed`` (fastai's "valley").

    None with fewer than ``MIN_POINTS`` usable points or when the loss never falls.
    """
    x, y = _usable(lrs, smoothed)
    return _valley(x, y) if len(x) >= MIN_POINTS else None


def suggest_minimum(lrs: Any, smoothed: Any) -> float | None:
    """The lr at the lowest smoothed loss, divided by 10; None with fewer than ``MIN_POINTS`` points."""
    x, y = _usable(lrs, smoothed)
    return _minimum(x, y) if len(x) >= MIN_POINTS else None


_RULE_FUNCTIONS = {"valley": _valley, "steepest": _steepest, "minimum": _minimum}


def check_method(method: Any) -> str:
    if method not in _RULE_FUNCTIONS:
        raise ValueError(f"method: unknown suggestion rule {method!r}; use one of: {', '.join(RULES)}")
    return method


def suggest(lrs: Any, smoothed: Any, method: str = "valley") -> Suggestions:
    """All rules at once, the ``method`` rule's lr as ``suggested`` (falling back in the order of
    ``RULES`` when it has none), the band the rules span, and a warning where the curve is doubtful.
    """
    check_method(method)
    x, y = _usable(lrs, smoothed)
    n_given = len(lrs)
    if len(x) < MIN_POINTS:
        cut = f" ({n_given - len(x)} dropped at or after the first non-finite loss)" if n_given > len(x) else ""
        warning = (f"only {len(x)} usable point(s){cut}, fewer than the {MIN_POINTS} the rules need, so "
                   "there are no suggestions; run more steps (steps=) or lower end_lr / diverge")
        return Suggestions({r: None for r in RULES}, None, method, None, warning)
    values = {r: _RULE_FUNCTIONS[r](x, y) for r in RULES}
    notes = []
    if values["valley"] is None or values["steepest"] is None:
        notes.append("the smoothed loss never decreased, so steepest and valley have no answer; "
                     "start lower (start_lr) or check that the model can learn")
    if int(y.argmin()) == len(y) - 1:
        notes.append("the loss was still falling at the last lr, so the suggestions may be too low; "
                     "raise end_lr")
    suggested = values[method]
    if suggested is None:
        for rule in RULES:
            if values[rule] is not None:
                suggested = values[rule]
                notes.append(f"rule {method!r} had no answer; suggested is the {rule!r} rule's lr")
                break
    found = [v for v in values.values() if v is not None]
    band = (min(found), max(found)) if found else None
    return Suggestions(values, suggested, method, band, "; ".join(notes) or None)
