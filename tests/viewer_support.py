"""Helpers for the viewer tests: an app over a session, and the label map the page receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from sammoe_core.segmentation.session import Session
from sammoe_core.viewer.app import create_app
from sammoe_core.viewer.state import SavePlan, ViewerState

CHANGE = {"X-Sammoe": "1"}  # the header the page sends with every change


def viewer_client(
    session: Session, save_to: Path, input_argument: str = "in.nii.gz", token: str | None = None, **plan: Any
) -> tuple[TestClient, ViewerState]:
    state = ViewerState(session, SavePlan(save_to, input_argument, **plan))
    return TestClient(create_app(state, token), raise_server_exceptions=False), state


def page_labels(client: TestClient, shape: tuple[int, ...]) -> np.ndarray:
    """The label map as the page gets it (one byte per voxel, the volume file's voxel order)."""
    response = client.get("/api/labels")
    assert response.status_code == 200, response.text
    return np.frombuffer(response.content, dtype=np.uint8).reshape(shape, order="F")


def post(client: TestClient, path: str, body: Any = None) -> Any:
    response = client.post(path, json=body, headers=CHANGE)
    assert response.status_code == 200, response.text
    return response.json()
