"""The report's HTML: sections, tables and the Bokeh plots put together in one page.

Every user string goes through :func:`esc` (``html.escape``) before it lands in the HTML; the
plots' data travels as Bokeh's JSON, which Bokeh escapes, and the inline scripts go through
``escape_script`` (no ``</script`` or ``<!--`` can end them early).

Example:
    >>> from tunewidgets.reports._page import esc, table
    >>> esc('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    >>> "<td>&lt;b&gt;</td>" in table(["name"], [["<b>"]])
    True
"""
from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

from tunewidgets.export._output import GENERATOR

__all__ = ["esc", "fmt", "table", "page"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:1.5em;
color:#1f2933;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #d9e2ec;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.5em}.muted{color:#627d98}.note{background:#fff8e1;border-left:4px solid #e69f00;padding:.4em .8em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #d9e2ec;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f0f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{max-height:28em;overflow:auto}.plot{margin:.6em 0}pre{white-space:pre-wrap;font-size:.8em;
background:#f7f9fb;padding:.4em;max-height:12em;overflow:auto}nav a{margin-right:1em}
tr.best td{background:#e6f4ea}
"""


def esc(value: Any) -> str:
    """Any value as text safe inside HTML (element content and quoted attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any) -> str:
    """A cell value: numbers shortened, dicts and lists as JSON, then escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return esc(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return esc(f"{value:.4g}")
    if isinstance(value, (dict, list, tuple)):
        return esc(json.dumps(value, default=str, sort_keys=True))
    return esc(value)


def table(header: Sequence[Any], rows: Sequence[Sequence[Any]], *, css: str = "",
          row_classes: Sequence[str] | None = None) -> str:
    """An HTML table of escaped cells; numeric cells right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            (f'<td class="num">{fmt(v)}</td>' if isinstance(v, (int, float)) and not isinstance(v, bool)
             else f"<td>{fmt(v)}</td>") for v in row)
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    wrap = f' class="{esc(css)}"' if css else ""
    return f"<div{wrap}><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def page(title: str, body: str, head: str) -> str:
    """The whole document; ``head`` holds the inline BokehJS and the plots' script."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n{GENERATOR}\n'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            f"script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; "
            f"font-src data:; connect-src 'none'\">\n"
            f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n{head}\n</head>\n<body>\n{body}\n</body>\n</html>\n")
