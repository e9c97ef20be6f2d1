"""The viewer's HTTP API over a Session: edits, the label map the page draws, safety rules, saving.

A fast ellipsoid predictor stands in for the network here; test_viewer_moe.py runs the shipped
default (gate, policies, the CLI reproducing a save bit for bit).
"""

from __future__ import annotations

import gzip
import json
import time

import nibabel as nib
import numpy as np
import pytest
from segment_support import EllipsoidPredictor
from viewer_support import CHANGE, page_labels, post, viewer_client

from sammoe_core.segmentation.session import Session
from sammoe_core.viewer.app import MAX_BODY_BYTES

SHAPE = (60, 56, 48)


@pytest.fixture
def session():
    array = np.full(SHAPE, 50.0, dtype=np.float32)
    return Session(array, EllipsoidPredictor(9.0, 64), affine=np.diag([1.5, 1.5, 1.5, 1.0]))


def test_clicks_undo_redo_clear_and_target_edits_reach_the_page(session, tmp_path):
    client, _ = viewer_client(session, tmp_path / "out_seg.nii.gz")
    info = client.get("/api/info").json()
    assert info["volume"]["shape"] == list(SHAPE) and info["targets"] == []
    assert not page_labels(client, SHAPE).any()
    post(client, "/api/targets", {"name": "liver"})
    snap = post(client, "/api/targets/liver/clicks", {"position": [20, 20, 20]})
    assert snap["last"]["encoder_passes"] >= 1 and snap["targets"][0]["segmented"]
    labels = page_labels(client, SHAPE)
    assert labels[20, 20, 20] == 1 and labels[40, 40, 40] == 0
    one_click = labels.copy()
    snap = post(client, "/api/targets/liver/clicks", {"position": [23, 20, 20], "positive": False})
    assert snap["last"]["encoder_passes"] == 0  # the same crop: its embedding is reused
    assert snap["targets"][0]["clicks"][1]["positive"] is False
    post(client, "/api/targets/liver/undo")
    assert np.array_equal(page_labels(client, SHAPE), one_click)
    assert post(client, "/api/targets/liver/redo")["targets"][0]["redo_steps"] == 0
    snap = post(client, "/api/targets", {"colour": "#00ff00"})  # a second target, named for us
    second = snap["targets"][1]
    assert second["name"] == "target 1" and second["label"] == 2 and second["colour"] == "#00ff00"
    post(client, "/api/targets/target%201/clicks", {"position": [44, 40, 30]})
    renamed = client.patch("/api/targets/target%201", json={"name": "spleen", "colour": "#0000ff"}, headers=CHANGE)
    assert [(t["name"], t["colour"]) for t in renamed.json()["targets"]][1] == ("spleen", "#0000ff")
    assert page_labels(client, SHAPE)[44, 40, 30] == 2
    post(client, "/api/targets/spleen/clear")
    assert not (page_labels(client, SHAPE) == 2).any()
    post(client, "/api/targets/spleen/undo")
    assert page_labels(client, SHAPE)[44, 40, 30] == 2
    assert client.delete("/api/targets/spleen", headers=CHANGE).status_code == 200
    assert not (page_labels(client, SHAPE) == 2).any()
    assert client.get("/api/prompts").json() == session.prompts()
    volume = nib.Nifti1Image.from_bytes(gzip.decompress(client.get("/api/volume.nii.gz").content))
    assert volume.shape == SHAPE and np.allclose(volume.affine, np.diag([1.5, 1.5, 1.5, 1.0]))


def test_bad_requests_get_a_one_line_4xx_and_change_nothing(session, tmp_path):
    client, _ = viewer_client(session, tmp_path / "out_seg.nii.gz")
    post(client, "/api/targets", {"name": "a"})
    post(client, "/api/targets/a/clicks", {"position": [20, 20, 20]})
    before = session.prompts()
    cases = [
        (("post", "/api/targets/a/clicks"), {"json": {"position": [500, 20, 20]}}, 400, "outside the volume"),
        (("post", "/api/targets/b/clicks"), {"json": {"position": [1, 1, 1]}}, 400, "no target named 'b'"),
        (("post", "/api/targets/a/clicks"), {"json": {"position": [1, 2]}}, 422, "body.position"),
        (("post", "/api/targets/a/clicks"), {"json": {"position": [1, 2, 3], "path": "/etc"}}, 422, "body.path"),
        (("post", "/api/targets/a/clicks"), {"content": b"{not json"}, 422, "json"),
        (("post", "/api/targets"), {"json": {"name": "a"}}, 400, "exists already"),
        (("patch", "/api/targets/a"), {"json": {"colour": "red"}}, 400, "expected #rrggbb"),
        (("put", "/api/policy"), {"json": {"policy": "top1"}}, 400, "single network"),
        (("post", "/api/targets/a/box"), {"json": {"lower": [1, 1, 1], "upper": [9, 9, 9]}}, 400, "box embeddings"),
        (("get", "/static/app.py"), {}, 404, "no page file"),
        (("get", "/static/..%2F..%2Fcli%2Fview.py"), {}, 404, "not found"),
        (("get", "/api/nothing"), {}, 404, "Not Found"),
    ]
    for (method, path), kwargs, status, words in cases:
        response = getattr(client, method)(path, headers={**CHANGE, "Content-Type": "application/json"}, **kwargs)
        assert response.status_code == status, (path, response.text)
        message = response.json()["error"]
        assert words.lower() in message.lower() and "\n" not in message and "Traceback" not in message
    too_big = client.post("/api/targets", content=b"x" * (MAX_BODY_BYTES + 1), headers=CHANGE)
    assert too_big.status_code == 413 and "larger than" in too_big.json()["error"]
    assert session.prompts() == before and session.targets == ["a"]


def test_a_bug_is_a_500_without_its_traceback(session, tmp_path, monkeypatch):
    client, state = viewer_client(session, tmp_path / "out_seg.nii.gz")

    def broken() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(state, "snapshot", broken)
    response = client.get("/api/targets")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (RuntimeError); the server's log has the details"}


def test_only_this_machine_and_the_page_may_talk_to_it(session, tmp_path):
    client, _ = viewer_client(session, tmp_path / "out_seg.nii.gz")
    assert client.get("/api/info", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    rebinding = client.get("/api/info", headers={"Host": "attacker.example:8765"})
    assert rebinding.status_code == 403 and "attacker.example" in rebinding.json()["error"]
    cross_site = client.post("/api/targets", json={"name": "x"})  # no X-Sammoe header: not our page
    assert cross_site.status_code == 403 and session.targets == []


def test_a_token_is_required_on_every_request_when_one_is_set(session, tmp_path):
    client, _ = viewer_client(session, tmp_path / "out_seg.nii.gz", token="s3cret-token")
    assert client.get("/").status_code == 403
    assert client.get("/api/info").status_code == 403
    assert client.get("/api/info?token=wrong").status_code == 403
    assert client.get("/api/info", headers={"X-Sammoe-Token": "s3cret-token", "Host": "10.0.0.5"}).status_code == 200
    page = client.get("/?token=s3cret-token")  # the URL `sammoe view` prints; sets the cookie
    assert page.status_code == 200 and "sammoe view" in page.text
    assert client.get("/api/info").status_code == 200  # the cookie now carries the token
    assert client.post("/api/targets", json={"name": "x"}, headers=CHANGE).status_code == 200


def test_save_writes_labels_sidecar_and_prompts_and_never_replaces_others_files(session, tmp_path):
    out = tmp_path / "out_seg.nii.gz"
    out.write_bytes(b"someone else's file")
    client, _ = viewer_client(session, out, input_argument="scan.nii.gz")
    post(client, "/api/targets", {"name": "liver"})
    post(client, "/api/targets/liver/clicks", {"position": [20, 20, 20]})
    refused = client.post("/api/save", headers=CHANGE)
    assert refused.status_code == 400 and "output exists" in refused.json()["error"]
    assert out.read_bytes() == b"someone else's file"
    out.unlink()
    saved = post(client, "/api/save")
    labels = np.asanyarray(nib.load(out).dataobj)
    assert labels[20, 20, 20] == 1 and np.array_equal(labels, session.result().label_map)
    sidecar = json.loads((tmp_path / "out_seg.json").read_text())
    assert sidecar["labels"] == {"1": "liver"}
    assert json.loads((tmp_path / "out_seg.prompts.json").read_text()) == session.prompts()
    assert saved["reproduce"] == (
        f"sammoe segment scan.nii.gz --prompts {tmp_path}/out_seg.prompts.json -o {tmp_path}/out_seg.nii.gz"
    )
    post(client, "/api/targets/liver/clicks", {"position": [24, 20, 20], "positive": False})
    post(client, "/api/save")  # its own files: replaced
    assert json.loads((tmp_path / "out_seg.prompts.json").read_text()) == session.prompts()


def test_a_box_in_mm_segments_on_a_network_with_box_prompts(tmp_path):
    array = np.full(SHAPE, 50.0, dtype=np.float32)
    predictor = EllipsoidPredictor(9.0, 64, box_prompts=True)
    session = Session(array, predictor, affine=np.diag([1.5, 1.5, 1.5, 1.0]))
    client, _ = viewer_client(session, tmp_path / "out_seg.nii.gz")
    assert client.get("/api/info").json()["model"]["box_prompts"] is True
    post(client, "/api/targets", {"name": "kidney"})
    box = {"lower": [24.0, 24.0, 24.0], "upper": [42.0, 42.0, 42.0], "space": "mm"}  # voxels 16-28
    snap = post(client, "/api/targets/kidney/box", box)
    assert snap["targets"][0]["box"] == box and snap["targets"][0]["segmented"]
    assert predictor.decodes[0]["boxes"] is not None  # the box reached the network's box embeddings
    assert session.prompts()["targets"][0]["box"] == box


def test_the_printed_url_and_when_a_token_is_needed():
    from sammoe_core.errors import InputError
    from sammoe_core.viewer import server

    assert not server.needs_token("127.0.0.1") and not server.needs_token("localhost")
    assert server.needs_token("0.0.0.0") and server.needs_token("192.168.1.5")
    assert server.url_of("127.0.0.1", 8765, None) == "http://127.0.0.1:8765/"
    assert server.url_of("0.0.0.0", 9000, "abc") == "http://127.0.0.1:9000/?token=abc"
    assert len(server.new_token()) >= 32 and server.new_token() != server.new_token()
    port = server.check_port("127.0.0.1", 0)
    assert port > 0
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(InputError, match="cannot listen there"):
            server.check_port("127.0.0.1", taken.getsockname()[1])


def test_the_reproducing_command_carries_the_model_and_policy_flags(session, tmp_path):
    weights = ("--weights", "w.safetensors")
    _, state = viewer_client(session, tmp_path / "out seg.nii.gz", input_argument="my scan.nii.gz", model_flags=weights)
    state.policy = {"policy": "topk-blend", "options": {"k": 3, "temperature": 0.5}, "expert": None}
    assert state.reproduce_command() == (
        f"sammoe segment 'my scan.nii.gz' --prompts '{tmp_path}/out seg.prompts.json' -o '{tmp_path}/out seg.nii.gz' "
        "--weights w.safetensors --policy topk-blend --top-k 3 --policy-option temperature=0.5"
    )
    state.policy = {"policy": "fixed", "options": {}, "expert": "hip"}
    assert state.reproduce_command().endswith("--weights w.safetensors --expert hip")


def test_the_notebook_viewer_serves_the_same_session_in_an_iframe(session, tmp_path):
    import httpx

    import sammoe_core

    with sammoe_core.NotebookViewer(session, tmp_path / "nb_seg.nii.gz") as viewer:
        assert viewer.url.startswith("http://127.0.0.1:") and f'src="{viewer.url}"' in viewer._repr_html_()
        with httpx.Client(base_url=viewer.url, headers=CHANGE) as client:
            assert "sammoe view" in client.get("/").text
            client.post("/api/targets", json={"name": "liver"}).raise_for_status()
            client.post("/api/targets/liver/clicks", json={"position": [20, 20, 20]}).raise_for_status()
        assert session.prompts()["targets"][0]["clicks"][0]["position"] == [20.0, 20.0, 20.0]  # the notebook's
        revision = viewer.state.snapshot()["labels_version"]
        session.add_click("liver", (22, 20, 20), positive=False)  # and Python edits reach the page
        with httpx.Client(base_url=viewer.url) as client:
            snap = client.get("/api/targets").json()
            assert snap["labels_version"] > revision and len(snap["targets"][0]["clicks"]) == 2
            assert client.get("/api/labels").headers["X-Labels-Version"] == str(snap["labels_version"])
    time.sleep(0.5)
    with pytest.raises(httpx.TransportError):
        httpx.get(viewer.url, timeout=2)
