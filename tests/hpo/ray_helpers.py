"""A local Ray for the tests of the Ray executor: started once per module, shut down after it.

``start_local_ray()`` starts it with 2 CPUs and no dashboard (or joins ``RAY_ADDRESS`` when that
is set, e.g. a cluster started by ``ray start --head``). Its workers get the test folders on
their ``PYTHONPATH``, so they import ``hpo_helpers`` as the tests do.

The tests' Ray processes find a stub of ``rfc3987_syntax`` first (``support.ray_stub``: its slow
import makes Ray's node agent miss its start-up deadline on a loaded machine).
"""
from __future__ import annotations

import os
from pathlib import Path

from support.ray_stub import stub_folder
from tunewidgets.hpo.space import Int, LogUniform, Uniform

HERE = Path(__file__).resolve().parent
SPACE = {"lr": LogUniform(1e-3, 0.3), "momentum": Uniform(0.5, 0.95), "model.width": Int(4, 16)}
_STARTUP_TRIES = 3


def start_local_ray(ray):
    """Start (or join) the tests' Ray; returns a function that shuts it down and restores the environment."""
    old = os.environ.get("PYTHONPATH")
    stub = stub_folder()
    parts = [str(stub), str(HERE), str(HERE.parent), str(HERE.parents[1])] + ([old] if old else [])
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    try:
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR")
        else:
            for attempt in range(_STARTUP_TRIES):
                try:
                    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
                    break
                except Exception as exc:  # noqa: BLE001 - "The current node timed out during startup"
                    if "timed out" not in str(exc) or attempt == _STARTUP_TRIES - 1:
                        raise
                    ray.shutdown()
    except BaseException:
        _restore(old)
        raise

    def shutdown() -> None:
        ray.shutdown()
        _restore(old)

    return shutdown


def _restore(old: str | None) -> None:
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
