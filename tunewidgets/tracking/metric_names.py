"""Metric names: the one converter between a run's record keys and the names stores and sinks use.

A metric has one form in a run's records (the engine's keys: ``loss``, ``train_loss``,
``val_loss``, ``val_accuracy``) and one in the store, TensorBoard and MLflow (``train/loss``,
``train/epoch_loss``, ``val/loss``, ``val/accuracy``). :func:`metric_name` goes from the first to
the second, :func:`record_key` back; :func:`metric_key` takes what a user may type (either form,
or a bare ``accuracy``) to the record key. Every module that turns one into another calls these.

- LOG rows: ``loss`` -> ``train/loss``, ``lr`` -> ``lr``, ``smoothed`` -> ``train/smoothed``;
- EPOCH: ``train_loss`` -> ``train/epoch_loss``;
- EVAL: ``val_<metric>`` -> ``val/<metric>``;
- any other key keeps its name.

Example:
    >>> from tunewidgets.tracking.metric_names import metric_key, metric_name, record_key
    >>> [metric_name(k) for k in ("loss", "train_loss", "val_accuracy", "lr")]
    ['train/loss', 'train/epoch_loss', 'val/accuracy', 'lr']
    >>> [record_key(metric_name(k)) for k in ("loss", "train_loss", "val_accuracy", "lr")]
    ['loss', 'train_loss', 'val_accuracy', 'lr']
    >>> [metric_key(m, known=("val_loss", "val_accuracy")) for m in ("accuracy", "val/accuracy", "val_accuracy")]
    ['val_accuracy', 'val_accuracy', 'val_accuracy']
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["metric_name", "record_key", "metric_key", "VAL_PREFIX", "EPOCH_LOSS"]

VAL_PREFIX = "val_"
EPOCH_LOSS = "train/epoch_loss"  # the per-epoch training loss, as stored
_NAMES = {"loss": "train/loss", "lr": "lr", "smoothed": "train/smoothed", "train_loss": EPOCH_LOSS}
_KEYS = {name: key for key, name in _NAMES.items()}


def metric_name(key: str) -> str:
    """The stored name of a record's key (``loss`` -> ``train/loss``, ``val_acc`` -> ``val/acc``)."""
    name = _NAMES.get(key)
    if name is not None:
        return name
    if key.startswith(VAL_PREFIX) and len(key) > len(VAL_PREFIX):
        return "val/" + key[len(VAL_PREFIX):]
    return key


def record_key(name: str) -> str:
    """The record key of a stored name: the inverse of :func:`metric_name` (``val/acc`` -> ``val_acc``)."""
    key = _KEYS.get(name)
    if key is not None:
        return key
    if name.startswith("val/") and len(name) > 4:
        return VAL_PREFIX + name[4:]
    return name


def metric_key(metric: str, known: Iterable[str] = ()) -> str:
    """What a user calls a metric, as a record key: a stored name, a record key, or a bare name of
    ``known`` keys without its ``val_`` (``"accuracy"`` when ``val_accuracy`` is known)."""
    key = record_key(metric)
    if key == "train_epoch_loss":  # the stored name with its slash typed as an underscore
        key = "train_loss"
    known = tuple(known)
    if key not in known and VAL_PREFIX + key in known:
        key = VAL_PREFIX + key
    return key
