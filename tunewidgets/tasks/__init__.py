"""Built-in tasks on data that ships with the package or is generated in milliseconds.

Each function returns a ready ``tw.Task`` (model factory, train/val data, loss, metrics)
with a seeded split, plus ``task.recommended``: ``TrainConfig`` keyword arguments that
train it well on a laptop CPU in seconds, e.g. ``tw.train(task, tw.TrainConfig(**task.recommended))``.

- ``digits()``: real 8x8 handwritten digits, 10 classes; the first task to try.
- ``spirals()``: 2-D interleaved spirals; shows model capacity and learning-rate effects.
- ``shapes()``: segmentation masks of circles and rectangles; Dice and IoU.
- ``sine()``: 1-D regression of a noisy sine; MSE loss and MAE.

Example:
    >>> import tunewidgets as tw
    >>> [tw.tasks.digits().name, tw.tasks.spirals().name, tw.tasks.shapes().name, tw.tasks.sine().name]
    ['digits', 'spirals', 'shapes', 'sine']
"""
from __future__ import annotations

from tunewidgets.tasks._digits import digits
from tunewidgets.tasks._shapes import shapes
from tunewidgets.tasks._sine import sine
from tunewidgets.tasks._spirals import spirals

__all__ = ["digits", "spirals", "shapes", "sine"]
