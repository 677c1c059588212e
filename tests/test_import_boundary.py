"""The core never imports the UI stack: ``import tunewidgets`` and every module outside
``tunewidgets/widgets/``, ``tunewidgets/plots/`` and ``tunewidgets/reports/`` leave ipywidgets,
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
UI_MODULES = ("tunewidgets.widgets", "tunewidgets.plots", "tunewidgets.report", "tunewidgets.reports")
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


# ------------------------------------------------------------------ layers, read from the source
# What each layer may import from tunewidgets (itself included), for every layer of DESIGN.md.
# Read from the AST, so an import inside a function counts as much as one at the top of the file.
import ast

CORE = {"engine", "schedules", "lr", "tasks", "tracking"}
FACADE_MODULES = {"api", "_search_api", "_rerun_api"}
LAYERS = {
    "engine": {"engine"},
    "schedules": {"engine", "schedules"},
    "lr": {"engine", "schedules", "lr"},
    "tasks": {"engine", "schedules", "lr", "tasks"},
    "tracking": CORE,
    "hpo": CORE | {"hpo"},  # no plots, reports or widgets
    "export": {"export"},  # a notebook or a widget as offline HTML: plain files, no run
    "plots": {"plots"},  # figures from plain data: no engine (no torch), no widgets
    "reports": CORE | {"hpo", "plots", "export", "reports"},  # no widgets
    "widgets": CORE | {"hpo", "plots", "export", "reports", "widgets"} | FACADE_MODULES,
}
# The package root's facades, each above everything it uses (and nothing below imports them):
# api (tw.train, tw.lr_range_test) over the core, tw.search and tw.rerun over it.
FACADES = {
    "api.py": CORE,
    "_search_api.py": CORE | {"hpo", "api"},
    "_rerun_api.py": CORE | {"hpo", "api"},
    "__init__.py": CORE | {"hpo"} | FACADE_MODULES,  # at import time; tw.widgets & co. are lazy names
}
TOP_LEVEL = {"_version"}  # modules of the package root any layer may import
# Third-party packages a layer may not import at all (the UI stack stays above the core).
UI_FREE = {"engine", "schedules", "lr", "tasks", "tracking", "hpo"}
FORBIDDEN = {"plots": ("ipywidgets", "jupyter_bokeh", "torch"), "reports": ("ipywidgets", "jupyter_bokeh")}
WHOLE_PACKAGE = {"widgets"}  # a widget may call tw.search through the package (it is the top layer)
# The one documented way up from the core: a "module:function" path resolved when called.
HOOKS = {("lr/result.py", "PLOT_HOOK")}
# Optional packages a core module may import, only inside the functions that use them (never
# at import time): the TensorBoard and MLflow sinks.
OPTIONAL_USERS = {
    "tracking/tensorboard_sink.py": {"tensorboardX"},
    "tracking/_tb_hparams.py": {"tensorboardX"},
    "tracking/mlflow_sink.py": {"mlflow"},
    "tracking/study_log.py": {"mlflow"},
    "hpo/ray_executor.py": {"ray"},
    "hpo/_ray_worker.py": {"ray"},
}
LAYER_OPTIONAL = {"hpo": {"optuna"}}  # a dependency, imported where used so `import tunewidgets` stays quick


def _import_time_lines(tree: ast.Module) -> set[int]:
    """Lines of the imports that run when the module is imported (module level, also under if/try)."""
    lines, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            lines.add(node.lineno)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, ()))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)
    return lines


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "tunewidgets":
                found += [(node.lineno, f"tunewidgets.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


def _module_strings(tree: ast.AST) -> list[tuple[int, str, str | None]]:
    """String constants naming a tunewidgets module (not docstrings), with the name they are bound to."""
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound[id(node.value)] = target.id
    return [(n.lineno, n.value, bound.get(id(n))) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
            and n.value.startswith("tunewidgets.")]


def _file_violations(path: Path, rel: str, layer: str, allowed: set[str]) -> list[str]:
    bad = []
    tree = ast.parse(path.read_text(), filename=str(path))
    at_import = _import_time_lines(tree)
    facade = layer == "facade"
    for lineno, name in _imports(tree):
        if name.startswith("."):
            bad.append(f"{rel}:{lineno}: relative import {name!r}; use the absolute name")
            continue
        top = name.split(".")[0]
        if layer in UI_FREE or facade:
            if top in UI_LIBRARIES + OPTIONAL_EXTRAS + ("tensorboardX", "optuna"):
                if top not in OPTIONAL_USERS.get(rel, set()) | LAYER_OPTIONAL.get(layer, set()):
                    bad.append(f"{rel}:{lineno}: imports {name}")
                elif lineno in at_import:
                    bad.append(f"{rel}:{lineno}: imports {name} when the module is imported; import it "
                               "inside the function that uses it")
        elif top in FORBIDDEN.get(layer, ()):
            bad.append(f"{rel}:{lineno}: the {layer} layer imports {name}")
        if facade and rel == "__init__.py" and lineno not in at_import:
            continue  # the root's lazy attributes (tw.widgets, tw.report) are its own business
        if name == "tunewidgets" or not name.startswith("tunewidgets."):
            if name == "tunewidgets" and layer not in WHOLE_PACKAGE:
                bad.append(f"{rel}:{lineno}: imports the whole package; import the module it needs")
            continue
        part = name.split(".")[1]
        if part not in allowed and part not in TOP_LEVEL:
            bad.append(f"{rel}:{lineno}: the {'facade ' + rel if facade else layer + ' layer'} imports {name}")
    if facade and rel == "__init__.py":
        return bad
    for lineno, text, bound_to in _module_strings(tree):
        part = text.split(".")[1].split(":")[0]
        if part not in allowed and (rel, bound_to) not in HOOKS:
            bad.append(f"{rel}:{lineno}: names {text!r} (a lazy import of a layer above)")
    return bad


def layer_violations(package_dir: Path = PACKAGE_DIR) -> list[str]:
    bad = []
    for layer, allowed in LAYERS.items():
        for path in sorted((package_dir / layer).rglob("*.py")):
            bad += _file_violations(path, path.relative_to(package_dir).as_posix(), layer, allowed)
    for name, allowed in FACADES.items():
        path = package_dir / name
        if path.exists():
            bad += _file_violations(path, name, "facade", allowed | {name[:-3]})
    return bad


def test_every_layer_and_facade_is_checked():
    top = {p.name for p in PACKAGE_DIR.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top == set(LAYERS), f"a package without its line in LAYERS: {sorted(top - set(LAYERS))}"
    root = {p.name for p in PACKAGE_DIR.glob("*.py")} - {"_version.py"}
    assert root == set(FACADES), f"a root module without its line in FACADES: {sorted(root - set(FACADES))}"


def test_core_layers_import_only_downward():
    assert layer_violations() == []


def test_the_layer_check_catches_lazy_imports_and_module_strings(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "sneaky.py").write_text(
        '"""tunewidgets.tracking in a docstring is fine."""\n'
        "def f():\n    from tunewidgets.tracking import Store\n    return Store\n"
        "def g():\n    import importlib\n    return importlib.import_module('tunewidgets.plots.lr')\n"
        "def h():\n    import tunewidgets.widgets\n")
    for layer in LAYERS:
        (tmp_path / layer).mkdir(exist_ok=True)
    (tmp_path / "tracking").mkdir(exist_ok=True)
    (tmp_path / "tracking" / "mlflow_sink.py").write_text(
        "import mlflow\ndef f():\n    import mlflow.entities\n    import tensorboardX\n")
    bad = layer_violations(tmp_path)
    assert any("sneaky.py:3: the engine layer imports tunewidgets.tracking" in b for b in bad)
    assert any("sneaky.py:7: names 'tunewidgets.plots.lr'" in b for b in bad)
    assert any("sneaky.py:9: the engine layer imports tunewidgets.widgets" in b for b in bad)
    # an optional package: only in the module allowed it, and only inside a function
    assert any("mlflow_sink.py:1: imports mlflow when the module is imported" in b for b in bad)
    assert any("mlflow_sink.py:4: imports tensorboardX" in b for b in bad)
    assert len(bad) == 5


def test_the_layer_check_covers_the_upper_layers_and_facades(tmp_path):
    for layer in LAYERS:
        (tmp_path / layer).mkdir()
    (tmp_path / "hpo" / "bad.py").write_text("import tunewidgets.plots.search\nimport bokeh\n")
    (tmp_path / "plots" / "bad.py").write_text("def f():\n    from tunewidgets.engine import Run\n"
                                               "    import torch\n")
    (tmp_path / "reports" / "bad.py").write_text("from tunewidgets.widgets import Search\n"
                                                 "from tunewidgets.api import open_store\n")
    (tmp_path / "api.py").write_text("from tunewidgets._search_api import search\nimport ipywidgets\n")
    (tmp_path / "widgets" / "ok.py").write_text("import ipywidgets\nimport tunewidgets\n"
                                                "from tunewidgets.api import train\n")
    bad = layer_violations(tmp_path)
    assert sorted(bad) == sorted([
        "hpo/bad.py:1: the hpo layer imports tunewidgets.plots.search",
        "hpo/bad.py:2: imports bokeh",
        "plots/bad.py:2: the plots layer imports tunewidgets.engine",
        "plots/bad.py:3: the plots layer imports torch",
        "reports/bad.py:1: the reports layer imports tunewidgets.widgets",
        "reports/bad.py:2: the reports layer imports tunewidgets.api",
        "api.py:1: the facade api.py imports tunewidgets._search_api",
        "api.py:2: imports ipywidgets",
    ])
