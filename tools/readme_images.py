"""Refresh the README's screenshots in ``docs/images/`` from the browser tests.

    .venv/bin/python tools/readme_images.py            # run the tests that make them, copy, shrink
    .venv/bin/python tools/readme_images.py --list     # which test makes which image, run nothing
    .venv/bin/python tools/readme_images.py --from DIR # copy and shrink shots already in DIR

The browser tests save screenshots with ``support.lab_page.screenshot(page, name, locator)``
into ``$TW_SCREENSHOTS``. This script finds, in ``tests/``, the test functions that save the
shots named in ``IMAGES``, runs only those with ``TW_SCREENSHOTS`` set to a scratch folder,
then writes each chosen shot to ``docs/images/<image>.png`` as a palette PNG under
``MAX_BYTES`` (Pillow: fewer colours first, then a smaller width). A shot that no test makes
yet, or that its test did not save (a skipped or failed test), is named in one line and its
image is left as it was; the exit code is then 1.
"""
from __future__ import annotations

import argparse
import ast
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
IMAGES_DIR = REPO / "docs" / "images"
MAX_BYTES = 200_000
MAX_WIDTH = 1100  # wider shots are scaled down to this first (the README shows them at most this wide)

# image in docs/images (without .png) -> the name a browser test gives its screenshot
IMAGES = {
    "lr-finder": "nb01-finder-after-run-all",
    "schedule-preview": "schedule-2-after-changes",
    "search": "search-after-stop",
    "dashboard": "dashboard",
}


def shot_makers(tests: Path = TESTS) -> dict[str, list[str]]:
    """Shot name -> the pytest node ids (``tests/...py::test_fn``) of the test functions that save
    it with a literal name, found by reading every test file (nothing is imported or run).

    >>> makers = shot_makers()
    >>> makers["search-after-stop"]
    ['tests/browser/test_search_browser.py::test_launch_grows_curves_stop_halts_rows_highlight_and_hide_pruned_hides']
    """
    found: dict[str, list[str]] = {}
    for path in sorted(tests.rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test"):
                continue
            for call in ast.walk(fn):
                if (isinstance(call, ast.Call) and _called_name(call.func) == "screenshot"
                        and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant)
                        and isinstance(call.args[1].value, str)):
                    node = f"{path.relative_to(REPO).as_posix()}::{fn.name}"
                    found.setdefault(call.args[1].value, [])
                    if node not in found[call.args[1].value]:
                        found[call.args[1].value].append(node)
    return found


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def shrink(png: bytes, max_bytes: int = MAX_BYTES, max_width: int = MAX_WIDTH) -> bytes:
    """The screenshot ``png`` as a palette PNG of at most ``max_bytes``: at most ``max_width``
    wide, 256 colours or fewer, narrower still if that is not enough.

    >>> from PIL import Image
    >>> import io
    >>> big = Image.effect_noise((1600, 400), 60).convert("RGB")
    >>> buffer = io.BytesIO(); big.save(buffer, "PNG")
    >>> small = shrink(buffer.getvalue(), max_bytes=150_000)
    >>> len(small) <= 150_000, Image.open(io.BytesIO(small)).width <= MAX_WIDTH
    (True, True)
    """
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    width = min(image.width, max_width)
    while True:
        scaled = image if width == image.width else image.resize(
            (width, max(1, round(image.height * width / image.width))), Image.LANCZOS)
        for colours in (256, 128, 64, 32):
            out = io.BytesIO()
            scaled.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                out, "PNG", optimize=True)
            if out.tell() <= max_bytes:
                return out.getvalue()
        if width <= 200:
            raise ValueError(f"cannot shrink the screenshot under {max_bytes} bytes")
        width = int(width * 0.8)


def run_tests(nodes: list[str], shots: Path) -> int:
    """Run the pytest ``nodes`` with ``TW_SCREENSHOTS=shots``; pytest's exit code."""
    env = {**os.environ, "TW_SCREENSHOTS": str(shots), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodes]
    print("running:", " ".join(command[1:]), flush=True)
    return subprocess.call(command, cwd=REPO, env=env)


def copy_images(shots: Path, images: dict[str, str] = IMAGES, out: Path = IMAGES_DIR) -> list[str]:
    """Write each shot found in ``shots`` to ``out/<image>.png``, shrunk; the lines that say
    which could not be made (empty when all were)."""
    makers = shot_makers()
    problems = []
    out.mkdir(parents=True, exist_ok=True)
    for image, shot in images.items():
        source = shots / f"{shot}.png"
        if not source.is_file():
            why = (f"its test did not save it ({', '.join(makers[shot])})" if shot in makers
                   else "no browser test saves a shot of that name yet")
            problems.append(f"{image}.png: not refreshed: shot {shot!r} missing: {why}")
            continue
        data = shrink(source.read_bytes())
        (out / f"{image}.png").write_bytes(data)
        print(f"{(out / f'{image}.png').relative_to(REPO)}: {len(data) / 1000:.0f} kB (shot {shot!r})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="say which test makes which image; run nothing")
    parser.add_argument("--from", dest="source", type=Path,
                        help="copy shots already saved in this folder instead of running the tests")
    args = parser.parse_args(argv)
    makers = shot_makers()
    if args.list:
        for image, shot in IMAGES.items():
            print(f"docs/images/{image}.png <- {shot!r}: {', '.join(makers.get(shot, ['no test yet']))}")
        return 0
    if args.source is not None:
        problems = copy_images(args.source)
    else:
        nodes = sorted({node for shot in IMAGES.values() for node in makers.get(shot, [])})
        folder = Path(tempfile.mkdtemp(prefix="tw-readme-shots-"))
        try:
            code = run_tests(nodes, folder)
            problems = copy_images(folder)
            if code != 0:
                problems.append(f"pytest exited with code {code}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
