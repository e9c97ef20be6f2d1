"""``sammoe segment`` end to end with the real network (random 'sammoe-tiny' weights, 64³ crops).

Small volumes are made here with nibabel. Every bad input exits 2 with one line naming the file
and leaves no file behind.
"""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from segment_support import make_affine, rotation, write_dicom_series

from sammoe_core.cli import main
from sammoe_core.files.hashing import sha256_file

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from sammoe_core.model import Sam3D
    from sammoe_core.model.checkpoint import save_weights

    model = Sam3D("sammoe-tiny")
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(model.state_dict(), path, model.config)
    return path


def _ct_like(shape, seed: int) -> np.ndarray:
    """Air around a soft-tissue ellipsoid with a bright core, plus noise (Hounsfield-like)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    body = (grid**2).sum(-1) < 0.7
    core = ((grid - 0.15) ** 2).sum(-1) < 0.08
    data = np.where(body, 40.0, -1000.0) + np.where(core, 160.0, 0.0) + rng.normal(0, 15, shape)
    return data.astype(np.int16)


def _write(path, data, affine=None, sform_code=2, qform_code=1):
    affine = make_affine(np.diag([-1.0, -1, 1]), (1.2, 1.4, 2.0), (0, 0, 0)) if affine is None else affine
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.set_sform(affine, code=sform_code)
    img.set_qform(affine, code=qform_code)
    img.to_filename(str(path))
    return path


def _run(*args):
    return CliRunner().invoke(main, ["segment", *map(str, args)])


def _files(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_one_volume_with_preview_and_probabilities(tmp_path, weights, fresh_seed):
    source = _write(tmp_path / "ct.nii.gz", _ct_like((40, 36, 30), fresh_seed))
    out = tmp_path / "out" / "seg.nii.gz"
    out.parent.mkdir()
    result = _run(
        source,
        "-o",
        out,
        "--point",
        "24,20,18",
        "--negative-point",
        "3,3,3",
        "--label-name",
        "core",
        "--preview",
        tmp_path / "out" / "look.png",
        "--probabilities",
        "--weights",
        weights,
    )
    assert result.exit_code == 0, result.output
    assert "label 1 'core'" in result.output
    assert _files(out.parent) == ["look.png", "seg.json", "seg.nii.gz", "seg.probabilities.nii.gz"]
    assert (out.parent / "look.png").read_bytes()[:8] == PNG_MAGIC

    original, labels = nib.load(source), nib.load(out)
    assert labels.shape == original.shape and labels.get_data_dtype() == np.uint8
    assert np.array_equal(labels.affine, original.affine)
    for key in ("sform_code", "qform_code", "pixdim", "srow_x", "srow_y", "srow_z", "quatern_b", "qoffset_x"):
        assert np.array_equal(labels.header[key], original.header[key]), key
    values = np.asarray(labels.dataobj)
    assert set(np.unique(values)) <= {0, 1}

    probabilities = nib.load(out.parent / "seg.probabilities.nii.gz")
    assert probabilities.get_data_dtype() == np.float32 and probabilities.shape == original.shape
    p = probabilities.get_fdata()
    assert p.min() >= 0 and p.max() <= 1
    assert ((p > 0.5) == (values == 1)).mean() > 0.9  # linear vs nearest differ only at edges

    sidecar = json.loads((out.parent / "seg.json").read_text())
    assert sidecar["labels"] == {"1": "core"}
    assert sidecar["model"]["weights_sha256"] == sha256_file(weights)
    assert sidecar["model"]["config"] == "sammoe-tiny"
    assert sidecar["modality"]["modality"] == "ct" and sidecar["modality"]["requested"] == "auto"
    assert sidecar["settings"]["preprocessing"]["crop_size"] == 64
    clicks = sidecar["targets"][0]["clicks"]
    assert clicks[0]["voxel"] == [24, 20, 18] and not clicks[1]["positive"]
    assert np.allclose(clicks[0]["mm"], original.affine[:3, :3] @ [24, 20, 18] + original.affine[:3, 3], atol=1e-3)
    assert sidecar["targets"][0]["voxel_count"] == int((values == 1).sum())
    assert sidecar["files"] == {
        "label_map": "seg.nii.gz",
        "sidecar": "seg.json",
        "probabilities": "seg.probabilities.nii.gz",
        "preview": "look.png",
    }
    assert set(sidecar["timings_s"]) == {"read_s", "segment_s"}
    assert sidecar["model"]["device"] == "cpu"  # which device made it (before: not recorded)


def test_prompts_file_gives_a_multi_label_map(tmp_path, weights, fresh_seed):
    affine = make_affine(rotation(15, 5), (1.5, 1.5, 1.5), (0, 0, 0))
    source = _write(tmp_path / "mr.nii", np.abs(_ct_like((36, 36, 36), fresh_seed)) * 2, affine)
    prompts = tmp_path / "targets.json"
    point_mm = (affine[:3, :3] @ [25, 25, 20] + affine[:3, 3]).tolist()
    prompts.write_text(
        json.dumps(
            {
                "targets": [
                    {"name": "first", "label": 2, "points": [[10, 12, 14]]},
                    {"name": "second", "label": 300, "points_mm": [point_mm], "box": [20, 20, 15, 30, 30, 25]},
                ]
            }
        )
    )
    out = tmp_path / "labels.nii.gz"
    refused = _run(source, "-o", out, "--prompts", prompts, "--modality", "mr", "--weights", weights, "-q")
    assert refused.exit_code == 2 and "target 'second': a box needs a network with box embeddings" in refused.output
    assert not out.exists()
    result = _run(
        source,
        "-o",
        out,
        "--prompts",
        prompts,
        "--modality",
        "mr",
        "--preview",
        "--weights",
        weights,
        "-q",
        "--box-as-click",
    )
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet
    labels = nib.load(out)
    assert labels.get_data_dtype() == np.uint16  # a label above 255
    assert set(np.unique(np.asarray(labels.dataobj))) <= {0, 2, 300}
    assert (tmp_path / "labels.png").read_bytes()[:8] == PNG_MAGIC
    sidecar = json.loads((tmp_path / "labels.json").read_text())
    assert sidecar["labels"] == {"2": "first", "300": "second"}
    assert sidecar["modality"] == {"modality": "mr", "requested": "mr", "reason": "given by the caller"}
    second = sidecar["targets"][1]
    assert "no box embeddings" in second["box_handling"] and second["clicks"][0]["from_box"]


def test_dicom_series_folder_input(tmp_path, weights, fresh_seed):
    series = tmp_path / "series"
    series.mkdir()
    affine = make_affine(np.eye(3), (1.5, 1.5, 2.5), (0, 0, 0), (10, 10, 10))
    write_dicom_series(series, _ct_like((24, 24, 12), fresh_seed).astype(np.float32), affine, order=range(12))
    out = tmp_path / "seg.nii.gz"
    result = _run(series, "-o", out, "--point", "12,12,6", "--weights", weights)
    assert result.exit_code == 0, result.output
    labels = nib.load(out)
    assert labels.shape == (24, 24, 12) and np.allclose(labels.affine, affine, atol=1e-4)


def test_folder_batch_skips_existing_and_writes_a_run_report(tmp_path, weights, fresh_seed):
    cases = tmp_path / "cases"
    cases.mkdir()
    _write(cases / "a.nii.gz", _ct_like((30, 30, 24), fresh_seed))
    _write(cases / "b.nii", _ct_like((28, 32, 20), fresh_seed + 1))
    (cases / "a.prompts.json").write_text(
        json.dumps({"targets": [{"name": "x", "label": 4, "points": [[15, 15, 12]]}]})
    )
    out = tmp_path / "segs"

    # b has no prompts file: it fails, a is done, and the run says so
    result = _run(cases, "-o", out, "--weights", weights)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith("Error: ") and "1 of 2 cases failed" in result.output
    report = json.loads(next(out.glob("sammoe-run-*.json")).read_text())
    assert report["counts"] == {"done": 1, "skipped": 0, "failed": 1}
    assert [c["status"] for c in report["cases"]] == ["done", "failed"] and "no prompts" in report["cases"][1]["error"]
    assert set(np.unique(np.asarray(nib.load(out / "a.nii.gz").dataobj))) <= {0, 4}

    # the same point for every case: a exists and is skipped, b is done
    result = _run(cases, "-o", out, "--point", "10,10,10", "--preview", "--weights", weights)
    assert result.exit_code == 0, result.output
    assert "1 done, 1 skipped, 0 failed" in result.output
    assert (out / "b.nii.gz").exists() and (out / "b.png").exists() and not (out / "a.png").exists()
    assert len(list(out.glob("sammoe-run-*.json"))) == 2

    result = _run(cases, "-o", out, "--point", "10,10,10", "--overwrite", "--weights", weights, "--quiet")
    assert result.exit_code == 0 and result.output == ""
    latest = max(out.glob("sammoe-run-*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert json.loads(latest.read_text())["counts"] == {"done": 2, "skipped": 0, "failed": 0}


def _zero_axis_file(path):
    """A NIfTI header that declares a zero-size axis."""
    return _write(path, np.zeros((6, 0, 5), np.float32))


def _bad_inputs(tmp_path, seed):
    good = _write(tmp_path / "good.nii.gz", _ct_like((20, 20, 16), seed))
    raw = good.read_bytes()
    corrupt = bytearray(raw)
    corrupt[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)
    nan = _ct_like((20, 20, 16), seed).astype(np.float32)
    nan[5, 5, 5] = np.nan
    inputs = {
        "not a volume": (tmp_path / "notes.nii.gz", lambda p: p.write_bytes(b"just some text\n" * 40)),
        "corrupt gzip": (tmp_path / "corrupt.nii.gz", lambda p: p.write_bytes(bytes(corrupt))),
        "truncated": (tmp_path / "cut.nii", lambda p: p.write_bytes(gzip.decompress(raw)[:4000])),
        "2D data": (tmp_path / "flat.nii.gz", lambda p: _write(p, np.zeros((20, 20, 1), np.float32))),
        "4D data": (tmp_path / "series.nii.gz", lambda p: _write(p, np.zeros((8, 8, 8, 3), np.float32))),
        "NaN/Inf": (tmp_path / "nan.nii.gz", lambda p: _write(p, nan)),
        "zero-size axis": (tmp_path / "empty.nii.gz", _zero_axis_file),
    }
    for path, make in inputs.values():
        make(path)
    return good, {problem: path for problem, (path, _) in inputs.items()}


@pytest.mark.parametrize(
    "problem", ["not a volume", "corrupt gzip", "truncated", "2D data", "4D data", "NaN/Inf", "zero-size axis"]
)
def test_bad_volumes_exit_2_with_one_line_and_no_output(tmp_path, weights, fresh_seed, problem):
    (tmp_path / "in").mkdir()
    _, inputs = _bad_inputs(tmp_path / "in", fresh_seed)
    out = tmp_path / "out"
    out.mkdir()
    result = _run(
        inputs[problem],
        "-o",
        out / "seg.nii.gz",
        "--point",
        "1,1,1",
        "--preview",
        "--probabilities",
        "--weights",
        weights,
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {inputs[problem]}: ")
    assert problem.lower() in lines[0].lower()
    assert _files(out) == []


def test_bad_prompts_and_outputs_exit_2_with_one_line_and_no_output(tmp_path, weights, fresh_seed):
    (tmp_path / "in").mkdir()
    good, _ = _bad_inputs(tmp_path / "in", fresh_seed)
    out = tmp_path / "out"
    out.mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        (["-o", out / "s.nii.gz", "--point", "20,5,5"], f"{good}: ", "outside the volume"),
        (["-o", out / "s.nii.gz", "--point-mm", "5000,0,0"], f"{good}: ", "outside the volume"),
        (["-o", out / "s.nii.gz", "--box", "0,0,0,5,5,40"], f"{good}: ", "outside the volume"),
        (
            ["-o", tmp_path / "missing" / "s.nii.gz", "--point", "5,5,5"],
            f"{tmp_path / 'missing' / 's.nii.gz'}: ",
            "does not exist",
        ),
        (["-o", blocker / "s.nii.gz", "--point", "5,5,5"], f"{blocker / 's.nii.gz'}: ", "does not exist"),
        (["-o", out / "s.png", "--point", "5,5,5"], f"{out / 's.png'}: ", ".nii.gz or .nii"),
        (["-o", out / "s.nii.gz"], f"{good}: ", "no prompts"),
    ]
    for args, prefix, problem in cases:
        result = _run(good, *args, "--weights", weights)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith(f"Error: {prefix}") and problem in lines[0], lines
        assert _files(out) == [], args


def test_existing_output_needs_overwrite(tmp_path, weights, fresh_seed):
    source = _write(tmp_path / "ct.nii.gz", _ct_like((20, 20, 16), fresh_seed))
    out = tmp_path / "seg.nii.gz"
    assert _run(source, "-o", out, "--point", "10,10,8", "--weights", weights).exit_code == 0
    before = out.read_bytes()
    result = _run(source, "-o", out, "--point", "5,5,5", "--weights", weights)
    assert result.exit_code == 2 and "output exists" in result.output and "--overwrite" in result.output
    assert out.read_bytes() == before
    assert _run(source, "-o", out, "--point", "5,5,5", "--weights", weights, "--overwrite").exit_code == 0
    assert json.loads((tmp_path / "seg.json").read_text())["targets"][0]["clicks"][0]["voxel"] == [5, 5, 5]


def test_model_choice_errors_are_one_line(tmp_path, weights, fresh_seed, sammoe_home, plugin_host):
    from sammoe_core.experts.foundations import choose_foundation

    choose_foundation(str(weights))  # without --weights: the foundation in use (+ experts, gate)
    source = _write(tmp_path / "ct.nii.gz", _ct_like((20, 20, 16), fresh_seed))
    for extra, problem in (
        (["--policy", "nonsense"], "unknown policy 'nonsense'"),
        (["--weights", weights, "--device", "tpu"], "unknown device 'tpu'"),
        (["--policy", "top1", "--tau", "0.3"], "--tau: policy 'top1' option tau: Extra inputs are not permitted"),
        (["--policy-option", "tua=0.3"], "--policy-option tua=...: policy 'threshold' option tua"),
        (["--weights", weights, "--config", "nonsense"], "unknown model config"),
        (["--weights", tmp_path / "none.safetensors"], "no such file"),
    ):
        result = _run(source, "-o", tmp_path / "s.nii.gz", "--point", "5,5,5", *extra)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert problem in result.output
    assert not (tmp_path / "s.nii.gz").exists()


def test_threads_sets_and_records_the_cpu_threads(tmp_path, weights, fresh_seed):
    import torch

    source = _write(tmp_path / "ct.nii.gz", _ct_like((40, 36, 30), fresh_seed))
    before = torch.get_num_threads()
    try:
        result = _run(
            source, "-o", tmp_path / "seg.nii.gz", "--point", "20,18,15", "--weights", weights, "--threads", "1"
        )
        assert result.exit_code == 0, result.output
        sidecar = json.loads((tmp_path / "seg.json").read_text())
        assert sidecar["runtime"]["torch_threads"] == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    bad = _run(source, "-o", tmp_path / "other.nii.gz", "--point", "20,18,15", "--weights", weights, "--threads", "0")
    assert bad.exit_code == 2 and "--threads" in bad.output


def test_precision_is_chosen_from_the_hardware_and_recorded(tmp_path, weights, fresh_seed, monkeypatch):
    """fp32 is the exact mode: the label map of the API with a directly built predictor. bf16
    (forced, and what auto picks on a CPU with native bf16) is recorded with its reason and
    agrees with fp32 nearly everywhere; auto without native bf16 is fp32."""
    import sammoe_core.devices as devices
    from sammoe_core import segment
    from sammoe_core.model.checkpoint import load_model
    from sammoe_core.segmentation.predictor import FoundationPredictor

    source = _write(tmp_path / "ct.nii.gz", _ct_like((40, 36, 30), fresh_seed))
    maps, sidecars = {}, {}
    for name, flag, precision in (
        ("fp32", "avx512_bf16", "fp32"),
        ("bf16", None, "bf16"),
        ("auto", "amx_bf16", "auto"),
    ):
        monkeypatch.setattr(devices, "_cpu_bf16_flag", lambda flag=flag: flag)
        out = tmp_path / f"{name}.nii.gz"
        args = ("-o", out, "--point", "20,18,15", "--weights", weights, "--device", "cpu", "--precision", precision)
        result = _run(source, *args)
        assert result.exit_code == 0, result.output
        maps[name] = np.asarray(nib.load(str(out)).dataobj)
        sidecars[name] = json.loads((tmp_path / f"{name}.json").read_text())["model"]
    assert sidecars["fp32"]["precision"] == "fp32" and sidecars["bf16"]["precision"] == "bf16"
    assert sidecars["auto"]["precision"] == "bf16" and "amx_bf16" in sidecars["auto"]["precision_reason"]
    exact = segment(
        str(source),
        {"targets": [{"name": "target", "points": [[20, 18, 15]]}]},
        FoundationPredictor(load_model(weights, device="cpu")),
    )
    assert np.array_equal(maps["fp32"], exact.label_map)
    assert (maps["bf16"] == maps["fp32"]).mean() > 0.99 and np.array_equal(maps["auto"], maps["bf16"])
    monkeypatch.setattr(devices, "_cpu_bf16_flag", lambda: None)
    assert devices.choose_precision(devices.resolve_device("cpu")) == (
        "fp32",
        "auto: the CPU has neither AMX nor AVX-512 BF16",
    )
    bad = _run(source, "-o", tmp_path / "x.nii.gz", "--point", "20,18,15", "--weights", weights, "--precision", "fp8")
    assert bad.exit_code == 2 and "--precision" in bad.output
