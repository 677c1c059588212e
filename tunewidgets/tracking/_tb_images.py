"""Grids of validation images with what the model predicted, for TensorBoard's Images tab.

The input is an EVAL record's ``examples`` (``inputs``, ``outputs``, ``targets``: CPU tensors,
see ``Trainer(eval_examples=...)``). Inputs are images when they are ``(N, C, H, W)`` with 1 or
3 channels, or when ``image_shape`` (a task's ``task.image_shape``, e.g. ``(1, 8, 8)`` for the
digits' flat rows) says how to view them.

- classification (outputs ``(N, K)``): one cell per image with ``p=<predicted> t=<true>``
  under it, framed green when right and red when wrong;
- segmentation (outputs ``(N, C, H, W)`` of the input's size): per image three panels, the
  input, the true mask and the predicted mask (binary: white on black; classes: colours).

Example:
    >>> import torch
    >>> from tunewidgets.tracking._tb_images import prediction_grid, RIGHT, cell_box
    >>> examples = {"inputs": torch.rand(4, 64), "outputs": torch.eye(10)[[1, 2, 3, 4]],
    ...             "targets": torch.tensor([1, 2, 3, 0])}
    >>> grid = prediction_grid(examples, image_shape=(1, 8, 8))
    >>> grid.shape, grid.dtype.name
    ((176, 148, 3), 'uint8')
    >>> left, top, _, _ = cell_box(0, 4, 8, 8)
    >>> tuple(grid[top, left]) == RIGHT
    True
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["prediction_grid", "cell_box", "RIGHT", "WRONG", "CELL_PIXELS"]

RIGHT = (40, 170, 70)
WRONG = (220, 50, 50)
CELL_PIXELS = 64   # an image is scaled up (nearest) to about this size
_BORDER, _GAP, _CAPTION = 2, 4, 14
_PALETTE = np.array([(0, 0, 0), (255, 255, 255), (255, 90, 90), (80, 160, 255), (250, 200, 60),
                     (120, 220, 120), (200, 120, 255), (255, 150, 200)], dtype=np.uint8)


def _scale(h: int, w: int) -> int:
    return max(1, CELL_PIXELS // max(h, w))


def _as_images(x: torch.Tensor, image_shape: Any) -> torch.Tensor | None:
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if x[0].numel() != math.prod(shape):
            return None
        x = x.reshape(x.shape[0], *shape)
        if len(shape) == 2:
            x = x[:, None]
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        return None
    return x.float()


def _to_rgb(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) float -> (N, H, W, 3) uint8, each image stretched to its own min..max."""
    a = np.nan_to_num(images.numpy().astype(np.float64))
    lo = a.min(axis=(1, 2, 3), keepdims=True)
    span = a.max(axis=(1, 2, 3), keepdims=True) - lo
    a = np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), 0.0).transpose(0, 2, 3, 1)
    if a.shape[3] == 1:
        a = np.repeat(a, 3, axis=3)
    return (a * 255).round().astype(np.uint8)


def _up(a: np.ndarray, s: int) -> np.ndarray:
    return a.repeat(s, axis=0).repeat(s, axis=1)


def _mask_rgb(mask: np.ndarray) -> np.ndarray:
    return _PALETTE[np.asarray(mask, dtype=np.int64) % len(_PALETTE)]


def cell_box(i: int, n: int, h: int, w: int) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the framed cell of image ``i`` (of ``n``) in a classification grid."""
    cols = math.ceil(math.sqrt(n))
    s = _scale(h, w)
    cw, ch = w * s + 2 * _BORDER, h * s + 2 * _BORDER + _CAPTION
    left, top = _GAP + (i % cols) * (cw + _GAP), _GAP + (i // cols) * (ch + _GAP)
    return left, top, left + cw, top + ch


_FONT: Any = None


def _texts(canvas: np.ndarray, texts: list[tuple[int, int, str, tuple[int, int, int]]]) -> np.ndarray:
    """``canvas`` with the texts written on it (PIL's small bitmap font, loaded once: quick to draw)."""
    global _FONT
    from PIL import Image, ImageDraw, ImageFont

    if _FONT is None:
        bitmap = getattr(ImageFont, "load_default_imagefont", None)  # Pillow >= 10.1
        _FONT = bitmap() if bitmap is not None else ImageFont.load_default()
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for x, y, text, colour in texts:
        draw.text((x, y), text, fill=colour, font=_FONT)
    return np.asarray(image)


def _classification(images: torch.Tensor, pred: list[int], true: list[int]) -> np.ndarray:
    n, _, h, w = images.shape
    cols, rows = math.ceil(math.sqrt(n)), math.ceil(n / math.ceil(math.sqrt(n)))
    right, bottom = cell_box(cols * rows - 1, cols * rows, h, w)[2:]
    canvas = np.full((bottom + _GAP, right + _GAP, 3), 255, dtype=np.uint8)
    s = _scale(h, w)
    rgb = _to_rgb(images)
    texts = []
    for i in range(n):
        left, top, r, b = cell_box(i, n, h, w)
        canvas[top:b, left:r] = RIGHT if pred[i] == true[i] else WRONG
        canvas[top + _BORDER:top + _BORDER + h * s, left + _BORDER:left + _BORDER + w * s] = _up(rgb[i], s)
        texts.append((left + _BORDER + 1, b - _CAPTION, f"p={pred[i]} t={true[i]}", (255, 255, 255)))
    return _texts(canvas, texts)


def _segmentation(images: torch.Tensor, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    n, _, h, w = images.shape
    s = _scale(h, w)
    ph, pw = h * s, w * s
    per_row = 2 if n > 1 else 1
    rows = math.ceil(n / per_row)
    group = 3 * pw + 2 * _BORDER
    width = _GAP + per_row * (group + 3 * _GAP)
    canvas = np.full((_CAPTION + _GAP + rows * (ph + _GAP), width, 3), 255, dtype=np.uint8)
    rgb = _to_rgb(images)
    texts = []
    for g in range(per_row):
        x0 = _GAP + g * (group + 3 * _GAP)
        for k, label in enumerate(("input", "true", "pred")):
            texts.append((x0 + k * (pw + _BORDER) + 2, 1, label, (0, 0, 0)))
    for i in range(n):
        x0 = _GAP + (i % per_row) * (group + 3 * _GAP)
        y0 = _CAPTION + _GAP + (i // per_row) * (ph + _GAP)
        panels = (rgb[i], _mask_rgb(true[i]), _mask_rgb(pred[i]))
        for k, panel in enumerate(panels):
            x = x0 + k * (pw + _BORDER)
            canvas[y0:y0 + ph, x:x + pw] = _up(panel, s)
    return _texts(canvas, texts)


def prediction_grid(examples: dict[str, Any], image_shape: Any = None, limit: int = 16) -> np.ndarray | None:
    """An ``(H, W, 3)`` uint8 picture of the examples and their predictions, or None when they are not images."""
    x, out, y = examples.get("inputs"), examples.get("outputs"), examples.get("targets")
    if not all(isinstance(t, torch.Tensor) for t in (x, out, y)) or x.shape[0] == 0:
        return None
    images = _as_images(x, image_shape)
    if images is None:
        return None
    n = min(images.shape[0], out.shape[0], y.shape[0], limit)
    images, out, y = images[:n], out[:n].float(), y[:n]
    if out.dim() == 2:  # classification: logits (N, K), or one logit for a binary label
        pred = out.argmax(1) if out.shape[1] > 1 else (out[:, 0] > 0).long()
        true = y.reshape(n, -1)[:, 0] if y.dim() > 1 else y
        if true.is_floating_point():
            true = true.round()
        return _classification(images, [int(v) for v in pred], [int(v) for v in true.long()])
    if out.dim() == 4 and out.shape[-2:] == images.shape[-2:]:  # segmentation
        n = min(n, max(1, limit // 2))
        images, out, y = images[:n], out[:n], y[:n]
        pred = (out[:, 0] > 0).long() if out.shape[1] == 1 else out.argmax(1)
        true = (y[:, 0] > 0.5).long() if y.dim() == 4 else y.long()
        return _segmentation(images, pred.numpy(), true.numpy())
    return None
