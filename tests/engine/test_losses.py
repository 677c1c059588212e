"""Losses by name: values against torch or hand arithmetic, and shape errors that name the fix."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from no_host_sync import no_host_reads

from tunewidgets.engine.loss_functions import sigmoid_focal_loss, soft_dice_loss, softmax_focal_loss
from tunewidgets.engine.losses import LOSSES, Loss, get_loss

LN3 = math.log(3.0)  # sigmoid(ln 3) = 3/4; softmax([ln 3, 0]) = (3/4, 1/4)


def close(a: torch.Tensor, b: float | torch.Tensor, tol: float = 1e-6) -> bool:
    return abs(float(a) - float(b)) < tol


# -- values ------------------------------------------------------------------------------------
def test_names_and_loss_objects():
    assert LOSSES == ("cross_entropy", "mse", "l1", "huber", "bce_with_logits", "focal", "dice", "ce_dice")
    for name in LOSSES:
        loss = get_loss(name)
        assert isinstance(loss, Loss) and loss.name == name


def test_torch_losses_match_functional():
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(6, 4, generator=g), torch.randint(0, 4, (6,), generator=g)
    a, b = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    t01 = torch.randint(0, 2, (6, 2), generator=g).float()
    assert close(get_loss("cross_entropy")(out, y), F.cross_entropy(out, y))
    assert close(get_loss("mse")(a, b), F.mse_loss(a, b))
    assert close(get_loss("l1")(a, b), F.l1_loss(a, b))
    assert close(get_loss("huber", delta=0.3)(a, b), F.huber_loss(a, b, delta=0.3))
    assert not close(get_loss("huber", delta=0.3)(a, b), F.huber_loss(a, b, delta=1.0))
    assert close(get_loss("bce_with_logits")(a, t01), F.binary_cross_entropy_with_logits(a, t01))
    pw = torch.tensor([2.0, 0.5])
    assert close(get_loss("bce_with_logits", pos_weight=[2.0, 0.5])(a, t01),
                 F.binary_cross_entropy_with_logits(a, t01, pos_weight=pw))
    # integer 0/1 targets are accepted for bce and give the same value
    assert close(get_loss("bce_with_logits")(a, t01.long()), F.binary_cross_entropy_with_logits(a, t01))


def test_cross_entropy_label_smoothing_and_weight_as_torch():
    g = torch.Generator().manual_seed(1)
    out, y = torch.randn(8, 3, generator=g), torch.randint(0, 3, (8,), generator=g)
    plain = get_loss("cross_entropy")(out, y)
    smooth = get_loss("cross_entropy", label_smoothing=0.1)(out, y)
    assert close(smooth, F.cross_entropy(out, y, label_smoothing=0.1))
    assert abs(float(smooth) - float(plain)) > 1e-3
    w = [1.0, 2.0, 0.5]
    loss = get_loss("cross_entropy", weight=w)
    assert close(loss(out, y), F.cross_entropy(out, y, weight=torch.tensor(w)))
    # the weight follows the output's dtype (float64 here) without a manual move
    assert close(loss(out.double(), y), F.cross_entropy(out.double(), y, weight=torch.tensor(w).double()))
    # class-probability targets of the output's shape work as in torch
    probs = torch.softmax(torch.randn(8, 3, generator=g), 1)
    loss.check(out, probs)
    assert close(get_loss("cross_entropy")(out, probs), F.cross_entropy(out, probs))


def test_cross_entropy_on_masks():
    g = torch.Generator().manual_seed(2)
    out, y = torch.randn(2, 3, 4, 4, generator=g), torch.randint(0, 3, (2, 4, 4), generator=g)
    loss = get_loss("cross_entropy")
    loss.check(out, y)
    assert close(loss(out, y), F.cross_entropy(out, y))


def test_dice_binary_hand_computed():
    # p = sigmoid(logits) = [[.75, .25], [.5, .5]], t = [[1, 0], [1, 0]]
    # sum(p*t) = .75 + .5 = 1.25, sum(p) = 2, sum(t) = 2
    # dice = (2 * 1.25 + 1) / (2 + 2 + 1) = 3.5 / 5 = 0.7, loss = 0.3
    logits = torch.tensor([[[[LN3, -LN3], [0.0, 0.0]]]])         # (N=1, 1, H=2, W=2)
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])            # (N, H, W)
    loss = get_loss("dice")
    loss.check(logits, target)
    assert close(loss(logits, target), 0.3)
    assert close(loss(logits, target.unsqueeze(1)), 0.3)          # (N, 1, H, W) targets too
    assert close(loss(logits[:, 0], target), 0.3)                 # (N, H, W) logits
    # smooth = 0: 2.5 / 4 = 0.625 -> 0.375
    assert close(get_loss("dice", smooth=0.0)(logits, target), 0.375)


def test_dice_multiclass_hand_computed():
    # two pixels, two classes. pixel 1: softmax([ln3, 0]) = (.75, .25), class 0;
    # pixel 2: softmax([0, 0]) = (.5, .5), class 1.
    # class 0: inter .75, sum p 1.25, sum t 1 -> (1.5 + 1) / (2.25 + 1) = 10/13
    # class 1: inter .5,  sum p .75,  sum t 1 -> (1 + 1) / (1.75 + 1) = 8/11
    # loss = 1 - (10/13 + 8/11) / 2 = 36/143
    logits = torch.tensor([[[[LN3, 0.0]], [[0.0, 0.0]]]])         # (1, C=2, 1, 2)
    target = torch.tensor([[[0, 1]]])                             # (1, 1, 2)
    loss = get_loss("dice")
    loss.check(logits, target)
    assert close(loss(logits, target), 36 / 143)


def test_focal_sigmoid_hand_computed_and_gamma0_is_bce():
    # x = 0, t = 1: ce = ln 2, p_t = .5, (1-p_t)^2 = .25, alpha_t = .25
    # x = ln3, t = 0: p = .75, ce = ln 4, p_t = .25, (1-p_t)^2 = .5625, alpha_t = .75
    x, t = torch.tensor([0.0, LN3]), torch.tensor([1.0, 0.0])
    want = (0.25 * 0.25 * math.log(2) + 0.75 * 0.5625 * math.log(4)) / 2
    assert close(get_loss("focal")(x, t), want)
    assert close(sigmoid_focal_loss(x, t, gamma=2.0, alpha=0.25), want)
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(5, 3, generator=g), torch.randint(0, 2, (5, 3), generator=g).float()
    assert close(get_loss("focal", gamma=0.0, alpha=None)(a, b), F.binary_cross_entropy_with_logits(a, b))
    # gamma = 0 with alpha keeps the alpha_t weights only
    alpha_t = 0.25 * b + 0.75 * (1 - b)
    ref = (alpha_t * F.binary_cross_entropy_with_logits(a, b, reduction="none")).mean()
    assert close(get_loss("focal", gamma=0.0)(a, b), ref)


def test_focal_softmax_hand_computed_and_gamma0_is_ce():
    # softmax([ln3, 0]) = (.75, .25), class 0: p_t = .75 -> -.25 * (1 - .75)^2 * ln .75
    x, y = torch.tensor([[LN3, 0.0]]), torch.tensor([0])
    assert close(get_loss("focal")(x, y), -0.25 * 0.25 ** 2 * math.log(0.75))
    g = torch.Generator().manual_seed(4)
    out, y = torch.randn(7, 4, generator=g), torch.randint(0, 4, (7,), generator=g)
    assert close(get_loss("focal", gamma=0.0, alpha=None)(out, y), F.cross_entropy(out, y))
    w = [1.0, 2.0, 3.0, 4.0]
    ref = F.cross_entropy(out, y, reduction="none") * torch.tensor(w)[y]
    assert close(get_loss("focal", gamma=0.0, alpha=w)(out, y), ref.mean())
    assert close(softmax_focal_loss(out, y, gamma=0.0, alpha=None), F.cross_entropy(out, y))


def test_ce_dice_is_the_weighted_sum():
    g = torch.Generator().manual_seed(5)
    out, y = torch.randn(2, 3, 4, 4, generator=g), torch.randint(0, 3, (2, 4, 4), generator=g)
    want = F.cross_entropy(out, y) + soft_dice_loss(out, y, 1.0)
    assert close(get_loss("ce_dice")(out, y), want)
    want = 0.5 * F.cross_entropy(out, y) + 2.0 * soft_dice_loss(out, y, 1.0)
    assert close(get_loss("ce_dice", ce_weight=0.5, dice_weight=2.0)(out, y), want)
    # binary masks use BCE
    logits, mask = torch.randn(2, 1, 4, 4, generator=g), torch.randint(0, 2, (2, 4, 4), generator=g).float()
    want = F.binary_cross_entropy_with_logits(logits[:, 0], mask) + soft_dice_loss(logits, mask, 1.0)
    loss = get_loss("ce_dice")
    loss.check(logits, mask)
    assert close(loss(logits, mask), want)


def test_losses_backpropagate():
    out = torch.randn(2, 3, 4, 4, requires_grad=True)
    y = torch.randint(0, 3, (2, 4, 4))
    for name in ("cross_entropy", "focal", "dice", "ce_dice"):
        out.grad = None
        get_loss(name)(out, y).backward()
        assert out.grad is not None and out.grad.abs().sum() > 0, name


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, output, target, pattern", [
    ("mse", torch.zeros(4, 1), torch.zeros(4), r"loss 'mse': output shape \(4, 1\) and target shape \(4,\) differ"
     r".*output.squeeze\(-1\)"),
    ("l1", torch.zeros(4), torch.zeros(4, 1), r"loss 'l1': .*\(4,\).*\(4, 1\).*target.squeeze\(-1\)"),
    ("huber", torch.zeros(4, 2), torch.zeros(4, 3), r"loss 'huber': output shape \(4, 2\) and target shape"),
    ("mse", torch.zeros(4), torch.zeros(4, dtype=torch.long), r"loss 'mse': .*floating.*target.float\(\)"),
    ("cross_entropy", torch.zeros(4, 3), torch.tensor([0, 1, 3, 2]),
     r"loss 'cross_entropy': class targets must lie in \[0, 3\).*\[0, 3\]"),
    ("cross_entropy", torch.zeros(4, 3), torch.tensor([0, -1, 2, 2]), r"\[0, 3\).*got values in \[-1, 2\]"),
    ("cross_entropy", torch.zeros(4, 3), torch.tensor([0.0, 1.0, 2.0, 2.0]),
     r"loss 'cross_entropy': .*look like class indices.*target.long\(\)"),
    ("cross_entropy", torch.zeros(4, 3), torch.zeros(4, 2), r"output shape \(4, 3\) and target shape \(4, 2\)"),
    ("cross_entropy", torch.zeros(4, 3), torch.zeros(5, dtype=torch.long),
     r"output shape \(4, 3\) and target shape \(5,\).*\(4,\)"),
    ("cross_entropy", torch.zeros(4, 1), torch.zeros(4, dtype=torch.long), r"bce_with_logits"),
    ("cross_entropy", torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long),
     r"\(2, 3, 4, 4\) and target shape \(2, 4, 5\).*spatial sizes differ"),
    ("bce_with_logits", torch.zeros(4, 1), torch.zeros(4), r"loss 'bce_with_logits': output shape \(4, 1\)"),
    ("bce_with_logits", torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), r"use loss='cross_entropy'"),
    ("bce_with_logits", torch.zeros(4), torch.tensor([0.0, 2.0, 1.0, 0.0]), r"must lie in \[0, 1\]"),
    ("focal", torch.zeros(4, 1), torch.zeros(4), r"loss 'focal': output shape \(4, 1\)"),
    ("focal", torch.zeros(4, 3), torch.tensor([0, 1, 5, 2]), r"loss 'focal': class targets must lie in \[0, 3\)"),
    ("dice", torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 5), r"loss 'dice': .*\(2, 1, 4, 4\).*\(2, 4, 5\)"),
    ("dice", torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 4, dtype=torch.long), r"spatial sizes differ"),
    ("dice", torch.zeros(2, 3, 4, 4), torch.full((2, 4, 4), 3), r"must lie in \[0, 3\)"),
    ("dice", torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4), r"look like class indices"),
    ("dice", torch.zeros(2, 4, 4), torch.full((2, 4, 4), 255.0), r"must lie in \[0, 1\]"),
    ("ce_dice", torch.zeros(2, 1, 4, 4), torch.zeros(2, 3, 3), r"loss 'ce_dice'"),
])
def test_check_names_loss_shapes_and_fix(name, output, target, pattern):
    with pytest.raises(ValueError, match=pattern):
        get_loss(name).check(output, target)


def test_check_accepts_good_shapes():
    get_loss("mse").check(torch.zeros(4, 1), torch.zeros(4, 1))
    get_loss("cross_entropy").check(torch.zeros(4, 3), torch.tensor([0, 1, 2, 2]))
    get_loss("dice").check(torch.zeros(2, 4, 4), torch.ones(2, 4, 4))
    get_loss("focal").check(torch.zeros(4, 3), torch.tensor([0, 1, 2, 2]))


def test_weight_length_is_checked():
    with pytest.raises(ValueError, match=r"weight has 2 entries but the output has 3 classes"):
        get_loss("cross_entropy", weight=[1.0, 2.0]).check(torch.zeros(4, 3), torch.tensor([0, 1, 2, 2]))
    with pytest.raises(ValueError, match=r"alpha has 2 entries but the output has 3 classes"):
        get_loss("focal", alpha=[1.0, 2.0]).check(torch.zeros(4, 3), torch.tensor([0, 1, 2, 2]))


def test_unknown_name_and_kwargs():
    with pytest.raises(ValueError, match=r"unknown loss 'crossentropy'; use one of: cross_entropy, mse, l1"):
        get_loss("crossentropy")
    with pytest.raises(ValueError, match=r"loss 'mse' takes no keyword\(s\) \['delta'\]; it takes: no keywords"):
        get_loss("mse", delta=1.0)
    with pytest.raises(ValueError, match=r"'cross_entropy' takes no keyword\(s\) \['smoothing'\].*label_smoothing"):
        get_loss("cross_entropy", smoothing=0.1)
    with pytest.raises(ValueError, match=r"label_smoothing must be a number >= 0.0 and <= 1.0, got 2"):
        get_loss("cross_entropy", label_smoothing=2)
    with pytest.raises(ValueError, match=r"delta must be a number > 0.0, got 0"):
        get_loss("huber", delta=0)
    with pytest.raises(ValueError, match=r"weight must be a 1-D sequence"):
        get_loss("cross_entropy", weight=[[1.0]])
    with pytest.raises(TypeError, match=r"loss: expected a name"):
        get_loss(3)


def test_callable_is_wrapped():
    def my_loss(out, y):
        return ((out - y) ** 2).mean()

    loss = get_loss(my_loss)
    assert loss.name == "my_loss" and get_loss(loss) is loss
    assert close(loss(torch.ones(3), torch.zeros(3)), 1.0)
    loss.check(torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"loss 'my_loss': failed on the first batch with output shape \(3, 2\) "
                                         r"and target shape \(4,\)"):
        loss.check(torch.ones(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"returned a tensor of shape \(3,\), expected one number"):
        get_loss(lambda o, t: o - t).check(torch.ones(3), torch.zeros(3))
    with pytest.raises(TypeError, match=r"returned float, not a tensor"):
        get_loss(lambda o, t: 1.0).check(torch.ones(3), torch.zeros(3))
    module = get_loss(torch.nn.CrossEntropyLoss())
    assert module.name == "CrossEntropyLoss"
    with pytest.raises(ValueError, match=r"only apply to named losses"):
        get_loss(my_loss, delta=1.0)


def test_calling_a_loss_reads_nothing_back_to_the_host():
    g = torch.Generator().manual_seed(6)
    cls, y = torch.randn(4, 3, generator=g), torch.randint(0, 3, (4,), generator=g)
    seg, mask = torch.randn(2, 3, 4, 4, generator=g), torch.randint(0, 3, (2, 4, 4), generator=g)
    bin_out, bin_mask = torch.randn(2, 1, 4, 4, generator=g), torch.randint(0, 2, (2, 4, 4), generator=g).float()
    reg = torch.randn(4, 2, generator=g)
    cases = [(get_loss("cross_entropy", weight=[1.0, 2.0, 3.0], label_smoothing=0.1), cls, y),
             (get_loss("mse"), reg, reg.flip(0)), (get_loss("l1"), reg, reg), (get_loss("huber"), reg, reg),
             (get_loss("bce_with_logits", pos_weight=[2.0, 1.0]), reg, (reg > 0).long()),
             (get_loss("focal"), reg, (reg > 0).float()), (get_loss("focal", alpha=[1.0, 2.0, 3.0]), cls, y),
             (get_loss("dice"), seg, mask), (get_loss("dice"), bin_out, bin_mask),
             (get_loss("ce_dice"), seg, mask), (get_loss("ce_dice"), bin_out, bin_mask)]
    for loss, out, target in cases:
        loss.check(out, target)              # the once-only check may read values
        with no_host_reads():
            value = loss(out.double(), target)  # also moves the cached weights to float64
            value = loss(out, target)
        assert value.ndim == 0 and torch.isfinite(value), loss
    with pytest.raises(AssertionError, match="host read"), no_host_reads():
        float(cls.sum())


def test_per_class_alpha_with_binary_logits_is_an_error():
    with pytest.raises(ValueError, match=r"loss 'focal': output shape \(4,\) and target shape \(4,\) are binary"
                                         r".*alpha as one number"):
        get_loss("focal", alpha=[0.5, 0.5]).check(torch.zeros(4), torch.zeros(4))


def test_class_weights_stay_exact_under_autocast():
    g = torch.Generator().manual_seed(7)
    out, y = torch.randn(16, 3, generator=g), torch.randint(0, 3, (16,), generator=g)
    w = [1 / 3, 2.0, 0.7]
    loss = get_loss("cross_entropy", weight=w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = out.to(torch.bfloat16)
        got = loss(low, y)
    assert loss._weight.tensor.dtype == torch.float32
    assert close(got, F.cross_entropy(low.float(), y, weight=torch.tensor(w)), tol=1e-5)
    # without autocast the weights follow a bfloat16 output, as torch requires
    assert loss(low, y).dtype == torch.bfloat16


def test_cross_entropy_ignore_index_passes_the_first_batch_check_and_trains_as_torch():
    """Labels of -100 (padding, unlabelled pixels) are skipped by F.cross_entropy: the first-batch
    check takes them too, and a run with them trains; a batch of nothing but -100 is named."""
    import tunewidgets as tw
    from torch.utils.data import TensorDataset

    loss = get_loss("cross_entropy")
    out, target = torch.randn(4, 3), torch.tensor([0, -100, 2, -100])
    loss.check(out, target)
    assert close(loss(out, target), F.cross_entropy(out, target))
    with pytest.raises(ValueError, match=r"every target of the batch is the ignore index -100"):
        loss.check(out, torch.full((4,), -100))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\) .* got values in \[-100, 2\]"):
        get_loss("focal").check(out, target)  # focal has no ignore index: -100 is a bad label there

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 2, generator=g), torch.randint(0, 3, (64,), generator=g)
    y[::4] = -100
    task = tw.Task(model=lambda: torch.nn.Linear(2, 3), train=TensorDataset(x, y), val=TensorDataset(x, y),
                   loss="cross_entropy", batch_size=16)
    run = tw.train(task, tw.TrainConfig(epochs=2, device="cpu", seed=0))
    assert run.status == "finished" and math.isfinite(run.final["val_loss"])


def test_validation_loss_is_the_mean_over_every_label_that_counted():
    """Batches with more or fewer skipped labels weigh by the labels they hold, so the validation
    loss equals cross-entropy over the whole set at once; a set of only -100 labels is named."""
    from tunewidgets.engine.step import evaluate

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 2, generator=g), torch.randint(0, 3, (12,), generator=g)
    y[:3] = -100  # the first batch of 4 keeps 1 label, the others all 4
    model = torch.nn.Linear(2, 3)
    batches = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 12, 4)]
    got = evaluate(model, batches, device=torch.device("cpu"), loss_fn=get_loss("cross_entropy"))
    with torch.no_grad():
        want = F.cross_entropy(model(x), y)
    assert got["val_loss"] == pytest.approx(float(want), rel=1e-6)
    mse = evaluate(torch.nn.Linear(2, 1), [(x[:4], torch.zeros(4, 1)), (x[4:6], torch.zeros(2, 1))],
                   device=torch.device("cpu"), loss_fn=get_loss("mse"))
    assert math.isfinite(mse["val_loss"])  # losses without skipped labels still weigh by samples
    with pytest.raises(ValueError, match=r"val: every target of the validation data is a label the loss skips"):
        evaluate(model, [(x[:4], torch.full((4,), -100))], device=torch.device("cpu"),
                 loss_fn=get_loss("cross_entropy"))
