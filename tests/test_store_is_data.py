"""The store is data, not instructions: a rerun logs only where its caller says, one unreadable
value does not stop a store from being read, and reading creates nothing."""
from __future__ import annotations

import json
import sqlite3
import warnings

import pytest

import tunewidgets as tw
from tunewidgets.tracking import Store
from tunewidgets.tracking.store import StoreWarning, UnreadableValue


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spirals_run(folder, **kw):
    return tw.train(tw.tasks.spirals(n=200), tw.TrainConfig(optimizer="adam", lr=0.01, epochs=1, device="cpu"),
                    store=folder, **kw)


def poke(db, sql, *args):
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def edit_repro(db, run_id, change):
    conn = sqlite3.connect(db)
    try:
        env = json.loads(conn.execute("SELECT env FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
        change(env["repro"])
        conn.execute("UPDATE runs SET env = ? WHERE id = ?", (json.dumps(env), run_id))
        conn.commit()
    finally:
        conn.close()


# ------------------------------------------------------------------ a rerun logs where its caller says
def test_a_range_test_record_naming_a_tensorboard_folder_is_refused_and_nothing_is_written(tmp_path):
    folder = tmp_path / "runs"
    res = tw.lr_range_test(tw.tasks.spirals(n=200), steps=20, device="cpu", store=folder)
    elsewhere = tmp_path / "elsewhere"
    edit_repro(folder / "runs.sqlite", res.run_id, lambda r: r["call"].update(
        tensorboard=str(elsewhere), mlflow="http://127.0.0.1:1"))
    with pytest.raises(ValueError, match=r"'mlflow', 'tensorboard'.*not a setting a rerun takes"):
        tw.rerun(folder, res.run_id)
    assert not elsewhere.exists()
    with Store(folder) as store:
        assert store.runs()["id"].tolist() == [res.run_id]  # no repeat was started


def test_a_rerun_logs_to_tensorboard_only_when_the_caller_says(tmp_path):
    pytest.importorskip("tensorboardX")
    folder = tmp_path / "runs"
    run = spirals_run(folder, tensorboard=True)
    assert (folder / "tensorboard" / f"train-{run.run_id}").is_dir()
    plain = tw.rerun(folder, run.run_id)
    assert plain.matches is True and plain.tensorboard_dir is None
    assert not (folder / "tensorboard" / f"train-{plain.run_id}").exists()
    mine = tmp_path / "mine"
    logged = tw.rerun(folder, run.run_id, tensorboard=mine)
    assert logged.matches is True and logged.tensorboard_dir is not None
    assert logged.tensorboard_dir.startswith(str(mine)) and any(mine.rglob("events.out.tfevents.*"))


# ------------------------------------------------------------------ one bad value, the rest still reads
@pytest.mark.parametrize("bad", [b"\xff\xfe not json", "{not json", "[" * 3000 + "]" * 3000, "[1, 2]"],
                         ids=["not-utf8", "not-json", "too-deep", "not-an-object"])
def test_an_unreadable_json_value_is_reported_by_run_and_column_and_the_others_read(tmp_path, bad):
    folder = tmp_path / "runs"
    first, second = spirals_run(folder), spirals_run(folder)
    poke(folder / "runs.sqlite", "UPDATE runs SET params = ? WHERE id = ?", bad, first.run_id)
    with Store(folder) as store:
        why = "(not UTF-8|not JSON|JSON but not an object)"
        with pytest.warns(StoreWarning, match=rf"run {first.run_id}, column 'params': {why}"):
            runs = store.runs()
        assert runs["id"].tolist() == [first.run_id, second.run_id]
        assert runs["params"].tolist()[0] is None and runs["params"].tolist()[1]["lr"] == 0.01
        assert runs["status"].tolist() == ["finished", "finished"]
        assert [(u.run_id, u.column) for u in store.unreadable] == [(first.run_id, "params")]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # reported once per store
            assert store.run(first.run_id)["params"] is None
            assert store.run(first.run_id)["final"]["epochs"] == 1
        assert store.unreadable_columns(first.run_id) == ["params"]


def test_a_report_of_a_store_with_an_unreadable_value_names_it_and_shows_the_rest(tmp_path):
    folder = tmp_path / "runs"
    first, second = spirals_run(folder), spirals_run(folder)
    poke(folder / "runs.sqlite", "UPDATE runs SET final = ? WHERE id = ?", b"\x00\x81", first.run_id)
    with pytest.warns(StoreWarning):
        page = tw.report(folder, tmp_path / "report.html").read_text()
    assert 'id="unreadable"' in page and f"run {first.run_id}, column &#x27;final&#x27;" in page
    assert f"train {second.run_id}" in page


def test_a_rerun_of_a_run_whose_record_is_unreadable_names_the_column_and_others_still_rerun(tmp_path):
    folder = tmp_path / "runs"
    first, second = spirals_run(folder), spirals_run(folder)
    poke(folder / "runs.sqlite", "UPDATE runs SET env = ? WHERE id = ?", "{\"repro\": ", first.run_id)
    with pytest.warns(StoreWarning), pytest.raises(ValueError, match=rf"run {first.run_id} .*its stored env could "
                                                                    "not be read"):
        tw.rerun(folder, first.run_id)
    again = tw.rerun(folder, second.run_id)
    assert again.matches is True


def test_unreadable_text_in_a_plain_column_is_replaced_not_raised(tmp_path):
    folder = tmp_path / "runs"
    run = spirals_run(folder)
    poke(folder / "runs.sqlite", "UPDATE runs SET name = CAST(? AS TEXT) WHERE id = ?", b"caf\xe9", run.run_id)
    with Store(folder) as store, pytest.warns(StoreWarning, match="column 'name': not UTF-8"):
        assert store.run(run.run_id)["name"] == "caf\ufffd"
    assert UnreadableValue(1, "name", "x").column == "name"


# ------------------------------------------------------------------ reading creates nothing
def test_a_report_or_rerun_of_a_missing_store_creates_nothing(tmp_path):
    missing = tmp_path / "no-such-runs"
    with pytest.raises(ValueError, match="no run store at .*no-such-runs.*nothing was created"):
        tw.report(missing, tmp_path / "report.html")
    with pytest.raises(ValueError, match="no run store at"):
        tw.rerun(missing, 1)
    with pytest.raises(ValueError, match="no run store at"):
        tw.rerun(tmp_path / "gone" / "runs.sqlite", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_reading_a_folder_without_a_store_creates_no_database(tmp_path):
    with pytest.raises(ValueError, match=r"holds no run store \(no runs.sqlite in it\)"):
        Store(tmp_path, create=False)
    with pytest.raises(ValueError, match="holds no run store"):
        tw.report(tmp_path, tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="create: expected True or False"):
        Store(tmp_path, create="no")


def test_reading_an_existing_store_with_create_false_works(tmp_path):
    run = spirals_run(tmp_path)
    with Store(tmp_path, create=False) as store:
        assert store.run(run.run_id)["status"] == "finished"
    with Store(tmp_path / "runs.sqlite", create=False) as store:
        assert len(store.runs()) == 1


def test_a_reproducibility_record_that_is_not_a_dict_is_named(tmp_path):
    folder = tmp_path / "runs"
    run = spirals_run(folder)
    edit_repro_whole = json.dumps({"repro": "train it again, please"})
    poke(folder / "runs.sqlite", "UPDATE runs SET env = ? WHERE id = ?", edit_repro_whole, run.run_id)
    with pytest.raises(ValueError, match=rf"run {run.run_id}'s stored reproducibility record is not readable \(a str"):
        tw.rerun(folder, run.run_id)


def test_a_report_of_a_copied_store_file_adds_no_folder_beside_it(tmp_path):
    import shutil

    run = spirals_run(tmp_path / "made")
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "made" / "runs.sqlite", copy / "runs.sqlite")
    page = tw.report(copy, tmp_path / "report.html").read_text()
    assert f"train {run.run_id}" in page
    assert sorted(p.name for p in copy.iterdir()) == ["runs.sqlite"]  # no writers folder, no WAL left
