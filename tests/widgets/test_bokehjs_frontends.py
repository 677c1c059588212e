"""BokehJS goes out in the MIME type the front end runs: jupyter_bokeh's load type in JupyterLab,
``application/javascript`` in a kernel Voila started (a Voila page has no notebook panel, where
jupyter_bokeh adds its renderer for the load type), one type per output either way."""
from __future__ import annotations

import pytest
from bokeh.plotting import figure

from tunewidgets.widgets import _bokehjs, _kernel

VOILA_ENV = {"VOILA_BASE_URL": "/", "VOILA_PREHEAT": "False", "VOILA_SERVER_URL": "/", "VOILA_APP_PORT": "8866"}


@pytest.fixture
def published(monkeypatch):
    """What ``ensure_bokehjs`` publishes, as if it ran in a kernel, with nothing published yet."""
    import IPython.display
    from bokeh.io.state import State

    sent: list[dict] = []
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, metadata=None: sent.append(data))
    monkeypatch.setattr(_kernel, "in_kernel", lambda: True)
    monkeypatch.setattr(_bokehjs, "watch_pages", lambda: True)
    monkeypatch.setattr(State, "output_notebook", lambda self, *a, **k: None)
    monkeypatch.setattr(_bokehjs, "_published", set())
    monkeypatch.setattr(_bokehjs, "_guard_published", False)
    for name in VOILA_ENV:
        monkeypatch.delenv(name, raising=False)
    return sent


def test_jupyterlab_gets_the_load_type_only(published):
    assert _bokehjs.ensure_bokehjs([figure()]) is True
    (bundle,) = published
    assert list(bundle) == [_bokehjs.LOAD_MIME_TYPE]
    assert "Document.prototype.clear" in bundle[_bokehjs.LOAD_MIME_TYPE]


@pytest.mark.parametrize("name", sorted(VOILA_ENV))
def test_a_kernel_voila_started_gets_the_same_script_as_javascript(published, monkeypatch, name):
    monkeypatch.setenv(name, VOILA_ENV[name])  # any one of them is enough
    assert _bokehjs.ensure_bokehjs([figure()]) is True
    (bundle,) = published
    assert list(bundle) == ["application/javascript"]
    script = bundle["application/javascript"]
    assert "root.Bokeh == null || root.Bokeh[version] == null" in script  # the core, skipped where present
    assert 1_000_000 < len(script) < 1_400_000
    assert _bokehjs.ensure_bokehjs([figure()]) is False  # once per page, as in JupyterLab


def test_with_bokehjs_none_voila_gets_only_the_guard_as_javascript(published, monkeypatch):
    monkeypatch.setenv("VOILA_BASE_URL", "/")
    monkeypatch.setenv(_bokehjs.ENV_VAR, "none")
    assert _bokehjs.ensure_bokehjs([figure()]) is True
    (bundle,) = published
    assert list(bundle) == ["application/javascript"] and len(bundle["application/javascript"]) < 5_000
