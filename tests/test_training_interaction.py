"""The simulated-click training step: click sampling rules and a loss that training lowers."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss

from sammoe_core.model import Sam3D
from sammoe_core.training.interaction import interactive_loss, next_clicks, sample_voxels


def test_sample_voxels_is_uniform_over_the_mask(fresh_seed):
    gen = torch.Generator().manual_seed(fresh_seed)
    mask = torch.zeros(1, 8, 8, 8, dtype=torch.bool)
    mask[0, 1, 2, 3] = mask[0, 5, 6, 7] = True
    seen = {tuple(sample_voxels(mask, gen)[0].tolist()) for _ in range(200)}
    assert seen == {(1, 2, 3), (5, 6, 7)}
    empty = torch.zeros(2, 8, 8, 8, dtype=torch.bool)
    assert sample_voxels(empty, gen).tolist() == [[4, 4, 4], [4, 4, 4]]


def test_next_clicks_come_from_the_error_region_with_the_right_label(fresh_seed):
    gen = torch.Generator().manual_seed(fresh_seed)
    target = torch.zeros(2, 16, 16, 16, dtype=torch.bool)
    target[:, 4:8, 4:8, 4:8] = True
    pred = torch.zeros_like(target)
    pred[0] = target[0]
    pred[0, 10:12, 10:12, 10:12] = True  # element 0: only false positives
    pred[1, 4:8, 4:8, 4:6] = True  # element 1: only false negatives
    for _ in range(50):
        pts, labels = next_clicks(target, pred, gen)
        p0, p1 = pts[0, 0].long(), pts[1, 0].long()
        assert pred[0, p0[0], p0[1], p0[2]] and not target[0, p0[0], p0[1], p0[2]]
        assert labels[0, 0] == 0
        assert target[1, p1[0], p1[1], p1[2]] and not pred[1, p1[0], p1[1], p1[2]]
        assert labels[1, 0] == 1


def test_interactive_training_lowers_the_loss(fresh_seed):
    torch.manual_seed(fresh_seed % 1000)
    model = Sam3D("sammoe-tiny")
    gen = torch.Generator().manual_seed(fresh_seed)
    image = torch.randn(2, 1, 64, 64, 64)
    target = torch.zeros(2, 1, 64, 64, 64)
    target[:, :, 20:40, 24:44, 16:36] = 1
    image = image + 3 * target  # a bright box to segment
    loss_fn = DiceCELoss(sigmoid=True, squared_pred=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        res = interactive_loss(model, image, target, 4, loss_fn, gen)
        opt.zero_grad()
        res.loss.backward()
        opt.step()
        losses.append(res.loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
