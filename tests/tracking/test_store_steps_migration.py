"""Schema 3: every run numbers its steps from 1. A store written with schema 2, where range tests
numbered theirs from 0, is migrated on open: its range-test rows move up by one, nothing else."""
from __future__ import annotations

import sqlite3

from tunewidgets.tracking import SCHEMA_VERSION, Store, _schema


def _old_store(path) -> tuple[int, int]:
    """A runs.sqlite as schema 2 wrote it: one training run (steps 1..3), one range test (steps 0..2)."""
    conn = sqlite3.connect(path)
    conn.executescript(_schema._SCHEMA_V1)  # the tables of version 1, then what version 2 added
    conn.executescript("ALTER TABLE runs ADD COLUMN writer_host TEXT;"
                       "ALTER TABLE runs ADD COLUMN writer_started REAL;"
                       "ALTER TABLE runs ADD COLUMN writer_lock INTEGER NOT NULL DEFAULT 0;")
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                     [("schema_version", "2"), ("created_at", "0.0"), ("created_with", "tunewidgets 0.1")])
    ids = []
    for kind in ("train", "lr_range_test"):
        cur = conn.execute("INSERT INTO runs (kind, status, started_at, ended_at) VALUES (?, 'finished', 1.0, 2.0)",
                           (kind,))
        ids.append(cur.lastrowid)
    train, test = ids
    rows = [(train, s, 0, name, float(s)) for s in (1, 2, 3) for name in ("train/loss", "lr")]
    rows += [(test, s, None, name, 10.0 + s) for s in (0, 1, 2) for name in ("train/loss", "train/smoothed", "lr")]
    conn.executemany("INSERT INTO metrics (run, step, epoch, name, value) VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return train, test


def test_a_schema_2_store_gets_its_range_test_steps_counted_from_one(tmp_path):
    db = tmp_path / "runs.sqlite"
    train, test = _old_store(db)
    assert SCHEMA_VERSION == 3
    with Store(tmp_path) as store:
        assert store.schema_version == 3
        for name in ("train/loss", "train/smoothed", "lr"):
            got = store.metrics(test, name)
            assert got["step"].tolist() == [1, 2, 3] and got["value"].tolist() == [10.0, 11.0, 12.0]
        assert store.metrics(train, "train/loss")["step"].tolist() == [1, 2, 3]  # training runs already were
    with Store(tmp_path) as store:  # opening again migrates nothing twice
        assert store.metrics(test, "lr")["step"].tolist() == [1, 2, 3]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
    finally:
        conn.close()


def test_a_new_store_is_made_at_schema_3_and_its_range_tests_count_from_one(tmp_path):
    import tunewidgets as tw

    res = tw.lr_range_test(tw.tasks.spirals(), steps=4, device="cpu", store=tmp_path)
    with Store(tmp_path) as store:
        assert store.schema_version == 3
        assert store.metrics(res.run_id, "train/loss")["step"].tolist() == [1, 2, 3, 4]
