"""``digits()``: real handwritten digits, 8x8 pixels, ten classes; ships with the package.

Good for a first look at everything: an epoch takes a few milliseconds on a laptop CPU,
yet the data is real (1,797 scans of digits written by 43 people, UCI, CC BY 4.0), so
learning rates, batch sizes and widths behave as they do on bigger image tasks. A small
MLP passes 95% validation accuracy in a few epochs; a learning rate 10x too high or too
low shows at once in the loss curve, which makes it the task for a first LR range test.

Example:
    >>> import tunewidgets as tw
    >>> task = tw.tasks.digits()
    >>> x, y = task.train[0]
    >>> tuple(x.shape), x.dtype, y.dtype
    ((64,), torch.float32, torch.int64)
    >>> len(task.train) + len(task.val)
    1797
    >>> task.build_model(width=32)(x[None]).shape
    torch.Size([1, 10])
"""
from __future__ import annotations

import functools
import gzip
from importlib import resources

import numpy as np
import torch
from torch import nn

from tunewidgets.engine.task import Task
from tunewidgets.tasks._common import check_fraction, check_seed, check_whole, split, described
from tunewidgets.tasks.models import MLP

__all__ = ["digits", "digits_model", "load_digits"]

NUM_IMAGES = 1797
NUM_CLASSES = 10
NUM_PIXELS = 64


@functools.lru_cache(maxsize=1)
def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("tunewidgets.tasks").joinpath("data/digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    pixels, labels = table[:, :NUM_PIXELS], table[:, NUM_PIXELS]
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images as ``(pixels, labels)``: float32 ``(1797, 64)`` in [0, 1], int64 labels 0..9."""
    pixels, labels = _read_digits()
    return torch.tensor(pixels, dtype=torch.float32) / 16.0, torch.tensor(labels, dtype=torch.int64)


def digits_model(width: int = 128, depth: int = 1, dropout: float = 0.0,
                 activation: str = "relu") -> nn.Module:
    """The default digits network: an MLP from 64 pixels to 10 class logits.

    ``depth`` counts hidden layers of ``width`` units (0 gives multinomial logistic regression).
    """
    return MLP(NUM_PIXELS, NUM_CLASSES, width=width, depth=depth, dropout=dropout, activation=activation)


def digits(val_fraction: float = 0.2, seed: int = 0, batch_size: int = 64) -> Task:
    """The 8x8 handwritten digits as a classification ``Task``.

    Args:
        val_fraction: share of the 1,797 images held out for validation.
        seed: seeds the train/val split (the same seed gives the same split).
        batch_size: mini-batch size of training.

    Inputs are float32 ``(64,)`` rows of pixels scaled to [0, 1] (row-major 8x8: reshape to
    ``(1, 8, 8)`` to view one); targets are int64 class indices 0..9. Loss ``cross_entropy``,
    metric ``accuracy``; ``task.recommended`` (Adam, lr 1e-2, 10 epochs) reaches >= 95% val
    accuracy in about a second on a laptop CPU.
    """
    n_val = check_fraction(val_fraction, NUM_IMAGES)
    gen = torch.Generator().manual_seed(check_seed(seed))
    check_whole("batch_size", batch_size, 1, 64)
    pixels, labels = load_digits()
    train, val = split(pixels, labels, n_val, gen)
    task = Task(
        model=digits_model, train=train, val=val, loss="cross_entropy", metrics=("accuracy",),
        batch_size=batch_size, name="digits",
        recommended={"optimizer": "adam", "lr": 1e-2, "epochs": 10},
    )
    return described(task, "digits", {
        "val_fraction": val_fraction, "seed": seed, "batch_size": batch_size}, image_shape=(1, 8, 8))
