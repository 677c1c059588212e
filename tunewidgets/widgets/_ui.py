"""Small ipywidgets pieces every tunewidgets widget uses: the run bar and the error area.

Example:
    >>> from tunewidgets.widgets._ui import ErrorArea, RunBar
    >>> area = ErrorArea()
    >>> area.show(ValueError("start_lr: must be < end_lr"))
    >>> "start_lr: must be &lt; end_lr" in area.value, area.visible
    (True, True)
    >>> bar = RunBar(total=10)
    >>> bar.set_running(True); bar.run_button.disabled, bar.stop_button.disabled
    (True, False)
    >>> close_tree(bar); bar.comm is None and bar.run_button.comm is None and bar.layout.comm is None
    True
"""
from __future__ import annotations

import html

import ipywidgets as widgets

__all__ = ["ErrorArea", "RunBar", "status_html", "close_tree"]

_STATUS_COLORS = {"finished": "#1b7f3b", "stopped": "#8a6d00", "doubtful": "#8a6d00", "failed": "#b00020",
                  "invalid": "#b00020"}


class ErrorArea(widgets.HTML):
    """Shows an exception in the widget: its type and message, the traceback folded below."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(value="", **kwargs)
        self.add_class("tw-error")
        self.layout.display = "none"

    @property
    def visible(self) -> bool:
        return self.layout.display != "none"

    @property
    def message(self) -> str:
        """The shown exception as ``"Type: message"`` (empty when nothing is shown)."""
        return self._message

    _message = ""

    def show(self, error: BaseException | str, traceback: str = "", title: str | None = None) -> None:
        if isinstance(error, BaseException):
            self._message = f"{type(error).__name__}: {error}"
        else:
            self._message = str(error)
        head = f"<b>{html.escape(title)}</b><br>" if title else ""
        body = (f'<div style="color:#b00020;border-left:3px solid #b00020;padding:4px 8px;'
                f'background:#fff5f5;white-space:pre-wrap">{head}{html.escape(self._message)}')
        if traceback:
            body += ("<details><summary>Traceback</summary>"
                     f'<pre style="font-size:11px;white-space:pre-wrap">{html.escape(traceback)}</pre></details>')
        self.value = body + "</div>"
        self.layout.display = None

    def clear(self) -> None:
        self._message = ""
        self.value = ""
        self.layout.display = "none"


class RunBar(widgets.HBox):
    """Run and Stop buttons, a progress bar and a one-line progress label."""

    def __init__(self, total: int = 100, run_label: str = "Run", **kwargs: object) -> None:
        self.run_button = widgets.Button(description=run_label, button_style="primary", icon="play",
                                         tooltip="Start in the background; the notebook stays usable")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop after the current step")
        self.progress = widgets.IntProgress(value=0, min=0, max=max(int(total), 1),
                                            layout=widgets.Layout(width="220px"))
        self.label = widgets.Label(value="")
        super().__init__(children=[self.run_button, self.stop_button, self.progress, self.label],
                         layout=widgets.Layout(align_items="center"), **kwargs)

    def set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running

    def set_progress(self, done: int, total: int | None = None, text: str = "") -> None:
        if total is not None:
            self.progress.max = max(int(total), 1)
        self.progress.value = max(0, min(int(done), self.progress.max))
        self.label.value = text


def status_html(status: str, text: str) -> str:
    """``text`` coloured by ``status`` (finished green, stopped amber, failed red)."""
    color = _STATUS_COLORS.get(status, "#555")
    return f'<span style="color:{color}">{html.escape(text)}</span>'


def close_tree(widget: widgets.Widget) -> None:
    """Close ``widget`` and everything it owns (children, layouts, styles, nested boxes), so a
    control that is replaced leaves no model behind in the kernel, the page or a saved notebook."""
    stack = [widget]
    while stack:
        w = stack.pop()
        if not isinstance(w, widgets.Widget):
            continue
        stack.extend(getattr(w, "children", ()))
        for part in (getattr(w, "layout", None), getattr(w, "style", None)):
            if isinstance(part, widgets.Widget):
                part.close()
        w.close()
