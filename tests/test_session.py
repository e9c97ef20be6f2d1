"""The interactive session: clicks re-segment one target with cached crop embeddings, undo/redo,
and the result equals what `segment` makes of the session's own prompts."""

from __future__ import annotations

import numpy as np
import pytest
from segment_support import EllipsoidPredictor

from sammoe_core.errors import InputError
from sammoe_core.segmentation.pipeline import segment
from sammoe_core.segmentation.session import Session

SHAPE = (60, 56, 48)


@pytest.fixture
def image():
    return np.full(SHAPE, 50.0, dtype=np.float32), np.diag([1.5, 1.5, 1.5, 1.0])


def test_further_clicks_reuse_the_crop_embeddings_and_undo_redo_restore(image):
    array, affine = image
    predictor = EllipsoidPredictor(9.0, 64)
    session = Session(array, predictor, affine=affine)
    assert session.add_target("liver") == 1 and session.add_target("spleen") == 2
    session.add_click("liver", (20, 20, 20))
    first_passes = session.encoder_passes
    assert first_passes >= 1 and len(predictor.crops) == first_passes
    session.add_click("liver", (22, 20, 20), positive=False)  # the same target: its crops are cached
    assert session.encoder_passes == first_passes and len(predictor.crops) == first_passes
    one_click = session.result().label_map.copy()
    session.add_click("liver", (21, 21, 20))
    assert session.undo("liver") and np.array_equal(session.result().label_map, one_click)
    assert session.redo("liver") and not session.redo("liver")
    session.add_click("spleen", (44, 40, 30))
    labels = session.result().label_map
    assert labels[20, 20, 20] == 1 and labels[44, 40, 30] == 2
    session.clear("spleen")
    assert not (session.result().label_map == 2).any()
    assert session.undo("spleen") and session.result().label_map[44, 40, 30] == 2


def test_the_result_is_what_segment_makes_of_the_sessions_prompts(image):
    array, affine = image
    session = Session(array, EllipsoidPredictor(9.0, 64), affine=affine)
    session.add_target("a")
    session.add_click("a", (20, 20, 20))
    session.add_click("a", (30, 20, 20), positive=False)
    session.add_target("b", label=7)
    session.add_click("b", (40, 36, 28))
    session.rename_target("b", "kidney")
    again = segment(array, session.prompts(), EllipsoidPredictor(9.0, 64), affine=affine)
    assert np.array_equal(again.label_map, session.result().label_map)
    assert [t["name"] for t in session.prompts()["targets"]] == ["a", "kidney"]


def test_bad_edits_change_nothing(image):
    array, affine = image
    session = Session(array, EllipsoidPredictor(9.0, 64), affine=affine)
    session.add_target("a")
    session.add_click("a", (20, 20, 20))
    before = session.prompts()
    with pytest.raises(InputError, match="outside the volume"):
        session.add_click("a", (500, 20, 20))
    with pytest.raises(InputError, match="no target named 'b'"):
        session.add_click("b", (1, 1, 1))
    with pytest.raises(InputError, match="exists already"):
        session.add_target("a")
    with pytest.raises(InputError, match="a box needs a network with box embeddings"):
        session.set_box("a", (10, 10, 10), (30, 30, 30))
    assert session.prompts() == before and session.undo("a") and not session.undo("a")


def test_a_single_network_has_no_route_and_no_policy_to_change(image):
    array, affine = image
    session = Session(array, EllipsoidPredictor(9.0, 64), affine=affine)
    session.add_target("a")
    assert session.route("a") is None and session.target_state("a")["clicks"] == []
    session.add_click("a", (20, 20, 20))
    assert session.route("a") is None  # the ellipsoid predictor reports no route
    with pytest.raises(InputError, match="a single network has no gate or policy"):
        session.set_policy("top1")
    state = session.target_state("a")
    assert state["label"] == 1 and state["undo_steps"] == 1 and state["clicks"][0]["position"] == [20.0, 20.0, 20.0]
