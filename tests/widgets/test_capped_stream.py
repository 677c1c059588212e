"""CappedStream: at most N points, evenly thinned, one source update per push, the last row kept."""
from __future__ import annotations

import numpy as np
import pytest
from bokeh.models import ColumnDataSource
from hypothesis import given, settings
from hypothesis import strategies as st

from tunewidgets.widgets._stream import CappedStream, columns_of


class CountingSource(ColumnDataSource):
    """A source that notes each stream() in its tags."""

    def stream(self, new_data, rollover=None):
        self.tags = [*self.tags, "stream"]
        super().stream(new_data, rollover)


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(0, 40), min_size=1, max_size=30), cap=st.integers(2, 50))
def test_cap_and_even_thinning(chunks, cap):
    src = ColumnDataSource({"i": [], "sq": []})
    stream = CappedStream(src, max_points=cap)
    total = 0
    for n in chunks:
        stream.push({"i": list(range(total, total + n)), "sq": [k * k for k in range(total, total + n)]})
        total += n
        assert len(src.data["i"]) <= cap
        assert all(k % stream.stride == 0 for k in src.data["i"])  # every stride-th row
    stream.finish()
    shown = [int(k) for k in src.data["i"]]
    assert len(shown) <= cap and shown == sorted(shown)
    assert list(src.data["sq"]) == [k * k for k in shown]  # rows stay whole
    if total:
        assert shown[0] == 0 and shown[-1] == total - 1  # starts at the start, ends at the end
        if total <= cap:
            assert shown == list(range(total))  # nothing thinned when it fits


def test_one_update_per_push_and_few_full_resends():
    src = CountingSource({"x": [], "y": []})
    stream = CappedStream(src, max_points=100)
    for k in range(1000):
        before = stream.sends
        stream.push({"x": [k], "y": [k]})
        assert stream.sends - before <= 1  # one update at most per push (one per tick)
    assert stream.stride == 16 and len(src.data["x"]) == 63
    # most pushes are streamed; only a few (log2(1000/100)) resend the whole thinned source
    resends = stream.sends - src.tags.count("stream")
    assert 1 <= resends <= 5


def test_reset_and_bad_input():
    src = ColumnDataSource({"x": [], "y": []})
    stream = CappedStream(src, max_points=4)
    stream.push({"x": [1, 2], "y": [3, 4]})
    stream.reset()
    assert src.data == {"x": [], "y": []} and len(stream) == 0 and stream.stride == 1
    with pytest.raises(ValueError, match=r"rows: missing column\(s\) \['y'\]"):
        stream.push({"x": [1]})
    with pytest.raises(ValueError, match="max_points: must be a whole number >= 2, got 1"):
        CappedStream(src, max_points=1)
    assert columns_of([{"x": 1, "y": 2}, {"x": 3}], ["x", "y"]) == {"x": [1, 3], "y": [2, None]}


def test_set_data_sends_a_small_source_only_when_it_changes():
    from bokeh.models import ColumnDataSource

    from tunewidgets.widgets._stream import set_data

    source = ColumnDataSource({"x": [], "y": []})
    sent = []
    source.on_change("data", lambda attr, old, new: sent.append(dict(new)))
    assert set_data(source, {"x": [], "y": []}) is False  # an empty plot reset again: nothing to draw
    assert set_data(source, {"x": [1.0], "y": [2.0]}) is True
    assert set_data(source, {"x": np.array([1.0]), "y": [2.0]}) is False  # the same values, as an array
    assert set_data(source, {"x": [1.0], "y": [float("nan")]}) is True  # a value became NaN: sent
    assert set_data(source, {"x": [1.0]}) is True  # other columns
    assert set_data(source, {"x": [1.0]}) is False and set_data(source, {"x": [float("nan")]}) is True
    assert set_data(source, {"x": [float("nan")]}) is False  # NaN as NaN: the same
    assert len(sent) == 4
    lines = ColumnDataSource({"xs": [[1, 2], [3]], "ys": [[1, 2], [3]]})
    assert set_data(lines, {"xs": [[1, 2], [3]], "ys": [[1, 2], [3]]}) is False  # ragged rows compared too
    assert set_data(lines, {"xs": [[1, 2], [4]], "ys": [[1, 2], [3]]}) is True
    big = ColumnDataSource({"x": list(range(100))})
    assert set_data(big, {"x": list(range(100))}) is True  # too big to compare: always sent
