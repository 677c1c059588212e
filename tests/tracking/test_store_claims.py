"""Trial claims: one transaction gives each trial number to one writer; a live writer's trial is left
to it, a dead writer's is claimed again, once, with its values."""
from __future__ import annotations

from tunewidgets.tracking import Store, studies


def fill(number, search):
    return {"search": search or {"lr": 0.01 * (number + 1)}}, 0, None


def test_two_writers_never_get_one_number_and_stop_at_n_trials(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    try:
        got = [a.claim_trial("s", fill, n_trials=4), b.claim_trial("s", fill, n_trials=4),
               a.claim_trial("s", fill, n_trials=4), b.claim_trial("s", fill, n_trials=4)]
        assert [c.number for c in got] == [0, 1, 2, 3]
        assert [c.others for c in got] == [0, 1, 1, 2]  # the other store's running trials, each time
        full = b.claim_trial("s", fill, n_trials=4)
        assert full.number is None and full.others == 2  # a's two trials: not b's to take while a lives
        assert [(r.number, r.status) for r in b.trial_rows("s")] == [(0, "running"), (1, "running"),
                                                                    (2, "running"), (3, "running")]
        assert full.changed == []  # nothing changed since b's previous claim (trial 3, after a's trial 2)
    finally:
        b.close()
        a.close()


def test_a_dead_writers_trial_is_claimed_again_once_with_its_values(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    first = a.claim_trial("s", fill, n_trials=2)
    second = b.claim_trial("s", fill, n_trials=2)
    b.finish_run(second.run_id, "finished")
    assert b.claim_trial("s", fill, n_trials=2).number is None  # trial 0 is a's, and a is alive
    a.close()  # a ends without finishing trial 0 (as a killed process would: its lock goes with it)
    try:
        again = b.claim_trial("s", fill, n_trials=2)
        assert (again.number, again.search, again.marked) == (0, {"lr": 0.01}, [first.run_id])
        assert b.claim_trial("s", fill, n_trials=2).number is None  # claimed once: now b's, running
        b.finish_run(again.run_id, "finished")
        rows = studies.trial_runs(b, "s")
        assert [(r["trial"], r["status"]) for r in rows] == [(0, "interrupted"), (1, "finished"), (0, "finished")]
        assert rows[0]["search"] == rows[2]["search"] == {"lr": 0.01}
    finally:
        b.close()


def test_a_grid_claims_no_number_beyond_its_points(tmp_path):
    with Store(tmp_path) as store:
        numbers = [store.claim_trial("g", fill, limit=2).number for _ in range(3)]
    assert numbers == [0, 1, None]


def test_one_study_row_for_writers_that_open_it_together(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    try:
        made, stored = a.open_study("s", {"seed": 1})
        again, seen = b.open_study("s", {"seed": 2})
        assert (made, stored) == (again, None) and seen == {"seed": 1}
        assert len(a.runs("s", kind="study")) == 1
    finally:
        b.close()
        a.close()
