"""Where each space key lands in a ``TrainConfig``, and the checks that make it land well.

Three kinds of keys:

- a ``TrainConfig`` field: ``lr``, ``momentum``, ``optimizer``, ``batch_size``, ``epochs``...
  (``schedule`` too, as a ``Choice`` of schedule specs);
- ``schedule.<field>``: a field of the base config's schedule spec (``schedule.max_lr``), nested
  specs by their field (``schedule.then.eta_min`` for a ``Warmup``);
- ``model.<kwarg>``: a keyword argument of the task's model factory (``model.width``).

Example:
    >>> import tunewidgets as tw
    >>> from tunewidgets.hpo.targets import apply_params
    >>> base = tw.TrainConfig(optimizer="sgd", schedule=tw.schedules.OneCycle(max_lr=0.1))
    >>> cfg = apply_params(base, {"momentum": 0.8, "schedule.pct_start": 0.25, "model.width": 32})
    >>> cfg.momentum, cfg.schedule.pct_start, cfg.model_kwargs
    (0.8, 0.25, {'width': 32})
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tunewidgets.engine.config import TrainConfig
from tunewidgets.engine.optimizers import OPTIMIZERS

from tunewidgets.hpo.dimensions import Choice, Dimension, Fixed, SpaceError

if TYPE_CHECKING:
    from tunewidgets.engine.task import Task
    from tunewidgets.hpo.space import Space

__all__ = ["FIELD_KEYS", "OPTIMIZER_SETTINGS", "implicit_condition", "check_target", "apply_params",
           "valid_keys"]

# TrainConfig fields a space may set by name; the two dict fields are reached by prefix instead
FIELD_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig)
                   if f.name not in ("model_kwargs", "optimizer_kwargs"))

# The optimizers each common setting applies to (the engine gives the others nothing):
# a trial whose optimizer is not listed does not sample the setting.
OPTIMIZER_SETTINGS: dict[str, tuple[str, ...]] = {
    "momentum": ("sgd", "rmsprop"),
    "nesterov": ("sgd",),
    "betas": ("adam", "adamw"),
    "eps": ("adam", "adamw"),
    "weight_decay": tuple(o for o in OPTIMIZERS if o != "rprop"),
}

SCHEDULE_PREFIX = "schedule."
MODEL_PREFIX = "model."


def implicit_condition(key: str) -> tuple[str, tuple[Any, ...]] | None:
    """``("optimizer", names)`` when ``key`` applies only to some optimizers, else None."""
    names = OPTIMIZER_SETTINGS.get(key)
    return None if names is None else ("optimizer", names)


def _spec_fields(spec: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(spec)] if dataclasses.is_dataclass(spec) else []


def _is_spec(value: Any) -> bool:
    return hasattr(value, "build") and hasattr(value, "replace") and dataclasses.is_dataclass(value)


def _factory_kwargs(task: Task | None) -> list[str] | None:
    """Keyword arguments of the task's model factory; None when it takes any (or is unknown)."""
    if task is None:
        return None
    try:
        sig = inspect.signature(task.model)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                 inspect.Parameter.KEYWORD_ONLY)]


def valid_keys(base: TrainConfig, task: Task | None = None) -> list[str]:
    """Every key a space may use with this base config and task (model keys when known)."""
    keys = list(FIELD_KEYS)
    if _is_spec(base.schedule):
        keys += [SCHEDULE_PREFIX + name for name in _spec_fields(base.schedule)]
    kwargs = _factory_kwargs(task)
    if kwargs:
        keys += [MODEL_PREFIX + name for name in kwargs]
    return keys


def _unknown(key: str, base: TrainConfig, task: Task | None, why: str) -> Exception:
    keys = valid_keys(base, task)
    prefixed = [p + key for p in (MODEL_PREFIX, SCHEDULE_PREFIX) if p + key in keys]
    close = prefixed or difflib.get_close_matches(key, keys, n=1, cutoff=0.7)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    sched = (f"'schedule.<field>' for the base schedule {type(base.schedule).__name__} "
             f"({', '.join(_spec_fields(base.schedule))})" if _is_spec(base.schedule)
             else "'schedule.<field>' once the base config has a schedule spec")
    kwargs = _factory_kwargs(task)
    model = (f"'model.<kwarg>' for the model factory ({', '.join(kwargs)})" if kwargs
             else "'model.<kwarg>' for a keyword argument of the model factory")
    return SpaceError(f"{key}: {why}{hint}; valid keys are TrainConfig fields ({', '.join(FIELD_KEYS)}), "
                      f"{sched}, and {model}")


def check_target(key: str, dim: Dimension, space: Space, base: TrainConfig, task: Task | None) -> None:
    """Raise a SpaceError naming ``key`` if it does not map onto ``base`` (and ``task``) or
    if one of its values (its ends, every choice) is not a valid value there."""
    if key.startswith(MODEL_PREFIX):
        name = key[len(MODEL_PREFIX):]
        kwargs = _factory_kwargs(task)
        if not name or (kwargs is not None and name not in kwargs):
            raise _unknown(key, base, task, f"the model factory takes no argument {name!r}")
        return
    if key.startswith(SCHEDULE_PREFIX):
        if "schedule" in space:
            raise SpaceError(f"{key}: the space also chooses 'schedule' itself; search either the "
                             "schedule or its fields, not both")
        if not _is_spec(base.schedule):
            raise SpaceError(f"{key}: the base config has no schedule spec (schedule={base.schedule!r}); "
                             "give base=tw.TrainConfig(schedule=tw.schedules.OneCycle(...)) or drop the key")
        _schedule_target(key, base.schedule)
    elif key not in FIELD_KEYS:
        raise _unknown(key, base, task, "not a parameter a search can set")
    else:
        _field_rules(key, dim, space, base)
    # with the other keys at their first values too, for settings that need each other
    # (nesterov=True needs momentum > 0)
    others = {k: d.extremes()[0] for k, d in space.items() if k != key and k != "schedule"}
    for value in dim.extremes():
        try:
            apply_params(base, {key: value})
        except (ValueError, TypeError) as err:
            try:
                apply_params(base, {**others, key: value})
                continue
            except (ValueError, TypeError):
                pass
            shown = "its value" if isinstance(dim, Fixed) else "one of its values"
            if not isinstance(dim, (Choice, Fixed)):
                shown = "low" if value == dim.extremes()[0] else "high"
            raise SpaceError(f"{key}: {dim!r}: {shown} {value!r} is not valid there: {err}") from None


def _schedule_target(key: str, spec: Any) -> None:
    path = key[len(SCHEDULE_PREFIX):].split(".")
    node = spec
    for i, part in enumerate(path):
        fields = _spec_fields(node)
        if part not in fields:
            where = "schedule." + ".".join(path[:i]) if i else "the base schedule"
            raise SpaceError(f"{key}: {where} ({type(node).__name__}) has no field {part!r}; its fields are "
                             f"{', '.join(fields)}")
        node = getattr(node, part)
        if i < len(path) - 1 and not _is_spec(node):
            raise SpaceError(f"{key}: schedule.{'.'.join(path[:i + 1])} is {node!r}, not a schedule spec "
                             "with fields of its own")


def _field_rules(key: str, dim: Dimension, space: Space, base: TrainConfig) -> None:
    """Keys that would have no effect on any trial fail here, with the reason."""
    cond = implicit_condition(key)
    if cond is not None and "optimizer" not in space and base.optimizer not in cond[1]:
        raise SpaceError(f"{key}: applies only to optimizers {', '.join(cond[1])}, but the base optimizer is "
                         f"{base.optimizer!r} and the space does not search 'optimizer'; drop {key}, or "
                         f"search it with base=...replace(optimizer={cond[1][0]!r})")
    sched = base.schedule
    if "schedule" in space or not _is_spec(sched):
        return
    if key == "lr" and getattr(sched, "_peak_lr", lambda: None)() is not None:
        raise SpaceError(f"lr: the base schedule {type(sched).__name__} sets its own learning rate from max_lr, "
                         "so lr changes nothing; search 'schedule.max_lr' instead")
    if key == "momentum" and getattr(sched, "_cycles_momentum", lambda: False)():
        raise SpaceError(f"momentum: the base schedule {type(sched).__name__} cycles momentum itself, so "
                         "momentum changes nothing; search 'schedule.base_momentum' and "
                         "'schedule.max_momentum', or set cycle_momentum=False in the base schedule")


def apply_params(base: TrainConfig, params: Mapping[str, Any]) -> TrainConfig:
    """A copy of ``base`` with a trial's values applied (validated once, all changes together)."""
    fields: dict[str, Any] = {}
    schedule_changes: dict[str, Any] = {}
    model: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith(MODEL_PREFIX):
            model[key[len(MODEL_PREFIX):]] = value
        elif key.startswith(SCHEDULE_PREFIX):
            schedule_changes[key[len(SCHEDULE_PREFIX):]] = value
        else:
            fields[key] = value
    if schedule_changes:
        fields["schedule"] = _replace_nested(fields.get("schedule", base.schedule), schedule_changes)
    if model:
        fields["model_kwargs"] = {**base.model_kwargs, **model}
    return base.replace(**fields) if fields else base


def _replace_nested(spec: Any, changes: Mapping[str, Any]) -> Any:
    here: dict[str, Any] = {}
    deeper: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if rest:
            deeper.setdefault(head, {})[rest] = value
        else:
            here[head] = value
    for head, sub in deeper.items():
        here[head] = _replace_nested(getattr(spec, head), sub)
    return spec.replace(**here)
