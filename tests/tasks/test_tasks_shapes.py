"""shapes(): masks of circles and rectangles, binary or circle-vs-rectangle, and the tiny U-Net."""
from __future__ import annotations

import torch
from tasks_helpers import train_recommended, untrained_val_loss
from torch import nn

import tunewidgets as tw
from tunewidgets.tasks._shapes import CIRCLE, RECTANGLE, make_shapes


def test_binary_masks_shapes_values_and_coverage():
    task = tw.tasks.shapes()
    x, mask = task.train.tensors
    assert x.shape == (410, 1, 32, 32) and mask.shape == (410, 1, 32, 32) and len(task.val) == 102
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    per_image = mask.mean(dim=(1, 2, 3))
    assert float(per_image.min()) > 0  # every image has a shape
    assert 0.05 < float(per_image.mean()) < 0.3  # foreground is the minority
    assert -1.0 < float(x.min()) and float(x.max()) < 2.0


def test_multiclass_labels_match_the_binary_masks_of_the_same_seed():
    binary, multi = tw.tasks.shapes(seed=2), tw.tasks.shapes(seed=2, classes=2)
    labels = multi.train.tensors[1]
    assert labels.shape == (410, 32, 32) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) == {0, CIRCLE, RECTANGLE}
    assert torch.equal((labels > 0).float().unsqueeze(1), binary.train.tensors[1])
    assert torch.equal(multi.train.tensors[0], binary.train.tensors[0])


def test_without_noise_the_mask_is_exactly_the_bright_pixels():
    x, labels = make_shapes(200, size=24, noise=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 0] > 0.4, labels > 0)  # background <= 0.3, shapes >= 0.5


def test_rectangles_fill_their_box_and_circles_do_not():
    _, labels = make_shapes(100, size=32, max_shapes=1, noise=0.0, generator=torch.Generator().manual_seed(1))
    fills: dict[int, list[float]] = {CIRCLE: [], RECTANGLE: []}
    for lab in labels:
        rows, cols = torch.nonzero(lab, as_tuple=True)
        box = (int(rows.max() - rows.min()) + 1) * (int(cols.max() - cols.min()) + 1)
        fills[int(lab.max())].append(len(rows) / box)
    assert len(fills[CIRCLE]) > 30 and len(fills[RECTANGLE]) > 30
    assert set(fills[RECTANGLE]) == {1.0}
    assert max(fills[CIRCLE]) < 0.95  # small discs are blocky, but never a full box
    assert 0.72 < sum(fills[CIRCLE]) / len(fills[CIRCLE]) < 0.86  # pi / 4 = 0.785 for a perfect disc


def test_models_give_per_pixel_logits_of_the_right_channels():
    binary, multi = tw.tasks.shapes(n=32), tw.tasks.shapes(n=32, size=16, classes=2)
    x = binary.train.tensors[0][:3]
    assert binary.build_model()(x).shape == (3, 1, 32, 32)
    assert multi.build_model(width=4)(multi.train.tensors[0][:3]).shape == (3, 3, 16, 16)
    model = binary.build_model(width=4)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].out_channels == 4 and convs[-1].out_channels == 1
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    first_width = lambda m: [c for c in m.modules() if isinstance(c, nn.Conv2d)][0].out_channels  # noqa: E731
    assert first_width(binary.build_model()) == 8
    assert first_width(multi.build_model()) == 16  # telling circles from rectangles takes more channels


def test_binary_recommended_config_reaches_dice_above_08():
    task = tw.tasks.shapes()
    before = untrained_val_loss(task)
    run = train_recommended(task)
    assert run.final["val_dice"] > 0.8 and run.final["val_iou"] > 0.65
    assert run.final["val_loss"] < 0.5 * before


def test_multiclass_loss_drops_in_a_few_epochs():
    task = tw.tasks.shapes(n=128, classes=2)
    before = untrained_val_loss(task)
    run = train_recommended(task, epochs=4)
    assert run.final["val_loss"] < 0.6 * before
