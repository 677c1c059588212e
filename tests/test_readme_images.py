"""The README's pictures exist and are small, and the script that refreshes them names shots that
the browser tests really save (so the list cannot rot while the tests change)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# shots another branch's browser test will save; until then the script says so and goes on
NOT_MADE_YET = {"dashboard"}


def _tool():
    spec = importlib.util.spec_from_file_location("readme_images", REPO / "tools" / "readme_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_readme_image_exists_is_a_png_and_is_under_200_kb():
    images = [p for p in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", README) if "://" not in p]  # not the badge
    assert {"docs/images/lr-finder.png", "docs/images/schedule-preview.png", "docs/images/search.png"} <= set(images)
    for image in images:
        path = REPO / image
        assert path.is_file(), f"the README shows {image}, which does not exist"
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{image} is not a PNG"
        assert len(data) < 200_000, f"{image} is {len(data)} bytes; run tools/readme_images.py"


def test_the_script_names_shots_the_browser_tests_save_and_images_the_readme_shows():
    tool = _tool()
    makers = tool.shot_makers()
    for image, shot in tool.IMAGES.items():
        if shot in NOT_MADE_YET and shot not in makers:
            continue
        assert makers.get(shot), f"no test saves the shot {shot!r} that tools/readme_images.py copies to {image}.png"
        assert all("/browser/" in node for node in makers[shot]), makers[shot]
    shown = {Path(p).stem for p in re.findall(r"\((docs/images/[^)\s]+\.png)\)", README)}
    assert shown <= set(tool.IMAGES), f"README images the script does not refresh: {shown - set(tool.IMAGES)}"


def test_a_missing_shot_is_one_line_not_a_crash(tmp_path):
    tool = _tool()
    out = tmp_path / "images"
    problems = tool.copy_images(tmp_path, images={"dashboard": "no-such-shot"}, out=out)
    assert problems == ["dashboard.png: not refreshed: shot 'no-such-shot' missing: "
                        "no browser test saves a shot of that name yet"]
    assert list(out.iterdir()) == []
