"""``tw.report``: what the file holds, read as text (the browser tests check what it shows)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tunewidgets as tw
from report_store import PAYLOADS, RUN_NAME, STUDY, make_store
from tunewidgets.reports._build import MIN_TRIALS_FOR_IMPORTANCE
from tunewidgets.reports._load import MAX_POINTS


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("report_store"))


@pytest.fixture(scope="module")
def page(store_dir: Path) -> str:
    return tw.report(store_dir, store_dir / "out" / "report.html").read_text()


def _docs(page: str) -> dict:
    """The Bokeh documents of the page, as BokehJS will read them."""
    found = re.search(r"const docs_json = '(.*?)';\n", page, re.S)
    assert found is not None
    text = found.group(1).encode().decode("unicode_escape")
    return json.loads(text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
                      .replace("&#x27;", "'").replace("&amp;", "&"))


def test_every_section_is_there(page: str) -> None:
    for heading in ("Runs", "LR range tests", "Importance", "Trials", "Environment"):
        assert f">{heading}</h" in page
    assert "Study study &lt;script&gt;window.__pwned=1&lt;/script&gt;</h2>" in page
    assert page.count("data-root-id=") >= 7  # run (loss, metrics, lr), range test, history, parallel, curves, importance


def test_no_user_string_lands_unescaped(page: str) -> None:
    for payload in PAYLOADS:
        assert payload not in page
    # the only script tags are the page's own: BokehJS and the plots' one
    opened = re.findall(r"<script\b[^>]*>", page, re.I)
    assert all(tag in ('<script type="text/javascript">', "<script>") for tag in opened), set(opened)
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S | re.I)
    assert not re.search(r"<(img|svg|script)\b", markup, re.I)
    assert markup.count("&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;") >= 3


def test_the_page_needs_nothing_outside_it(page: str) -> None:
    assert tw.export.external_references(page) == []
    assert "cdn.bokeh.org" not in page and "/* BEGIN bokeh.min.js */" in page


def test_long_curves_are_downsampled_but_keep_their_ends_and_spikes(page: str) -> None:
    sources = {}
    for doc in _docs(page).values():
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("name") == "ColumnDataSource" and "name" in node.get("attributes", {}):
                    sources[node["attributes"]["name"]] = node["attributes"]["data"]
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    loss = dict(sources["run1_train_loss"]["entries"])
    xs, ys = _array(loss["x"]), _array(loss["y"])
    assert len(xs) <= MAX_POINTS < 20_000
    assert xs[0] == 0 and xs[-1] == 19_999 and 12_345 in xs  # the spike at step 12,345 survives
    assert max(ys) == pytest.approx(2.0)
    assert set(sources) >= {"run1_lr", "run2_train_loss", "trial_history", "parallel_lines", "importance"}


def _array(value):
    if isinstance(value, dict):  # an ndarray Bokeh sent as base64
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(value["array"]["data"]), dtype=value["dtype"]).tolist()
    return value


def test_one_study_only(store_dir: Path, tmp_path: Path) -> None:
    text = tw.report(store_dir, tmp_path / "study.html", study=STUDY).read_text()
    assert ">Trials</h3>" in text and ">Runs</h2>" not in text and ">LR range tests</h2>" not in text
    assert "run &lt;img" not in text  # the standalone run is left out


def test_importance_is_skipped_with_a_note_when_trials_are_few(tmp_path: Path) -> None:
    folder = make_store(tmp_path / "few", trials=3)
    text = tw.report(folder, tmp_path / "few.html").read_text()
    assert f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials, this study has 2" in text


def test_importance_ranks_the_key_that_drives_the_metric(store_dir: Path) -> None:
    from tunewidgets.reports._build import importance
    from tunewidgets.reports._load import load

    with tw.Store(store_dir) as store:
        data = load(store, STUDY)
    s = data.studies[0]
    finished = [t for t in s.trials if t["status"] == "finished"]
    found, note = importance(s, ["lr", "opt"], finished, lambda t: t["final"]["val_accuracy"])
    assert note is None and set(found) == {"lr", "opt"}
    assert found["lr"] > found["opt"]  # the accuracy grows with lr; opt alternates


def test_bad_input_is_named(store_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="study: no study 'nope'"):
        tw.report(store_dir, tmp_path / "x.html", study="nope")
    with pytest.raises(TypeError, match="path: expected a file path"):
        tw.report(store_dir, 3)
    with pytest.raises(TypeError, match="store: expected a tw.Store or a runs folder"):
        tw.report(None, tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_run_name_and_trials_table(page: str) -> None:
    assert RUN_NAME not in page
    rows = re.findall(r"<tr( class=\"best\")?><td class=\"num\">(\d+)</td><td>(finished|failed)</td>", page)
    assert [int(n) for _, n, _ in rows] == list(range(8))
    assert [n for best, n, _ in rows if best] == ["6"]  # the best finished trial is highlighted
    assert rows[-1][2] == "failed"
