"""The notebook test helper runs a notebook in a scratch copy and reports cell errors."""

from __future__ import annotations

import os

import nbformat
import pytest

from support.notebooks import NotebookCellError, cell_outputs_text, run_notebook, steady_text, write_notebook

pytestmark = pytest.mark.notebook


def test_runs_cells_in_a_copy_of_the_notebook_folder(tmp_path):
    folder = tmp_path / "notebooks"
    (folder).mkdir()
    (folder / "data.txt").write_text("from the notebook's folder")
    path = write_notebook(folder / "tiny.ipynb", [
        "# md\nA tiny notebook",
        "import os\nprint(open('data.txt').read())",
        "open('written.txt', 'w').write('x'); os.getcwd()",
        "print(os.environ['BOKEH_RESOURCES'])",
        "6 * 7",
    ])

    nb = run_notebook(path, timeout=60)

    text = cell_outputs_text(nb)
    assert "from the notebook's folder" in text  # relative paths resolve next to the copy
    assert "inline" in text  # BokehJS would come from the page, not a CDN
    assert cell_outputs_text(nb.cells[4]) == "42"
    cwd = nb.cells[2].outputs[0]["data"]["text/plain"].strip("'")
    assert os.path.basename(cwd) == "notebooks" and cwd != str(folder)
    assert not (folder / "written.txt").exists()  # the repository copy stays clean
    assert nbformat.read(path, as_version=4).cells[1].outputs == []  # source file untouched


def test_cell_error_names_cell_source_and_exception(tmp_path):
    path = write_notebook(tmp_path / "broken.ipynb", ["x = 1", "lr = -1\nraise ValueError(f'lr: {lr}')"])

    with pytest.raises(NotebookCellError) as info:
        run_notebook(path, timeout=60)

    err = info.value
    assert (err.index, err.ename, err.evalue) == (1, "ValueError", "lr: -1")
    assert "raise ValueError(f'lr: {lr}')" in str(err)
    assert "\x1b[" not in str(err)


def test_workdir_keeps_files_the_notebook_wrote(tmp_path):
    path = write_notebook(tmp_path / "src" / "w.ipynb", ["open('out.txt', 'w').write('kept')"])
    run_notebook(path, timeout=60, workdir=tmp_path / "work")
    assert (tmp_path / "work" / "src" / "out.txt").read_text() == "kept"


def test_bad_arguments_raise_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="path: no notebook"):
        run_notebook(tmp_path / "missing.ipynb")
    path = write_notebook(tmp_path / "ok.ipynb", ["1"])
    with pytest.raises(ValueError, match="timeout: must be"):
        run_notebook(path, timeout=0)


def _printed(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "", outputs=[nbformat.v4.new_output("stream", name="stdout", text=text)])])


def test_steady_text_masks_durations_however_wide_they_are_padded():
    # f"{t:4.1f} s" is " 9.8 s" in one run and "10.2 s" in the next
    assert steady_text(_printed("trained in  9.8 s, 3 trials")) == steady_text(_printed("trained in 10.2 s, 3 trials"))
    assert steady_text(_printed("(took  9.8 s)")) == steady_text(_printed("(took 10.2 s)"))
    assert steady_text(_printed("( 9.8 s)")) == steady_text(_printed("(10.2 s)"))
    assert steady_text(_printed("took 250 ms at 2026-12-08 01:02:03")) == ["took <time> at <time>"]


def test_steady_text_keeps_what_is_not_a_duration():
    # counts and accuracies differ between runs only when the notebook does
    assert steady_text(_printed("3 of 30 trials pruned")) != steady_text(_printed("4 of 30 trials pruned"))
    assert steady_text(_printed("best  98.33%")) != steady_text(_printed("best 98.33%"))
