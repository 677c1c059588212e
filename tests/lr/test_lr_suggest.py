"""The suggestion rules on curves whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunewidgets.lr import MIN_POINTS, suggest, suggest_minimum, suggest_steepest, suggest_valley

LRS = np.logspace(-6, 0, 61)          # 10 points per decade
LOG = np.log10(LRS)


def sigmoid_drop(center: float, width: float = 0.25) -> np.ndarray:
    """2 -> 1 in log-lr space, falling fastest at ``10 ** center``, then a blow-up towards lr = 1."""
    return 2.0 - 1.0 / (1.0 + np.exp(-(LOG - center) / width)) + 3.0 * LRS ** 2


@pytest.mark.parametrize("center", [-4.0, -3.0, -2.5])
def test_steepest_is_the_centre_of_a_sigmoid_drop(center):
    assert suggest_steepest(LRS, sigmoid_drop(center)) == pytest.approx(10 ** center, rel=1e-9)


def test_steepest_ignores_the_trimmed_ends():
    y = np.ones_like(LRS)
    y[1] = -5.0                      # a cliff in the first 10% (moving-average warm-up)
    y[30:] -= np.linspace(0, 0.5, 31)  # a gentle descent later
    lr = suggest_steepest(LRS, y)
    assert lr is not None and lr >= LRS[61 // 10]


def test_valley_is_the_middle_of_the_longest_descent():
    y = np.empty(61)
    y[:20] = np.linspace(1.0, 1.4, 20)       # rises (noise-free warm-up)
    y[20:51] = np.linspace(1.5, 0.3, 31)     # the descent: indices 20..50
    y[51:] = np.linspace(0.4, 3.0, 10)       # blow-up
    # fastai's rule: L = 31 points ending at 50, start = 50 - 31 = 19, 19 + int(31/3) + int(31/6) = 34
    assert suggest_valley(LRS, y) == LRS[34]


def test_valley_skips_noise_inside_the_descent():
    y = np.linspace(2.0, 0.5, 41)
    y[10] += 0.2                       # one bump: the longest descending subsequence goes around it
    y = np.concatenate([y, np.linspace(0.6, 4.0, 20)])
    lrs = np.logspace(-5, 1, len(y))
    # L = 40 (index 10 skipped) ending at 40: start = 0, 0 + int(40/3) + int(40/6) = 19
    assert suggest_valley(lrs, y) == lrs[19]


def test_valley_starts_at_end_minus_length_when_noise_is_skipped():
    # a long, slowly falling plateau with many bumps, then a clean steep descent:
    # the subsequence skips the bumps, so the valley (the L points before its end) starts later
    plateau = 2.0 - 0.001 * np.arange(40)
    plateau[1::2] += 0.01                     # every other point bumps up: skipped
    steep = np.linspace(1.9, 0.5, 20)
    y = np.concatenate([plateau, steep, np.linspace(0.6, 3.0, 10)])
    lrs = np.logspace(-6, 0, len(y))
    # longest descent: 20 plateau points + 20 steep ones, L = 40, ending at index 59
    # start = 59 - 40 = 19, idx = 19 + 13 + 6 = 38 (the first point of the descent is index 0)
    assert suggest_valley(lrs, y) == lrs[38]


def test_minimum_is_a_tenth_of_the_lr_at_the_lowest_loss():
    y = sigmoid_drop(-3.0)
    assert suggest_minimum(LRS, y) == pytest.approx(LRS[int(np.argmin(y))] / 10)


def test_suggest_returns_all_rules_the_default_and_the_band():
    y = sigmoid_drop(-3.0)
    s = suggest(LRS, y)
    assert set(s.values) == {"valley", "steepest", "minimum"}
    assert s.method == "valley" and s.suggested == s.values["valley"]
    assert s.band == (min(s.values.values()), max(s.values.values()))
    assert s.warning is None
    assert suggest(LRS, y, method="minimum").suggested == s.values["minimum"]


def test_too_few_points_give_no_suggestions_and_say_why():
    lrs, y = LRS[:MIN_POINTS - 1], sigmoid_drop(-5.5)[:MIN_POINTS - 1]
    assert suggest_steepest(lrs, y) is None and suggest_valley(lrs, y) is None and suggest_minimum(lrs, y) is None
    s = suggest(lrs, y)
    assert s.suggested is None and s.band is None and set(s.values.values()) == {None}
    assert "9 usable point(s)" in s.warning and "steps" in s.warning


def test_no_points_at_all():
    s = suggest([], [])
    assert s.suggested is None and "0 usable" in s.warning


def test_points_after_the_first_nan_are_ignored():
    y = sigmoid_drop(-3.0)
    cut = y.copy()
    cut[45] = np.nan
    cut[46:] = -100.0          # garbage after the NaN must not count as the minimum
    assert suggest_minimum(LRS, cut) == pytest.approx(LRS[int(np.argmin(y[:45]))] / 10)
    s = suggest(LRS, cut)
    assert all(v is None or v <= LRS[44] for v in s.values.values())


def test_a_curve_that_never_falls_falls_back_to_minimum_with_a_warning():
    y = np.linspace(1.0, 3.0, 61)
    s = suggest(LRS, y)
    assert s.values["steepest"] is None and s.values["valley"] is None
    assert s.values["minimum"] == pytest.approx(LRS[0] / 10)
    assert s.suggested == s.values["minimum"]
    assert "never decreased" in s.warning and "'valley' had no answer" in s.warning


def test_a_loss_still_falling_at_the_end_warns_to_raise_end_lr():
    s = suggest(LRS, np.linspace(3.0, 1.0, 61))
    assert s.suggested is not None and "raise end_lr" in s.warning


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="same length"):
        suggest(LRS, LRS[:-1])
    with pytest.raises(ValueError, match="increase strictly"):
        suggest(LRS[::-1], sigmoid_drop(-3))
    with pytest.raises(ValueError, match="method"):
        suggest(LRS, sigmoid_drop(-3), method="fastest")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=0, max_size=80),
       st.integers(min_value=0, max_value=80))
def test_any_curve_gives_lrs_within_the_range_or_none(values, nan_at):
    y = np.array(values, dtype=float)
    if nan_at < len(y):
        y[nan_at] = np.nan
    lrs = np.logspace(-7, 0, len(y))
    s = suggest(lrs, y)
    for v in s.values.values():
        assert v is None or lrs[0] / 10 <= v <= lrs[-1]
    found = [v for v in s.values.values() if v is not None]
    if found:
        assert s.band[0] <= min(found) and max(found) <= s.band[1] and s.suggested in found
    else:
        assert s.suggested is None and s.band is None and s.warning
