"""Bad-input corpus: runs a few hundred malformed, hostile or absurd inputs against the installed
``sammoe`` command line and prints what each one did.

Run it from the repository root, in the environment sammoe is installed in::

    python bench/bad_input_corpus.py --jobs 2         # the whole corpus (561 cases; 20 min on 2 busy cores)
    python bench/bad_input_corpus.py --only prompts   # one family (repeatable, or comma-separated)
    python bench/bad_input_corpus.py --list           # the cases, without running them
    python bench/bad_input_corpus.py --match dicom -v # cases whose name holds 'dicom', with full output

Other options: ``--timeout S`` (per case, default 120), ``--jobs N`` (cases run in parallel,
default 1), ``--entry-point`` (run the ``sammoe`` script instead of ``python -m sammoe_core``),
``--keep`` (keep the temporary folder of inputs and outputs), ``--no-debug-rerun``.

Every case is its own subprocess (``python -m sammoe_core ...``), in its own folder with a fresh
``SAMMOE_HOME`` and ``HF_HOME``, ``HF_HUB_OFFLINE=1`` (and ``PIP_NO_INDEX=1``: nothing reaches a
network), and a timeout. The inputs are generated into a temporary folder: small CT-like volumes
(24 x 22 x 18 int16) and, where a model runs, a random ``sammoe-tiny`` network passed with
``--weights`` (a few cases use the embedded default network). Families: ``volumes`` (damaged
NIfTI and DICOM, devices, absurd headers, labelled datasets), ``prompts``, ``outputs``,
``state`` (SAMMOE_HOME, registry, gates), ``experts`` (expert folders, plugins, scaffolds),
``weights`` (pickles, safetensors), ``hub`` (hf:// references, the local Hub cache) and
``batch`` (folders and manifests).

Each case says what the right answer is: a failure (exit status 2), a success (exit 0, e.g. a
warning and a fallback) or either. Its outcome gets these flags:

``clean``            no flag below: exit 2 with exactly one ``Error: ...`` line and no traceback
                     (a click usage error's ``Usage:`` lines are allowed), or exit 0 where that
                     is acceptable.
``traceback``        "Traceback" in stdout/stderr, exit status 1 (sammoe's "internal error"),
                     or any other exit status (killed by a signal, ...).
``hang``             the case ran past the timeout (its process group is killed).
``partial_output``   after a failed command, a new file or folder in the watched output
                     location (run reports and run manifests of batches aside); or, after any
                     command, a temporary file (``.*part*``) left there or in SAMMOE_HOME.
``state_loss``       something that must survive (the inputs, victim folders, secrets, an
                     expert added before, the registry) is gone or changed.
``code_execution``   a marker file that a payload (pickle ``__reduce__``, text injected into
                     generated code) would create exists.
``leak``             data went where it must never go: a secret outside an expert folder was
                     copied under SAMMOE_HOME or an output folder, or a file was written outside
                     the output folder (``../../escaped.nii.gz``).
``wrong_success``    exit 0 where a failure was the right answer.
``unexpected_failure`` exit 2 where a success was the right answer (still a clean refusal).
``messy``            exit 2 but not exactly one ``Error:`` line.

The last table counts cases per outcome. The script exits with status 1 if any case shows a
traceback, a hang, a partial output, a state loss, a code execution or a leak, else 0. For a case
that ended in sammoe's one-line "internal error", the case is rebuilt and rerun with
``SAMMOE_DEBUG=1`` so the report can show the traceback's last lines. A case whose sammoe cannot
import its own modules (a checkout being edited while the corpus runs) is retried twice, 30 s
apart, before it counts as a traceback.

Root note: the corpus usually runs as root, for whom ``chmod 000`` blocks no read and a
read-only mode blocks no write; those cases are marked "(root: not blocking)" and accept either
outcome. A full disk is simulated with ``RLIMIT_FSIZE`` (writes past it fail with EFBIG), an
unwritable place with ``/proc`` and ``/sys``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fnmatch
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEVERE = ("traceback", "hang", "partial_output", "state_loss", "code_execution", "leak")
FLAG_ORDER = (*SEVERE, "wrong_success", "unexpected_failure", "messy")
SHAPE = (24, 22, 18)
CLICK = "12,11,9"
AFFINE_DIAG = (1.5, 1.5, 2.0)
SECRET = b"SAMMOE-CORPUS-SECRET: a file outside the expert folder that must never be copied\n"
PAYLOAD = '"""; __import__("pathlib").Path(__import__("os").environ["SAMMOE_PWNED"]).touch(); """'
BATCH_REPORTS = ("sammoe-run-*.json", "sammoe-manifest*.jsonl", "sammoe-manifest*.jsonl.lock", ".")
HOME_SIDE_EFFECTS = (
    ".",
    "registry.json.lock",
    "cache",
    "cache/file-hashes.json",
    "cache/file-hashes.json.lock",
    "cache/*.lock",
)
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


# --- the corpus's shared inputs ---------------------------------------------------------------


def sammoe_attr(name: str, *modules: str):
    """``name`` from the first of ``modules`` that has it (sammoe's internal layout moves)."""
    import importlib

    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} is in none of {', '.join(modules)}")


class Assets:
    """Inputs made once per run (read-only for cases: each case copies what it changes)."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self._lock = threading.Lock()
        self._built = False

    def build(self) -> None:
        with self._lock:
            if self._built:
                return
            self._build()
            self._built = True

    def _build(self) -> None:
        import torch

        FoundationSpec = sammoe_attr("FoundationSpec", "sammoe_core.experts.foundations", "sammoe_core.experts")
        Sam3D = sammoe_attr("Sam3D", "sammoe_core.model")
        save_weights = sammoe_attr("save_weights", "sammoe_core.model.checkpoint", "sammoe_core.model")
        make_test_expert = sammoe_attr("make_test_expert", "sammoe_core.testing")

        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        write_nifti(d / "good.nii.gz", ct_like(SHAPE, 0))
        torch.manual_seed(0)
        model = Sam3D("sammoe-tiny")
        self.tiny = d / "tiny.safetensors"
        save_weights(model.state_dict(), self.tiny, model.config)
        self.tiny_state = {k: v.clone() for k, v in model.state_dict().items()}
        torch.manual_seed(1)
        other = Sam3D("sammoe-tiny")
        self.tiny_other = d / "tiny-other.safetensors"
        save_weights(other.state_dict(), self.tiny_other, other.config)
        self.spec = FoundationSpec.from_file(self.tiny, name="tiny")
        self.other_spec = FoundationSpec.from_file(self.tiny_other, name="tiny-other")
        self.tiny_sha = self.spec.sha256
        calib = d / "calibration-src"
        write_calibration(calib)
        e = d / "experts"

        def expert(name: str, spec=self.spec, seed: int = 1, calibrated: bool = False, **fields) -> Path:
            folder = e / name
            if calibrated:
                fields.update(targets=[{"name": "sphere"}], calibration={"path": "calibration", "classes": ["sphere"]})
            make_test_expert(folder, spec, name=fields.pop("expert_name", name), seed=seed, **fields)
            if calibrated:
                shutil.copytree(calib, folder / "calibration")
            return folder

        self.expert_good = expert("alpha")
        self.expert_beta = expert("beta", seed=2)
        self.expert_calib = expert("calib", calibrated=True, expert_name="alpha")
        self.expert_other = expert("other", spec=self.other_spec, expert_name="alpha")
        self.expert_injected = expert(
            "injected", description=f"Liver expert {PAYLOAD} and more", authors=[f"x {PAYLOAD}"]
        )
        self.expert_injected_eval = expert(
            "injected-eval",
            evaluation=[
                {
                    "dataset": f"AMOS {PAYLOAD}",
                    "target": f"liver {PAYLOAD}",
                    "metric": f"dice {PAYLOAD}",
                    "value": 0.5,
                    "cases": 3,
                }
            ],
        )
        self.dataset = d / "dataset"
        write_calibration(self.dataset, n=2)
        self.plugin_expert = next((p for p in [REPO / "plugins" / "sammoe-expert-hip"] if p.exists()), None)
        self.shipped_gate = REPO / "sammoe_core" / "weights" / "gates" / "default"
        self.builtin_sha = json.loads((REPO / "sammoe_core" / "weights" / "foundation.json").read_text())["sha256"]


def ct_like(shape, seed: int):
    """Air around a soft-tissue ellipsoid with a bright core, plus noise (Hounsfield-like, int16)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    body = (grid**2).sum(-1) < 0.7
    core = ((grid - 0.15) ** 2).sum(-1) < 0.08
    return (np.where(body, 40.0, -1000.0) + np.where(core, 160.0, 0.0) + rng.normal(0, 15, shape)).astype(np.int16)


def affine():
    import numpy as np

    return np.diag([*AFFINE_DIAG, 1.0])


def write_nifti(path: Path, data, aff=None) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(data, affine() if aff is None else aff).to_filename(str(path))
    return path


def nifti_bytes(data=None, patch: Callable[[bytearray], None] | None = None, gz: bool = True, aff=None) -> bytes:
    """A single-file NIfTI-1 image as bytes, its header patched by ``patch(raw)``, gzipped or not."""
    import nibabel as nib

    img = nib.Nifti1Image(ct_like(SHAPE, 0) if data is None else data, affine() if aff is None else aff)
    raw = bytearray(img.to_bytes())
    if patch is not None:
        patch(raw)
    return gzip.compress(bytes(raw)) if gz else bytes(raw)


def pack(fmt: str, offset: int, *values) -> Callable[[bytearray], None]:
    """A header patch: ``struct.pack_into('<' + fmt, raw, offset, *values)``."""

    def patch(raw: bytearray) -> None:
        struct.pack_into("<" + fmt, raw, offset, *values)

    return patch


def write_calibration(root: Path, n: int = 1) -> Path:
    """A tiny labelled dataset (dataset.json, images/, labels/): a bright sphere, label 1."""
    import numpy as np

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    shape = (24, 24, 20)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    for i in range(n):
        sphere = ((grid - np.array(shape) / 2) ** 2).sum(-1) < (5 + i) ** 2
        image = (100 + 300 * sphere + np.random.default_rng(i).normal(0, 20, shape)).astype(np.float32)
        write_nifti(root / "images" / f"case{i}.nii.gz", image, np.diag([2.0, 2.0, 2.4, 1.0]))
        write_nifti(root / "labels" / f"case{i}.nii.gz", sphere.astype(np.uint8), np.diag([2.0, 2.0, 2.4, 1.0]))
    (root / "dataset.json").write_text(
        json.dumps({"name": root.name, "modality": "mr", "labels": {"background": 0, "sphere": 1}})
    )
    return root


def write_dicom_series(
    folder: Path, hu=None, positions=None, tweak=None, spacing=(1.5, 1.5, 2.0), series_uid=None, preamble=True
) -> Path:
    """An axial CT series, one file per slice (``positions``: z of each slice in mm);
    ``tweak(ds, k)`` edits slice k's dataset before it is saved."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    hu = ct_like(SHAPE, 0) if hu is None else hu
    folder.mkdir(parents=True, exist_ok=True)
    positions = [k * spacing[2] for k in range(hu.shape[2])] if positions is None else positions
    series = series_uid or generate_uid()
    for k, z in enumerate(positions):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID = "CT", series
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["0", "0", f"{z:.4f}"]
        ds.PixelSpacing = [f"{spacing[1]}", f"{spacing[0]}"]
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hu[:, :, min(k, hu.shape[2] - 1)].T.astype(np.int32) + 1024).astype(np.uint16).tobytes()
        if tweak is not None:
            tweak(ds, k)
        ds.save_as(folder / f"slice{k:03d}.dcm", enforce_file_format=preamble)
    return folder


# --- one case ---------------------------------------------------------------------------------


@dataclass
class Case:
    family: str
    name: str
    build: Callable[[Ctx], list[str]]
    expect: str = "fail"  # "fail", "ok" or "either"
    note: str = ""


@dataclass
class Outcome:
    case: Case
    index: int
    argv: list[str] = field(default_factory=list)
    rc: int | None = None
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    flags: dict[str, str] = field(default_factory=dict)
    setup_error: str = ""
    debug_tail: str = ""
    attempts: int = 1

    @property
    def clean(self) -> bool:
        return not self.flags and not self.setup_error

    def first_line(self) -> str:
        lines = [ln.strip() for ln in (self.stderr + "\n" + self.stdout).splitlines() if ln.strip()]
        for prefix in ("Error:", "Warning:", "warning:"):
            for ln in lines:
                if ln.startswith(prefix):
                    return ln
        return lines[0] if lines else ""


class SetupError(Exception):
    pass


class Ctx:
    """A case's folder, environment and the checks to make after its command."""

    def __init__(self, root: Path, assets: Assets, index: int, case: Case, python: list[str], timeout: float) -> None:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", case.name).strip("-")[:60]
        self.dir = root / "cases" / f"{index:03d}-{case.family}-{slug}"
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        self.inp = self.dir / "in"
        self.home = self.dir / "home"
        self.hf = self.dir / "hf"
        self.out = self.dir / "out"
        for folder in (self.inp, self.out, self.hf):
            folder.mkdir(parents=True)
        self.a = assets
        self.python = python
        self.timeout = timeout
        self.marker = self.dir / "PWNED"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAMMOE_", "HF_", "HUGGING"))}
        env.update(
            SAMMOE_HOME=str(self.home),
            HF_HOME=str(self.hf),
            HF_HUB_OFFLINE="1",
            SAMMOE_PWNED=str(self.marker),
            PIP_NO_INDEX="1",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PYTHONDONTWRITEBYTECODE="1",
            HF_HUB_DISABLE_TELEMETRY="1",
        )
        self.env = env
        self.watches: list[tuple[Path, tuple[str, ...]]] = [(self.out, ())]
        self.temp_roots: list[Path] = [self.out, self.home, self.inp]
        self.survivors: list[Path] = []
        self.forbidden: list[Path] = []
        self.secret_roots: list[Path] = []
        self.post: list[Callable[[Outcome], None]] = []
        self.fsize_limit: int | None = None

    # inputs
    def volume(self, name: str = "v.nii.gz", data=None, aff=None) -> Path:
        return write_nifti(self.inp / name, ct_like(SHAPE, 0) if data is None else data, aff)

    def write(self, rel: str, content: bytes | str) -> Path:
        path = self.inp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    def prompts(self, obj, name: str = "p.json") -> Path:
        return self.write(name, obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    def copy(self, source: Path, rel: str) -> Path:
        dest = self.inp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, symlinks=True)
        else:
            shutil.copy2(source, dest)
        return dest

    # commands
    def seg(self, inp, *extra, out=None, weights: bool = True, point: bool = True) -> list[str]:
        argv = ["segment", str(inp), "-o", str(self.out / "o.nii.gz" if out is None else out), "--device", "cpu"]
        if point:
            argv += ["--point", CLICK]
        if weights:
            argv += ["--weights", str(self.a.tiny)]
        return [*argv, *map(str, extra)]

    def run_setup(self, *args: str) -> str:
        """Run a sammoe command as part of the set-up; it must succeed."""
        done = subprocess.run(
            [*self.python, *map(str, args)],
            check=False,
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        if done.returncode != 0:
            raise SetupError(
                f"set-up `sammoe {' '.join(map(str, args))}` failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-300:]}"
            )
        return done.stdout

    # state
    def registry(self, state: dict | str | bytes) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / "registry.json"
        if isinstance(state, dict):
            state = json.dumps({"state_version": 1, "experts": {}, "foundation": None, "gate": None, **state}, indent=2)
        path.write_bytes(state.encode() if isinstance(state, str) else state)
        return path

    def tiny_home(self, load_plugins: bool = False, **state) -> None:
        """A SAMMOE_HOME whose foundation is the tiny network (experts made on it fit)."""
        foundation = {
            "name": "tiny",
            "path": str(self.a.tiny),
            "config": "sammoe-tiny",
            "sha256": self.a.tiny_sha,
            "hub_id": None,
        }
        self.registry({"foundation": foundation, **state})
        if not load_plugins:
            self.env["SAMMOE_LOAD_PLUGINS"] = ""  # only sammoe's default plugins: no installed experts

    def gate_home(self, mutate: Callable[[Path], None] | None = None) -> Path:
        """A home whose recorded gate is a copy of the shipped one (for the default network)."""
        folder = self.home / "gates" / "g1"
        shutil.copytree(self.a.shipped_gate, folder)
        manifest = json.loads((folder / "gate.json").read_text())
        experts = [c["name"] for c in manifest["candidates"][1:]]
        self.registry({"gate": {"path": "gates/g1", "experts": experts, "foundation_sha256": self.a.builtin_sha}})
        if mutate is not None:
            mutate(folder)
        return folder

    # checks
    def watch(self, path: Path, *allow: str) -> None:
        self.watches.append((path, tuple(allow)))
        self.temp_roots.append(path)

    def allow_out(self, *allow: str) -> None:
        self.watches = [(p, a + tuple(allow)) if p == self.out else (p, a) for p, a in self.watches]

    def survive(self, *paths: Path) -> None:
        self.survivors.extend(paths)

    def forbid(self, *paths: Path) -> None:
        self.forbidden.extend(paths)

    def secret(self, folder: Path, name: str = "secret.txt") -> Path:
        """A secret file outside everything sammoe may copy; it must survive and never be copied."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(SECRET)
        self.survive(path)
        self.secret_roots = [self.home, self.out]
        return path


# --- snapshots --------------------------------------------------------------------------------


def tree(path: Path) -> dict[str, str]:
    """Relative path -> fingerprint of everything under ``path`` (links not followed; devices,
    FIFOs and sockets never opened)."""
    found: dict[str, str] = {}

    def fingerprint(p: Path) -> str:
        try:
            st = p.lstat()
        except OSError:
            return "?"
        if stat.S_ISLNK(st.st_mode):
            try:
                return "link:" + os.readlink(p)
            except OSError:
                return "link:?"
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            try:
                with open(p, "rb") as f:
                    return "file:" + hashlib.sha256(f.read()).hexdigest()
            except OSError as e:
                return f"file:unreadable:{e.errno}"
        return f"special:{stat.S_IFMT(st.st_mode)}"

    if not os.path.lexists(path):
        return found
    found["."] = fingerprint(path)
    if found["."] != "dir":
        return found
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            found[p.relative_to(path).as_posix()] = fingerprint(p)
    return found


def temp_files(path: Path) -> set[str]:
    return {rel for rel in tree(path) if fnmatch.fnmatch(Path(rel).name, ".*part*")}


def holds_secret(root: Path) -> list[str]:
    hits = []
    for rel, fp in tree(root).items():
        p = root / rel
        if fp.startswith("file:") and p.is_file() and not p.is_symlink():
            try:
                if SECRET in p.read_bytes():
                    hits.append(str(p))
            except OSError:
                pass
    return hits


# --- running ----------------------------------------------------------------------------------


IMPORT_BROKEN = re.compile(r"(ModuleNotFoundError|ImportError)\b.*sammoe")


def run_case(
    root: Path,
    assets: Assets,
    index: int,
    case: Case,
    python: list[str],
    timeout: float,
    debug: bool = False,
    retries: int = 2,
    wait: float = 30.0,
    debug_rerun: bool = True,
) -> Outcome:
    """Run one case; a sammoe that cannot even import its own modules (a checkout being edited
    while the corpus runs) is retried after ``wait`` seconds, ``retries`` times."""
    for attempt in range(retries + 1):  # noqa: B007 - counted below
        outcome = run_once(root, assets, index, case, python, timeout, debug)
        outcome.attempts = attempt + 1
        if "traceback" not in outcome.flags or not IMPORT_BROKEN.search(outcome.stdout + outcome.stderr):
            break
        if attempt < retries:
            time.sleep(wait)
    text = outcome.stdout + outcome.stderr
    if (
        debug_rerun
        and not debug
        and "traceback" in outcome.flags
        and "Traceback" not in text
        and outcome.rc is not None
    ):
        # at once, so that the traceback comes from the same code (the checkout may be edited meanwhile)
        again = run_once(root, assets, index, case, python, timeout, debug=True)
        tail = (again.stdout + again.stderr).strip().splitlines()
        outcome.debug_tail = "\n".join(tail[-8:])
        said = re.search(r"internal error \((\w+):", text)
        ended = tail[-1].split(":", 1)[0].rsplit(".", 1)[-1] if tail else ""
        if said and ended != said.group(1):
            outcome.debug_tail += f"\n(the rerun ended differently from the first run's {said.group(1)})"
    return outcome


def run_once(
    root: Path, assets: Assets, index: int, case: Case, python: list[str], timeout: float, debug: bool = False
) -> Outcome:
    outcome = Outcome(case, index)
    assets.build()
    ctx = Ctx(root / ("debug" if debug else ""), assets, index, case, python, timeout)
    try:
        argv = case.build(ctx)
    except SetupError as e:
        outcome.setup_error = str(e)
        return outcome
    except Exception as e:  # noqa: BLE001 - a bug in the corpus itself: reported, never hidden
        outcome.setup_error = f"corpus set-up failed: {type(e).__name__}: {e}"
        return outcome
    if debug:
        ctx.env["SAMMOE_DEBUG"] = "1"
    argv = [os.fspath(a) for a in argv]
    outcome.argv = argv
    before_watch = {p: tree(p) for p, _ in ctx.watches}
    before_temp = {p: temp_files(p) for p in ctx.temp_roots}
    survivors = [*ctx.survivors, ctx.inp]
    before_survive = {p: tree(p) for p in survivors}
    command = [*python, *argv]
    if ctx.fsize_limit is not None:
        command = [
            sys.executable,
            "-c",
            (
                "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2); "
                "os.execv(sys.argv[2], sys.argv[2:])"
            ),
            str(ctx.fsize_limit),
            shutil.which(python[0]) or python[0],
            *command[1:],
        ]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=ctx.dir,
        env=ctx.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        outcome.rc = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        outcome.rc = None
        outcome.flags["hang"] = f"no exit after {timeout:.0f} s"
    outcome.seconds = time.monotonic() - started
    outcome.stdout, outcome.stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    for check in ctx.post:
        try:
            check(outcome)
        except Exception as e:  # noqa: BLE001 - a failed post-check is reported with the case
            outcome.flags.setdefault("messy", f"post-check failed: {type(e).__name__}: {e}")
    classify(ctx, outcome, before_watch, before_temp, before_survive)
    return outcome


def classify(ctx: Ctx, o: Outcome, before_watch, before_temp, before_survive) -> None:
    text = o.stdout + "\n" + o.stderr
    failed = o.rc != 0
    if o.rc is not None:
        if "Traceback" in text:
            o.flags["traceback"] = "a traceback was printed"
        elif o.rc == 1:
            o.flags["traceback"] = "exit status 1 (internal error)"
        elif o.rc not in (0, 2):
            o.flags["traceback"] = f"exit status {o.rc}" + (f" (signal {-o.rc})" if o.rc < 0 else "")
        if o.rc == 0 and o.case.expect == "fail":
            o.flags["wrong_success"] = "exit 0 where a failure was expected"
        if o.rc == 2 and o.case.expect == "ok":
            o.flags["unexpected_failure"] = "exit 2 where a success was expected"
        if o.rc == 2:
            errors = [ln for ln in text.splitlines() if ln.startswith("Error:")]
            if len(errors) != 1:
                o.flags.setdefault("messy", f"{len(errors)} 'Error:' lines")
    if failed:
        for path, allow in ctx.watches:
            after = tree(path)
            new = sorted(
                rel
                for rel in after
                if rel not in before_watch[path] and not any(fnmatch.fnmatch(rel, pattern) for pattern in allow)
            )
            if new:
                o.flags["partial_output"] = f"new after failure in {path}: {', '.join(new[:5])}"
                break
    for path in ctx.temp_roots:
        left = sorted(temp_files(path) - before_temp.get(path, set()))
        if left:
            o.flags["partial_output"] = f"temporary file left in {path}: {', '.join(left[:3])}"
    for path, before in before_survive.items():
        after = tree(path)
        lost = sorted(rel for rel, fp in before.items() if after.get(rel) != fp)
        if lost:
            o.flags["state_loss"] = f"{path}: {', '.join(lost[:4])} gone or changed"
            break
    if ctx.marker.exists():
        o.flags["code_execution"] = f"payload marker {ctx.marker} exists"
    escaped = [str(p) for p in ctx.forbidden if os.path.lexists(p)]
    copies = [hit for root in ctx.secret_roots for hit in holds_secret(root)]
    if escaped or copies:
        o.flags["leak"] = "; ".join(
            [*(f"written outside: {p}" for p in escaped), *(f"secret copied to {p}" for p in copies)]
        )


# --- the corpus -------------------------------------------------------------------------------

CASES: list[Case] = []


def add(family: str, name: str, build: Callable[[Ctx], list[str]], expect: str = "fail", note: str = "") -> None:
    CASES.append(Case(family, name, build, expect, note))


def root_note(what: str) -> tuple[str, str]:
    return ("either", f"{what} (root: not blocking)") if ROOT else ("fail", what)


# volumes -------------------------------------------------------------------------------------


def _vol_bytes(name: str, content: Callable[[], bytes], expect: str = "fail", note: str = "", file: str = "v.nii.gz"):
    add("volumes", name, lambda c: c.seg(c.write(file, content())), expect, note)


def _gz_good() -> bytes:
    return nifti_bytes()


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0xFF
    return bytes(b)


def _huge_gzip(shape, extra: int = 1 << 20) -> bytes:
    import nibabel as nib
    import numpy as np

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    return gzip.compress(header.binaryblock + b"\0" * 4 + bytes(extra))


def _trailing_zeros_gzip(total: int) -> bytes:
    """A valid small image followed by ``total`` bytes of zeros, in one gzip member."""
    raw = nifti_bytes(gz=False)
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [comp.compress(raw)]
    chunk = bytes(1 << 24)
    for _ in range(total // len(chunk)):
        parts.append(comp.compress(chunk))
    parts.append(comp.flush())
    return b"".join(parts)


def volume_cases() -> None:
    import numpy as np

    v = _vol_bytes
    v("empty .nii.gz file", lambda: b"")
    v("empty .nii file", lambda: b"", file="v.nii")
    v("truncated gzip (half)", lambda: _gz_good()[: len(_gz_good()) // 2])
    v("truncated gzip (20 bytes)", lambda: _gz_good()[:20])
    v("truncated gzip (no trailer)", lambda: _gz_good()[:-8])
    v("bad gzip CRC", lambda: _flip(_gz_good(), -6))
    v("bad gzip length trailer", lambda: _flip(_gz_good(), -2))
    v("flipped byte inside deflate data", lambda: _flip(_gz_good(), len(_gz_good()) // 2))
    v("garbage after the gzip member", lambda: _gz_good() + b"garbage" * 10, "either")
    v("two gzip members (valid concatenation)", lambda: _gz_good() + gzip.compress(b"\0" * 100), "either")
    v("header only, no voxels", lambda: gzip.compress(nifti_bytes(gz=False)[:352]))
    v("voxel data one byte short", lambda: gzip.compress(nifti_bytes(gz=False)[:-1]))
    v("wrong magic 'xx+1'", lambda: nifti_bytes(patch=pack("4s", 344, b"xx+1")))
    v("pair magic 'ni1' in a single file", lambda: nifti_bytes(patch=pack("4s", 344, b"ni1\0")))
    v(
        "sizeof_hdr 540 on a NIfTI-1 header",
        lambda: nifti_bytes(patch=pack("i", 0, 540)),
        "either",
        "nibabel repairs sizeof_hdr",
    )
    v("sizeof_hdr 0", lambda: nifti_bytes(patch=pack("i", 0, 0)), "either", "nibabel repairs sizeof_hdr")
    v("text gzipped and named .nii.gz", lambda: gzip.compress(b"hello, I am not a volume\n" * 50))
    v("plain text named .nii", lambda: b"not a volume\n" * 40, file="v.nii")
    v("PNG bytes named .nii.gz", lambda: b"\x89PNG\r\n\x1a\n" + bytes(200))
    v("2D image", lambda: nifti_bytes(np.zeros((24, 22), np.int16)))
    v("4D image (3 volumes)", lambda: nifti_bytes(np.zeros((*SHAPE, 3), np.int16)))
    v("4D image with one volume", lambda: nifti_bytes(ct_like(SHAPE, 0)[..., None]), "either")
    v("5D image", lambda: nifti_bytes(np.zeros((*SHAPE, 1, 2), np.int16)))
    v("a zero-size dimension", lambda: nifti_bytes(np.zeros((24, 0, 18), np.int16)))
    v("negative dimension in the header", lambda: nifti_bytes(patch=pack("h", 42, -22), gz=False), file="v.nii")
    v("dim[0] = 0", lambda: nifti_bytes(patch=pack("h", 40, 0)))
    v("dim[0] = 9", lambda: nifti_bytes(patch=pack("h", 40, 9)))
    v("dim[1] = 32767 with 18 kB of data", lambda: nifti_bytes(patch=pack("h", 42, 32767)))
    v("datatype code 0 (unknown)", lambda: nifti_bytes(patch=pack("hh", 70, 0, 0)))
    v("datatype code 1234 (invalid)", lambda: nifti_bytes(patch=pack("h", 70, 1234)))
    v("vox_offset far beyond the file", lambda: nifti_bytes(patch=pack("f", 108, 1e9)))
    v("vox_offset NaN", lambda: nifti_bytes(patch=pack("f", 108, float("nan"))))
    for label, value in [("NaN", np.nan), ("+Inf", np.inf), ("-Inf", -np.inf), ("3e38", 3e38), ("-3e38", -3e38)]:

        def data(value=value):
            d = ct_like(SHAPE, 0).astype(np.float32)
            d[3, 3, 3] = value
            return nifti_bytes(d)

        v(f"one {label} voxel (float32)", data)
    v("all voxels NaN", lambda: nifti_bytes(np.full(SHAPE, np.nan, np.float32)))
    v("1e300 voxel (float64)", lambda: nifti_bytes(np.where(ct_like(SHAPE, 0) > 100, 1e300, 0.0)))
    v("scl_slope NaN", lambda: nifti_bytes(patch=pack("f", 112, float("nan"))), "either")
    v("scl_slope 1e38 on int16", lambda: nifti_bytes(patch=pack("f", 112, 1e38)))
    v(
        "scl_slope +Inf",
        lambda: nifti_bytes(patch=pack("f", 112, float("inf"))),
        "either",
        "nibabel ignores a non-finite slope",
    )
    v("scl_inter NaN with slope 1", lambda: nifti_bytes(patch=pack("ff", 112, 1.0, float("nan"))))
    v("huge declared size (1024^3) in a 1 MB gzip", lambda: _huge_gzip((1024, 1024, 1024)))
    v("huge declared size (32767^3) in a 1 MB gzip", lambda: _huge_gzip((32767, 32767, 32767)))
    add(
        "volumes",
        "huge declared size with SAMMOE_MAX_VOXELS=2e9",
        lambda c: (c.env.update(SAMMOE_MAX_VOXELS="2e9"), c.seg(c.write("v.nii.gz", _huge_gzip((1024, 1024, 1024)))))[
            1
        ],
    )
    add("volumes", "SAMMOE_MAX_VOXELS=abc", lambda c: (c.env.update(SAMMOE_MAX_VOXELS="abc"), c.seg(c.volume()))[1])
    add(
        "volumes",
        "SAMMOE_MAX_VOXELS=1e400",
        lambda c: (c.env.update(SAMMOE_MAX_VOXELS="1e400"), c.seg(c.volume()))[1],
        "either",
    )
    add("volumes", "SAMMOE_MAX_VOXELS=-5", lambda c: (c.env.update(SAMMOE_MAX_VOXELS="-5"), c.seg(c.volume()))[1])
    v("1 GiB of zeros after a small image (gzip bomb)", lambda: _trailing_zeros_gzip(1 << 30), "either")
    v(
        "declared 64^3, 10 bytes of data (.nii)",
        lambda: nifti_bytes(patch=pack("hhh", 42, 64, 64, 64), gz=False)[:362],
        file="v.nii",
    )
    v(
        "big-endian header (valid)",
        lambda: (
            __import__("nibabel")
            .Nifti1Image(ct_like(SHAPE, 0).astype(">i2"), affine(), __import__("nibabel").Nifti1Header(endianness=">"))
            .to_bytes()
        ),
        "ok",
        file="v.nii",
    )
    v("sform with NaN", lambda: nifti_bytes(patch=lambda r: (pack("h", 254, 1)(r), pack("f", 280, float("nan"))(r))))
    v(
        "all-zero affine (pixdim 0, codes 0)",
        lambda: nifti_bytes(patch=lambda r: (pack("hh", 252, 0, 0)(r), pack("fff", 80, 0.0, 0.0, 0.0)(r))),
        "either",
    )
    v(
        "singular sform (all zeros, code 1)",
        lambda: nifti_bytes(patch=lambda r: (pack("hh", 252, 0, 1)(r), pack("12f", 280, *([0.0] * 12))(r))),
        "either",
    )
    v(
        "pixdim 1e30",
        lambda: nifti_bytes(patch=lambda r: (pack("hh", 252, 0, 0)(r), pack("fff", 80, 1e30, 1e30, 1e30)(r))),
        "either",
    )
    v(
        "pixdim 1e-30",
        lambda: nifti_bytes(patch=lambda r: (pack("hh", 252, 0, 0)(r), pack("fff", 80, 1e-30, 1e-30, 1e-30)(r))),
        "either",
    )
    v(
        "quaternion NaN (qform only)",
        lambda: nifti_bytes(patch=lambda r: (pack("hh", 252, 1, 0)(r), pack("fff", 256, float("nan"), 0.0, 0.0)(r))),
    )
    v("complex64 voxels", lambda: nifti_bytes(ct_like(SHAPE, 0).astype(np.complex64)), "either")
    v(
        "bool voxels",
        lambda: nifti_bytes((ct_like(SHAPE, 0) > 0).astype(np.uint8), patch=pack("hh", 70, 1, 1)),
        "either",
    )
    v("1x1x1 volume", lambda: nifti_bytes(np.zeros((1, 1, 1), np.int16)), "either")
    add("volumes", "constant zero volume", lambda c: c.seg(c.volume(data=np.zeros(SHAPE, np.int16))), "either")
    add("volumes", "fifo named .nii", lambda c: (os.mkfifo(c.inp / "pipe.nii"), c.seg(c.inp / "pipe.nii"))[1])
    add(
        "volumes",
        "symlink to /dev/zero named .nii",
        lambda c: ((c.inp / "zero.nii").symlink_to("/dev/zero"), c.seg(c.inp / "zero.nii"))[1],
    )
    add(
        "volumes",
        "symlink to /dev/urandom named .nii.gz",
        lambda c: ((c.inp / "rand.nii.gz").symlink_to("/dev/urandom"), c.seg(c.inp / "rand.nii.gz"))[1],
    )
    add(
        "volumes",
        "symlink to /dev/null named .nii.gz",
        lambda c: ((c.inp / "null.nii.gz").symlink_to("/dev/null"), c.seg(c.inp / "null.nii.gz"))[1],
    )
    add(
        "volumes",
        "dangling symlink",
        lambda c: ((c.inp / "gone.nii.gz").symlink_to(c.dir / "nowhere.nii.gz"), c.seg(c.inp / "gone.nii.gz"))[1],
    )
    add(
        "volumes",
        "symlink loop",
        lambda c: (
            (c.inp / "a.nii.gz").symlink_to(c.inp / "b.nii.gz"),
            (c.inp / "b.nii.gz").symlink_to(c.inp / "a.nii.gz"),
            c.seg(c.inp / "a.nii.gz"),
        )[2],
    )
    add("volumes", "input does not exist", lambda c: c.seg(c.inp / "missing.nii.gz"))
    add("volumes", "input with a .txt suffix", lambda c: c.seg(c.copy(c.a.dir / "good.nii.gz", "v.txt")))
    add(
        "volumes",
        "input with .img/.hdr (Analyze) suffix",
        lambda c: c.seg(c.write("v.img", nifti_bytes(gz=False)[352:])),
    )
    add(
        "volumes",
        "upper-case suffix .NII.GZ (valid)",
        lambda c: c.seg(c.copy(c.a.dir / "good.nii.gz", "V.NII.GZ")),
        "either",
    )
    add(
        "volumes", "empty folder named v.nii.gz", lambda c: ((c.inp / "v.nii.gz").mkdir(), c.seg(c.inp / "v.nii.gz"))[1]
    )
    expect, note = root_note("chmod 000 input")
    add(
        "volumes",
        "unreadable input (chmod 000)",
        lambda c: (c.volume(), os.chmod(c.inp / "v.nii.gz", 0), c.seg(c.inp / "v.nii.gz"))[2],
        expect,
        note,
    )
    # DICOM
    add("volumes", "DICOM: good series (control)", lambda c: c.seg(write_dicom_series(c.inp / "series")), "ok")

    def garbage_dcm(c, preamble: bool):
        folder = c.inp / "series"
        folder.mkdir()
        for k in range(6):
            head = bytes(128) + b"DICM" if preamble else b""
            (folder / f"slice{k:03d}.dcm").write_bytes(head + os.urandom(300))
        return c.seg(folder)

    add("volumes", "DICOM: folder of garbage named .dcm", lambda c: garbage_dcm(c, False))
    add("volumes", "DICOM: files with a DICM preamble then garbage", lambda c: garbage_dcm(c, True))

    def one_bad_slice(c, content: bytes):
        folder = write_dicom_series(c.inp / "series")
        (folder / "slice007.dcm").write_bytes(content)
        return c.seg(folder)

    add(
        "volumes",
        "DICOM: one slice is garbage after DICM",
        lambda c: one_bad_slice(c, bytes(128) + b"DICM" + os.urandom(400)),
    )
    add("volumes", "DICOM: one slice is plain text", lambda c: one_bad_slice(c, b"notes\n" * 20), "either")
    add(
        "volumes",
        "DICOM: one slice truncated to half",
        lambda c: one_bad_slice(c, (write_dicom_series(c.dir / "tmpser") / "slice007.dcm").read_bytes()[:900]),
    )
    add(
        "volumes",
        "DICOM: non-uniform slice spacing",
        lambda c: c.seg(
            write_dicom_series(c.inp / "series", positions=[k * 2.0 + (3.0 if k > 8 else 0) for k in range(18)])
        ),
    )
    add("volumes", "DICOM: one slice", lambda c: c.seg(write_dicom_series(c.inp / "series", positions=[0.0])))
    add(
        "volumes",
        "DICOM: two slices at one position",
        lambda c: c.seg(write_dicom_series(c.inp / "series", positions=[0.0, 2.0, 2.0, 4.0])),
    )
    add(
        "volumes",
        "DICOM: slices of two sizes",
        lambda c: c.seg(
            write_dicom_series(
                c.inp / "series",
                tweak=lambda ds, k: (
                    (setattr(ds, "Rows", 11), setattr(ds, "PixelData", ds.PixelData[: len(ds.PixelData) // 2]))
                    if k == 4
                    else None
                ),
            )
        ),
    )
    add(
        "volumes",
        "DICOM: two series in one folder",
        lambda c: c.seg(
            write_dicom_series(
                c.inp / "series", tweak=lambda ds, k: setattr(ds, "SeriesInstanceUID", "1.2.3.4") if k % 2 else None
            )
        ),
    )
    add(
        "volumes",
        "DICOM: no ImagePositionPatient",
        lambda c: c.seg(
            write_dicom_series(
                c.inp / "series", tweak=lambda ds, k: delattr(ds, "ImagePositionPatient") if k == 3 else None
            )
        ),
    )
    add(
        "volumes",
        "DICOM: orientation with 5 values",
        lambda c: c.seg(
            write_dicom_series(
                c.inp / "series", tweak=lambda ds, k: setattr(ds, "ImageOrientationPatient", ["1", "0", "0", "0", "1"])
            )
        ),
    )
    add(
        "volumes",
        "DICOM: orientation NaN",
        lambda c: c.seg(
            write_dicom_series(
                c.inp / "series",
                tweak=lambda ds, k: setattr(ds, "ImageOrientationPatient", ["nan", "0", "0", "0", "1", "0"]),
            )
        ),
    )
    add(
        "volumes",
        "DICOM: orientation all zeros",
        lambda c: c.seg(
            write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "ImageOrientationPatient", ["0"] * 6))
        ),
    )
    add(
        "volumes",
        "DICOM: position with 2 values",
        lambda c: c.seg(
            write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "ImagePositionPatient", ["0", f"{k}"]))
        ),
    )
    add(
        "volumes",
        "DICOM: PixelSpacing with one value",
        lambda c: c.seg(write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "PixelSpacing", ["1.5"]))),
    )
    add(
        "volumes",
        "DICOM: PixelSpacing 0",
        lambda c: c.seg(
            write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "PixelSpacing", ["0", "0"]))
        ),
    )
    add(
        "volumes",
        "DICOM: PixelSpacing NaN",
        lambda c: c.seg(
            write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "PixelSpacing", ["nan", "1.5"]))
        ),
    )
    add(
        "volumes",
        "DICOM: Rows x Columns 60000 x 60000 declared",
        lambda c: c.seg(
            write_dicom_series(
                c.inp / "series", tweak=lambda ds, k: (setattr(ds, "Rows", 60000), setattr(ds, "Columns", 60000))
            )
        ),
    )
    add(
        "volumes",
        "DICOM: pixel data shorter than Rows x Columns",
        lambda c: c.seg(
            write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "PixelData", ds.PixelData[:100]))
        ),
    )
    add(
        "volumes",
        "DICOM: RescaleSlope NaN",
        lambda c: c.seg(write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "RescaleSlope", "nan"))),
    )
    add(
        "volumes",
        "DICOM: RescaleSlope 1e38",
        lambda c: c.seg(write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "RescaleSlope", "1e38"))),
    )
    add(
        "volumes",
        "DICOM: NumberOfFrames 2",
        lambda c: c.seg(write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "NumberOfFrames", 2))),
    )
    add(
        "volumes",
        "DICOM: BitsAllocated 12",
        lambda c: c.seg(write_dicom_series(c.inp / "series", tweak=lambda ds, k: setattr(ds, "BitsAllocated", 12))),
    )
    add(
        "volumes",
        "DICOM: 1000 slices declared by position, 18 files",
        lambda c: c.seg(write_dicom_series(c.inp / "series", positions=[k * 1000.0 for k in range(18)])),
        "either",
    )
    # labelled datasets (evaluate, finetune, retrain-gate read volumes too)

    def dataset(c, mutate=None) -> Path:
        folder = c.copy(c.a.dataset, "data")
        if mutate is not None:
            mutate(folder)
        c.tiny_home()
        c.watch(c.home, *HOME_SIDE_EFFECTS)
        return folder

    add(
        "volumes",
        "dataset: no dataset.json (evaluate)",
        lambda c: ["evaluate", "--data", dataset(c, lambda f: (f / "dataset.json").unlink()), "--device", "cpu", "-q"],
    )
    add(
        "volumes",
        "dataset: garbage dataset.json (evaluate)",
        lambda c: [
            "evaluate",
            "--data",
            dataset(c, lambda f: (f / "dataset.json").write_text("{nope")),
            "--device",
            "cpu",
            "-q",
        ],
    )
    add(
        "volumes",
        "dataset: deeply nested dataset.json (retrain-gate)",
        lambda c: [
            "retrain-gate",
            "--data",
            dataset(c, lambda f: (f / "dataset.json").write_text("[" * 200000 + "]" * 200000)),
            "--device",
            "cpu",
            "-q",
            "--no-calibration",
        ],
    )
    add(
        "volumes",
        "dataset: garbage image (finetune)",
        lambda c: [
            "finetune",
            "--data",
            dataset(c, lambda f: (f / "images" / "case0.nii.gz").write_bytes(b"garbage")),
            "--name",
            "x",
            "--classes",
            "sphere",
            "-o",
            c.out / "expert",
            "--device",
            "cpu",
            "--steps",
            "1",
            "-q",
        ],
    )
    add(
        "volumes",
        "dataset: label map of another shape (retrain-gate)",
        lambda c: [
            "retrain-gate",
            "--data",
            dataset(c, lambda f: write_nifti(f / "labels" / "case0.nii.gz", np.zeros((5, 5, 5), np.uint8))),
            "--device",
            "cpu",
            "-q",
            "--no-calibration",
        ],
    )
    add(
        "volumes",
        "dataset: NaN in an image (evaluate)",
        lambda c: [
            "evaluate",
            "--data",
            dataset(c, lambda f: write_nifti(f / "images" / "case0.nii.gz", np.full((24, 24, 20), np.nan, np.float32))),
            "--device",
            "cpu",
            "-q",
        ],
    )


# prompts -------------------------------------------------------------------------------------


def prompt_cases() -> None:
    def opt(name: str, *args: str, expect: str = "fail", weights: bool = True, note: str = ""):
        add("prompts", name, lambda c: c.seg(c.volume(), *args, point=False, weights=weights), expect, note)

    opt("--point outside the volume", "--point", "100,100,100")
    opt("--point negative", "--point", "-5,0,0")
    opt("--point just outside (24,0,0)", "--point", "24,0,0")
    opt("--point at the edge (23.4,0,0)", "--point", "23.4,0,0", expect="ok")
    opt("--point nan", "--point", "nan,1,1")
    opt("--point inf", "--point", "inf,1,1")
    opt("--point -inf", "--point", "1,-inf,1")
    opt("--point 1e308", "--point", "1e308,1,1")
    opt("--point 1e309 (overflows to inf)", "--point", "1e309,1,1")
    opt("--point with two numbers", "--point", "1,2")
    opt("--point with four numbers", "--point", "1,2,3,4")
    opt("--point letters", "--point", "a,b,c")
    opt("--point empty", "--point", "")
    opt("--point-mm nan", "--point-mm", "nan,0,0")
    opt("--point-mm far outside", "--point-mm", "1e6,0,0")
    opt("--negative-point only", "--negative-point", CLICK)
    opt("--negative-point inf with a point", "--point", CLICK, "--negative-point", "inf,1,1")
    opt("--box with nan", "--box", "1,1,1,nan,5,5", "--box-as-click")
    opt("--box with inf", "--box", "1,1,1,inf,5,5", "--box-as-click")
    opt("--box outside the volume", "--box", "100,100,100,120,120,120", "--box-as-click")
    opt("--box with five numbers", "--box", "1,1,1,5,5")
    opt("--box on a network without box embeddings", "--box", "4,4,4,16,16,12")
    opt("--box with --box-as-click (control)", "--box", "4,4,4,16,16,12", "--box-as-click", expect="ok")
    opt("--box of zero size with --box-as-click", "--box", "5,5,5,5,5,5", "--box-as-click", expect="either")
    opt("--box on the default network", "--box", "4,4,4,16,16,12", expect="either", weights=False)
    opt("--prompts and --point together", "--prompts", "p.json", "--point", CLICK)
    opt("no prompts at all")
    opt("--label-name alone", "--label-name", "liver")
    opt("--prompts file missing", "--prompts", "missing.json")
    opt("--tau nan", "--point", CLICK, "--tau", "nan", weights=False, expect="either")
    opt("--policy unknown", "--point", CLICK, "--policy", "no-such-policy", weights=False)
    opt(
        "--expert unknown with --policy fixed",
        "--point",
        CLICK,
        "--policy",
        "fixed",
        "--expert",
        "nobody",
        weights=False,
    )

    def pfile(name: str, content, expect: str = "fail", note: str = ""):
        add(
            "prompts",
            name,
            lambda c: c.seg(
                c.volume(), "--prompts", c.prompts(content() if callable(content) else content), point=False
            ),
            expect,
            note,
        )

    def t(**kw):
        return {"targets": [{"name": "x", **kw}]}

    pfile("prompts: control (one target)", t(points=[[12, 11, 9]]), "ok")
    pfile("prompts: empty file", "")
    pfile("prompts: malformed JSON", '{"targets": [')
    pfile("prompts: NaN in points", '{"targets": [{"name": "x", "points": [[NaN, 1, 1]]}]}')
    pfile("prompts: Infinity in points_mm", '{"targets": [{"name": "x", "points_mm": [[Infinity, 1, 1]]}]}')
    pfile("prompts: 1e400 in points", '{"targets": [{"name": "x", "points": [[1e400, 1, 1]]}]}')
    pfile("prompts: -Infinity in a box", '{"targets": [{"name": "x", "box": [0, 0, 0, -Infinity, 4, 4]}]}')
    pfile("prompts: NaN in box_mm", '{"targets": [{"name": "x", "box_mm": [0, 0, 0, NaN, 4, 4]}]}')
    pfile("prompts: deeply nested list (200k levels)", lambda: "[" * 200_000 + "]" * 200_000)
    pfile("prompts: deeply nested object (100k levels)", lambda: '{"a":' * 100_000 + "1" + "}" * 100_000)
    pfile("prompts: 5 MB file", lambda: json.dumps({"targets": [{"name": "x" * (5 << 20), "points": [[1, 1, 1]]}]}))
    pfile(
        "prompts: 1000 targets",
        lambda: {"targets": [{"name": f"t{i}", "label": i + 1, "points": [[12, 11, 9]]} for i in range(1000)]},
    )
    pfile("prompts: 5000 clicks in one target", t(points=[[12, 11, 9]] * 5000))
    pfile("prompts: 100000 negative clicks", t(points=[[12, 11, 9]], negative_points=[[1, 1, 1]] * 100_000))
    pfile("prompts: 256 clicks (at the bound)", t(points=[[12, 11, 9]] * 256), "ok")
    pfile(
        "prompts: 40 targets (within the bound)",
        {"targets": [{"name": f"t{i}", "label": i + 1, "points": [[12, 11, 9]]} for i in range(40)]},
        "ok",
    )
    pfile(
        "prompts: duplicate labels",
        {
            "targets": [
                {"name": "a", "label": 2, "points": [[12, 11, 9]]},
                {"name": "b", "label": 2, "points": [[10, 10, 9]]},
            ]
        },
    )
    pfile("prompts: label 0", t(label=0, points=[[12, 11, 9]]))
    pfile("prompts: label -1", t(label=-1, points=[[12, 11, 9]]))
    pfile("prompts: label 65536", t(label=65536, points=[[12, 11, 9]]))
    pfile("prompts: label 1e20", '{"targets": [{"name": "x", "label": 1e20, "points": [[12, 11, 9]]}]}')
    pfile("prompts: label 1.5", t(label=1.5, points=[[12, 11, 9]]))
    pfile("prompts: label as string", t(label="1", points=[[12, 11, 9]]), "either")
    pfile("prompts: label true", t(label=True, points=[[12, 11, 9]]), "either")
    pfile("prompts: unknown top-level key", {"targets": [{"name": "x", "points": [[12, 11, 9]]}], "colour": "red"})
    pfile("prompts: unknown target key", t(points=[[12, 11, 9]], colour="red"))
    pfile("prompts: targets is an object", {"targets": {"name": "x"}})
    pfile("prompts: top level is a list", [{"name": "x", "points": [[12, 11, 9]]}], "either")
    pfile("prompts: top level is null", "null")
    pfile("prompts: top level is a number", "42")
    pfile("prompts: empty targets", {"targets": []})
    pfile("prompts: only negative clicks", t(negative_points=[[12, 11, 9]]))
    pfile("prompts: point with two coordinates", t(points=[[12, 11]]))
    pfile("prompts: point as a string", t(points=["12,11,9"]))
    pfile("prompts: coordinates as strings", t(points=[["12", "11", "9"]]), "either")
    pfile("prompts: click space 'pixel'", t(clicks=[{"position": [12, 11, 9], "positive": True, "space": "pixel"}]))
    pfile(
        "prompts: click positive 'yes'",
        t(clicks=[{"position": [12, 11, 9], "positive": "yes"}]),
        "either",
        "pydantic's lax booleans",
    )
    pfile("prompts: box and box_mm together", t(box=[1, 1, 1, 5, 5, 5], box_mm=[1, 1, 1, 5, 5, 5]))
    pfile("prompts: point outside the volume", t(points=[[500, 11, 9]]))
    pfile("prompts: points_mm far outside", t(points_mm=[[1e9, 0, 0]]))
    pfile("prompts: name of 10000 characters", t(name="n" * 10000, points=[[12, 11, 9]]), "either")
    pfile("prompts: name with ANSI escapes", t(name="\x1b[2J\x1b[31mred", points=[[12, 11, 9]]), "either")
    pfile("prompts: name with a path", t(name="../../etc/passwd", points=[[12, 11, 9]]), "either")
    pfile("prompts: invalid UTF-8", b'{"targets": [{"name": "\xff\xfe", "points": [[12, 11, 9]]}]}')
    pfile("prompts: UTF-8 BOM", "\ufeff" + json.dumps(t(points=[[12, 11, 9]])), "either")
    pfile("prompts: UTF-16 file", lambda: json.dumps(t(points=[[12, 11, 9]])).encode("utf-16"), "either")
    add(
        "prompts",
        "prompts: file is a FIFO",
        lambda c: (os.mkfifo(c.inp / "p.json"), c.seg(c.volume(), "--prompts", c.inp / "p.json", point=False))[1],
    )
    add(
        "prompts",
        "prompts: symlink to /dev/zero",
        lambda c: (
            (c.inp / "p.json").symlink_to("/dev/zero"),
            c.seg(c.volume(), "--prompts", c.inp / "p.json", point=False),
        )[1],
    )
    add(
        "prompts",
        "prompts: a folder",
        lambda c: ((c.inp / "pdir").mkdir(), c.seg(c.volume(), "--prompts", c.inp / "pdir", point=False))[1],
    )


# outputs -------------------------------------------------------------------------------------


def output_cases() -> None:
    def o(name: str, build, expect: str = "fail", note: str = ""):
        add("outputs", name, build, expect, note)

    o("output equal to the input", lambda c: c.seg(c.volume(), out=c.inp / "v.nii.gz"))
    o("output equal to the input, --overwrite", lambda c: c.seg(c.volume(), "--overwrite", out=c.inp / "v.nii.gz"))
    o(
        "output = input through ./ and .., --overwrite",
        lambda c: c.seg(c.volume(), "--overwrite", out=f"{c.inp}/./../in/v.nii.gz"),
    )
    o(
        "output a symlink to the input, --overwrite",
        lambda c: (
            c.volume(),
            (c.out / "o.nii.gz").symlink_to(c.inp / "v.nii.gz"),
            c.seg(c.inp / "v.nii.gz", "--overwrite"),
        )[2],
        "either",
    )
    o(
        "input given through a symlink, output = link target",
        lambda c: (
            c.volume(),
            (c.out / "link.nii.gz").symlink_to(c.inp / "v.nii.gz"),
            c.seg(c.out / "link.nii.gz", "--overwrite", out=c.inp / "v.nii.gz"),
        )[2],
    )
    o(
        "output inside the input DICOM folder",
        lambda c: c.seg(write_dicom_series(c.inp / "series"), out=c.inp / "series" / "o.nii.gz"),
    )
    o(
        "preview inside the input DICOM folder",
        lambda c: c.seg(write_dicom_series(c.inp / "series"), "--preview", c.inp / "series" / "slice000.png"),
    )
    o("output in a missing folder", lambda c: c.seg(c.volume(), out=c.out / "missing" / "o.nii.gz"))
    o("output path is a folder", lambda c: ((c.out / "o.nii.gz").mkdir(), c.seg(c.volume()))[1])
    o(
        "output parent is a file",
        lambda c: ((c.out / "file").write_text("x"), c.seg(c.volume(), out=c.out / "file" / "o.nii.gz"))[1],
    )

    def existing(c, *names):
        for n in names:
            (c.out / n).write_text("keep me")
            c.survive(c.out / n)

    o("output exists, no --overwrite", lambda c: (existing(c, "o.nii.gz"), c.seg(c.volume()))[1])
    o("sidecar exists, no --overwrite", lambda c: (existing(c, "o.json"), c.seg(c.volume()))[1])
    o("preview exists, no --overwrite", lambda c: (existing(c, "o.png"), c.seg(c.volume(), "--preview"))[1])
    o(
        "probabilities exist, no --overwrite",
        lambda c: (existing(c, "o.probabilities.nii.gz"), c.seg(c.volume(), "--probabilities"))[1],
    )
    o(
        "output exists, --overwrite (control)",
        lambda c: ((c.out / "o.nii.gz").write_text("old"), c.seg(c.volume(), "--overwrite"))[1],
        "ok",
    )
    o("output .nii (control)", lambda c: c.seg(c.volume(), out=c.out / "o.nii"), "ok")
    o("output with a .png suffix", lambda c: c.seg(c.volume(), out=c.out / "o.png"))
    o("output without suffix", lambda c: c.seg(c.volume(), out=c.out / "o"))
    o("output .nii.gz.bak", lambda c: c.seg(c.volume(), out=c.out / "o.nii.gz.bak"))
    o("output named only '.nii.gz'", lambda c: c.seg(c.volume(), out=c.out / ".nii.gz"), "either")
    o("output empty string", lambda c: c.seg(c.volume(), out=""))
    o("output '/'", lambda c: c.seg(c.volume(), out="/"))
    o("output name of 300 characters", lambda c: c.seg(c.volume(), out=c.out / ("x" * 300 + ".nii.gz")))
    o("preview with a .jpg suffix", lambda c: c.seg(c.volume(), "--preview", c.out / "o.jpg"))
    o("preview in a missing folder", lambda c: c.seg(c.volume(), "--preview", c.out / "missing" / "o.png"))
    o(
        "preview path is a folder",
        lambda c: ((c.out / "p.png").mkdir(), c.seg(c.volume(), "--preview", c.out / "p.png"))[1],
    )
    o("output under /proc/1", lambda c: c.seg(c.volume(), out="/proc/1/o.nii.gz"))
    o("output under /proc", lambda c: c.seg(c.volume(), out="/proc/o.nii.gz"))
    o("output under /sys", lambda c: c.seg(c.volume(), out="/sys/o.nii.gz"))
    o("output under /sys/kernel", lambda c: c.seg(c.volume(), out="/sys/kernel/o.nii.gz"))
    o("preview under /proc/1", lambda c: c.seg(c.volume(), "--preview", "/proc/1/o.png"))
    expect, note = root_note("output folder chmod 555")
    o("output folder read-only (chmod 555)", lambda c: (os.chmod(c.out, 0o555), c.seg(c.volume()))[1], expect, note)

    def full_disk(c, limit: int, *extra):
        c.fsize_limit = limit
        return c.seg(c.volume(), *extra)

    o("disk full while writing (RLIMIT_FSIZE 512 B)", lambda c: full_disk(c, 512))
    o(
        "disk full with preview and probabilities (RLIMIT_FSIZE 4 kB)",
        lambda c: full_disk(c, 4096, "--preview", "--probabilities"),
    )
    o(
        "dangling symlink as the output",
        lambda c: (
            (c.out / "o.nii.gz").symlink_to(c.dir / "elsewhere.nii.gz"),
            c.forbid(c.dir / "elsewhere.nii.gz"),
            c.seg(c.volume()),
        )[2],
        "either",
    )
    o("convert: output under /proc/1", lambda c: ["convert", c.write("w.pth", b"x"), "/proc/1/w.safetensors"])
    o("phantoms: output under /proc/1", lambda c: ["phantoms", "/proc/1/ph", "--n", "1", "--seed", "0", "-q"])
    o(
        "phantoms: output folder not empty",
        lambda c: (
            (c.out / "ph").mkdir(),
            (c.out / "ph" / "keep.txt").write_text("k"),
            c.survive(c.out / "ph"),
            ["phantoms", c.out / "ph", "--n", "1", "--seed", "0", "-q"],
        )[3],
    )
    o(
        "phantoms: output is a file",
        lambda c: (
            (c.out / "ph").write_text("k"),
            c.survive(c.out / "ph"),
            ["phantoms", c.out / "ph", "--n", "1", "--seed", "0", "-q"],
        )[2],
    )
    o(
        "evaluate: report folder under /sys",
        lambda c: (
            c.tiny_home(),
            ["evaluate", "--data", c.copy(c.a.dataset, "data"), "-o", "/sys/report", "--device", "cpu", "-q"],
        )[1],
    )


# state ---------------------------------------------------------------------------------------


def _victim(c: Ctx, where: Path, whole: bool = True) -> Path:
    """A folder holding precious.txt; the folder (``whole``) or just that file must survive."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "precious.txt").write_text("keep me")
    c.survive(where if whole else where / "precious.txt")
    return where


def state_cases() -> None:
    def s(name: str, build, expect: str = "fail", note: str = ""):
        add("state", name, build, expect, note)

    def home_file(c):
        c.home.write_text("not a folder")
        c.survive(c.home)

    s("SAMMOE_HOME is a file: experts list", lambda c: (home_file(c), ["experts", "list"])[1])
    s("SAMMOE_HOME is a file: segment (default network)", lambda c: (home_file(c), c.seg(c.volume(), weights=False))[1])
    s("SAMMOE_HOME is a file: segment --weights", lambda c: (home_file(c), c.seg(c.volume()))[1], "either")
    s(
        "SAMMOE_HOME is a file: add-expert",
        lambda c: (home_file(c), ["add-expert", c.copy(c.a.expert_good, "alpha")])[1],
    )
    s("SAMMOE_HOME is a file: foundation set", lambda c: (home_file(c), ["foundation", "set", c.a.tiny])[1])
    s("SAMMOE_HOME is a file: cache clear", lambda c: (home_file(c), ["cache", "clear"])[1])
    s(
        "SAMMOE_HOME=/proc/1: experts list",
        lambda c: (c.env.update(SAMMOE_HOME="/proc/1"), ["experts", "list"])[1],
        "either",
    )
    s(
        "SAMMOE_HOME=/proc/1: add-expert",
        lambda c: (c.env.update(SAMMOE_HOME="/proc/1"), ["add-expert", c.copy(c.a.expert_good, "alpha")])[1],
    )
    s(
        "SAMMOE_HOME=/proc/1: foundation set",
        lambda c: (c.env.update(SAMMOE_HOME="/proc/1"), ["foundation", "set", c.a.tiny])[1],
    )
    s(
        "SAMMOE_HOME=/proc/1: segment (default network)",
        lambda c: (c.env.update(SAMMOE_HOME="/proc/1"), c.seg(c.volume(), weights=False))[1],
        "either",
    )
    s(
        "SAMMOE_HOME=/proc/1/sammoe: foundation set",
        lambda c: (c.env.update(SAMMOE_HOME="/proc/1/sammoe"), ["foundation", "set", c.a.tiny])[1],
    )
    s(
        "SAMMOE_HOME=/sys/sammoe: add-expert",
        lambda c: (c.env.update(SAMMOE_HOME="/sys/sammoe"), ["add-expert", c.copy(c.a.expert_good, "alpha")])[1],
    )
    s(
        "SAMMOE_HOME=/proc/1: cache clear",
        lambda c: (c.env.update(SAMMOE_HOME="/proc/1"), ["cache", "clear"])[1],
        "either",
    )
    s("SAMMOE_HOME=/dev/null: experts list", lambda c: (c.env.update(SAMMOE_HOME="/dev/null"), ["experts", "list"])[1])
    s(
        "SAMMOE_HOME empty string: experts list",
        lambda c: (c.env.update(SAMMOE_HOME=""), ["experts", "list", "--json"])[1],
        "either",
        "falls back to the user data folder",
    )

    def garbage_registry(c, content, *argv):
        c.survive(c.registry(content))
        c.watch(c.home, "registry.json.lock")
        return list(argv)

    for label, content in [
        ("garbage", b"\x00\xffgarbage{"),
        ("a JSON list", "[]"),
        ("empty", ""),
        ("deeply nested", "[" * 200_000 + "]" * 200_000),
        ("state_version 2", '{"state_version": 2}'),
        ("unknown key", '{"state_version": 1, "owner": "x"}'),
    ]:
        s(
            f"registry.json {label}: experts list",
            lambda c, content=content: garbage_registry(c, content, "experts", "list"),
        )
    s(
        "registry.json garbage: segment (default network)",
        lambda c: garbage_registry(c, "{garbage", *c.seg(c.volume(), weights=False)),
    )
    s(
        "registry.json garbage: add-expert",
        lambda c: garbage_registry(c, "{garbage", "add-expert", c.copy(c.a.expert_good, "alpha")),
    )
    s(
        "registry.json garbage: experts doctor --fix",
        lambda c: garbage_registry(c, "{garbage", "experts", "doctor", "--fix"),
    )
    s("registry.json garbage: foundation set", lambda c: garbage_registry(c, "{garbage", "foundation", "set", c.a.tiny))
    s(
        "registry.json is a folder: experts list",
        lambda c: ((c.home / "registry.json").mkdir(parents=True), ["experts", "list"])[1],
    )
    s(
        "registry.json.lock is a folder: add-expert",
        lambda c: (
            c.tiny_home(),
            (c.home / "registry.json.lock").mkdir(),
            c.survive(c.home / "registry.json"),
            ["add-expert", c.copy(c.a.expert_good, "alpha")],
        )[3],
    )
    s(
        "experts/ is a file: add-expert",
        lambda c: (
            c.tiny_home(),
            (c.home / "experts").write_text("x"),
            c.survive(c.home / "experts"),
            ["add-expert", c.copy(c.a.expert_good, "alpha")],
        )[3],
    )

    def remove_victim(c, path_of, source="folder", orphan_survives=True):
        victim = _victim(c, c.dir / "victim")
        other = c.home / "experts" / "other"  # a folder without registry entry (doctor --fix may remove it)
        other.mkdir(parents=True)
        (other / "x").write_text("other")
        if orphan_survives:
            c.survive(other)
        c.registry({"experts": {"evil": {"source": source, "path": path_of(c, victim)}}})
        return ["experts", "remove", "evil"]

    s("registry path = absolute /tmp/.../victim, experts remove", lambda c: remove_victim(c, lambda c, v: str(v)))
    s("registry path = ../victim, experts remove", lambda c: remove_victim(c, lambda c, v: "../victim"))
    s(
        "registry path = experts/../../victim, experts remove",
        lambda c: remove_victim(c, lambda c, v: "experts/../../victim"),
    )
    s("registry path = experts/other, experts remove", lambda c: remove_victim(c, lambda c, v: "experts/other"))
    s("registry path = '.', experts remove", lambda c: remove_victim(c, lambda c, v: "."))
    s("registry path = 'experts', experts remove", lambda c: remove_victim(c, lambda c, v: "experts"))
    s("registry path = absolute victim (hub), experts remove", lambda c: remove_victim(c, lambda c, v: str(v), "hub"))
    s(
        "registry path = experts/evil, a symlink to a victim, experts remove",
        lambda c: remove_victim(
            c, lambda c, v: ((c.home / "experts" / "evil").symlink_to(v, target_is_directory=True), "experts/evil")[1]
        ),
        "either",
    )
    s(
        "registry path = experts/../../victim, experts disable",
        lambda c: (remove_victim(c, lambda c, v: "experts/../../victim"), ["experts", "disable", "evil"])[1],
        "either",
    )
    s(
        "registry path = ../victim, experts show",
        lambda c: (remove_victim(c, lambda c, v: "../victim"), ["experts", "show", "evil"])[1],
    )
    s(
        "registry path = ../victim, experts doctor --fix",
        lambda c: (remove_victim(c, lambda c, v: "../victim", orphan_survives=False), ["experts", "doctor", "--fix"])[
            1
        ],
        "either",
    )
    s(
        "registry path = ../victim, add-expert --overwrite of that name",
        lambda c: (
            c.tiny_home(experts={"alpha": {"source": "folder", "path": "../victim"}}),
            _victim(c, c.dir / "victim"),
            ["add-expert", "--overwrite", c.copy(c.a.expert_good, "alpha")],
        )[2],
        "either",
    )
    # gates
    s(
        "gate path = ../victim: segment (default network)",
        lambda c: (
            c.registry(
                {
                    "gate": {
                        "path": "../victim",
                        "experts": ["esophagus", "hip", "spinal-cord"],
                        "foundation_sha256": c.a.builtin_sha,
                    }
                }
            ),
            _victim(c, c.dir / "victim"),
            c.seg(c.volume(), weights=False),
        )[2],
        "ok",
    )

    def gate(name: str, mutate, expect="ok", *extra):
        s(
            f"gate: {name}",
            lambda c: (c.gate_home(mutate), c.survive(c.home / "gates"), c.seg(c.volume(), *extra, weights=False))[2],
            expect,
        )

    def edit(**changes):
        def mutate(folder: Path):
            data = json.loads((folder / "gate.json").read_text())
            data.update(changes)
            (folder / "gate.json").write_text(json.dumps(data))

        return mutate

    gate("recorded copy of the shipped gate (control)", None)
    gate("garbage gate.json", lambda f: (f / "gate.json").write_text("garbage"))
    gate("garbage gate.json, --strict", lambda f: (f / "gate.json").write_text("garbage"), "fail", "--strict")
    gate("empty gate.json", lambda f: (f / "gate.json").write_text(""))
    gate("deeply nested gate.json", lambda f: (f / "gate.json").write_text("[" * 200_000 + "]" * 200_000))
    gate("hparams hidden 10**9", edit(hparams={"hidden": 10**9}))
    gate("hparams hidden 2**40", edit(hparams={"hidden": 2**40}))
    gate("hparams hidden -1", edit(hparams={"hidden": -1}))
    gate("hparams hidden 'x'", edit(hparams={"hidden": "x"}))
    gate("hparams dropout NaN", edit(hparams={"dropout": float("nan")}))
    gate("hparams unknown key", edit(hparams={"hidden": 128, "depth": 3}))
    gate("architecture unknown", edit(architecture="transformer-xl"))
    gate("architecture with a path", edit(architecture="../../evil"))
    gate("candidates 'x'", edit(candidates="x"))
    gate("300 candidates", edit(candidates=[{"name": f"c{i}", "weights_sha256": "0" * 64} for i in range(300)]))
    gate("garbage gate.safetensors", lambda f: (f / "gate.safetensors").write_bytes(b"garbage" * 10))
    gate(
        "gate.safetensors one byte flipped",
        lambda f: (f / "gate.safetensors").write_bytes(_flip((f / "gate.safetensors").read_bytes(), -3)),
    )
    gate("gate.safetensors missing", lambda f: (f / "gate.safetensors").unlink())
    gate(
        "gate.safetensors a symlink to /dev/zero",
        lambda f: ((f / "gate.safetensors").unlink(), (f / "gate.safetensors").symlink_to("/dev/zero")),
    )
    gate("gate.json a FIFO", lambda f: ((f / "gate.json").unlink(), os.mkfifo(f / "gate.json")))
    s(
        "retrain-gate --margin nan",
        lambda c: (
            c.tiny_home(),
            c.survive(c.home / "registry.json"),
            [
                "retrain-gate",
                "--margin",
                "nan",
                "--no-calibration",
                "--device",
                "cpu",
                "-q",
                "--data",
                c.copy(c.a.dataset, "data"),
            ],
        )[2],
    )
    s(
        "retrain-gate --data missing folder",
        lambda c: (
            c.tiny_home(),
            c.watch(c.home, *HOME_SIDE_EFFECTS),
            ["retrain-gate", "--data", c.dir / "nothing", "-q", "--device", "cpu"],
        )[2],
    )
    # damaged expert weights and foundation choices

    def damaged(c):
        c.tiny_home()
        c.run_setup("add-expert", c.copy(c.a.expert_good, "alpha"))
        weights = c.home / "experts" / "alpha" / "model.safetensors"
        weights.write_bytes(_flip(weights.read_bytes(), -10))

    s("damaged expert weights: experts list", lambda c: (damaged(c), ["experts", "list"])[1], "ok")
    s("damaged expert weights: experts verify", lambda c: (damaged(c), ["experts", "verify"])[1])
    s("damaged expert weights: segment (MoE) warns", lambda c: (damaged(c), c.seg(c.volume(), weights=False))[1], "ok")
    s(
        "damaged expert weights: segment --strict",
        lambda c: (damaged(c), c.seg(c.volume(), "--strict", weights=False))[1],
    )
    s("damaged expert weights: export", lambda c: (damaged(c), ["export", "alpha", c.out / "export"])[1])
    s(
        "damaged expert weights: new-plugin",
        lambda c: (
            damaged(c),
            ["new-plugin", "sammoe-expert-alpha", "--expert", c.home / "experts" / "alpha", "-o", c.out],
        )[1],
    )

    def foundation_choice(c, path, sha=None, config="sammoe-tiny"):
        c.registry({"foundation": {"name": "f", "path": str(path), "config": config, "sha256": sha or c.a.tiny_sha}})
        c.env["SAMMOE_LOAD_PLUGINS"] = ""
        return c.seg(c.volume(), weights=False)

    s("foundation choice: weights file missing", lambda c: foundation_choice(c, c.dir / "gone.safetensors"))
    s("foundation choice: sha256 does not match the file", lambda c: foundation_choice(c, c.a.tiny, "0" * 64))
    s("foundation choice: /dev/zero", lambda c: foundation_choice(c, "/dev/zero"))
    s("foundation choice: a folder", lambda c: foundation_choice(c, c.inp))
    s("foundation choice: unknown config", lambda c: foundation_choice(c, c.a.tiny, config="no-such-config"))
    s("foundation choice: relative ../ path", lambda c: foundation_choice(c, "../../../../etc/passwd"))
    s(
        "cache/file-hashes.json garbage",
        lambda c: (
            c.home.joinpath("cache").mkdir(parents=True),
            (c.home / "cache" / "file-hashes.json").write_text("{garbage"),
            c.seg(c.volume(), weights=False),
        )[2],
        "ok",
    )
    s(
        "cache/file-hashes.json lies (wrong sha for the weights)",
        lambda c: (
            c.tiny_home(),
            c.home.joinpath("cache").mkdir(parents=True),
            (c.home / "cache" / "file-hashes.json").write_text(
                json.dumps(
                    {
                        str(c.a.tiny): {
                            "size": c.a.tiny.stat().st_size,
                            "mtime_ns": c.a.tiny.stat().st_mtime_ns,
                            "sha256": "0" * 64,
                        }
                    }
                )
            ),
            c.seg(c.volume(), weights=False),
        )[3],
        "either",
    )
    s(
        "cache is a symlink to a folder holding other data: cache clear",
        lambda c: (
            c.home.mkdir(),
            _victim(c, c.dir / "victim", whole=False),
            (c.dir / "victim" / "volumes").mkdir(),
            (c.dir / "victim" / "volumes" / "cached.npy").write_text("cache"),
            (c.home / "cache").symlink_to(c.dir / "victim", target_is_directory=True),
            ["cache", "clear"],
        )[5],
        "either",
        "the cache's own subfolders may go; victim/precious.txt must stay",
    )
    s(
        "cache/volumes is a symlink to a victim: cache clear",
        lambda c: (
            (c.home / "cache").mkdir(parents=True),
            _victim(c, c.dir / "victim"),
            (c.home / "cache" / "volumes").symlink_to(c.dir / "victim", target_is_directory=True),
            ["cache", "clear"],
        )[3],
        "either",
    )
    s(
        "cache/volumes is a symlink loop: cache info",
        lambda c: (
            (c.home / "cache" / "volumes").mkdir(parents=True),
            (c.home / "cache" / "volumes" / "loop").symlink_to(c.home / "cache", target_is_directory=True),
            ["cache", "info"],
        )[2],
        "either",
    )


# experts and plugins -------------------------------------------------------------------------


def _manifest_edit(**changes) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        data = json.loads((folder / "expert.json").read_text())
        for key, value in changes.items():
            if value is _DELETE:
                data.pop(key, None)
            else:
                data[key] = value
        (folder / "expert.json").write_text(json.dumps(data))

    return mutate


_DELETE = object()


def expert_cases() -> None:
    def add_folder(name: str, mutate, expect="fail", source="good", note=""):
        def build(c):
            c.tiny_home()
            folder = c.copy(getattr(c.a, f"expert_{source}"), "alpha")
            if mutate is not None:
                mutate(folder)
            c.watch(c.home, *HOME_SIDE_EFFECTS)
            return ["add-expert", folder]

        add("experts", f"add-expert: {name}", build, expect, note)

    add_folder("good folder (control)", None, "ok")
    add_folder("no expert.json", lambda f: (f / "expert.json").unlink())
    add_folder("expert.json garbage", lambda f: (f / "expert.json").write_bytes(b"\x00\xff{garbage"))
    add_folder("expert.json empty", lambda f: (f / "expert.json").write_text(""))
    add_folder("expert.json a JSON list", lambda f: (f / "expert.json").write_text("[]"))
    add_folder("expert.json deeply nested", lambda f: (f / "expert.json").write_text("[" * 200_000 + "]" * 200_000))
    add_folder(
        "expert.json 50 MB",
        lambda f: (f / "expert.json").write_text(
            json.dumps({**json.loads((f / "expert.json").read_text()), "description": "x" * (50 << 20)})
        ),
    )
    add_folder("expert.json a folder", lambda f: ((f / "expert.json").unlink(), (f / "expert.json").mkdir()))
    add_folder("expert.json a FIFO", lambda f: ((f / "expert.json").unlink(), os.mkfifo(f / "expert.json")))
    add_folder(
        "expert.json a symlink to /dev/zero",
        lambda f: ((f / "expert.json").unlink(), (f / "expert.json").symlink_to("/dev/zero")),
    )
    add_folder("unknown manifest field", _manifest_edit(owner="me"))
    add_folder("name '../../etc'", _manifest_edit(name="../../etc"))
    add_folder("name with capitals", _manifest_edit(name="Alpha"))
    add_folder("name 'foundation' (reserved?)", _manifest_edit(name="foundation"), "either")
    add_folder(
        "weights file '../../secret.safetensors'",
        _manifest_edit(weights={"file": "../../secret.safetensors", "sha256": "0" * 64}),
    )
    add_folder(
        "weights sha256 mismatch",
        lambda f: _manifest_edit(
            weights={**json.loads((f / "expert.json").read_text())["weights"], "sha256": "0" * 64}
        )(f),
    )
    add_folder("description of 2001 characters", _manifest_edit(description="x" * 2001))
    add_folder("description with control characters", _manifest_edit(description="ok\x1b[2Jclear"))
    add_folder("calibration path '../outside'", _manifest_edit(calibration={"path": "../outside", "classes": ["x"]}))
    add_folder("calibration path '/etc'", _manifest_edit(calibration={"path": "/etc", "classes": ["x"]}))
    add_folder("calibration folder missing", _manifest_edit(calibration={"path": "calibration", "classes": ["x"]}))
    add_folder("min_sammoe_version 999", _manifest_edit(min_sammoe_version="999.0"))
    add_folder("version not PEP 440", _manifest_edit(version="not a version"))
    add_folder("license garbage", _manifest_edit(license="((( MIT"))
    add_folder("target name '../../etc/passwd'", _manifest_edit(targets=[{"name": "../../etc/passwd"}]))
    add_folder("target labels [0]", _manifest_edit(targets=[{"name": "x", "labels": [0]}]))
    add_folder("overrides empty", _manifest_edit(overrides=[]))
    add_folder("overrides naming an unknown tensor", _manifest_edit(overrides=["no.such.tensor"]))
    add_folder("preprocessing crop_size 0", _manifest_edit(preprocessing={"crop_size": 0}))
    add_folder(
        "preprocessing spacing NaN",
        lambda f: _manifest_edit(
            preprocessing={
                **json.loads((f / "expert.json").read_text()).get("preprocessing", {}),
                "spacing_mm": float("nan"),
            }
        )(f),
    )
    add_folder("manifest_version 2", _manifest_edit(manifest_version=2))
    add_folder("model.safetensors missing", lambda f: (f / "model.safetensors").unlink())
    add_folder("model.safetensors garbage", lambda f: (f / "model.safetensors").write_bytes(b"garbage" * 100))
    add_folder(
        "model.safetensors one byte flipped",
        lambda f: (f / "model.safetensors").write_bytes(_flip((f / "model.safetensors").read_bytes(), -10)),
    )
    add_folder(
        "model.safetensors a FIFO", lambda f: ((f / "model.safetensors").unlink(), os.mkfifo(f / "model.safetensors"))
    )
    add_folder("weights for another foundation", None, source="other")
    add(
        "experts",
        "add-expert: expert for the tiny network on the default foundation",
        lambda c: (c.watch(c.home, *HOME_SIDE_EFFECTS), ["add-expert", c.copy(c.a.expert_good, "alpha")])[1],
    )
    add("experts", "add-expert: a file, not a folder", lambda c: ["add-expert", c.write("alpha.txt", "x")])
    add(
        "experts",
        "add-expert: folder without manifest or project",
        lambda c: ((c.inp / "empty").mkdir(), ["add-expert", c.inp / "empty"])[1],
    )
    add("experts", "add-expert: path that does not exist", lambda c: ["add-expert", "./does-not-exist"])
    add(
        "experts",
        "add-expert: garbage wheel",
        lambda c: ["add-expert", c.write("evil-1.0-py3-none-any.whl", b"garbage")],
    )
    add(
        "experts", "add-expert: option-like source", lambda c: ["add-expert", "--", "--index-url=http://evil.invalid/x"]
    )

    # symlinks to a secret outside the expert folder
    def linked(c, how: str):
        c.tiny_home()
        folder = c.copy(c.a.expert_calib, "alpha")
        outside = c.dir / "outside"
        secret = c.secret(outside)
        if how == "calibration folder":
            shutil.move(folder / "calibration", outside / "calibration")
            shutil.copy(secret, outside / "calibration" / "images" / "secret.nii.gz")
            c.survive(outside / "calibration")
            (folder / "calibration").symlink_to(outside / "calibration", target_is_directory=True)
        elif how == "calibration file":
            (folder / "calibration" / "images" / "x.nii.gz").symlink_to(secret)
        elif how == "weights file":
            weights = outside / "model.safetensors"
            shutil.move(folder / "model.safetensors", weights)
            c.survive(weights)
            (folder / "model.safetensors").symlink_to(weights)
        elif how == "manifest":
            shutil.move(folder / "expert.json", outside / "expert.json")
            c.survive(outside / "expert.json")
            (folder / "expert.json").symlink_to(outside / "expert.json")
        elif how == "calibration link to /etc":
            (folder / "calibration" / "images" / "etc").symlink_to("/etc", target_is_directory=True)
        elif how == "loop":
            (folder / "calibration" / "loop").symlink_to(folder / "calibration", target_is_directory=True)
        c.watch(c.home, *HOME_SIDE_EFFECTS)
        return folder

    for how in (
        "calibration folder",
        "calibration file",
        "weights file",
        "manifest",
        "calibration link to /etc",
        "loop",
    ):
        add("experts", f"add-expert: symlink out ({how})", lambda c, how=how: ["add-expert", linked(c, how)])
    for how in ("calibration folder", "calibration file", "weights file"):
        add(
            "experts",
            f"export: symlink out ({how})",
            lambda c, how=how: (c.secret_roots.append(c.out), ["export", linked(c, how), c.out / "export"])[1],
        )
        add(
            "experts",
            f"new-plugin: symlink out ({how})",
            lambda c, how=how: ["new-plugin", "sammoe-expert-alpha", "--expert", linked(c, how), "-o", c.out],
        )

    # an expert added before must survive a refused replacement
    def previously_added(c, mutate, registry_survives=True):
        c.tiny_home()
        c.run_setup("add-expert", c.copy(c.a.expert_good, "alpha"))
        c.survive(c.home / "experts" / "alpha")
        if registry_survives:
            c.survive(c.home / "registry.json")
        c.watch(c.home, *HOME_SIDE_EFFECTS)
        folder = c.copy(c.a.expert_beta, "alpha-new")
        _manifest_edit(name="alpha")(folder)
        if mutate is not None:
            mutate(folder)
        return folder

    add("experts", "add-expert again without --overwrite", lambda c: ["add-expert", previously_added(c, None)])
    add(
        "experts",
        "add-expert --overwrite with bad weights sha",
        lambda c: [
            "add-expert",
            "--overwrite",
            previously_added(
                c,
                lambda f: _manifest_edit(
                    weights={**json.loads((f / "expert.json").read_text())["weights"], "sha256": "0" * 64}
                )(f),
            ),
        ],
    )
    add(
        "experts",
        "add-expert --overwrite with garbage weights",
        lambda c: [
            "add-expert",
            "--overwrite",
            previously_added(c, lambda f: (f / "model.safetensors").write_bytes(b"garbage")),
        ],
    )
    add(
        "experts",
        "add-expert --overwrite for another foundation",
        lambda c: (previously_added(c, None), ["add-expert", "--overwrite", c.copy(c.a.expert_other, "other")])[1],
    )
    add(
        "experts",
        "add-expert --overwrite with the expert's own copy",
        lambda c: (
            previously_added(c, None, registry_survives=False),
            ["add-expert", "--overwrite", c.home / "experts" / "alpha"],
        )[1],
        "either",
    )
    add(
        "experts",
        "experts remove with a name '../..'",
        lambda c: (previously_added(c, None), ["experts", "remove", "../.."])[1],
    )
    add("experts", "experts show nobody", lambda c: ["experts", "show", "nobody"])
    add("experts", "experts remove nobody", lambda c: ["experts", "remove", "nobody"])
    add("experts", "experts enable '../x'", lambda c: ["experts", "enable", "../x"])
    add("experts", "experts remove a plugin expert", lambda c: ["experts", "remove", "hip"])
    add("experts", "experts verify nobody", lambda c: ["experts", "verify", "nobody"])
    add("experts", "experts show '/etc'", lambda c: ["experts", "show", "/etc"])

    # text from manifests must never run
    def injected(c, source: str, name: str = "sammoe-expert-injected"):
        c.tiny_home()
        folder = c.copy(getattr(c.a, source), "injected")
        project = c.out / name

        def import_generated(outcome: Outcome) -> None:
            module_dir = project / name.replace("-", "_")
            if outcome.rc != 0 or not module_dir.is_dir():
                return
            code = (
                "import runpy, sys, pathlib; p = pathlib.Path(sys.argv[1]); "
                "runpy.run_path(str(p / sys.argv[2] / '__init__.py')); "
                "[runpy.run_path(str(t)) for t in (p / 'tests').glob('*.py')]; "
                "sys.path.insert(0, str(p)); __import__(sys.argv[2])"
            )
            done = subprocess.run(
                [sys.executable, "-c", code, str(project), name.replace("-", "_")],
                check=False,
                env=c.env,
                cwd=c.dir,
                capture_output=True,
                text=True,
                timeout=c.timeout,
            )
            if done.returncode != 0:
                outcome.flags.setdefault(
                    "messy", "importing the generated plugin failed: " + done.stderr.strip()[-300:]
                )

        c.post.append(import_generated)
        c.allow_out(name, f"{name}/*", f"{name}/*/*", f"{name}/*/*/*", f"{name}/*/*/*/*")
        return ["new-plugin", name, "--expert", folder, "-o", c.out]

    add(
        "experts",
        "new-plugin: code injection in description and authors",
        lambda c: injected(c, "expert_injected"),
        "ok",
    )
    add("experts", "new-plugin: code injection in evaluation rows", lambda c: injected(c, "expert_injected_eval"), "ok")
    add(
        "experts",
        "export: code injection in evaluation rows (model card)",
        lambda c: (c.tiny_home(), ["export", c.copy(c.a.expert_injected_eval, "inj"), c.out / "export"])[1],
        "ok",
    )
    for bad in ("../../evil", 'x"; import os #', "Sammoe-Expert", "sammoe_expert", "", "a" * 300):
        add(
            "experts",
            f"new-plugin: project name {bad[:30]!r}",
            lambda c, bad=bad: (
                c.forbid(c.dir.parent / "evil"),
                ["new-plugin", bad, "--expert", c.copy(c.a.expert_good, "alpha"), "-o", c.out],
            )[1],
        )
    add(
        "experts",
        "new-plugin: output project exists, no --overwrite",
        lambda c: (
            (c.out / "sammoe-expert-alpha").mkdir(),
            (c.out / "sammoe-expert-alpha" / "keep.txt").write_text("k"),
            c.survive(c.out / "sammoe-expert-alpha"),
            ["new-plugin", "sammoe-expert-alpha", "--expert", c.copy(c.a.expert_good, "alpha"), "-o", c.out],
        )[3],
    )
    add(
        "experts",
        "new-plugin: expert folder of garbage",
        lambda c: [
            "new-plugin",
            "sammoe-expert-alpha",
            "--expert",
            (c.write("alpha/expert.json", "garbage")).parent,
            "-o",
            c.out,
        ],
    )
    add(
        "experts",
        "new-plugin: output under /proc/1",
        lambda c: ["new-plugin", "sammoe-expert-alpha", "--expert", c.copy(c.a.expert_good, "alpha"), "-o", "/proc/1"],
    )
    add("experts", "export: nobody", lambda c: ["export", "nobody", c.out / "export"])
    add(
        "experts",
        "export: into a non-empty folder",
        lambda c: (
            (c.out / "export").mkdir(),
            (c.out / "export" / "keep.txt").write_text("k"),
            c.survive(c.out / "export"),
            ["export", c.copy(c.a.expert_good, "alpha"), c.out / "export"],
        )[3],
    )
    add(
        "experts",
        "export: --overwrite over a folder it did not write",
        lambda c: (
            (c.out / "export").mkdir(),
            (c.out / "export" / "keep.txt").write_text("k"),
            c.survive(c.out / "export"),
            ["export", c.copy(c.a.expert_good, "alpha"), c.out / "export", "--overwrite"],
        )[3],
    )
    add(
        "experts",
        "export: output under /proc/1",
        lambda c: ["export", c.copy(c.a.expert_good, "alpha"), "/proc/1/export"],
    )
    add(
        "experts",
        "plugins: SAMMOE_LOAD_PLUGINS names nothing installed",
        lambda c: (c.env.update(SAMMOE_LOAD_PLUGINS="no-such-plugin,../../x"), ["plugins", "--all"])[1],
        "either",
    )
    add(
        "experts",
        "plugins: SAMMOE_DISABLED_PLUGINS garbage",
        lambda c: (c.env.update(SAMMOE_DISABLED_PLUGINS="\x01,,,;;"), ["experts", "list"])[1],
        "either",
    )
    add(
        "experts",
        "plugins: SAMMOE_STRICT_PLUGINS=1 with a broken plugin on the path",
        lambda c: (
            c.write("site/sammoe_broken.py", "raise RuntimeError('broken plugin')\n"),
            c.write(
                "site/sammoe_broken-1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: sammoe-broken\nVersion: 1.0\n",
            ),
            c.write("site/sammoe_broken-1.0.dist-info/entry_points.txt", "[sammoe]\nsammoe-broken = sammoe_broken\n"),
            c.env.update(PYTHONPATH=str(c.inp / "site"), SAMMOE_STRICT_PLUGINS="1"),
            ["experts", "list"],
        )[4],
    )
    add(
        "experts",
        "plugins: a broken plugin on the path (not strict)",
        lambda c: (
            c.write("site/sammoe_broken.py", "raise RuntimeError('broken plugin')\n"),
            c.write(
                "site/sammoe_broken-1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: sammoe-broken\nVersion: 1.0\n",
            ),
            c.write("site/sammoe_broken-1.0.dist-info/entry_points.txt", "[sammoe]\nsammoe-broken = sammoe_broken\n"),
            c.env.update(PYTHONPATH=str(c.inp / "site")),
            ["experts", "list"],
        )[4],
        "ok",
    )
    add("experts", "foundation set: unknown name", lambda c: ["foundation", "set", "no-such-foundation"])
    add(
        "experts", "foundation set: garbage file", lambda c: ["foundation", "set", c.write("f.safetensors", b"garbage")]
    )
    add("experts", "foundation set: a folder", lambda c: ["foundation", "set", c.inp])
    add(
        "experts",
        "foundation set: expert delta weights",
        lambda c: ["foundation", "set", c.a.expert_good / "model.safetensors"],
    )


# weights -------------------------------------------------------------------------------------


def _evil_pth(path: Path, marker: Path, fmt: str) -> Path:
    """A checkpoint whose unpickling runs ``touch marker``."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torch":
        import torch

        torch.save({"model": Evil(), "epoch": 1}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"model": Evil()}, f, protocol=2)
    return path


def _safetensors(path: Path, tensors: dict, meta: dict | None = None) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt", **(meta or {})})
    return path


def _digest(tensors) -> str:
    return sammoe_attr("sha256_tensors", "sammoe_core.files.hashing", "sammoe_core.hashing")(tensors)


def weight_cases() -> None:
    for fmt in ("torch", "pickle"):
        add(
            "weights",
            f"convert: malicious {fmt} pickle (__reduce__)",
            lambda c, fmt=fmt: ["convert", _evil_pth(c.inp / "evil.pth", c.marker, fmt), c.out / "w.safetensors"],
        )
        add(
            "weights",
            f"segment --weights: malicious {fmt} pickle .pth",
            lambda c, fmt=fmt: (
                c.seg(c.volume(), weights=False) + ["--weights", _evil_pth(c.inp / "evil.pth", c.marker, fmt)]
            ),
        )
        add(
            "weights",
            f"foundation set: malicious {fmt} pickle .pth",
            lambda c, fmt=fmt: (
                c.watch(c.home, *HOME_SIDE_EFFECTS),
                ["foundation", "set", _evil_pth(c.inp / "evil.pth", c.marker, fmt)],
            )[1],
        )
    add(
        "weights",
        "segment --weights: malicious pickle named .safetensors",
        lambda c: (
            c.seg(c.volume(), weights=False) + ["--weights", _evil_pth(c.inp / "evil.safetensors", c.marker, "torch")]
        ),
    )
    add(
        "weights",
        "segment --weights: malicious pickle, --allow-unverified",
        lambda c: (
            c.seg(c.volume(), "--allow-unverified", weights=False)
            + ["--weights", _evil_pth(c.inp / "evil.pth", c.marker, "torch")]
        ),
    )

    def conv(name, make, *extra, expect="fail"):
        add("weights", f"convert: {name}", lambda c: ["convert", make(c), c.out / "w.safetensors", *extra], expect)

    conv("garbage .pth", lambda c: c.write("w.pth", b"garbage" * 50))
    conv("empty .pth", lambda c: c.write("w.pth", b""))
    conv(
        "zip that is no checkpoint",
        lambda c: (
            shutil.make_archive(str(c.inp / "w"), "zip", c.a.dir / "calibration-src"),
            (c.inp / "w.zip").rename(c.inp / "w.pth"),
            c.inp / "w.pth",
        )[2],
    )
    conv(
        "random tensors with unknown keys",
        lambda c: (__import__("torch").save({"a": __import__("torch").zeros(3)}, c.inp / "w.pth"), c.inp / "w.pth")[1],
    )
    conv(
        "state dict with NaN (--config sammoe-tiny)",
        lambda c: (
            __import__("torch").save(
                {
                    k: v.fill_(float("nan")) if v.is_floating_point() else v
                    for k, v in {k: v.clone() for k, v in c.a.tiny_state.items()}.items()
                },
                c.inp / "w.pth",
            ),
            c.inp / "w.pth",
        )[1],
        "--config",
        "sammoe-tiny",
        expect="either",
    )
    conv(
        "good state dict (control)",
        lambda c: (__import__("torch").save(c.a.tiny_state, c.inp / "w.pth"), c.inp / "w.pth")[1],
        "--config",
        "sammoe-tiny",
        expect="ok",
    )
    conv(
        "--config unknown",
        lambda c: (__import__("torch").save(c.a.tiny_state, c.inp / "w.pth"), c.inp / "w.pth")[1],
        "--config",
        "no-such-config",
    )
    conv("a FIFO", lambda c: (os.mkfifo(c.inp / "w.pth"), c.inp / "w.pth")[1])
    conv("/dev/zero", lambda c: "/dev/zero")
    add(
        "weights",
        "convert: output exists, no --overwrite",
        lambda c: (
            (c.out / "w.safetensors").write_text("keep"),
            c.survive(c.out / "w.safetensors"),
            __import__("torch").save(c.a.tiny_state, c.inp / "w.pth"),
            ["convert", c.inp / "w.pth", c.out / "w.safetensors", "--config", "sammoe-tiny"],
        )[3],
    )
    add(
        "weights",
        "convert: output equal to the source, --overwrite",
        lambda c: (
            __import__("torch").save(c.a.tiny_state, c.inp / "w.pth"),
            ["convert", c.inp / "w.pth", c.inp / "w.pth", "--config", "sammoe-tiny", "--overwrite"],
        )[1],
    )
    add(
        "weights",
        "convert: output with a .pth suffix",
        lambda c: (
            __import__("torch").save(c.a.tiny_state, c.inp / "w.pth"),
            ["convert", c.inp / "w.pth", c.out / "w.pth", "--config", "sammoe-tiny"],
        )[1],
        "either",
    )

    def w(name, make, *extra, expect="fail"):
        add(
            "weights",
            f"segment --weights: {name}",
            lambda c: c.seg(c.volume(), *extra, weights=False) + ["--weights", make(c)],
            expect,
        )

    def state(c):
        return dict(c.a.tiny_state)

    w("no digest", lambda c: _safetensors(c.inp / "w.safetensors", state(c), {"sammoe_config": "sammoe-tiny"}))
    w(
        "no digest, --allow-unverified (control)",
        lambda c: _safetensors(c.inp / "w.safetensors", state(c), {"sammoe_config": "sammoe-tiny"}),
        "--allow-unverified",
        expect="ok",
    )

    def nan_state(c):
        s = state(c)
        name = min(k for k, v in s.items() if v.is_floating_point())
        s[name] = s[name].clone().fill_(float("nan"))
        return s

    w(
        "NaN weights with a valid digest",
        lambda c: _safetensors(
            c.inp / "w.safetensors",
            nan_state(c),
            {"sammoe_config": "sammoe-tiny", "tensors_sha256": _digest(nan_state(c))},
        ),
    )
    w(
        "NaN weights, no digest, --allow-unverified",
        lambda c: _safetensors(c.inp / "w.safetensors", nan_state(c), {"sammoe_config": "sammoe-tiny"}),
        "--allow-unverified",
        expect="either",
    )
    w("garbage header length (2^63)", lambda c: c.write("w.safetensors", struct.pack("<Q", 1 << 63) + b"{}"))
    w("header length beyond the file", lambda c: c.write("w.safetensors", struct.pack("<Q", 10_000) + b'{"a": 1}'))
    w("header not JSON", lambda c: c.write("w.safetensors", struct.pack("<Q", 8) + b"garbage!"))
    w(
        "header deeply nested",
        lambda c: c.write("w.safetensors", struct.pack("<Q", 400_000) + b"[" * 200_000 + b"]" * 200_000),
    )
    past_end = json.dumps({"a": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}).encode()
    w(
        "tensor offsets past the end",
        lambda c: c.write("w.safetensors", struct.pack("<Q", len(past_end)) + past_end + bytes(16)),
    )
    w("empty file", lambda c: c.write("w.safetensors", b""))
    w("truncated to half", lambda c: c.write("w.safetensors", c.a.tiny.read_bytes()[: c.a.tiny.stat().st_size // 2]))
    w("one byte flipped in tensor data", lambda c: c.write("w.safetensors", _flip(c.a.tiny.read_bytes(), -100)))
    w(
        "unknown config name in the header",
        lambda c: _safetensors(
            c.inp / "w.safetensors", state(c), {"sammoe_config": "no-such-config", "tensors_sha256": _digest(state(c))}
        ),
    )

    def config_json(c, **changes):
        get_config = sammoe_attr("get_config", "sammoe_core.model", "sammoe_core.model.configs")
        cfg = {**get_config("sammoe-tiny").model_dump(), **changes}
        return _safetensors(
            c.inp / "w.safetensors",
            state(c),
            {"sammoe_config_json": json.dumps(cfg), "tensors_sha256": _digest(state(c))},
        )

    w("patch_size 0 in the config header", lambda c: config_json(c, patch_size=0))
    for key, value in [
        ("depth", 10**6),
        ("embed_dim", 10**9),
        ("image_size", -64),
        ("num_heads", 0),
        ("window_size", 10**12),
        ("image_size", 7),
    ]:
        w(f"{key} {value} in the config header", lambda c, key=key, value=value: config_json(c, **{key: value}))
    w(
        "config header not JSON",
        lambda c: _safetensors(
            c.inp / "w.safetensors", state(c), {"sammoe_config_json": "{garbage", "tensors_sha256": _digest(state(c))}
        ),
    )
    w(
        "config header deeply nested",
        lambda c: _safetensors(
            c.inp / "w.safetensors",
            state(c),
            {"sammoe_config_json": "[" * 100_000 + "]" * 100_000, "tensors_sha256": _digest(state(c))},
        ),
    )
    w("config header with an unknown field", lambda c: config_json(c, evil="x"))
    w(
        "an extra tensor",
        lambda c: _safetensors(
            c.inp / "w.safetensors",
            {**state(c), "extra.weight": __import__("torch").zeros(2)},
            {
                "sammoe_config": "sammoe-tiny",
                "tensors_sha256": _digest({**state(c), "extra.weight": __import__("torch").zeros(2)}),
            },
        ),
    )

    def missing_tensor(c):
        s = state(c)
        s.pop(min(s))
        return _safetensors(c.inp / "w.safetensors", s, {"sammoe_config": "sammoe-tiny", "tensors_sha256": _digest(s)})

    w("a missing tensor", missing_tensor)

    def wrong_shape(c):
        s = state(c)
        name = min(k for k, v in s.items() if v.ndim >= 1 and v.is_floating_point())
        s[name] = __import__("torch").zeros(3)
        return _safetensors(c.inp / "w.safetensors", s, {"sammoe_config": "sammoe-tiny", "tensors_sha256": _digest(s)})

    w("a tensor of the wrong shape", wrong_shape)

    def int_state(c):
        s = {k: v.to(__import__("torch").int8) for k, v in state(c).items()}
        return _safetensors(c.inp / "w.safetensors", s, {"sammoe_config": "sammoe-tiny", "tensors_sha256": _digest(s)})

    w("int8 tensors", int_state)
    w("an expert's delta file", lambda c: c.a.expert_good / "model.safetensors")
    w("tiny weights with --config sammoe-small", lambda c: c.a.tiny, "--config", "sammoe-small")
    w("tiny weights with --config no-such", lambda c: c.a.tiny, "--config", "no-such")
    w("a folder", lambda c: c.inp)
    w("a FIFO", lambda c: (os.mkfifo(c.inp / "w.safetensors"), c.inp / "w.safetensors")[1])
    w("/dev/zero", lambda c: "/dev/zero")
    w("missing file", lambda c: c.inp / "missing.safetensors")
    add(
        "weights",
        "foundation set: NaN weights with a digest",
        lambda c: (
            c.watch(c.home, *HOME_SIDE_EFFECTS),
            [
                "foundation",
                "set",
                _safetensors(
                    c.inp / "w.safetensors",
                    nan_state(c),
                    {"sammoe_config": "sammoe-tiny", "tensors_sha256": _digest(nan_state(c))},
                ),
            ],
        )[1],
    )
    add(
        "weights",
        "foundation set: no digest",
        lambda c: (
            c.watch(c.home, *HOME_SIDE_EFFECTS),
            ["foundation", "set", _safetensors(c.inp / "w.safetensors", state(c), {"sammoe_config": "sammoe-tiny"})],
        )[1],
    )
    add(
        "weights",
        "foundation set: patch_size 0",
        lambda c: (c.watch(c.home, *HOME_SIDE_EFFECTS), ["foundation", "set", config_json(c, patch_size=0)])[1],
    )


# Hub references ------------------------------------------------------------------------------


def hub_cases() -> None:
    bad_refs = [
        "hf://a/b@main/../../../../x.safetensors",
        "hf://a/b/sub/../../x.safetensors",
        "hf://a/b/./x.pth",
        "hf://a/b/sub\\x.pth",
        "hf://a/b/%2E%2E/x.pth",
        "hf://a/b@..%2F..",
        "hf://a/b@..%2F../x.safetensors",
        "hf://a/b@%252E%252E/x.pth",
        "hf://a/b@%2Fetc/x.pth",
        "hf://a/b@main%00/x.pth",
        "hf://a/b@v1\\..",
        "hf://liver",
        "hf://datasets/lab/cases",
        "hf://../..",
        "hf://a/../b",
        "hf://a--b/c",
        "hf://-a/b",
        "hf://a/b..",
        "hf://",
        "hf://a/b@",
        "hf://a/" + "b" * 200,
        "hf://a/b/" + "x" * 2000 + ".pth",
        "hf://a/b@" + "v" * 500,
        "hf://a b/c",
        "hf://a/b\n/c.pth",
        "HF://a/b",
    ]
    for ref in bad_refs:
        add("hub", f"add-expert {ref[:60]!r}", lambda c, ref=ref: (c.tiny_home(), ["add-expert", ref])[1])
    for ref in (
        "hf://a/b@main/../../../../x.safetensors",
        "hf://a/b@..%2F../x.safetensors",
        "hf://a/b/%2E%2E/x.pth",
        "hf://a/b",
        "hf://a/b/x.txt",
    ):
        add("hub", f"foundation set {ref[:60]!r}", lambda c, ref=ref: ["foundation", "set", ref])
    add(
        "hub",
        "offline: add-expert of a repo not in the cache",
        lambda c: (c.tiny_home(), ["add-expert", "hf://lab/missing@v1"])[1],
    )
    add(
        "hub",
        "offline: add-expert of a commit not in the cache",
        lambda c: (c.tiny_home(), ["add-expert", "hf://lab/missing@0123456789abcdef0123456789abcdef01234567"])[1],
    )
    add(
        "hub",
        "offline: foundation set of a file not in the cache",
        lambda c: ["foundation", "set", "hf://lab/missing/x.pth"],
    )
    add("hub", "offline: add-expert of a file in a repo", lambda c: ["add-expert", "hf://lab/liver/expert.json"])
    add(
        "hub",
        "SAMMOE_OFFLINE=1 too: add-expert",
        lambda c: (c.env.update(SAMMOE_OFFLINE="1"), ["add-expert", "hf://lab/missing"])[1],
    )
    add(
        "hub",
        "SAMMOE_HUB_CACHE is a file",
        lambda c: (c.env.update(SAMMOE_HUB_CACHE=str(c.write("cache-file", "x"))), ["add-expert", "hf://lab/liver"])[1],
    )
    add(
        "hub",
        "SAMMOE_HUB_CACHE=/proc/1",
        lambda c: (c.env.update(SAMMOE_HUB_CACHE="/proc/1"), ["add-expert", "hf://lab/liver"])[1],
    )
    add(
        "hub",
        "HF_HUB_OFFLINE=garbage",
        lambda c: (
            c.env.update(HF_HUB_OFFLINE="maybe"),
            c.env.update(HF_ENDPOINT="http://127.0.0.1:9"),
            ["add-expert", "hf://lab/missing"],
        )[2],
    )
    add(
        "hub",
        "publish offline",
        lambda c: (c.tiny_home(), ["publish", c.copy(c.a.expert_good, "alpha"), "--repo-id", "lab/alpha"])[1],
    )
    add(
        "hub",
        "publish with repo id '../..'",
        lambda c: (c.tiny_home(), ["publish", c.copy(c.a.expert_good, "alpha"), "--repo-id", "../.."])[1],
    )
    add(
        "hub",
        "publish with revision '../../x'",
        lambda c: (
            c.tiny_home(),
            ["publish", c.copy(c.a.expert_good, "alpha"), "--repo-id", "lab/alpha", "--revision", "../../x"],
        )[1],
    )

    # a local Hub cache crafted by hand (what a hostile or damaged cache folder holds)
    commit = "0123456789abcdef0123456789abcdef01234567"

    def cache(c, ref_text: str | None = None, fill: Callable[[Path], None] | None = None) -> Path:
        repo = c.hf / "hub" / "models--lab--liver"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(ref_text if ref_text is not None else commit)
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True)
        if fill is not None:
            fill(snap)
        c.tiny_home()
        c.watch(c.home, *HOME_SIDE_EFFECTS)
        return snap

    def copy_expert(c, source):
        def fill(snap: Path):
            for p in source.iterdir():
                (shutil.copytree if p.is_dir() else shutil.copy2)(p, snap / p.name)

        return fill

    add(
        "hub",
        "cache: a good cached expert (control)",
        lambda c: (cache(c, fill=copy_expert(c, c.a.expert_good)), ["add-expert", "hf://lab/liver"])[1],
        "ok",
    )
    add(
        "hub",
        "cache: refs/main = ../../../../victim",
        lambda c: (_victim(c, c.dir / "victim"), cache(c, "../../../../../victim"), ["add-expert", "hf://lab/liver"])[
            2
        ],
    )
    add(
        "hub",
        "cache: refs/main = absolute path",
        lambda c: (_victim(c, c.dir / "victim"), cache(c, str(c.dir / "victim")), ["add-expert", "hf://lab/liver"])[2],
    )
    add(
        "hub",
        "cache: refs/main garbage bytes",
        lambda c: (cache(c, "\x00\xff garbage"), ["add-expert", "hf://lab/liver"])[1],
    )
    add("hub", "cache: refs/main empty", lambda c: (cache(c, ""), ["add-expert", "hf://lab/liver"])[1])

    def linked_snapshot(c, what: str):
        outside = c.dir / "outside"
        c.copy(c.a.expert_calib, "../outside/expert")
        c.secret(outside)
        if what == "calibration":
            shutil.copy(outside / "secret.txt", outside / "expert" / "calibration" / "images" / "secret.nii.gz")
        c.survive(outside)

        def fill(snap: Path):
            for p in (outside / "expert").iterdir():
                if p.name == what:
                    (snap / p.name).symlink_to(p, target_is_directory=p.is_dir())
                else:
                    (shutil.copytree if p.is_dir() else shutil.copy2)(p, snap / p.name)

        cache(c, fill=fill)
        return ["add-expert", "hf://lab/liver"]

    for what in ("expert.json", "model.safetensors", "calibration"):
        add(
            "hub",
            f"cache: snapshot {what} is a symlink out of the cache",
            lambda c, what=what: linked_snapshot(c, what),
        )
    add(
        "hub",
        "cache: snapshot folder is a symlink out of the cache",
        lambda c: (
            c.copy(c.a.expert_good, "../outside/expert"),
            _victim(c, c.dir / "outside" / "expert"),
            cache(c),
            shutil.rmtree(c.hf / "hub" / "models--lab--liver" / "snapshots" / commit),
            (c.hf / "hub" / "models--lab--liver" / "snapshots" / commit).symlink_to(c.dir / "outside" / "expert"),
            ["add-expert", "hf://lab/liver"],
        )[5],
    )
    add(
        "hub",
        "cache: tampered weights in the snapshot",
        lambda c: (
            cache(
                c,
                fill=lambda s: (
                    copy_expert(c, c.a.expert_good)(s),
                    (s / "model.safetensors").write_bytes(_flip((s / "model.safetensors").read_bytes(), -10)),
                ),
            ),
            ["add-expert", "hf://lab/liver"],
        )[1],
    )
    add(
        "hub",
        "cache: manifest names weights '../../x.safetensors'",
        lambda c: (
            cache(
                c,
                fill=lambda s: (
                    copy_expert(c, c.a.expert_good)(s),
                    _manifest_edit(weights={"file": "../../x.safetensors", "sha256": "0" * 64})(s),
                ),
            ),
            ["add-expert", "hf://lab/liver"],
        )[1],
    )
    add(
        "hub",
        "cache: expert.json garbage",
        lambda c: (
            cache(c, fill=lambda s: (s / "expert.json").write_text("garbage")),
            ["add-expert", "hf://lab/liver"],
        )[1],
    )


# batch ---------------------------------------------------------------------------------------


def batch_cases() -> None:
    def b(name, build, expect="fail", note=""):
        def wrapped(c):
            c.allow_out(*BATCH_REPORTS)
            return build(c)

        add("batch", name, wrapped, expect, note)

    def seg(c, source, *extra):
        return [
            "segment",
            str(source),
            "-o",
            str(c.out),
            "--device",
            "cpu",
            "--weights",
            str(c.a.tiny),
            "-q",
            *map(str, extra),
        ]

    def cases_folder(c, n=2) -> Path:
        folder = c.inp / "cases"
        for i in range(n):
            write_nifti(folder / f"case{i}.nii.gz", ct_like(SHAPE, i))
            (folder / f"case{i}.prompts.json").write_text(
                json.dumps({"targets": [{"name": "core", "points": [[12, 11, 9]]}]})
            )
        return folder

    def manifest(c, text: str, name="list.csv") -> Path:
        cases_folder(c)
        return c.write(name, text)

    b("folder of two good cases (control)", lambda c: seg(c, cases_folder(c)), "ok")
    b(
        "csv: output '../../escaped.nii.gz'",
        lambda c: (
            c.forbid(c.dir / "escaped.nii.gz", c.out.parent.parent / "escaped.nii.gz"),
            seg(c, manifest(c, "image,output\ncases/case0.nii.gz,../../escaped.nii.gz\n"), "--point", CLICK),
        )[1],
    )
    b(
        "csv: output '/abs/escaped.nii.gz'",
        lambda c: (
            c.forbid(c.dir / "escaped.nii.gz"),
            seg(c, manifest(c, f"image,output\ncases/case0.nii.gz,{c.dir / 'escaped.nii.gz'}\n"), "--point", CLICK),
        )[1],
    )
    b(
        "csv: output through a symlink out of the folder",
        lambda c: (
            (c.out / "link").symlink_to(c.dir, target_is_directory=True),
            c.forbid(c.dir / "escaped.nii.gz"),
            seg(c, manifest(c, "image,output\ncases/case0.nii.gz,link/escaped.nii.gz\n"), "--point", CLICK),
        )[2],
    )
    b(
        "jsonl: output '../escaped.nii.gz'",
        lambda c: (
            c.forbid(c.dir / "escaped.nii.gz"),
            seg(
                c,
                manifest(
                    c, json.dumps({"image": "cases/case0.nii.gz", "output": "../escaped.nii.gz"}) + "\n", "list.jsonl"
                ),
                "--point",
                CLICK,
            ),
        )[1],
    )
    b(
        "csv: unknown columns",
        lambda c: seg(c, manifest(c, "image,output,colour\ncases/case0.nii.gz,a.nii.gz,red\n"), "--point", CLICK),
    )
    b(
        "csv: no image column",
        lambda c: seg(c, manifest(c, "file,output\ncases/case0.nii.gz,a.nii.gz\n"), "--point", CLICK),
    )
    b("csv: no header line", lambda c: seg(c, manifest(c, "cases/case0.nii.gz\n"), "--point", CLICK))
    b("csv: empty file", lambda c: seg(c, manifest(c, ""), "--point", CLICK))
    b("csv: header only", lambda c: seg(c, manifest(c, "image,prompts,output\n"), "--point", CLICK))
    b("csv: image does not exist", lambda c: seg(c, manifest(c, "image\ncases/nothing.nii.gz\n"), "--point", CLICK))
    b(
        "csv: image is the manifest itself",
        lambda c: seg(c, manifest(c, "image,output\nlist.csv,a.nii.gz\n"), "--point", CLICK),
    )
    b("csv: image /etc/passwd", lambda c: seg(c, manifest(c, "image,output\n/etc/passwd,a.nii.gz\n"), "--point", CLICK))
    b("csv: image /dev/zero", lambda c: seg(c, manifest(c, "image,output\n/dev/zero,a.nii.gz\n"), "--point", CLICK))
    b(
        "csv: two rows, one output",
        lambda c: seg(
            c, manifest(c, "image,output\ncases/case0.nii.gz,a.nii.gz\ncases/case1.nii.gz,a.nii.gz\n"), "--point", CLICK
        ),
    )
    b(
        "csv: output with a .png suffix",
        lambda c: seg(c, manifest(c, "image,output\ncases/case0.nii.gz,a.png\n"), "--point", CLICK),
    )
    b("csv: output '.' ", lambda c: seg(c, manifest(c, "image,output\ncases/case0.nii.gz,.\n"), "--point", CLICK))
    b(
        "csv: prompts file garbage",
        lambda c: (
            c.write("bad.json", "{garbage"),
            seg(c, manifest(c, "image,prompts\ncases/case0.nii.gz,bad.json\n")),
        )[1],
    )
    b("csv: prompts /dev/zero", lambda c: seg(c, manifest(c, "image,prompts\ncases/case0.nii.gz,/dev/zero\n")))
    b(
        "csv: NUL bytes",
        lambda c: seg(c, manifest(c, "image,output\ncases/case0.nii.gz\x00,a.nii.gz\n"), "--point", CLICK),
    )
    b(
        "csv: a 10 MB field",
        lambda c: seg(c, manifest(c, "image,output\n" + "x" * (10 << 20) + ",a.nii.gz\n"), "--point", CLICK),
    )
    b(
        "csv: unbalanced quotes",
        lambda c: seg(c, manifest(c, 'image,output\n"cases/case0.nii.gz,a.nii.gz\n'), "--point", CLICK),
    )
    b(
        "csv: BOM before the header",
        lambda c: seg(c, manifest(c, "\ufeffimage,output\ncases/case0.nii.gz,a.nii.gz\n"), "--point", CLICK),
        "either",
    )
    b(
        "csv: invalid UTF-8",
        lambda c: (cases_folder(c), seg(c, c.write("list.csv", b"image\ncases/\xff\xfe.nii.gz\n"), "--point", CLICK))[
            1
        ],
    )
    b(
        "csv: 5000 rows of missing images",
        lambda c: seg(
            c,
            manifest(c, "image,output\n" + "".join(f"cases/none{i}.nii.gz,o{i}.nii.gz\n" for i in range(5000))),
            "--point",
            CLICK,
        ),
    )
    b(
        "jsonl: a line that is not JSON",
        lambda c: seg(c, manifest(c, '{"image": "cases/case0.nii.gz"}\n{oops\n', "list.jsonl"), "--point", CLICK),
    )
    b(
        "jsonl: a line that is a list",
        lambda c: seg(c, manifest(c, '["cases/case0.nii.gz"]\n', "list.jsonl"), "--point", CLICK),
    )
    b("jsonl: image is a number", lambda c: seg(c, manifest(c, '{"image": 42}\n', "list.jsonl"), "--point", CLICK))
    b("jsonl: image is null", lambda c: seg(c, manifest(c, '{"image": null}\n', "list.jsonl"), "--point", CLICK))
    b(
        "jsonl: output is a list",
        lambda c: seg(
            c, manifest(c, '{"image": "cases/case0.nii.gz", "output": ["a"]}\n', "list.jsonl"), "--point", CLICK
        ),
    )
    b(
        "jsonl: deeply nested line",
        lambda c: seg(
            c, manifest(c, '{"image": ' + "[" * 200_000 + "]" * 200_000 + "}\n", "list.jsonl"), "--point", CLICK
        ),
    )
    b(
        "jsonl: unknown fields",
        lambda c: seg(
            c, manifest(c, '{"image": "cases/case0.nii.gz", "colour": "red"}\n', "list.jsonl"), "--point", CLICK
        ),
    )
    b("jsonl: empty file", lambda c: seg(c, manifest(c, "", "list.jsonl"), "--point", CLICK))

    def mixed(c):
        folder = cases_folder(c, 2)
        (folder / "corrupt.nii.gz").write_bytes(b"not a volume\n" * 40)
        (folder / "empty.nii").write_bytes(b"")
        (folder / "truncated.nii.gz").write_bytes(nifti_bytes()[:300])
        write_nifti(folder / "nan.nii.gz", __import__("numpy").full(SHAPE, float("nan"), "float32"))
        (folder / "nan.prompts.json").write_text(json.dumps({"targets": [{"name": "x", "points": [[1, 1, 1]]}]}))
        write_nifti(folder / "noprompts.nii.gz", ct_like(SHAPE, 5))
        write_nifti(folder / "badprompts.nii.gz", ct_like(SHAPE, 6))
        (folder / "badprompts.prompts.json").write_text("[" * 200_000)
        write_nifti(folder / "outside.nii.gz", ct_like(SHAPE, 7))
        (folder / "outside.prompts.json").write_text(json.dumps({"targets": [{"name": "x", "points": [[500, 1, 1]]}]}))
        os.mkfifo(folder / "fifo.nii")
        (folder / "zero.nii.gz").symlink_to("/dev/zero")
        (folder / "dir.nii.gz").mkdir()
        write_dicom_series(folder / "dicom-bad", tweak=lambda ds, k: setattr(ds, "PixelSpacing", ["1.5"]))
        (folder / "notes.txt").write_text("ignore me")
        c.allow_out("case0.nii.gz", "case0.json", "case1.nii.gz", "case1.json")
        return folder

    b("mixed garbage in a batch folder", lambda c: seg(c, mixed(c)))

    def garbage_only(c):
        for i in range(3):
            c.write(f"g/g{i}.nii.gz", os.urandom(100))
        return seg(c, c.inp / "g", "--point", CLICK)

    b("batch folder of garbage only", garbage_only)
    b("batch folder empty", lambda c: ((c.inp / "empty").mkdir(), seg(c, c.inp / "empty", "--point", CLICK))[1])
    b("batch: --shard 3/2", lambda c: seg(c, cases_folder(c), "--shard", "3/2"))
    b("batch: --shard abc", lambda c: seg(c, cases_folder(c), "--shard", "abc"))
    b("batch: --shard -1/2", lambda c: seg(c, cases_folder(c), "--shard", "-1/2"))
    b("batch: --shard 0/0", lambda c: seg(c, cases_folder(c), "--shard", "0/0"))
    b("batch: --shard on a single file", lambda c: c.seg(c.volume(), "--shard", "0/2"))
    b("batch: --preview with a path", lambda c: seg(c, cases_folder(c), "--preview", c.out / "x.png"))
    b(
        "batch: output = the input folder",
        lambda c: [
            "segment",
            str(cases_folder(c)),
            "-o",
            str(c.inp / "cases"),
            "--device",
            "cpu",
            "--weights",
            str(c.a.tiny),
            "-q",
        ],
    )
    b(
        "batch: output = the input folder, --overwrite",
        lambda c: [
            "segment",
            str(cases_folder(c)),
            "-o",
            str(c.inp / "cases"),
            "--device",
            "cpu",
            "--weights",
            str(c.a.tiny),
            "-q",
            "--overwrite",
        ],
    )
    b(
        "batch: output inside the input folder",
        lambda c: [
            "segment",
            str(cases_folder(c)),
            "-o",
            str(c.inp / "cases" / "out"),
            "--device",
            "cpu",
            "--weights",
            str(c.a.tiny),
            "-q",
        ],
        "either",
    )
    b(
        "batch: output is an existing file",
        lambda c: [
            "segment",
            str(cases_folder(c)),
            "-o",
            str(c.write("outfile", "k")),
            "--device",
            "cpu",
            "--weights",
            str(c.a.tiny),
            "-q",
        ],
    )
    b(
        "batch: output under /proc/1",
        lambda c: [
            "segment",
            str(cases_folder(c)),
            "-o",
            "/proc/1/out",
            "--device",
            "cpu",
            "--weights",
            str(c.a.tiny),
            "-q",
        ],
    )
    b(
        "batch: garbage run manifest in the output folder",
        lambda c: ((c.out / "sammoe-manifest.jsonl").write_bytes(b"\x00garbage\n{"), seg(c, cases_folder(c)))[1],
        "either",
    )
    b(
        "batch: run manifest says done for missing outputs",
        lambda c: (
            (c.out / "sammoe-manifest.jsonl").write_text(
                json.dumps({"format": "sammoe-run-manifest", "version": 1})
                + "\n"
                + json.dumps({"key": "case0.nii.gz", "status": "done", "output": "/etc/passwd", "weights": {}})
                + "\n"
            ),
            c.allow_out("case0.nii.gz", "case0.json", "case1.nii.gz", "case1.json"),
            seg(c, cases_folder(c)),
        )[2],
        "ok",
    )
    b(
        "batch: run manifest lock is a folder",
        lambda c: ((c.out / "sammoe-manifest.jsonl.lock").mkdir(), seg(c, cases_folder(c)))[1],
        "either",
    )
    b("batch: --engine ray on a single file", lambda c: c.seg(c.volume(), "--engine", "ray"))
    b(
        "batch: manifest .csv that is a FIFO",
        lambda c: (os.mkfifo(c.inp / "list.csv"), seg(c, c.inp / "list.csv", "--point", CLICK))[1],
    )
    b(
        "batch: manifest .csv that is a folder",
        lambda c: ((c.inp / "list.csv").mkdir(), seg(c, c.inp / "list.csv", "--point", CLICK))[1],
    )


FAMILIES = {
    "volumes": volume_cases,
    "prompts": prompt_cases,
    "outputs": output_cases,
    "state": state_cases,
    "experts": expert_cases,
    "weights": weight_cases,
    "hub": hub_cases,
    "batch": batch_cases,
}


# --- report -----------------------------------------------------------------------------------


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def shell_line(argv: list[str]) -> str:
    import shlex

    return "sammoe " + " ".join(shlex.quote(_short(a, 120)) for a in argv)


def print_line(o: Outcome) -> None:
    flags = "SETUP-ERROR" if o.setup_error else (",".join(f for f in FLAG_ORDER if f in o.flags) or "clean")
    rc = "-" if o.rc is None else str(o.rc)
    first = o.setup_error if o.setup_error else o.first_line()
    print(
        f"{o.index:3d} {o.case.family:8s} {_short(o.case.name, 58):58s} rc={rc:>3s} {o.seconds:5.1f}s "
        f"{flags:22s} {_short(first, 110)}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="FAMILY",
        help=f"run only these families (repeatable or comma-separated): {', '.join(FAMILIES)}",
    )
    parser.add_argument("--match", default=None, help="run only cases whose name holds this text (case-insensitive)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case (default 120)")
    parser.add_argument("--jobs", type=int, default=1, help="cases run at once (default 1)")
    parser.add_argument(
        "--entry-point", action="store_true", help="run the `sammoe` script instead of python -m sammoe_core"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-debug-rerun", action="store_true", help="do not rerun internal errors with SAMMOE_DEBUG=1"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each case's command and full output")
    args = parser.parse_args()

    families = [f.strip() for spec in args.only for f in spec.split(",") if f.strip()] or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown family {unknown}; known: {', '.join(FAMILIES)}")
    for family, make_cases in FAMILIES.items():
        if family in families:
            make_cases()
    indexed = [
        (i, c) for i, c in enumerate(CASES, start=1) if args.match is None or args.match.lower() in c.name.lower()
    ]
    if args.list:
        for i, c in indexed:
            print(f"{i:3d} {c.family:8s} expect={c.expect:6s} {c.name}" + (f"  [{c.note}]" if c.note else ""))
        counts = {f: sum(1 for _, c in indexed if c.family == f) for f in families}
        print(f"{len(indexed)} cases: " + ", ".join(f"{f} {n}" for f, n in counts.items()))
        return 0

    if args.entry_point:
        script = shutil.which("sammoe") or str(Path(sys.executable).with_name("sammoe"))
        python = [script]
    else:
        python = [sys.executable, "-m", "sammoe_core"]
    threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    root = Path(tempfile.mkdtemp(prefix="sammoe-bad-inputs-"))
    started = time.monotonic()
    print(
        f"# {len(indexed)} cases, families {', '.join(families)}; folder {root}; timeout {args.timeout:.0f} s; "
        f"jobs {args.jobs}; command {' '.join(python)}",
        flush=True,
    )
    for _ in range(20):  # sammoe must at least start (a checkout may be mid-edit)
        check = subprocess.run([*python, "--help"], check=False, capture_output=True, text=True, timeout=args.timeout)
        if check.returncode == 0:
            break
        print(f"# `sammoe --help` fails ({check.returncode}); waiting 30 s: {_short(check.stderr, 200)}", flush=True)
        time.sleep(30)
    else:
        print("# sammoe does not start; giving up")
        return 2
    assets = Assets(root / "assets")
    t0 = time.monotonic()
    assets.build()
    print(f"# inputs built in {time.monotonic() - t0:.1f} s", flush=True)
    print(
        f"{'#':>3} {'family':8s} {'case':58s} {'exit':>6s} {'time':>6s} {'flags':22s} first line of output", flush=True
    )
    outcomes: list[Outcome] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [
                pool.submit(run_case, root, assets, i, c, python, args.timeout, debug_rerun=not args.no_debug_rerun)
                for i, c in indexed
            ]
            for future in futures:
                o = future.result()
                outcomes.append(o)
                print_line(o)
                if args.verbose:
                    print(textwrap.indent(f"$ {shell_line(o.argv)}\n{o.stdout}{o.stderr}", "      | "), flush=True)
    finally:
        wall = time.monotonic() - started
        if args.keep:
            print(f"# kept {root}")
        else:
            for dirpath, dirnames, _ in os.walk(root):  # chmod-000 and read-only cases
                for d in dirnames:
                    with contextlib.suppress(OSError):
                        os.chmod(os.path.join(dirpath, d), 0o755)
            shutil.rmtree(root, ignore_errors=True)

    bad = [o for o in outcomes if not o.clean]
    if bad:
        print("\nNon-clean cases:")
        for o in bad:
            tries = f"; {o.attempts} attempts" if o.attempts > 1 else ""
            print(f"\n[{o.index}] {o.case.family} / {o.case.name} (expected {o.case.expect}; exit {o.rc}{tries})")
            if o.setup_error:
                print(f"  set-up error: {o.setup_error}")
                continue
            print(f"  command: {shell_line(o.argv)}")
            for flag in FLAG_ORDER:
                if flag in o.flags:
                    print(f"  {flag}: {o.flags[flag]}")
            tail = "\n".join((o.stdout + o.stderr).strip().splitlines()[-6:])
            print(textwrap.indent(tail or "(no output)", "  | "))
            if o.debug_tail:
                print("  with SAMMOE_DEBUG=1:")
                print(textwrap.indent(o.debug_tail, "  | "))

    def count(flag: str) -> int:
        return sum(1 for o in outcomes if flag in o.flags)

    totals = [
        ("cases", len(outcomes)),
        ("clean errors (exit 2)", sum(1 for o in outcomes if o.clean and o.rc == 2)),
        ("clean successes (exit 0)", sum(1 for o in outcomes if o.clean and o.rc == 0)),
        ("tracebacks", count("traceback")),
        ("hangs", count("hang")),
        ("partial outputs", count("partial_output")),
        ("state losses", count("state_loss")),
        ("code executions", count("code_execution")),
        ("leaks", count("leak")),
        ("wrong successes", count("wrong_success")),
        ("unexpected failures", count("unexpected_failure")),
        ("messy messages", count("messy")),
        ("set-up errors", sum(1 for o in outcomes if o.setup_error)),
    ]
    print("\nTotals by family:")
    header = f"{'family':8s} {'cases':>5s} {'clean':>5s} " + " ".join(f"{f[:10]:>10s}" for f in FLAG_ORDER)
    print(header)
    for family in families:
        mine = [o for o in outcomes if o.case.family == family]
        cells = " ".join(f"{sum(1 for o in mine if f in o.flags):>10d}" for f in FLAG_ORDER)
        print(f"{family:8s} {len(mine):5d} {sum(1 for o in mine if o.clean):5d} {cells}")
    print("\nTotals:")
    for label, value in totals:
        print(f"  {label:26s} {value:5d}")
    print(f"  {'wall time':26s} {wall:7.1f} s")
    severe = any(count(f) for f in SEVERE)
    return 1 if severe else 0


if __name__ == "__main__":
    sys.exit(main())
