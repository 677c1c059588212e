"""What a run needs to be repeated: its full config, seed, versions, device and fingerprints.

:func:`repro_record` describes a Trainer or a range test before it runs: the config as JSON
(``TrainConfig.to_dict()``, the schedule as its ``to_dict()``), the seed, the versions of
Python, torch, tunewidgets and NumPy, the device, and the task: its built-in name and keyword
arguments (``task.spec``, so ``tw.rerun`` can build it again), a fingerprint of its training
and validation data and one of its model factory. ``StoreSink`` keeps it in the run's
``env["repro"]``; :func:`differences` says what changed between two records.

Fingerprints (sha256) and what they cost:

- a ``TensorDataset`` (also inside a ``DataLoader``): every byte of its tensors, with their
  dtypes and shapes; one pass over the data (about 1 ms per MB), cached per tensor until it
  is changed in place;
- any other map-style dataset: its length and its first 64 samples (64 ``__getitem__`` calls,
  with every random generator seeded and restored, so random augmentations give the same
  bytes); a change after sample 64 goes unseen;
- an iterable dataset: not fingerprinted (iterating it could be costly or have side effects).
- the model factory: its source (``inspect.getsource``; through ``functools.partial`` with its
  bound arguments), or its qualified name where the source cannot be read.

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.tracking.records import differences, train_record
    >>> cfg = tw.TrainConfig(epochs=1, device="cpu")
    >>> a = train_record(tw.tasks.digits(), cfg)
    >>> a["task"]["spec"]
    {'name': 'digits', 'kwargs': {'val_fraction': 0.2, 'seed': 0, 'batch_size': 64}}
    >>> a["config"]["epochs"], sorted(a["versions"])
    (1, ['numpy', 'python', 'torch', 'tunewidgets'])
    >>> for line in differences(a, train_record(tw.tasks.digits(seed=1), cfg)):
    ...     print(line)
    the arguments of task 'digits' changed: seed=0 then, 1 now
    the training data of task 'digits' changed (same size, other values)
    the validation data of task 'digits' changed (same size, other values)
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import platform
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.devices import resolve_device
from tunewidgets.engine.env import _version
from tunewidgets.engine.seeding import seeded
from tunewidgets.engine.task import Task
from tunewidgets.lr.range_test import current_names
from tunewidgets.tracking._json import to_jsonable

__all__ = ["repro_record", "train_record", "range_test_record", "fingerprint_data", "fingerprint_factory",
           "versions", "differences", "SAMPLES_HASHED"]

#: samples of a dataset that is not a TensorDataset that its fingerprint reads
SAMPLES_HASHED = 64
# id(tensor) -> (weak reference, its version counter when hashed, digest); a tensor changed in
# place bumps its version, one that died leaves a dead reference (the entry is then replaced)
_TENSOR_HASHES: dict[int, tuple[Any, int, str]] = {}
_CACHE_SIZE = 256


def versions() -> dict[str, str | None]:
    """Versions of Python, torch, tunewidgets and NumPy in this process."""
    return {"python": platform.python_version(), "torch": _version("torch"),
            "tunewidgets": _version("tunewidgets"), "numpy": np.__version__}


# ------------------------------------------------------------------ fingerprints
def _tensor_digest(t: torch.Tensor) -> str:
    known = _TENSOR_HASHES.get(id(t))
    if known is not None and known[0]() is t and known[1] == t._version:
        return known[2]
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    data = t.detach().cpu().contiguous()
    if data.numel():
        h.update(memoryview(data.reshape(-1).view(torch.uint8).numpy()))
    digest = h.hexdigest()
    if len(_TENSOR_HASHES) >= _CACHE_SIZE:
        for key in [k for k, v in _TENSOR_HASHES.items() if v[0]() is None] or list(_TENSOR_HASHES):
            del _TENSOR_HASHES[key]
    try:
        _TENSOR_HASHES[id(t)] = (weakref.ref(t), t._version, digest)
    except TypeError:  # a tensor subclass that takes no weak reference
        pass
    return digest


def _feed(h: Any, obj: Any) -> None:
    """Hash a sample: tensors and arrays by their bytes, containers item by item, numbers by value."""
    if isinstance(obj, torch.Tensor):
        h.update(_tensor_digest(obj).encode())
    elif isinstance(obj, np.ndarray):
        h.update(f"{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, Mapping):
        for key in sorted(obj, key=str):
            h.update(str(key).encode())
            _feed(h, obj[key])
    elif isinstance(obj, (tuple, list)):
        h.update(f"{type(obj).__name__}{len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    elif obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        h.update(repr(obj).encode())
    elif hasattr(obj, "__array__"):  # PIL images and the like
        _feed(h, np.asarray(obj))
    else:  # an object we cannot read: its type only (its repr may hold a memory address)
        h.update(type(obj).__qualname__.encode())


def fingerprint_data(data: Any) -> dict[str, Any] | None:
    """A fingerprint of a dataset or DataLoader (see the module doc for what is read); None for None."""
    if data is None:
        return None
    dataset = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(dataset, TensorDataset):
        h = hashlib.sha256()
        for t in dataset.tensors:
            h.update(_tensor_digest(t).encode())
        return {"kind": "tensors", "sha256": h.hexdigest(), "n": len(dataset),
                "shapes": [list(t.shape) for t in dataset.tensors], "dtypes": [str(t.dtype) for t in dataset.tensors]}
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__"):
        return {"kind": "not fingerprinted", "type": type(dataset).__qualname__}
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        return {"kind": "not fingerprinted", "type": type(dataset).__qualname__}
    h = hashlib.sha256(f"{type(dataset).__qualname__}{n}".encode())
    with seeded(0):
        for i in range(min(n, SAMPLES_HASHED)):
            _feed(h, dataset[i])
    return {"kind": f"first {min(n, SAMPLES_HASHED)} samples", "sha256": h.hexdigest(), "n": n}


def fingerprint_factory(factory: Any) -> dict[str, Any]:
    """A fingerprint of a model factory: its name and a sha256 of its source (or of its name)."""
    h = hashlib.sha256()
    fn = factory
    while isinstance(fn, functools.partial):
        h.update(repr((fn.args, sorted(fn.keywords.items()))).encode())
        fn = fn.func
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    try:
        source, how = inspect.getsource(fn), "source"
    except (OSError, TypeError):
        source, how = name, "name"
    h.update(source.encode())
    return {"name": name, "sha256": h.hexdigest(), "from": how}


def _task_record(task: Task | None) -> dict[str, Any] | None:
    if task is None:
        return None
    spec = getattr(task, "spec", None)
    return to_jsonable({
        "name": task.name, "spec": spec if isinstance(spec, Mapping) else None,
        "train": fingerprint_data(task.train), "val": fingerprint_data(task.val),
        "model": fingerprint_factory(task.model), "model_kwargs": dict(task.model_kwargs),
        "loss": task.loss if isinstance(task.loss, str) else fingerprint_factory(task.loss),
        "metrics": [m if isinstance(m, str) else fingerprint_factory(m)["name"] for m in task.metrics],
        "batch_size": task.batch_size})


# ------------------------------------------------------------------ records
def train_record(task: Task, config: TrainConfig, device: Any = None) -> dict[str, Any]:
    """The record of a training run of ``task`` with ``config`` (``device``: where it trains)."""
    if device is None:
        device = resolve_device(config.device)
    return {"kind": "train", "config": to_jsonable(config.to_dict()), "seed": config.seed,
            "versions": versions(), "device": str(device), "task": _task_record(task)}


def range_test_record(test: Any) -> dict[str, Any]:
    """The record of a range test (a ``tunewidgets.lr.RangeTest``): the arguments that repeat it."""
    src, settings = test.sources, test.settings
    call = {**{k: settings[k] for k in ("start_lr", "end_lr", "steps", "mode", "smoothing", "diverge",
                                        "grad_accum", "eval_every_steps", "log_every", "amp")},
            "method": test.method, "seed": src.seed, "batch_size": src.batch_size, "device": str(src.device)}
    own = [name for name, value in (("model", src.model), ("optimizer", src.optimizer), ("data", src.data),
                                    ("batch_loss", src.batch_loss)) if value is not None]
    if src.val is not None and src.val is not True:
        own.append("val")
    if src.optimizer_name is not None:
        call["optimizer"] = src.optimizer_name
        call["optimizer_kwargs"] = dict(src.optimizer_settings)
    if src.model_kwargs:
        call["config"] = {"model_kwargs": dict(src.model_kwargs)}
    if src.val is True:
        call["val"] = True
    return {"kind": "lr_range_test", "call": to_jsonable(call), "own_objects": own, "seed": src.seed,
            "versions": versions(), "device": str(src.device), "task": _task_record(src.task),
            "data": fingerprint_data(src.data) if src.data is not None and isinstance(src.data, (Dataset, DataLoader))
            else None}


def repro_record(target: Any) -> dict[str, Any] | None:
    """:func:`train_record` of a Trainer, :func:`range_test_record` of a range test, else None."""
    if getattr(target, "kind", None) == "lr_range_test" and hasattr(target, "sources"):
        return range_test_record(target)
    task, config = getattr(target, "task", None), getattr(target, "config", None)
    if isinstance(task, Task) and isinstance(config, TrainConfig):
        return train_record(task, config)
    return None


# ------------------------------------------------------------------ comparing
_DATA_NAMES = {"train": "training data", "val": "validation data"}


def differences(before: Mapping[str, Any] | None, now: Mapping[str, Any] | None) -> list[str]:
    """What differs between two records, in words (an empty list when nothing that is recorded does)."""
    if not before or not now:
        return [] if before == now else ["the run has no reproducibility record to compare with"]
    out: list[str] = []
    old_task, new_task = before.get("task") or {}, now.get("task") or {}
    label = f"task {old_task.get('name', '?')!r}"
    old_spec, new_spec = old_task.get("spec") or {}, new_task.get("spec") or {}
    if old_task.get("name") != new_task.get("name"):
        out.append(f"the task changed: {old_task.get('name')!r} then, {new_task.get('name')!r} now")
    elif old_spec and new_spec and old_spec.get("kwargs") != new_spec.get("kwargs"):
        a, b = old_spec.get("kwargs") or {}, new_spec.get("kwargs") or {}
        changed = ", ".join(f"{k}={a.get(k)!r} then, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
                            if a.get(k) != b.get(k))
        out.append(f"the arguments of {label} changed: {changed}")
    for part in ("train", "val"):
        a, b = old_task.get(part), new_task.get(part)
        if a != b:
            if a is None or b is None:
                out.append(f"the {_DATA_NAMES[part]} of {label} was {'absent' if a is None else 'present'} "
                           f"then and is {'absent' if b is None else 'present'} now")
            elif (a or {}).get("kind") == "not fingerprinted":
                continue
            else:
                out.append(f"the {_DATA_NAMES[part]} of {label} changed" + _size_change(a, b))
    a, b = old_task.get("model") or {}, new_task.get("model") or {}
    if a.get("sha256") != b.get("sha256"):
        same = a.get("name") == b.get("name")
        now_text = "has another source" if same else f"then, {b.get('name')} now"
        out.append(f"the model factory changed: {a.get('name')} {now_text}")
    for key, what in (("model_kwargs", "the task's model_kwargs"), ("loss", "the loss"), ("metrics", "the metrics"),
                      ("batch_size", "the task's batch_size")):
        if old_task.get(key) != new_task.get(key):
            out.append(f"{what} changed: {old_task.get(key)!r} then, {new_task.get(key)!r} now")
    if before.get("data") != now.get("data"):
        out.append("the range test's data changed")
    for key in ("config", "call"):
        a, b = before.get(key), now.get(key)
        if key == "call" and a and b:  # a call recorded under the range test's old keyword names
            a, b = current_names(a), current_names(b)
        if a != b:
            keys = sorted(k for k in set(a or {}) | set(b or {}) if (a or {}).get(k) != (b or {}).get(k))
            out.append(f"the settings changed: {', '.join(keys)}")
    if before.get("device") != now.get("device"):
        out.append(f"the device changed: {before.get('device')} then, {now.get('device')} now")
    old_v, new_v = before.get("versions") or {}, now.get("versions") or {}
    for name in ("python", "torch", "numpy", "tunewidgets"):
        if old_v.get(name) != new_v.get(name):
            out.append(f"{name} {old_v.get(name)} then, {new_v.get(name)} now")
    return out


def _size_change(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    if a.get("n") != b.get("n"):
        return f" ({a.get('n')} samples then, {b.get('n')} now)"
    if a.get("shapes") != b.get("shapes"):
        return f" (shapes {a.get('shapes')} then, {b.get('shapes')} now)"
    return " (same size, other values)"
