"""``shapes()``: segmentation of circles and rectangles in small noisy grey images.

Good for dense prediction with Dice and IoU: the model labels every pixel, the foreground
is a small share of each image (so plain pixel accuracy would flatter a model that says
"background" everywhere), and the loss choice matters: ``dice`` scores the overlap directly,
``ce_dice`` adds per-pixel cross-entropy, which gives steadier early gradients. With
``classes=2`` the model must also tell circles from rectangles by their outline, which
needs a receptive field wider than one shape: a job for the encoder of the tiny U-Net.

Example:
    >>> import tunewidgets as tw
    >>> task = tw.tasks.shapes(n=64)
    >>> x, mask = task.train.tensors
    >>> tuple(x.shape), tuple(mask.shape), mask.dtype
    ((51, 1, 32, 32), (51, 1, 32, 32), torch.float32)
    >>> task.build_model(width=4)(x[:2]).shape
    torch.Size([2, 1, 32, 32])
    >>> multi = tw.tasks.shapes(n=64, classes=2)
    >>> multi.train.tensors[1].shape, multi.loss
    (torch.Size([51, 32, 32]), 'ce_dice')
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from tunewidgets.engine.task import Task
from tunewidgets.tasks._common import check_fraction, check_number, check_seed, check_whole, split, described
from tunewidgets.tasks.models import TinyUNet

__all__ = ["shapes", "shapes_model", "make_shapes"]

BACKGROUND, CIRCLE, RECTANGLE = 0, 1, 2


def make_shapes(n: int = 512, size: int = 32, max_shapes: int = 3, noise: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images with 1..``max_shapes`` shapes each: float32 ``(n, 1, size, size)`` and int64 labels.

    The labels ``(n, size, size)`` are 0 for background, 1 for a circle, 2 for a rectangle
    (a later shape covers an earlier one). Pixels: a background level in [0, 0.3], each shape
    a level in [0.5, 1], plus Gaussian noise of standard deviation ``noise``.
    """
    g = generator
    s = max_shapes
    count = torch.randint(1, s + 1, (n, 1), generator=g)
    active = torch.arange(s) < count                                   # (n, s)
    kind = torch.randint(CIRCLE, RECTANGLE + 1, (n, s), generator=g)
    low, high = 0.1 * size, 0.2 * size
    half_w = low + (high - low) * torch.rand(n, s, generator=g)         # circle radius or half width
    half_h = torch.where(kind == CIRCLE, half_w, low + (high - low) * torch.rand(n, s, generator=g))
    cx = half_w + (size - 2 * half_w) * torch.rand(n, s, generator=g)  # shapes stay inside
    cy = half_h + (size - 2 * half_h) * torch.rand(n, s, generator=g)
    level = 0.5 + 0.5 * torch.rand(n, s, generator=g)

    # One test for both kinds, on separable parts: a pixel is inside when fx + fy <= limit.
    # Circle: fx = dx^2, fy = dy^2, limit = r^2. Rectangle: fx, fy = 0 inside the band, else inf.
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dx = grid - cx[..., None]                                           # (n, s, size)
    dy = grid - cy[..., None]
    circle = (kind == CIRCLE)[..., None]
    inf = torch.tensor(float("inf"))
    fx = torch.where(circle, dx**2, torch.where(dx.abs() <= half_w[..., None], 0.0, inf))
    fy = torch.where(circle, dy**2, torch.where(dy.abs() <= half_h[..., None], 0.0, inf))
    limit = torch.where(kind == CIRCLE, half_w**2, 0.0)
    limit = torch.where(active, limit, -1.0)                            # inactive slots cover nothing
    inside = fy[..., :, None] + fx[..., None, :] <= limit[..., None, None]  # (n, s, size, size)

    # the top shape at each pixel (a later one covers an earlier one); 0 where there is none
    order = torch.arange(1, s + 1, dtype=torch.uint8).view(1, s, 1, 1)
    top = (inside * order).amax(dim=1).view(n, -1).long()              # (n, size * size)
    background = 0.3 * torch.rand(n, 1, generator=g)
    labels = torch.cat([torch.zeros(n, 1, dtype=torch.int64), kind], 1).gather(1, top)
    image = torch.cat([background, level], 1).gather(1, top)
    image = (image + noise * torch.randn(n, size * size, generator=g)).view(n, size, size)
    labels = labels.view(n, size, size)
    return image.unsqueeze(1).float(), labels


def shapes_model(width: int = 8, dropout: float = 0.0, activation: str = "relu",
                 classes: int = 1) -> nn.Module:
    """The default shapes network: a tiny U-Net giving per-pixel logits.

    One output channel for the binary mask (``classes=1``), else ``classes + 1`` (background too).
    """
    out = 1 if classes == 1 else classes + 1
    return TinyUNet(1, out, width=width, dropout=dropout, activation=activation)


def shapes(n: int = 512, size: int = 32, classes: int = 1, max_shapes: int = 3, noise: float = 0.1,
           val_fraction: float = 0.2, seed: int = 0, batch_size: int = 64) -> Task:
    """Circles and rectangles to segment, as a ``Task``.

    Args:
        n: number of images (train + val).
        size: image height and width in pixels (even, >= 8).
        classes: 1 for a binary mask (any shape vs background); 2 to tell circles (label 1)
            from rectangles (label 2), with 0 for background.
        max_shapes: each image has between 1 and this many shapes.
        noise: standard deviation of the pixel noise; more is harder.
        val_fraction: share of the images held out for validation.
        seed: seeds the images and the train/val split.
        batch_size: mini-batch size of training.

    Inputs are float32 ``(1, size, size)`` images. With ``classes=1`` targets are float32
    ``(1, size, size)`` masks of 0 and 1, the model gives one logit per pixel, the loss is
    ``dice``; with ``classes=2`` targets are int64 ``(size, size)`` label maps, the model
    gives 3 logits per pixel, the loss is ``ce_dice``. Metrics: ``dice`` and ``iou`` (with
    ``classes=2`` the mean over background, circles and rectangles). The default model is
    the tiny U-Net of width 8 (width 16 with ``classes=2``); ``task.recommended`` reaches a
    val Dice above 0.9 in 10 epochs (binary) or 30 epochs (``classes=2``).
    """
    check_whole("n", n, 2, 512)
    check_whole("size", size, 8, 32)
    if size % 2:
        raise ValueError(f"size: must be even (the U-Net halves it once), got {size}; e.g. size=32")
    check_whole("classes", classes, 1, 1, high=2)
    check_whole("max_shapes", max_shapes, 1, 3)
    check_number("noise", noise, 0.0, 0.1)
    n_val = check_fraction(val_fraction, n)
    gen = torch.Generator().manual_seed(check_seed(seed))
    check_whole("batch_size", batch_size, 1, 64)
    x, labels = make_shapes(n, size, max_shapes, noise, generator=gen)
    target = (labels > 0).float().unsqueeze(1) if classes == 1 else labels
    train, val = split(x, target, n_val, gen)
    binary = classes == 1
    task = Task(
        model=functools.partial(shapes_model, classes=classes), train=train, val=val,
        model_kwargs={} if binary else {"width": 16},  # telling the shapes apart needs more channels
        loss="dice" if binary else "ce_dice", metrics=("dice", "iou"), batch_size=batch_size,
        name="shapes" if binary else "shapes-multiclass",
        recommended={"optimizer": "adam", "lr": 1e-2, "epochs": 10 if binary else 30},
    )
    return described(task, "shapes", {
        "n": n, "size": size, "classes": classes, "max_shapes": max_shapes, "noise": noise,
        "val_fraction": val_fraction, "seed": seed, "batch_size": batch_size}, image_shape=(1, size, size))
