"""What the viewer keeps for one opened volume: the session, target colours, the save location.

Every edit goes through :meth:`ViewerState.edit`, which holds one lock (a session is not
thread-safe), times the edit and counts the encoder passes it needed; the session's revision
numbers the label map (edits made in Python, e.g. in a notebook, count too). The label map
travels to the page as raw bytes (one byte per voxel, the volume file's voxel order) so the page
can replace its overlay in place. Saving writes exactly what ``sammoe segment`` writes for the
same prompts, plus the prompts file; the location is fixed when the viewer starts, never chosen
by the page.
"""

from __future__ import annotations

import gzip
import json
import re
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sammoe_core.errors import InputError
from sammoe_core.segmentation.session import Session

PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class SavePlan:
    """Where Save writes (fixed at start) and the command line that reproduces it."""

    label_map: Path
    input_argument: str  # VOLUME as the user typed it, for the reproducing command
    model_flags: tuple[str, ...] = ()  # --weights/--config/--device as given to `view`
    overwrite: bool = False

    @property
    def prompts_file(self) -> Path:
        from sammoe_core.io.outputs import output_paths

        sidecar = output_paths(self.label_map).sidecar
        return sidecar.with_name(sidecar.name[: -len(".json")] + ".prompts.json")


@dataclass
class Timing:
    """The last edit: server time, and whether the encoder ran (a crop not seen before)."""

    action: str = ""
    target: str = ""
    server_ms: float = 0.0
    encoder_passes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "server_ms": round(self.server_ms, 1),
            "encoder_passes": self.encoder_passes,
        }


@dataclass
class ViewerState:
    """One volume open in the viewer (see the module docstring)."""

    session: Session
    save_plan: SavePlan
    policy: dict[str, Any] = field(default_factory=lambda: {"policy": "threshold", "options": {}, "expert": None})
    colours: dict[str, str] = field(default_factory=dict)
    last: Timing = field(default_factory=Timing)
    saved_once: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)  # every read and edit of the session
    _volume_file: bytes | None = None
    _labels: tuple[int, np.ndarray, bytes] | None = None  # revision, uint8 label map, its gzipped bytes

    # --- what the page shows -----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The volume's grid and the model, for the page's first request."""
        volume = self.session.volume
        prepared = self.session.prepared
        model = self.session.predictor.describe()
        return {
            "volume": {
                "name": Path(volume.source).name,
                "shape": list(volume.shape),
                "spacing_mm": [round(float(v), 4) for v in volume.spacing],
                "affine": [[float(v) for v in row] for row in volume.affine],
                "mm_to_voxel": [[float(v) for v in row] for row in np.linalg.inv(volume.affine)],
                "modality": prepared.modality.modality,
                "intensity_range": [float(volume.array.min()), float(volume.array.max())],
            },
            "model": {
                "predictor": model.get("predictor", "network"),
                "config": model.get("config"),
                "candidates": model.get("candidates", []),
                "gate": model.get("gate") is not None,
                "box_prompts": prepared.box_capable,
            },
            "policy": self.policy,
            "save": {
                "label_map": str(self.save_plan.label_map),
                "prompts": str(self.save_plan.prompts_file),
            },
        }

    def targets(self) -> list[dict[str, Any]]:
        """Every target: label, colour, prompts, undo/redo steps, size, and the gate's route."""
        out = []
        for name in self.session.targets:
            view = self.session.target_state(name)
            output = self.session.target_output(name)
            view["colour"] = self.colours[name]
            view["segmented"] = output is not None
            view["crops"] = len(output.result.crops) if output is not None else 0
            view["route"] = self.session.route(name)
            out.append(view)
        return out

    def snapshot(self) -> dict[str, Any]:
        """What the page redraws from after any request: targets, label map version, last timing."""
        with self.lock:
            return {
                "targets": self.targets(),
                "labels_version": self.session.revision,
                "last": self.last.to_dict(),
                "policy": self.policy,
            }

    def volume_file(self) -> bytes:
        """The opened volume as a gzipped NIfTI on its own grid (int16 when its values allow)."""
        from sammoe_core.io.volumes.nifti import nifti_like

        with self.lock:
            if self._volume_file is None:
                array = self.session.volume.array
                exact = bool(np.all(np.isfinite(array))) and bool(np.array_equal(array, np.round(array)))
                small = exact and array.min() >= -32768 and array.max() <= 32767
                data = array.astype(np.int16) if small else array.astype(np.float32)
                image = nifti_like(data, self.session.volume)
                self._volume_file = gzip.compress(image.to_bytes(), compresslevel=1)
            return self._volume_file

    def labels_file(self) -> bytes:
        """The label map now as a gzipped uint8 NIfTI on the volume's grid (the page's overlay)."""
        from sammoe_core.io.volumes.nifti import nifti_like

        image = nifti_like(self._current_labels()[1], self.session.volume)
        return gzip.compress(image.to_bytes(), compresslevel=1)

    def label_bytes(self) -> tuple[int, bytes]:
        """(version, the label map as gzipped uint8 bytes in the volume file's voxel order)."""
        revision, _, body = self._current_labels()
        return revision, body

    def _current_labels(self) -> tuple[int, np.ndarray, bytes]:
        """The label map of the session's current revision (made once per revision)."""
        with self.lock:
            if self._labels is None or self._labels[0] != self.session.revision:
                try:
                    labels = np.asarray(self.session.result().label_map, dtype=np.uint8)
                except InputError:  # no target has a prompt yet
                    labels = np.zeros(self.session.volume.shape, dtype=np.uint8)
                body = gzip.compress(labels.tobytes(order="F"), compresslevel=1)
                self._labels = (self.session.revision, labels, body)
            return self._labels

    # --- edits -------------------------------------------------------------------------------

    def edit(self, action: str, target: str, change: Callable[[], Any]) -> dict[str, Any]:
        """Run one change of the session under the lock, time it, and return the new snapshot."""
        with self.lock:
            passes = self.session.encoder_passes
            started = time.perf_counter()
            change()
            self.last = Timing(
                action, target, (time.perf_counter() - started) * 1000.0, self.session.encoder_passes - passes
            )
            return self.snapshot()

    def add_target(self, name: str | None, colour: str | None) -> dict[str, Any]:
        with self.lock:
            if name is None:
                name = next(f"target {i}" for i in range(1, 1000) if f"target {i}" not in self.session.targets)
            self._check_colour(colour)
            label = self.session.add_target(name)
            self.colours[name] = colour or PALETTE[(label - 1) % len(PALETTE)]
            return self.snapshot()

    def change_target(self, name: str, new_name: str | None, colour: str | None) -> dict[str, Any]:
        with self.lock:
            self._check_colour(colour)
            if new_name is not None and new_name != name:
                self.session.rename_target(name, new_name)
                self.colours = {(new_name if k == name else k): v for k, v in self.colours.items()}
                name = new_name
            else:
                self.session.target_state(name)  # an unknown name is an error
            if colour is not None:
                self.colours[name] = colour
            return self.snapshot()

    def remove_target(self, name: str) -> dict[str, Any]:
        def remove() -> None:
            self.session.remove_target(name)
            self.colours.pop(name, None)

        return self.edit("remove", name, remove)

    def set_policy(self, policy: str, tau: float | None, expert: str | None) -> dict[str, Any]:
        options = {} if tau is None else {"tau": tau}

        def change() -> None:
            self.session.set_policy(policy, options, expert)
            self.policy = {"policy": "fixed" if expert else policy, "options": options, "expert": expert}

        return self.edit("policy", "", change)

    @staticmethod
    def _check_colour(colour: str | None) -> None:
        if colour is not None and not COLOUR.match(colour):
            raise InputError(f"colour {colour!r}: expected #rrggbb")

    # --- saving ------------------------------------------------------------------------------

    def reproduce_command(self) -> str:
        """The ``sammoe segment`` command that writes the same label map from the saved prompts."""
        plan = self.save_plan
        words = ["sammoe", "segment", plan.input_argument, "--prompts", str(plan.prompts_file)]
        words += ["-o", str(plan.label_map), *plan.model_flags]
        if self.policy["expert"]:
            words += ["--expert", self.policy["expert"]]
        elif self.policy["policy"] != "threshold":
            words += ["--policy", self.policy["policy"]]
        for option, value in self.policy["options"].items():
            if option == "tau":
                words += ["--tau", repr(float(value))]
            elif option == "k":
                words += ["--top-k", str(int(value))]
            elif option != "expert":
                words += ["--policy-option", f"{option}={json.dumps(value)}"]
        return " ".join(shlex.quote(w) for w in words)

    def save(self) -> dict[str, Any]:
        """Write the label map, sidecar and prompts file where the viewer was told to at start.

        The first save replaces existing files only under ``--overwrite``; later saves of this
        viewer replace its own files."""
        from sammoe_core.files.atomic import write_text_atomic
        from sammoe_core.io.outputs import check_outputs, output_paths, write_result

        with self.lock:
            plan = self.save_plan
            overwrite = plan.overwrite or self.saved_once
            paths = output_paths(plan.label_map)
            check_outputs(paths, overwrite, inputs=(plan.input_argument,))
            if plan.prompts_file.exists() and not overwrite:
                raise InputError(f"{plan.prompts_file}: output exists (start the viewer with --overwrite)")
            result = self.session.result()
            prompts = json.dumps(self.session.prompts(), indent=2) + "\n"
            written = write_result(result, plan.label_map, overwrite=overwrite)
            write_text_atomic(plan.prompts_file, prompts, overwrite=overwrite)
            self.saved_once = True
            return {
                "files": {**written.to_dict(), "prompts": str(plan.prompts_file)},
                "targets": [{"name": t.name, "label": t.label, "voxel_count": t.voxel_count} for t in result.targets],
                "reproduce": self.reproduce_command(),
            }
