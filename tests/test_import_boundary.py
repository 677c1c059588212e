"""The core never imports the UI stack: ``import tunewidgets`` and every module outside
``tunewidgets/widgets/``, ``tunewidgets/plots/`` and ``tunewidgets/report.py`` leave ipywidgets,
bokeh and jupyter_bokeh unimported (scripts, tests and Ray workers stay light).

Each check runs in a fresh interpreter, since this test process may have imported them already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "tunewidgets"
UI_LIBRARIES = ("ipywidgets", "bokeh", "jupyter_bokeh")
UI_MODULES = ("tunewidgets.widgets", "tunewidgets.plots", "tunewidgets.report")
# Optional extras the core may reference; a module may import them only where used, but a
# machine without the extra must still be able to import the rest.
OPTIONAL_EXTRAS = ("mlflow", "ray")

# Imports the modules one by one and names the first one that pulled in a UI library.
_CHECK = """
import importlib, json, sys
ui = {ui!r}
report = {{"leaks": [], "missing_extra": []}}
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in {extras!r}:
            report["missing_extra"].append([name, exc.name])
            continue
        raise
    loaded = sorted(m for m in ui if m in sys.modules)
    if loaded:
        report["leaks"].append([name, loaded])
        break
print(json.dumps(report))
"""


def core_modules() -> list[str]:
    """``tunewidgets`` and every module below it that is not part of the UI layer."""
    names = ["tunewidgets"]
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name == "tunewidgets" or parts[-1] == "__main__":
            continue
        if any(name == ui or name.startswith(ui + ".") for ui in UI_MODULES):
            continue
        names.append(name)
    return names


def run_check(modules: list[str]) -> dict[str, list]:
    code = _CHECK.format(ui=UI_LIBRARIES, modules=modules, extras=OPTIONAL_EXTRAS)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=PACKAGE_DIR.parent)
    assert proc.returncode == 0, f"importing the core failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_modules_are_found():
    modules = core_modules()
    assert modules[0] == "tunewidgets"
    assert "tunewidgets.engine" in modules
    assert not any(m.startswith(UI_MODULES) for m in modules)


def test_no_core_module_loads_a_ui_library():
    # "tunewidgets" comes first, so `import tunewidgets` itself is checked before the rest.
    report = run_check(core_modules())
    assert report["leaks"] == [], (
        f"{report['leaks'][0][0]} imported {report['leaks'][0][1]}: only tunewidgets.widgets, "
        "tunewidgets.plots and tunewidgets.report may import them (lazily from tunewidgets)"
    )


def test_the_check_sees_a_ui_import():
    # The detector itself must be able to fail: importing a UI module is reported.
    report = run_check(["json", "bokeh.models"])
    assert report["leaks"] and report["leaks"][0][0] == "bokeh.models"
    assert "bokeh" in report["leaks"][0][1]
