"""One optimizer step for K models at once: parameters stacked along dim 0, hyperparameters of shape (K,).

``torch.optim`` takes one learning rate per parameter group ("Tensor lr must be 1-element"), so
K trials with K learning rates, momenta and weight decays cannot share one of its steps. This
module is that step, written with the same tensor operations as torch's single-tensor
implementations (``_single_tensor_sgd``, ``_single_tensor_adam``, ``_single_tensor_rprop``), so
trial ``k`` of a :class:`BatchedOptimizer` makes the same updates, to float rounding, as a torch
optimizer of its own with trial ``k``'s settings (``tests/engine/test_batched_optim.py`` checks
each optimizer and option against torch trial by trial).

- ``sgd``: ``lr``, ``momentum``, ``nesterov``, ``weight_decay`` (each per trial);
- ``adam`` / ``adamw``: ``lr``, ``betas``, ``eps``, ``weight_decay`` (L2 for adam, decoupled for adamw);
- ``rprop``: ``lr`` (the initial step size), ``etas``, ``step_sizes``.

:func:`fused_settings` reads a ``TrainConfig`` into one trial's settings, or says in one line why
the batched step cannot run it (another optimizer, an ``optimizer_kwargs`` entry it lacks).
``set(name, values)`` changes a hyperparameter of all trials between steps (a schedule's lr,
momentum or beta1); ``clip_grad_norm(max_norms)`` clips each trial's gradients to its own norm;
``select(index, params)`` keeps only some trials (those still training).

Example:
    >>> import torch
    >>> from tunewidgets.engine.batched_optim import BatchedOptimizer
    >>> w = torch.zeros(3, 2, requires_grad=True)          # 3 trials, 2 weights each
    >>> opt = BatchedOptimizer("sgd", [w], [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}])
    >>> w.grad = torch.ones(3, 2)
    >>> opt.step()
    >>> w[:, 0].tolist()
    [-0.10000000149011612, -0.20000000298023224, -0.30000001192092896]
"""
from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from tunewidgets.engine.optimizers import _CLASSES

__all__ = ["BatchedOptimizer", "FUSED_OPTIMIZERS", "fused_settings"]

FUSED_OPTIMIZERS = ("sgd", "adam", "adamw", "rprop")

# per-trial settings of each optimizer, with torch's defaults
_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2},
    "rprop": {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)},
}
_KWARGS = {"rprop": ("etas", "step_sizes")}  # optimizer_kwargs the batched step reads


def fused_settings(cfg: Any) -> dict[str, Any] | str:
    """One trial's settings for :class:`BatchedOptimizer` from a ``TrainConfig``, or why there are none.

    >>> import tunewidgets as tw
    >>> fused_settings(tw.TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9))
    {'lr': 0.1, 'momentum': 0.9, 'nesterov': False, 'weight_decay': 0.0}
    >>> fused_settings(tw.TrainConfig(optimizer="rmsprop"))
    "optimizer 'rmsprop' has no batched step (the fused path has sgd, adam, adamw, rprop)"
    """
    name = cfg.optimizer
    if name not in FUSED_OPTIMIZERS:
        return f"optimizer {name!r} has no batched step (the fused path has {', '.join(FUSED_OPTIMIZERS)})"
    kwargs = dict(getattr(cfg, "optimizer_kwargs", None) or {})
    own = _KWARGS.get(name, ())
    defaults = _torch_defaults(name)
    other = sorted(k for k, v in kwargs.items() if k not in own and not (k in defaults and v == defaults[k]))
    if other:
        return f"optimizer_kwargs {other} of {name} are not in the batched step"
    out: dict[str, Any] = {"lr": cfg.lr}
    if name == "sgd":
        out.update(momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    elif name in ("adam", "adamw"):
        out.update(betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    else:
        out.update({k: tuple(kwargs.get(k, _DEFAULTS["rprop"][k])) for k in own})
    return out


@functools.lru_cache(maxsize=None)
def _torch_defaults(name: str) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(_CLASSES[name].__init__).parameters.values()}


class BatchedOptimizer:
    """The ``name`` optimizer over stacked parameters (each of shape ``(K, ...)``), one settings dict per trial.

    Args:
        name: one of ``FUSED_OPTIMIZERS``.
        params: leaf tensors whose first dimension is the trial; ``step()`` updates them in place
            from their ``.grad`` (a parameter without a gradient is left alone, as torch does).
        settings: K dicts (see :func:`fused_settings`); a missing key takes torch's default.
    """

    def __init__(self, name: str, params: Sequence[torch.Tensor], settings: Sequence[Mapping[str, Any]]) -> None:
        if name not in FUSED_OPTIMIZERS:
            raise ValueError(f"optimizer: {name!r} has no batched step; use one of {', '.join(FUSED_OPTIMIZERS)}")
        self.name, self.params = name, list(params)
        self.k = len(settings)
        for p in self.params:
            if p.dim() == 0 or p.shape[0] != self.k:
                raise ValueError(f"params: each must have the {self.k} trials along dim 0, got shape {tuple(p.shape)}")
        full = [{**_DEFAULTS[name], **s} for s in settings]
        unknown = sorted({key for s in full for key in s} - set(_DEFAULTS[name]))
        if unknown:
            raise ValueError(f"settings: {name} takes no {unknown}; it takes {sorted(_DEFAULTS[name])}")
        # host copies (python floats, as torch's param groups hold them), one list per setting
        self.hyper: dict[str, list[Any]] = {}
        for key in _DEFAULTS[name]:
            values = [s[key] for s in full]
            if key in ("betas", "etas", "step_sizes"):
                self.hyper[key + "0"] = [float(v[0]) for v in values]
                self.hyper[key + "1"] = [float(v[1]) for v in values]
            elif key == "nesterov":
                self.hyper[key] = [bool(v) for v in values]
            else:
                self.hyper[key] = [float(v) for v in values]
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        self.steps = 0
        self._cols: dict[str, torch.Tensor] = {}

    # -- settings -----------------------------------------------------------------------
    def set(self, key: str, values: Sequence[float]) -> None:
        """Set a per-trial value for the next steps: ``lr``, ``momentum`` (sgd), ``betas0`` (beta1)..."""
        if key not in self.hyper:
            raise KeyError(f"{self.name} has no setting {key!r}; it has {sorted(self.hyper)}")
        values = [float(v) for v in values]
        if values != self.hyper[key]:
            self.hyper[key] = values
            self._cols.clear()

    def select(self, index: Sequence[int], params: Sequence[torch.Tensor]) -> None:
        """Keep the trials at ``index`` (in that order); ``params`` are the parameters, already selected."""
        idx = list(index)
        self.params = list(params)
        self.k = len(idx)
        self.hyper = {key: [v[i] for i in idx] for key, v in self.hyper.items()}
        where = None
        for state in self.state:
            for key, t in state.items():
                if where is None or where.device != t.device:
                    where = torch.tensor(idx, dtype=torch.long, device=t.device)
                state[key] = t.index_select(0, where)
        self._cols.clear()

    def _col(self, key: str, like: torch.Tensor) -> torch.Tensor:
        """A setting's per-trial values as a ``(K, 1, 1...)`` tensor of ``like``'s dtype, device and rank (kept
        until the setting changes)."""
        cache_key = f"{key}/{like.dim()}/{like.dtype}/{like.device}"
        col = self._cols.get(cache_key)
        if col is None:
            col = torch.tensor(self.hyper[key], dtype=torch.float64).to(like.device, like.dtype)
            col = self._cols[cache_key] = col.view(-1, *[1] * (like.dim() - 1))
        return col

    # -- the step -----------------------------------------------------------------------
    @torch.no_grad()
    def step(self) -> None:
        """One update of every trial from the parameters' gradients."""
        self.steps += 1
        update = {"sgd": self._sgd, "adam": self._adam, "adamw": self._adam, "rprop": self._rprop}[self.name]
        scalars = None
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                if scalars is None and self.name in ("adam", "adamw"):
                    scalars = self._adam_scalars(p)
                update(p, p.grad, state, scalars)

    @torch.no_grad()
    def clip_grad_norm(self, max_norms: Sequence[float | None]) -> None:
        """Scale each trial's gradients to a total 2-norm of at most its ``max_norm`` (None: leave them).

        As ``torch.nn.utils.clip_grad_norm_`` per trial: the norm of the parameters' norms, then
        ``grad * min(max_norm / (norm + 1e-6), 1)``.
        """
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads or all(m is None for m in max_norms):
            return
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(g.shape[0], -1), 2, dim=1) for g in grads])  # (n params, K)
        total = torch.linalg.vector_norm(norms, 2, dim=0)
        limit = torch.tensor([math.inf if m is None else float(m) for m in max_norms], dtype=torch.float64)
        limit = limit.to(total.device, total.dtype)
        coef = torch.where(torch.isinf(limit), torch.ones_like(total), torch.clamp(limit / (total + 1e-6), max=1.0))
        for g in grads:
            g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none``, as the train loop does)."""
        for p in self.params:
            p.grad = None

    def _sgd(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor], _: Any) -> None:
        h = self.hyper
        if any(h["weight_decay"]):
            grad = grad + self._col("weight_decay", p) * p
        if any(h["momentum"]):
            m = self._col("momentum", p)
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(m).add_(grad)
            if all(h["nesterov"]):
                grad = grad + m * buf
            elif any(h["nesterov"]):
                nesterov = torch.tensor(h["nesterov"], device=p.device).view(-1, *[1] * (p.dim() - 1))
                grad = torch.where(nesterov, grad + m * buf, buf)
            else:
                grad = buf
        p.add_(-self._col("lr", p) * grad)

    def _adam_scalars(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """This step's per-trial factors, computed in double precision as torch computes them from its
        python floats, then moved to ``like``'s device and dtype in one transfer, as ``(K,)`` tensors."""
        h, n = self.hyper, self.steps
        rows = {"w1": [1 - b for b in h["betas0"]], "w2": [1 - b for b in h["betas1"]],
                "neg_step": [-(lr / (1 - b ** n)) for lr, b in zip(h["lr"], h["betas0"])],
                "bc2_sqrt": [(1 - b ** n) ** 0.5 for b in h["betas1"]]}
        if self.name == "adamw":
            rows["decay"] = [1 - lr * wd for lr, wd in zip(h["lr"], h["weight_decay"])]
        table = torch.tensor(list(rows.values()), dtype=torch.float64).to(like.device, like.dtype)
        return dict(zip(rows, table.unbind(0)))

    def _adam(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor],
              scalars: dict[str, torch.Tensor]) -> None:
        h, shape = self.hyper, (-1, *[1] * (p.dim() - 1))
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        if any(h["weight_decay"]):
            if self.name == "adamw":
                p.mul_(scalars["decay"].view(shape))
            else:
                grad = grad + self._col("weight_decay", p) * p
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, scalars["w1"].view(shape))
        exp_avg_sq.mul_(self._col("betas1", p)).add_(scalars["w2"].view(shape) * grad * grad)
        denom = (exp_avg_sq.sqrt() / scalars["bc2_sqrt"].view(shape)).add_(self._col("eps", p))
        p.add_(scalars["neg_step"].view(shape) * exp_avg / denom)

    def _rprop(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor], _: Any) -> None:
        if not state:
            state["prev"] = torch.zeros_like(p)
            state["step_size"] = self._col("lr", p).expand_as(p).clone()
        prev, step_size = state["prev"], state["step_size"]
        minus, plus = self._col("etas0", p), self._col("etas1", p)
        sign = grad.mul(prev).sign()
        sign = torch.where(sign > 0, plus, sign)
        sign = torch.where(sign < 0, minus, sign)
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        step_size.mul_(sign)
        torch.clamp(step_size, self._col("step_sizes0", p), self._col("step_sizes1", p), out=step_size)
        grad = torch.where(sign == minus, torch.zeros_like(grad), grad)
        p.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)
