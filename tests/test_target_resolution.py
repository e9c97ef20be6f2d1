"""Several targets in one volume: each keeps what its own prompts reach, and no click is stolen."""

from __future__ import annotations

import numpy as np

from sammoe_core.segmentation.target_resolution import TargetClaim, resolve_targets

SHAPE = (40, 40, 20)


def _ball(centre, radius, value):
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), -1)
    return np.where(((grid - centre) ** 2).sum(-1) <= radius**2, value, 0.0).astype(np.float32)


def _whole(probability, label, clicks):
    return TargetClaim(label, tuple(slice(0, n) for n in SHAPE), probability, clicks)


def test_a_leaking_target_does_not_eat_its_neighbour():
    """The aorta-like target leaks over the spleen-like one with a higher probability there; the
    spleen keeps the contested piece that holds its own click, and its click."""
    spleen = _ball((28, 20, 10), 7, 0.7)
    aorta = np.maximum(_ball((10, 20, 10), 4, 0.95), _ball((28, 20, 10), 8, 0.9))
    aorta[10:28, 19:22, 9:12] = 0.9  # the leak joins the aorta to the spleen
    labels = resolve_targets(SHAPE, [_whole(spleen, 5, [(28, 20, 10)]), _whole(aorta, 9, [(10, 20, 10)])])
    assert labels[28, 20, 10] == 5 and labels[10, 20, 10] == 9
    spleen_truth = spleen > 0.5
    assert (labels[spleen_truth] == 5).mean() > 0.95  # before: most probable wins, the aorta took it all
    # order does not matter
    swapped = resolve_targets(SHAPE, [_whole(aorta, 9, [(10, 20, 10)]), _whole(spleen, 5, [(28, 20, 10)])])
    assert (swapped[spleen_truth] == 5).mean() > 0.95 and swapped[10, 20, 10] == 9


def test_pieces_no_prompt_reaches_are_dropped_and_clicks_are_never_relabelled():
    a = np.maximum(_ball((8, 8, 10), 4, 0.8), _ball((30, 30, 10), 4, 0.8))  # a stray second blob
    b = _ball((20, 20, 10), 5, 0.99)
    b_click_inside_a = (9, 8, 10)  # a (wrong) click of b inside a
    labels = resolve_targets(SHAPE, [_whole(a, 1, [(8, 8, 10)]), _whole(b, 2, [(20, 20, 10)])])
    assert labels[30, 30, 10] == 0  # a's stray blob holds none of its clicks
    assert (labels[b > 0.5] == 2).all()
    labels = resolve_targets(SHAPE, [_whole(a, 1, [(8, 8, 10)]), _whole(b, 2, [(20, 20, 10), b_click_inside_a])])
    assert labels[9, 8, 10] == 2 and labels[8, 8, 10] == 1  # a click of b is b's, even inside a
    box = TargetClaim(
        3,
        tuple(slice(0, n) for n in SHAPE),
        _ball((30, 30, 10), 4, 0.8),
        [],
        (np.array([26, 26, 6]), np.array([34, 34, 14])),
    )
    assert (resolve_targets(SHAPE, [box])[_ball((30, 30, 10), 4, 1) > 0] == 3).all()  # a box anchors too
