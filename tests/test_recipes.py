"""The embedded default's training recipe runs (a few steps, tiny network) and resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data_support import write_sphere_dataset

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def _run(config: Path, run_dir: Path, cache: Path, steps: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples/train_default/train.py"),
            str(config),
            str(run_dir),
            "--cache",
            str(cache),
            "--quiet",
            "--steps",
            str(steps),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout[out.stdout.index("{") :])


def test_foundation_recipe_runs_a_few_steps_and_resumes(tmp_path):
    data = write_sphere_dataset(tmp_path / "spheres", n=2)
    recipe = json.loads((REPO / "examples/train_default/foundation.json").read_text())
    recipe.update(
        {
            "config": "sammoe-tiny",
            "data": [{"path": str(data)}],
            "num_clicks": 3,
            "workers": 0,
            "device": "cpu",
            "log_every": 1,
        }
    )
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps(recipe))
    first = _run(config, tmp_path / "run", tmp_path / "cache", steps=2)
    assert first["steps"] == 2
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["loss"] > 0 for r in log)
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2
    again = _run(config, tmp_path / "run", tmp_path / "cache", steps=2)  # nothing left to do
    assert again["steps"] == 2
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 2


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path):
    import signal
    import time

    data = write_sphere_dataset(tmp_path / "spheres", n=2)
    recipe = {
        "config": "sammoe-tiny",
        "data": [{"path": str(data)}],
        "steps": 6,
        "num_clicks": 2,
        "workers": 0,
        "device": "cpu",
        "log_every": 1,
        "checkpoint_every_s": 0,
        "warmup_steps": 1,
    }
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps(recipe))
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        str(REPO / "examples/train_default/train.py"),
        str(config),
        str(run),
        "--cache",
        str(tmp_path / "cache"),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["step"] >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = json.loads(state.read_text())["step"]
    assert 2 <= done_before <= 6
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout[out.stdout.index("{") :])["steps"] == 6
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 6 and steps.count(done_before + 1) <= 2  # resumed after the checkpoint
    assert set(range(1, 7)) <= set(steps)
