"""Loss formulas torch lacks: sigmoid and softmax focal loss, soft Dice loss.

Shape conventions (shared with ``losses`` and ``metrics``):

* **multi-class**: output ``(N, C, *S)`` with ``C > 1`` and integer class targets ``(N, *S)``.
* **binary / multi-label**: output and target of the same shape, or output ``(N, 1, *S)``
  with target ``(N, *S)``; the output holds logits, the target 0/1 (or soft) values.

Example:
    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0]])            # p = 0.5 everywhere
    >>> round(float(soft_dice_loss(logits, torch.tensor([[1.0, 0.0]]), smooth=0.0)), 4)
    0.5
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["IGNORE_INDEX", "is_multiclass", "binary_view", "sigmoid_focal_loss", "softmax_focal_loss", "soft_dice_loss"]

_EPS = 1e-7


#: The label F.cross_entropy skips (padding, unlabelled pixels); metrics leave it out too.
IGNORE_INDEX = -100


def is_multiclass(output: torch.Tensor, target: torch.Tensor) -> bool:
    """True for output ``(N, C, *S)``, ``C > 1``, with target ``(N, *S)`` (class indices)."""
    return output.ndim == target.ndim + 1 and output.ndim >= 2 and output.shape[1] > 1


def binary_view(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output ``(N, 1, *S)`` with target ``(N, *S)``: drop the channel axis; else return both as they are."""
    if output.ndim == target.ndim + 1 and output.ndim >= 2 and output.shape[1] == 1:
        output = output.squeeze(1)
    return output, target


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                       alpha: float | None = 0.25) -> torch.Tensor:
    """Mean sigmoid focal loss (Lin et al. 2017), the formula torchvision uses.

    ``loss = alpha_t * (1 - p_t) ** gamma * BCE(logits, target)`` with ``p = sigmoid(logits)``,
    ``p_t = p * t + (1 - p) * (1 - t)`` and ``alpha_t = alpha * t + (1 - alpha) * (1 - t)``
    (no ``alpha_t`` factor when ``alpha`` is None). With ``gamma=0, alpha=None`` it is BCE.
    """
    logits = logits.float()
    target = target.to(logits.dtype)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.mean()


def softmax_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                       alpha: float | Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """Mean softmax focal loss for class-index targets: ``-alpha_t * (1 - p_t) ** gamma * log(p_t)``.

    ``p_t`` is the softmax probability of the true class. ``alpha``: None (no factor), a number
    (the same factor for every class) or one weight per class. With ``gamma=0, alpha=None``
    it is cross-entropy.
    """
    logp = F.log_softmax(logits.float(), dim=1)
    logp_t = logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    loss = -((1 - logp_t.exp()) ** gamma) * logp_t
    if isinstance(alpha, torch.Tensor):
        loss = loss * alpha.to(loss.device, loss.dtype)[target.long()]
    elif alpha is not None:
        loss = loss * alpha
    return loss.mean()


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 - Dice`` of soft predictions, summed over the batch and spatial positions.

    Binary: ``p = sigmoid(logits)``, ``dice = (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)``.
    Multi-class: ``p = softmax(logits, dim=1)``, targets one-hot, one dice per class, then the
    mean over classes.
    """
    if is_multiclass(logits, target):
        probs = logits.float().softmax(dim=1)
        onehot = torch.zeros_like(probs).scatter_(1, target.long().unsqueeze(1), 1.0)
        dims = (0, *range(2, probs.ndim))
        inter = (probs * onehot).sum(dims)
        card = probs.sum(dims) + onehot.sum(dims)
    else:
        logits, target = binary_view(logits, target)
        probs = torch.sigmoid(logits.float())
        t = target.to(probs.dtype)
        inter = (probs * t).sum()
        card = probs.sum() + t.sum()
    dice = (2 * inter + smooth) / (card + smooth).clamp_min(_EPS)
    return 1 - dice.mean()
