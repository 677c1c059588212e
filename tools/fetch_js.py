"""Fetch the JavaScript that offline HTML exports inline, at pinned versions, into the package.

``tunewidgets.export`` writes pages that render widgets and plots with no network: it inlines
the widget manager (``@jupyter-widgets/html-manager``), require.js, the ``@bokeh/jupyter_bokeh``
widget bundle and, for pages with math, MathJax. Those files ship in
``tunewidgets/export/js/``; this script is how they got there, so that anyone can check or
update them:

    python tools/fetch_js.py           # npm pack each pinned package, check it, copy the files
    python tools/fetch_js.py --check   # offline: the shipped files still match js/manifest.json

Each package is fetched with ``npm pack NAME@VERSION`` (the npm registry, nothing else); its
tarball must match the sha512 integrity pinned below before anything is copied. The files
written and their sha256 go to ``js/manifest.json``, which the tests check against the files.
Nothing is fetched when tunewidgets runs.

Versions: html-manager 1.0.15 is the release that goes with ipywidgets 8.1.9 (it needs
``@jupyter-widgets/base ^6.0.12`` and ``controls ^5.0.13``, as jupyterlab_widgets 3.0.17 does);
``@bokeh/jupyter_bokeh`` has the version of the Python package jupyter_bokeh (4.1.0). BokehJS
is not fetched: it comes from the installed bokeh (``bokeh.resources.INLINE``).

Licences: jupyter_bokeh, MathJax and Font Awesome (whose fonts the widget manager bundles)
ship theirs in the tarball. The ``@jupyter-widgets`` packages and requirejs publish none:
the widget manager's BSD-3-Clause licence is the one of its repository, which the ipywidgets
distribution carries (copied from the installed ipywidgets); require.js states its MIT
licence in its header, which is written out with the MIT terms.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JS_DIR = REPO / "tunewidgets" / "export" / "js"
MANIFEST = JS_DIR / "manifest.json"

#: (package, version, npm integrity, {path in the tarball: path under js/})
PACKAGES: list[tuple[str, str, str, dict[str, str]]] = [
    ("@jupyter-widgets/html-manager", "1.0.15",
     "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
     {"package/dist/embed-amd.js": "html-manager/embed-amd.js",
      # Font Awesome 5.15.4 (solid, regular, brands) as bundled: the page inlines the woff2
      # files; browsers that read woff2 never ask for the other formats
      "package/dist/d878b0a6a1144760244f.woff2": "html-manager/fonts/d878b0a6a1144760244f.woff2",
      "package/dist/7a3337626410ca2f4071.woff2": "html-manager/fonts/7a3337626410ca2f4071.woff2",
      "package/dist/1551f4f60c37af51121f.woff2": "html-manager/fonts/1551f4f60c37af51121f.woff2",
      "package/dist/embed.js.LICENSE.txt": "html-manager/THIRD-PARTY-NOTICES.txt",
      "package/package.json": "html-manager/package.json"}),
    ("@bokeh/jupyter_bokeh", "4.1.0",
     "sha512-raqpW4ayCdkUNx9qRMdYEwfF0uVcMgZ+ToQkupQ1rgvZsbM6toArqyJPr6m4fEJ+lPalTLq+p8urAS5jSUUbwg==",
     {"package/dist/index.js": "jupyter_bokeh/index.js",
      "package/LICENSE.txt": "jupyter_bokeh/LICENSE.txt"}),
    ("requirejs", "2.3.8",
     "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
     {"package/require.js": "requirejs/require.js"}),
    ("mathjax", "3.2.2",
     "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
     {"package/es5/tex-svg-full.js": "mathjax/tex-svg-full.js",
      "package/LICENSE": "mathjax/LICENSE"}),
    ("@fortawesome/fontawesome-free", "5.15.4",
     "sha512-eYm8vijH/hpzr/6/1CJ/V/Eb1xQFW2nnUKArb3z+yUWv7HTwj6M7SP957oMjfZjAHU6qpoNc2wQvIxBLWYa/Jg==",
     {"package/LICENSE.txt": "html-manager/LICENSE-fontawesome.txt"}),
]

_MIT = """\
Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""


def integrity(data: bytes) -> str:
    """npm's integrity string of a tarball: ``sha512-`` and the base64 digest."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npm_pack(name: str, version: str, into: Path) -> bytes:
    """The tarball of ``name@version`` from the npm registry, via ``npm pack``."""
    if shutil.which("npm") is None:
        sys.exit("npm is needed to fetch the packages (apt-get install -y npm)")
    proc = subprocess.run(["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(into)],
                          capture_output=True, text=True, cwd=into, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"npm pack {name}@{version} failed:\n{proc.stderr[-2000:]}")
    (info,) = json.loads(proc.stdout)
    return (into / info["filename"]).read_bytes()


def requirejs_licence(require_js: bytes) -> bytes:
    header = require_js.decode().split("*/", 1)[0] + "*/"
    return (f"require.js states its licence in its header:\n\n{header}\n\n"
            "The MIT License\n\nCopyright jQuery Foundation and other contributors, https://jquery.org/\n\n"
            f"{_MIT}").encode()


def ipywidgets_licence() -> tuple[bytes, str]:
    dist = importlib.metadata.distribution("ipywidgets")
    files = [f for f in dist.files or () if f.name.upper().startswith("LICENSE")]
    if not files:
        sys.exit("the installed ipywidgets carries no LICENSE file; install ipywidgets 8.1.x")
    return Path(dist.locate_file(files[0])).read_bytes(), f"ipywidgets {dist.version} (PyPI), same repository"


def fetch() -> dict:
    JS_DIR.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"generated_by": "tools/fetch_js.py", "packages": [], "files": {}}
    with tempfile.TemporaryDirectory(prefix="tw-npm-") as tmp:
        for name, version, pinned, files in PACKAGES:
            tarball = npm_pack(name, version, Path(tmp))
            got = integrity(tarball)
            if got != pinned:
                sys.exit(f"{name}@{version}: tarball integrity {got} differs from the pinned {pinned}")
            with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
                for member, dest in files.items():
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    _write(manifest, dest, data, f"{name}@{version}:{member.removeprefix('package/')}")
                    if member == "package/require.js":
                        _write(manifest, "requirejs/LICENSE.txt", requirejs_licence(data),
                               f"{name}@{version}: header of require.js and the MIT terms")
            manifest["packages"].append({"name": name, "version": version, "integrity": pinned})
    text, source = ipywidgets_licence()
    _write(manifest, "html-manager/LICENSE", text, source)
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _write(manifest: dict, dest: str, data: bytes, source: str) -> None:
    path = JS_DIR / dest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    manifest["files"][dest] = {"sha256": sha256(data), "size": len(data), "source": source}


def check() -> list[str]:
    """Problems with the shipped files (empty when they match the manifest and the pins)."""
    if not MANIFEST.is_file():
        return [f"{MANIFEST} is missing: run python tools/fetch_js.py"]
    manifest = json.loads(MANIFEST.read_text())
    problems = []
    pins = [{"name": n, "version": v, "integrity": i} for n, v, i, _ in PACKAGES]
    if manifest["packages"] != pins:
        problems.append("js/manifest.json was made from other pins than tools/fetch_js.py's: run it again")
    for dest, entry in manifest["files"].items():
        path = JS_DIR / dest
        if not path.is_file():
            problems.append(f"{dest}: missing")
        elif sha256(path.read_bytes()) != entry["sha256"]:
            problems.append(f"{dest}: sha256 differs from the manifest")
    extra = sorted(str(p.relative_to(JS_DIR)) for p in JS_DIR.rglob("*")
                   if p.is_file() and p != MANIFEST and str(p.relative_to(JS_DIR)) not in manifest["files"])
    problems.extend(f"{e}: not in the manifest" for e in extra)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the shipped files offline")
    args = parser.parse_args(argv)
    if not args.check:
        manifest = fetch()
        total = sum(f["size"] for f in manifest["files"].values())
        print(f"wrote {len(manifest['files'])} files, {total / 1e6:.2f} MB, to {JS_DIR.relative_to(REPO)}")
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("the shipped JavaScript matches js/manifest.json")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
