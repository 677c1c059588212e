"""Metrics accumulate over batches to dataset-level values; hand-computed Dice and IoU."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from no_host_sync import no_host_reads

from tunewidgets.engine.metrics import METRICS, Accuracy, BatchMean, Metric, get_metric


def value(name, batches) -> float:
    _, make = get_metric(name)
    m = make()
    for out, y in batches:
        m.update(out, y)
    return m.compute()


def test_names_and_fresh_objects():
    assert METRICS == ("accuracy", "dice", "iou", "mae", "mse")
    for name in METRICS:
        got, make = get_metric(name)
        a, b = make(), make()
        assert got == name and isinstance(a, Metric) and a is not b


def test_accuracy_class_scores_and_binary_logits():
    scores = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 3.0, 0.0]])
    assert value("accuracy", [(scores, torch.tensor([0, 1, 0, 1]))]) == 0.75
    # binary logits: > 0 predicts 1
    assert math.isclose(value("accuracy", [(torch.tensor([[1.0], [-1.0], [2.0]]), torch.tensor([1, 1, 1]))]), 2 / 3)
    assert value("accuracy", [(torch.tensor([0.5, -0.5]), torch.tensor([1.0, 0.0]))]) == 1.0
    # class scores on masks: (N, C, H, W) with (N, H, W)
    out = torch.zeros(1, 2, 2, 2)
    out[0, 1, 0, :] = 1.0                       # predicts class 1 on the top row
    assert value("accuracy", [(out, torch.tensor([[[1, 1], [1, 0]]]))]) == 0.75


def test_binary_dice_and_iou_hand_computed():
    # pred = logits > 0 = [1, 1, 0, 0], target = [1, 0, 1, 0]
    # |P∩T| = 1, |P| = 2, |T| = 2 -> dice = 2*1/(2+2) = 0.5, iou = 1/(2+2-1) = 1/3
    out, y = torch.tensor([2.0, 1.0, -1.0, -3.0]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert math.isclose(value("dice", [(out, y)]), 0.5)
    assert math.isclose(value("iou", [(out, y)]), 1 / 3)
    # the same as a (N, 1, H, W) mask with (N, H, W) targets
    assert math.isclose(value("dice", [(out.reshape(1, 1, 2, 2), y.reshape(1, 2, 2))]), 0.5)


def test_dice_iou_are_dataset_level_not_mean_of_batches():
    # batch A: pred [1, 1], target [1, 1]             -> inter 2, |P| 2, |T| 2 (dice 1, iou 1)
    # batch B: pred [1, 0, 0, 0], target [0, 1, 1, 0] -> inter 0, |P| 1, |T| 2 (dice 0, iou 0)
    # dataset: inter 2, |P| 3, |T| 4 -> dice 4/7, iou 2/(3+4-2) = 2/5 (a mean of batches gives 0.5)
    a = (torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0]))
    b = (torch.tensor([1.0, -1.0, -1.0, -1.0]), torch.tensor([0.0, 1.0, 1.0, 0.0]))
    assert math.isclose(value("dice", [a, b]), 4 / 7)
    assert math.isclose(value("iou", [a, b]), 2 / 5)


def test_multiclass_dice_and_iou_hand_computed():
    # argmax pred = [0, 1, 2, 2], target = [0, 1, 1, 2] over four pixels
    # class 0: inter 1, |P| 1, |T| 1 -> dice 1,   iou 1
    # class 1: inter 1, |P| 1, |T| 2 -> dice 2/3, iou 1/2
    # class 2: inter 1, |P| 2, |T| 1 -> dice 2/3, iou 1/2
    # mean: dice 7/9, iou 2/3; class 3 (never predicted nor present) is left out
    pred, y = torch.tensor([0, 1, 2, 2]), torch.tensor([[[0, 1, 1, 2]]])
    out = F.one_hot(pred, 4).T.reshape(1, 4, 1, 4).float()
    assert math.isclose(value("dice", [(out, y)]), 7 / 9)
    assert math.isclose(value("iou", [(out, y)]), 2 / 3)
    # split into two batches of pixels: the same dataset-level value
    assert math.isclose(value("dice", [(out[..., :2], y[..., :2]), (out[..., 2:], y[..., 2:])]), 7 / 9)


def test_empty_masks_score_one_and_no_data_is_nan():
    assert value("dice", [(torch.full((2, 3), -1.0), torch.zeros(2, 3))]) == 1.0
    assert math.isnan(value("accuracy", []))
    assert math.isnan(value("mae", []))


@pytest.mark.parametrize("name", METRICS)
def test_accumulation_equals_whole_set(name):
    g = torch.Generator().manual_seed(0)
    if name == "accuracy":
        out, y = torch.randn(15, 4, generator=g), torch.randint(0, 4, (15,), generator=g)
    elif name in ("dice", "iou"):
        out, y = torch.randn(15, 3, 4, 4, generator=g), torch.randint(0, 3, (15, 4, 4), generator=g)
    else:
        out, y = torch.randn(15, 2, generator=g), torch.randn(15, 2, generator=g)
    whole = value(name, [(out, y)])
    parts = value(name, [(out[:5], y[:5]), (out[5:8], y[5:8]), (out[8:], y[8:])])
    assert math.isclose(whole, parts, rel_tol=1e-9)
    if name == "mae":
        assert math.isclose(whole, float(F.l1_loss(out, y)), rel_tol=1e-6)
    if name == "mse":
        assert math.isclose(whole, float(F.mse_loss(out, y)), rel_tol=1e-6)
    if name == "accuracy":
        assert whole == int((out.argmax(1) == y).sum()) / 15


def test_reset_starts_over():
    m = Accuracy()
    m.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    m.reset()
    m.update(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert m.compute() == 1.0


def test_shape_errors_name_metric_and_shapes():
    with pytest.raises(ValueError, match=r"metric 'mae': output shape \(4, 1\) and target shape \(4,\)"):
        value("mae", [(torch.zeros(4, 1), torch.zeros(4))])
    with pytest.raises(ValueError, match=r"metric 'accuracy': output shape \(4, 3\) and target shape \(5,\)"):
        value("accuracy", [(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))])
    with pytest.raises(ValueError, match=r"metric 'dice': output shape \(2, 3, 4, 4\) and target shape \(2, 4, 5\)"):
        value("dice", [(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))])


def test_callable_is_a_sample_weighted_mean():
    def hits(out, y):
        return (out == y).float().mean()

    name, make = get_metric(hits)
    m = make()
    assert name == "hits" and isinstance(m, BatchMean)
    m.update(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))   # batch mean 1.0, 2 samples
    m.update(torch.tensor([5.0]), torch.tensor([0.0]))             # batch mean 0.0, 1 sample
    assert math.isclose(m.compute(), 2 / 3)                        # not (1 + 0) / 2
    name, make = get_metric(lambda out, y: 4.0)
    m = make()
    m.update(torch.zeros(3), torch.zeros(3))
    assert name == "<lambda>" and m.compute() == 4.0
    with pytest.raises(ValueError, match=r"metric 'bad': returned a tensor of shape \(3,\)"):
        b = BatchMean(lambda o, t: o - t, name="bad")
        b.update(torch.zeros(3), torch.zeros(3))


def test_metric_objects_and_classes():
    name, make = get_metric(Accuracy)
    assert name == "accuracy" and isinstance(make(), Accuracy)
    proto = Accuracy()
    proto.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    name, make = get_metric(proto)
    fresh = make()
    assert fresh is not proto and math.isnan(fresh.compute()) and proto.compute() == 0.0


def test_unknown_metric():
    with pytest.raises(ValueError, match=r"unknown metric 'acc'; use one of: accuracy, dice, iou, mae, mse"):
        get_metric("acc")
    with pytest.raises(TypeError, match=r"metrics: expected a name"):
        get_metric(3)


def test_update_reads_nothing_back_to_the_host():
    g = torch.Generator().manual_seed(1)
    cases = {"accuracy": (torch.randn(6, 3, generator=g), torch.randint(0, 3, (6,), generator=g)),
             "dice": (torch.randn(2, 3, 4, 4, generator=g), torch.randint(0, 3, (2, 4, 4), generator=g)),
             "iou": (torch.randn(2, 1, 4, 4, generator=g), torch.randint(0, 2, (2, 4, 4), generator=g)),
             "mae": (torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)),
             "mse": (torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g))}
    for name, (out, y) in cases.items():
        m = get_metric(name)[1]()
        with no_host_reads():
            m.update(out, y)
            m.update(out, y)
        assert 0 <= m.compute() < math.inf, name
    m = BatchMean(lambda o, t: (o - t).abs().mean())
    with no_host_reads():
        m.update(torch.ones(3), torch.zeros(3))
    assert m.compute() == 1.0


def test_accuracy_dice_and_iou_leave_out_the_ignored_label():
    """-100 (cross-entropy's ignore index) is no class: accuracy and the overlaps skip it, as the loss does."""
    from tunewidgets.engine.metrics import Accuracy, Dice, IoU

    scores = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])  # predicts 0, 1, 2, 0
    acc = Accuracy()
    acc.update(scores, torch.tensor([0, 1, -100, -100]))
    assert acc.compute() == 1.0  # 2 of 2 labelled samples right
    acc.update(scores, torch.tensor([1, 1, -100, -100]))
    assert acc.compute() == 0.75  # 3 of 4
    masks = scores.T.reshape(1, 3, 2, 2)  # a 2x2 image predicting classes 0, 1, 2, 0
    for metric in (Dice(), IoU()):
        metric.update(masks, torch.tensor([[[0, 1], [-100, -100]]]))
        assert metric.compute() == 1.0, type(metric).__name__  # class 2 only where the label is ignored
