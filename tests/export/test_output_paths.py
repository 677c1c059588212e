"""Nothing overwrites data: a report or an export refuses an output path that is a run store's
file, its WAL/SHM, its writers folder, a folder, or any file it did not write, unless told to
overwrite; and ``python -m tunewidgets.export`` says what went wrong in one line, exit code 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tunewidgets as tw
from support.notebooks import write_notebook
from tunewidgets.export import NotebookTimeoutError
from tunewidgets.export.__main__ import main
from tunewidgets.export._output import GENERATOR, check_output, written_by_tunewidgets
from tunewidgets.tracking import Store


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunewidgets.export", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture()
def store_folder(tmp_path):
    """A runs folder with one run, its store still open (so its WAL, SHM and writers folder exist)."""
    folder = tmp_path / "runs"
    store = Store(folder)
    run = store.start_run(kind="train", params={"lr": 0.1})
    store.log_metrics(run, [(1, 0, "train/loss", 1.0)])
    store.finish_run(run, "finished")
    yield folder
    store.close()


def _store_bytes(folder):
    return (folder / "runs.sqlite").read_bytes()


@pytest.mark.parametrize(("name", "what"), [
    ("runs.sqlite", "is an SQLite database"),
    ("runs.sqlite-wal", "is the write-ahead log of the database"),
    ("runs.sqlite-shm", "is the shared-memory file of the database"),
])
def test_a_report_onto_a_store_file_is_refused_and_the_store_is_kept(store_folder, name, what):
    target = store_folder / name
    assert target.is_file()
    before = target.read_bytes()
    with pytest.raises(ValueError, match=rf"path: '.*{name}' {what}.*pass overwrite=True to replace it"):
        tw.report(store_folder, target)
    assert target.read_bytes() == before
    with Store(store_folder) as store:
        assert store.runs()["status"].tolist() == ["finished"]


def test_a_report_onto_the_writers_folder_or_any_folder_names_it_as_a_folder(store_folder, tmp_path):
    writers = store_folder / "runs.sqlite-writers"
    assert writers.is_dir()
    with pytest.raises(ValueError, match=r"is the writers folder of the run store .*runs.sqlite, not a file"):
        tw.report(store_folder, writers, overwrite=True)  # no flag writes a file over a folder
    with pytest.raises(ValueError, match=r"path: '.*runs' is a folder, not a file; give a file path, e.g. "
                                         r"'.*runs/report.html'"):
        tw.report(store_folder, store_folder, overwrite=True)


def test_an_existing_file_not_written_by_tunewidgets_needs_overwrite(store_folder, tmp_path):
    notes = tmp_path / "notes.html"
    notes.write_text("<!DOCTYPE html><html><body>my own notes</body></html>")
    with pytest.raises(ValueError, match="exists and is not an HTML page tunewidgets wrote"):
        tw.report(store_folder, notes)
    assert "my own notes" in notes.read_text()
    tw.report(store_folder, notes, overwrite=True)
    assert written_by_tunewidgets(notes) and "my own notes" not in notes.read_text()


def test_a_report_writes_over_its_own_page_again_without_a_flag(store_folder, tmp_path):
    out = tw.report(store_folder, tmp_path / "report.html")
    assert GENERATOR in out.read_text()[:2000]
    assert tw.report(store_folder, out) == out


def test_a_refused_report_reads_nothing_first(tmp_path):
    (tmp_path / "keep.txt").write_text("data")
    with pytest.raises(ValueError, match="keep.txt' exists and is not an HTML page"):
        tw.report(tmp_path / "no-store-here", tmp_path / "keep.txt")  # the path is checked before the store
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_check_output_refuses_a_path_below_a_file_and_bad_types(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="lies inside .*file', which is a file"):
        check_output(tmp_path / "file" / "page.html", create_folder=True)
    with pytest.raises(TypeError, match="path: expected a file path"):
        check_output(b"page.html")
    with pytest.raises(TypeError, match="overwrite: expected True or False"):
        check_output(tmp_path / "p.html", overwrite="yes")


# ------------------------------------------------------------------ exports
def test_export_notebook_refuses_a_store_file_and_a_folder(store_folder, tmp_path):
    nb = write_notebook(tmp_path / "small.ipynb", ["# md\nHello"])
    db = store_folder / "runs.sqlite.html"  # an .html name, but a database inside
    db.write_bytes(_store_bytes(store_folder))
    with pytest.raises(ValueError, match=r"out: '.*runs.sqlite.html' is an SQLite database"):
        tw.export_notebook(nb, db)
    (tmp_path / "page.html").mkdir()
    with pytest.raises(ValueError, match=r"out: '.*page.html' is a folder, not a file"):
        tw.export_notebook(nb, tmp_path / "page.html")
    out = tw.export_notebook(nb, tmp_path / "small.html")
    assert written_by_tunewidgets(out)
    assert tw.export_notebook(nb, out) == out  # its own page again


def test_widget_to_html_refuses_a_file_it_did_not_write(tmp_path):
    pytest.importorskip("ipywidgets")
    preview = tw.widgets.SchedulePreview(tw.schedules.OneCycle(max_lr=0.1), total_steps=50)
    other = tmp_path / "other.html"
    other.write_text("<html><body>someone else's page</body></html>")
    with pytest.raises(ValueError, match="other.html' exists and is not an HTML page tunewidgets wrote"):
        preview.to_html(other)
    assert "someone else's page" in other.read_text()
    assert preview.to_html(other, overwrite=True) == other and written_by_tunewidgets(other)
    assert preview.to_html(other) == other  # a widget page it wrote is its own
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(ValueError, match="dir.html' is a folder"):
        preview.to_html(tmp_path / "dir.html")


# ------------------------------------------------------------------ the command line: one line, exit code 2
def _one_error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _main(capsys, monkeypatch, cwd, *args):
    """``python -m tunewidgets.export ARGS`` run in this process (no interpreter start-up). An
    exception escaping ``main`` would be a traceback on the command line, and fails the test."""
    monkeypatch.chdir(cwd)
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


@pytest.mark.parametrize("text", ["{not json", '{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
                                  "[1, 2]", ""], ids=["not-json", "cells-not-a-list", "a-list", "empty"])
def test_cli_a_malformed_notebook_is_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, text):
    (tmp_path / "bad.ipynb").write_text(text)
    line = _one_error_line(_main(capsys, monkeypatch, tmp_path, "bad.ipynb"))
    assert "notebook: bad.ipynb is not a readable notebook" in line
    assert not (tmp_path / "bad.html").exists()


def test_cli_an_output_that_is_a_folder_or_a_store_is_one_line_and_exit_code_2(store_folder, tmp_path, capsys,
                                                                               monkeypatch):
    write_notebook(tmp_path / "ok.ipynb", ["# md\nHello"])
    (tmp_path / "out.html").mkdir()
    line = _one_error_line(_main(capsys, monkeypatch, tmp_path, "ok.ipynb", "-o", "out.html"))
    assert "out: 'out.html' is a folder, not a file" in line
    line = _one_error_line(_main(capsys, monkeypatch, tmp_path, "ok.ipynb", "-o", "runs/runs.sqlite"))
    assert "out: 'runs/runs.sqlite' is an SQLite database" in line
    (tmp_path / "mine.html").write_text("keep me")
    line = _one_error_line(_main(capsys, monkeypatch, tmp_path, "ok.ipynb", "-o", "mine.html"))
    assert "pass overwrite=True (--overwrite) to replace it" in line
    assert (tmp_path / "mine.html").read_text() == "keep me"
    done = _main(capsys, monkeypatch, tmp_path, "ok.ipynb", "-o", "mine.html", "--overwrite")
    assert done.returncode == 0 and written_by_tunewidgets(tmp_path / "mine.html")


@pytest.mark.notebook
@pytest.mark.slow
def test_cli_a_cell_timeout_is_one_line_and_exit_code_2(tmp_path):
    # the cell waits on an event nothing sets: it runs out of time however fast the machine is
    write_notebook(tmp_path / "slow.ipynb", ["x = 1", "import threading\nthreading.Event().wait()"])
    line = _one_error_line(_cli("slow.ipynb", "--execute", "--timeout", "2", cwd=tmp_path))
    assert "slow.ipynb: cell 1 ran longer than the timeout of 2 s" in line
    assert issubclass(NotebookTimeoutError, tw.export.NotebookExecutionError)
    assert not (tmp_path / "slow.html").exists()
