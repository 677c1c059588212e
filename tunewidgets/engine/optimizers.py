"""Optimizers by name: check a name, build a torch optimizer with only the settings it takes.

Example:
    >>> import torch
    >>> from tunewidgets.engine.optimizers import build_optimizer, momentum_key
    >>> params = [torch.nn.Parameter(torch.zeros(2))]
    >>> opt = build_optimizer("adamw", params, lr=1e-3, momentum=0.9, weight_decay=0.01)
    >>> type(opt).__name__, opt.param_groups[0]["weight_decay"], momentum_key(opt)
    ('AdamW', 0.01, 'betas')
"""
from __future__ import annotations

import difflib
import inspect
import math
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from tunewidgets.engine._values import flag, is_flag, is_real

__all__ = ["OPTIMIZERS", "check_optimizer", "build_optimizer", "build_from_config", "momentum_key"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "rprop", "adagrad")

_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "rprop": torch.optim.Rprop,
    "adagrad": torch.optim.Adagrad,
}

# which of the common settings each optimizer takes; the others are ignored for it
_TAKES: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov", "weight_decay"),
    "adam": ("betas", "eps", "weight_decay"),
    "adamw": ("betas", "eps", "weight_decay"),
    "rmsprop": ("momentum", "weight_decay"),
    "rprop": (),
    "adagrad": ("weight_decay",),
}

_MOMENTUM_KEYS = {"sgd": "momentum", "rmsprop": "momentum", "adam": "betas", "adamw": "betas"}


def check_optimizer(name: Any) -> str:
    """Return ``name`` if it is a known optimizer name, else raise TypeError/ValueError.

    >>> check_optimizer("sgd")
    'sgd'
    >>> check_optimizer("Adam")
    Traceback (most recent call last):
    ...
    ValueError: optimizer: unknown optimizer 'Adam'; use one of: sgd, adam, adamw, rmsprop, rprop, adagrad (did you mean 'adam'?)
    """
    if not isinstance(name, str):
        raise TypeError(
            f"optimizer: expected a name (str) such as 'sgd' or 'adam', got {type(name).__name__} {name!r}; "
            f"use one of: {', '.join(OPTIMIZERS)}"
        )
    if name not in _CLASSES:
        close = difflib.get_close_matches(name.lower(), OPTIMIZERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"optimizer: unknown optimizer {name!r}; use one of: {', '.join(OPTIMIZERS)}{hint}")
    return name


_COMMON = ("lr", "momentum", "nesterov", "betas", "eps", "weight_decay")


def _check_no_common(kwargs: Mapping[str, Any]) -> None:
    clash = sorted(k for k in kwargs if k in _COMMON)
    if clash:
        raise ValueError(
            f"optimizer_kwargs: {clash} are set by their own fields; pass them as lr=..., momentum=... "
            "instead of inside optimizer_kwargs"
        )


def _accepted(cls: type) -> list[str]:
    return list(_keywords(cls))


def _keywords(cls: type) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(cls.__init__)
    return {p.name: p for p in sig.parameters.values()
            if p.name not in ("self", "params")
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def _takes_flag(p: inspect.Parameter) -> bool:
    """A keyword torch declares as a bool (``maximize: bool = False``, ``foreach: bool | None = None``)."""
    if isinstance(p.default, bool):
        return True
    ann = p.annotation
    if isinstance(ann, str):  # postponed annotations
        return ann.replace(" ", "") in ("bool", "bool|None", "None|bool", "Optional[bool]")
    return ann is bool or set(typing.get_args(ann)) == {bool, type(None)}


def _check_kwargs(name: str, cls: type, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Flags must be bools (or None where torch allows it); numbers must not be bools."""
    out = dict(kwargs)
    params = _keywords(cls)
    for key, value in kwargs.items():
        p = params[key]
        if _takes_flag(p):
            if value is None and p.default is None:
                continue
            out[key] = flag(f"optimizer_kwargs[{key!r}]", value,
                            f"{name} ({cls.__name__}) reads {key} as a switch")
        elif is_flag(value) and is_real(p.default):
            raise TypeError(f"optimizer_kwargs[{key!r}]: expected a number, got {value!r}; "
                            f"{name} ({cls.__name__}) reads {key} as a number (default {p.default!r})")
    return out


def build_optimizer(name: str, params: Iterable[Any], *, lr: float, momentum: float = 0.0,
                    nesterov: bool = False, betas: tuple[float, float] = (0.9, 0.999),
                    eps: float = 1e-8, weight_decay: float = 0.0, **kwargs: Any) -> torch.optim.Optimizer:
    """Build the torch optimizer ``name`` over ``params``.

    Each optimizer gets only the common settings it takes: ``momentum`` and ``nesterov``
    go to sgd (rmsprop takes ``momentum``), ``betas`` and ``eps`` to adam and adamw,
    ``weight_decay`` to all but rprop; the rest are ignored for it. Other keywords
    (``kwargs``) go to the torch class as they are, e.g. rprop ``etas`` or rmsprop ``alpha``;
    those torch declares as switches (``amsgrad``, ``maximize``, ``foreach``...) must be
    booleans, and those with a number default must not be booleans.

    Raises:
        ValueError: unknown name; a keyword the torch class does not take (the message lists
            the ones it does); ``weight_decay > 0`` with rprop, which has no weight decay.
        TypeError: a switch (``nesterov``, ``amsgrad``...) that is not True or False, e.g. "no".
    """
    check_optimizer(name)
    if not is_real(lr) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: must be a finite number > 0, got {lr!r}; try a value such as 1e-3")
    nesterov = flag("nesterov", nesterov, "nesterov=True turns Nesterov momentum on (sgd)")
    for key, value in (("momentum", momentum), ("eps", eps), ("weight_decay", weight_decay)):
        if not is_real(value):
            raise TypeError(f"{key}: expected a number, got {value!r}")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(is_real(b) for b in betas):
        raise TypeError(f"betas: expected two numbers, e.g. (0.9, 0.999), got {betas!r}")
    cls = _CLASSES[name]
    accepted = _accepted(cls)
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise ValueError(
            f"optimizer_kwargs: {name} ({cls.__name__}) takes no keyword(s) {unknown}; "
            f"it accepts {', '.join(accepted)}"
        )
    kwargs = _check_kwargs(name, cls, kwargs)
    if name == "rprop" and weight_decay:
        raise ValueError(
            f"weight_decay: rprop has no weight decay, got weight_decay={weight_decay!r}; "
            "set weight_decay=0 or choose another optimizer (e.g. adamw)"
        )
    if name == "sgd" and nesterov and not momentum:
        raise ValueError("nesterov: needs momentum > 0 with sgd; set momentum=0.9 or nesterov=False")
    settings: dict[str, Any] = {"momentum": momentum, "nesterov": nesterov, "betas": tuple(betas),
                                "eps": eps, "weight_decay": weight_decay}
    chosen = {k: settings[k] for k in _TAKES[name]}
    if name == "sgd" and not nesterov:
        chosen.pop("nesterov")
    return cls(params, lr=lr, **chosen, **kwargs)


def build_from_config(cfg: Any, params: Iterable[Any]) -> torch.optim.Optimizer:
    """Build the optimizer a ``TrainConfig`` describes over ``params``.

    >>> import torch, tunewidgets as tw
    >>> cfg = tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True)
    >>> opt = build_from_config(cfg, [torch.nn.Parameter(torch.zeros(1))])
    >>> opt.param_groups[0]["nesterov"], opt.param_groups[0]["momentum"]
    (True, 0.9)
    """
    kwargs: Mapping[str, Any] = getattr(cfg, "optimizer_kwargs", None) or {}
    _check_no_common(kwargs)
    return build_optimizer(cfg.optimizer, params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, **dict(kwargs))


def momentum_key(optimizer: torch.optim.Optimizer | str) -> str | None:
    """Which param-group key holds momentum: ``"momentum"``, ``"betas"`` (its first entry) or None.

    Takes an optimizer, or an optimizer name from ``OPTIMIZERS``.

    >>> momentum_key("sgd"), momentum_key("adam"), momentum_key("adagrad")
    ('momentum', 'betas', None)
    """
    if isinstance(optimizer, str):
        check_optimizer(optimizer)
        return _MOMENTUM_KEYS.get(optimizer)
    defaults = getattr(optimizer, "defaults", None)
    if not isinstance(defaults, Mapping):
        raise TypeError(f"optimizer: expected a torch optimizer or a name, got {type(optimizer).__name__}")
    if "betas" in defaults:
        return "betas"
    if "momentum" in defaults:
        return "momentum"
    return None
