"""A process that writes one run to a store, for the stale-run tests (test_store_liveness.py).

Usage: python _writer_child.py FOLDER MODE
  hold: print "ready <run_id>", then keep the store open until stdin closes
  die:  print "ready <run_id>", then end by SIGKILL with the run still running
"""
from __future__ import annotations

import os
import signal
import sys

from tunewidgets.tracking.store import Store


def main() -> None:
    folder, mode = sys.argv[1], sys.argv[2]
    store = Store(folder)
    run = store.start_run(kind="train", name=mode)
    print(f"ready {run}", flush=True)
    if mode == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
    store.close()


if __name__ == "__main__":
    main()
