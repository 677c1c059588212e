"""Published starting points for training: ``tw.presets.get(name)``.

Each preset is a ``TrainConfig`` from a paper or a reference implementation, with its source
and what to adapt. A config, a widget or a search starts from one (``base=preset``), and
``preset.space()`` centres a search space on it.

=======================  ===============================================================
name                     what
=======================  ===============================================================
``sgd-resnet-cifar``     SGD 0.1, momentum 0.9, weight decay 5e-4, batch 128, lr / 10 at
                         50% and 75% of 164 epochs (He et al. 2016; decay as in WRN)
``adam``                 Adam 1e-3, betas (0.9, 0.999), eps 1e-8 (Kingma & Ba 2015)
``adamw``                AdamW 1e-3, decoupled weight decay 1e-2, cosine annealing
                         (Loshchilov & Hutter 2019)
``one-cycle``            SGD with the one-cycle policy: lr up to max_lr and down, momentum
                         0.95 -> 0.85 -> 0.95, weight decay 1e-4 (Smith 2018)
``transformer-warmup``   Adam betas (0.9, 0.98), eps 1e-9, linear warm-up over 4,000 steps to
                         7e-4, then inverse square root decay (Vaswani et al. 2017)
=======================  ===============================================================

Example:
    >>> import tunewidgets as tw
    >>> p = tw.presets.get("sgd-resnet-cifar")
    >>> p.config.optimizer, p.config.lr, p.config.momentum, p.config.weight_decay
    ('sgd', 0.1, 0.9, 0.0005)
    >>> p.source.split(";")[0]
    'He, Zhang, Ren and Sun 2016, Deep Residual Learning for Image Recognition (CVPR), section 4.2'
    >>> sorted(p.space())          # a space centred on the preset
    ['lr', 'momentum', 'weight_decay']
    >>> p.space()["lr"]
    LogUniform(0.01, 1.0)
    >>> p.with_epochs(20).config.schedule.milestones
    (10, 15)
    >>> tw.presets.get("transformer-warmup").for_steps(500).config.schedule.warmup_steps   # 4% of a short run
    20
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any

from tunewidgets.engine.config import TrainConfig
from tunewidgets.hpo.space import Dimension, LogUniform, Uniform
from tunewidgets.schedules import Cosine, InverseSqrt, MultiStep, OneCycle

__all__ = ["Preset", "PRESETS", "get", "names"]


@dataclass(frozen=True)
class Preset:
    """A published training recipe.

    Attributes:
        name: the key for ``tw.presets.get``.
        config: the recipe as a ``TrainConfig``.
        source: the paper or reference implementation, with the section that gives the values.
        url: where to read it.
        notes: what the source trained, and what to adapt to another task.
    """

    name: str
    config: TrainConfig
    source: str
    url: str
    notes: str
    tasks: tuple[str, ...] = ("digits", "spirals", "shapes", "sine")
    warmup_share: float | None = None

    def for_steps(self, total_steps: int) -> "Preset":
        """The recipe for a run of ``total_steps`` optimizer steps: a step-based warm-up that would
        not fit is cut to ``warmup_share`` of the run (the share its source gave it), at least one
        step (none in a one-step run). ``base=preset`` (or its name) in ``tw.search`` does this for the task's run."""
        schedule = self.config.schedule
        warmup = getattr(schedule, "warmup_steps", None)
        if (self.warmup_share is None or not isinstance(warmup, int) or getattr(schedule, "interval", "step") != "step"
                or warmup < total_steps):
            return self
        steps = max(0, min(total_steps - 1, max(1, round(self.warmup_share * total_steps))))  # 0: a 1-step run
        timescale = getattr(schedule, "timescale", None)
        changes: dict[str, Any] = {"warmup_steps": steps}
        if hasattr(schedule, "start_factor"):
            published = schedule.start_factor == 1 / warmup  # from lr / steps, as the source starts
            changes["start_factor"] = 1 / max(steps, 1) if published else schedule.start_factor
        if timescale is not None and timescale > total_steps:
            changes["timescale"] = steps
        return dataclasses.replace(self, config=self.config.replace(schedule=schedule.replace(**changes)))

    def with_epochs(self, epochs: int) -> "Preset":
        """The same recipe for ``epochs`` epochs; epoch milestones of the schedule scale along
        (each kept inside the run; a one-epoch run has no room for a decay, so none)."""
        cfg = self.config
        schedule = cfg.schedule
        if isinstance(schedule, MultiStep) and schedule.interval == "epoch":
            if epochs < 2:
                schedule = None
            else:
                scaled = sorted({min(max(1, round(m * epochs / cfg.epochs)), epochs - 1) for m in schedule.milestones})
                schedule = schedule.replace(milestones=tuple(scaled))
        return dataclasses.replace(self, config=cfg.replace(epochs=epochs, schedule=schedule))

    def space(self, keys: tuple[str, ...] | None = None, *, factor: float = 10.0,
              grid: int | None = None) -> dict[str, Dimension]:
        """A search space centred on the preset's values: ``{key: dimension}``.

        Rates (``lr``, or ``schedule.max_lr`` when the schedule sets the lr itself, and a
        non-zero ``weight_decay``) span ``value / factor`` to ``value * factor`` on a log scale;
        ``momentum`` spans 0.1 below to halfway up to 1 (0.8 to 0.95 around 0.9).

        Args:
            keys: which of those to include (default: all that the recipe sets).
            factor: how far the log ranges reach each side (> 1).
            grid: points per dimension for a grid search (None: continuous).
        """
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1:
            raise ValueError(f"factor: must be a number > 1, got {factor!r}; e.g. factor=10 (a decade each side)")
        cfg = self.config
        out: dict[str, Dimension] = {}
        if cfg.schedule is not None and getattr(cfg.schedule, "_peak_lr", lambda: None)() is not None:
            peak = cfg.schedule.max_lr
            out["schedule.max_lr"] = LogUniform(_round(peak / factor), _round(peak * factor), grid=grid)
        else:
            out["lr"] = LogUniform(_round(cfg.lr / factor), _round(cfg.lr * factor), grid=grid)
        cycles = cfg.schedule is not None and getattr(cfg.schedule, "_cycles_momentum", lambda: False)()
        if cfg.optimizer in ("sgd", "rmsprop") and cfg.momentum > 0 and not cycles:
            m = cfg.momentum
            out["momentum"] = Uniform(_round(max(0.0, m - 0.1)), _round(m + (1 - m) / 2), grid=grid)
        if cfg.weight_decay > 0:
            wd = cfg.weight_decay
            out["weight_decay"] = LogUniform(_round(wd / factor), _round(wd * factor), grid=grid)
        if keys is not None:
            unknown = [k for k in keys if k not in out]
            if unknown:
                raise ValueError(f"keys: preset {self.name!r} centres no range on {unknown}; "
                                 f"it has {sorted(out)}")
            out = {k: out[k] for k in keys}
        return out

    def __repr__(self) -> str:
        return f"Preset({self.name!r}: {self.source.split(';')[0]})"


def _round(v: float) -> float:
    """Four significant digits, so that ranges print as the numbers people write."""
    if v == 0:
        return 0.0
    digits = 3 - int(math.floor(math.log10(abs(v))))
    return round(v, digits)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="sgd-resnet-cifar",
        config=TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, batch_size=128,
                           epochs=164, schedule=MultiStep(milestones=(82, 123), gamma=0.1, interval="epoch")),
        source=("He, Zhang, Ren and Sun 2016, Deep Residual Learning for Image Recognition (CVPR), section 4.2; "
                "weight decay 5e-4 as in Zagoruyko and Komodakis 2016, Wide Residual Networks (BMVC), "
                "section 4, and common CIFAR reference implementations"),
        url="https://arxiv.org/abs/1512.03385",
        notes=("He et al. train CIFAR-10 ResNets with SGD, momentum 0.9, batch 128, lr 0.1 divided by 10 at "
               "32k and 48k of 64k iterations (here 50% and 75% of 164 epochs) and weight decay 1e-4; "
               "wider networks and most later recipes use 5e-4. Scale lr with the batch size "
               "(0.1 per 128) and use with_epochs(n) for shorter runs."),
    ),
    Preset(
        name="adam",
        config=TrainConfig(optimizer="adam", lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
        source="Kingma and Ba 2015, Adam: A Method for Stochastic Optimization (ICLR), Algorithm 1",
        url="https://arxiv.org/abs/1412.6980",
        notes=("The defaults the paper proposes for machine learning problems (alpha = 0.001, beta1 = 0.9, "
               "beta2 = 0.999, eps = 1e-8); also torch.optim.Adam's. A good first try for small networks."),
    ),
    Preset(
        name="adamw",
        config=TrainConfig(optimizer="adamw", lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-2,
                           schedule=Cosine()),
        source=("Loshchilov and Hutter 2019, Decoupled Weight Decay Regularization (ICLR), sections 2-3; "
                "weight decay 1e-2 is torch.optim.AdamW's default"),
        url="https://arxiv.org/abs/1711.05101",
        notes=("Adam with the weight decay applied to the weights directly instead of through the gradient, "
               "so that decay and learning rate can be tuned separately; the paper pairs it with cosine "
               "annealing. The best decay shrinks as runs get longer (their normalised decay)."),
    ),
    Preset(
        name="one-cycle",
        config=TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4,
                           schedule=OneCycle(max_lr=0.1, pct_start=0.3, base_momentum=0.85, max_momentum=0.95)),
        source=("Smith 2018, A disciplined approach to neural network hyper-parameters: Part 1 "
                "(arXiv:1803.09820), sections 4.1-4.4; pct_start, div_factor and final_div_factor as in "
                "torch.optim.lr_scheduler.OneCycleLR"),
        url="https://arxiv.org/abs/1803.09820",
        notes=("One cycle: the lr climbs from max_lr / 25 to max_lr over the first 30% of the run and anneals "
               "far below the start; momentum moves the other way, 0.95 -> 0.85 -> 0.95. Take max_lr from "
               "an LR range test (tw.lr_range_test): the schedule sets the lr itself, so search "
               "schedule.max_lr, not lr."),
    ),
    Preset(
        name="transformer-warmup",
        config=TrainConfig(optimizer="adam", lr=7e-4, betas=(0.9, 0.98), eps=1e-9,
                           schedule=InverseSqrt(warmup_steps=4000, start_factor=1 / 4000)),
        source="Vaswani et al. 2017, Attention Is All You Need (NeurIPS), section 5.3",
        url="https://arxiv.org/abs/1706.03762",
        notes=("lrate = d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5) with warmup_steps = 4000: a "
               "linear rise to about 7e-4 at step 4000 for d_model = 512, then decay as 1 / sqrt(step). "
               "Scale lr with d_model^-0.5. The paper warms up over 4,000 of 100,000 steps: a run too "
               "short for 4,000 (every built-in task) warms up over 4% of its steps (for_steps)."),
        warmup_share=0.04,
    ),
)}


def names() -> list[str]:
    """The names ``get`` knows."""
    return list(PRESETS)


def get(name: str) -> Preset:
    """The preset called ``name``; an unknown name lists the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"preset: expected a name such as 'adam', got {type(name).__name__} {name!r}")
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"preset: unknown name {name!r}{hint}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def as_config(base: Any) -> TrainConfig:
    """A ``TrainConfig`` from a config, a preset or a preset's name (what ``base=`` takes)."""
    if isinstance(base, TrainConfig):
        return base
    if isinstance(base, Preset):
        return base.config
    if isinstance(base, str):
        return get(base).config
    raise TypeError(f"base: expected a tw.TrainConfig, a preset (tw.presets.get(name)) or a preset name, "
                    f"got {type(base).__name__} {base!r}")
