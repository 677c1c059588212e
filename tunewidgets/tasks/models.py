"""Small networks behind the built-in tasks: an MLP and a tiny U-Net.

Their keyword arguments (``width``, ``depth``, ``dropout``, ``activation``) are the knobs a
search turns: ``tw.TrainConfig(model_kwargs={"width": 256})`` or a search space entry
``"width": tw.space.Choice([32, 64, 128])`` reach them through ``Task.build_model``.

Example:
    >>> import torch
    >>> from tunewidgets.tasks.models import MLP, TinyUNet
    >>> MLP(64, 10, width=32, depth=2)(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    >>> TinyUNet(1, 1, width=4)(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "TinyUNet", "ACTIVATIONS"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def _check_model_args(width: object, depth: object, dropout: object, activation: object,
                      min_depth: int = 0) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width: must be a whole number >= 1, got {width!r}; e.g. width=64")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < min_depth:
        raise ValueError(f"depth: must be a whole number >= {min_depth}, got {depth!r}; e.g. depth=2")
    if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
            or not 0.0 <= dropout < 1.0):
        raise ValueError(f"dropout: must be a number in [0, 1), got {dropout!r}; e.g. dropout=0.1")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: unknown name {activation!r}; choose one of {sorted(ACTIVATIONS)}")


class MLP(nn.Sequential):
    """Fully connected network: ``depth`` hidden layers of ``width`` units, then a linear output.

    Inputs of any shape ``(N, ...)`` are flattened first. ``depth=0`` is a linear model.
    """

    def __init__(self, in_features: int, out_features: int, width: int = 64, depth: int = 1,
                 dropout: float = 0.0, activation: str = "relu") -> None:
        _check_model_args(width, depth, dropout, activation)
        layers: list[nn.Module] = [nn.Flatten()]
        size = in_features
        for _ in range(depth):
            layers += [nn.Linear(size, width), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = width
        layers.append(nn.Linear(size, out_features))
        super().__init__(*layers)


def _conv(cin: int, cout: int, activation: str) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), ACTIVATIONS[activation]()]


class TinyUNet(nn.Module):
    """A two-level U-Net: per-pixel logits of shape ``(N, out_channels, H, W)``.

    One 3x3 convolution of ``width`` channels at full resolution, a max-pool, two of
    ``2 * width`` at half resolution (where the context comes from), a transposed
    convolution back up, the full-resolution features joined again (the skip connection),
    one more 3x3 convolution and a 1x1 head. Few convolutions run at full resolution, so an
    epoch stays cheap on a CPU. No batch norm, so trials can also be trained side by side
    with ``torch.func``. H and W must be even.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 8,
                 dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        _check_model_args(width, 0, dropout, activation)
        w = width
        self.down = nn.Sequential(*_conv(in_channels, w, activation))
        self.bottom = nn.Sequential(*_conv(w, 2 * w, activation), *_conv(2 * w, 2 * w, activation))
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.up = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.merge = nn.Sequential(*_conv(2 * w, w, activation))
        self.head = nn.Conv2d(w, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)
        deep = self.drop(self.bottom(nn.functional.max_pool2d(skip, 2)))
        return self.head(self.merge(torch.cat([skip, self.up(deep)], dim=1)))
