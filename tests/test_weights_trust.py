"""Weights are checked before use: a content digest always, finite values, a valid config."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from sammoe_core.cli import main
from sammoe_core.errors import WeightsError
from sammoe_core.files.hashing import sha256_tensors
from sammoe_core.model import Sam3D, get_config
from sammoe_core.model.checkpoint import load_model, load_weights, save_weights


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return Sam3D("sammoe-tiny").state_dict()


def _raw(path, tensors, **meta):
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt", **meta})
    return path


def test_a_file_without_digest_is_refused_unless_allowed(tmp_path, state):
    """Before: a byte flip in a digest-less file loaded silently."""
    path = _raw(tmp_path / "plain.safetensors", state, sammoe_config="sammoe-tiny")
    with pytest.raises(WeightsError, match="no content digest.*--allow-unverified"):
        load_model(path)
    assert load_model(path, allow_unverified=True).config.name == "sammoe-tiny"


def test_nan_weights_are_refused_even_under_a_valid_digest(tmp_path, state):
    bad = dict(state)
    name = sorted(bad)[0]
    bad[name] = torch.full_like(bad[name], float("nan"))
    path = _raw(tmp_path / "nan.safetensors", bad, sammoe_config="sammoe-tiny", tensors_sha256=sha256_tensors(bad))
    with pytest.raises(WeightsError, match=f"tensor {name} holds NaN"):
        load_weights(path)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"sammoe_config": "no-such-config"}, "the header names unknown model config 'no-such-config'"),
        (
            {"sammoe_config_json": json.dumps({**get_config("sammoe-tiny").model_dump(), "patch_size": 0})},
            "invalid network config in the header: patch_size",
        ),
    ],
)
def test_a_bad_config_in_the_header_is_named(tmp_path, state, meta, message):
    """Before: '--config None: ...' for an unknown name and a ZeroDivisionError for patch_size 0."""
    path = _raw(tmp_path / "w.safetensors", state, tensors_sha256=sha256_tensors(state), **meta)
    with pytest.raises(WeightsError, match=message):
        load_model(path)
    volume = tmp_path / "v.nii.gz"
    import nibabel as nib
    import numpy as np

    nib.Nifti1Image(np.zeros((10, 10, 10), np.float32), np.eye(4)).to_filename(str(volume))
    r = CliRunner().invoke(
        main,
        [
            "segment",
            str(volume),
            "-o",
            str(tmp_path / "o.nii.gz"),
            "--point",
            "5,5,5",
            "--weights",
            str(path),
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 2 and "--config None" not in r.output and message.split(":")[0] in r.output


def test_sammoe_writes_the_digest_and_the_cli_loads_unverified_files_only_when_asked(tmp_path, state):
    import nibabel as nib
    import numpy as np

    model = Sam3D("sammoe-tiny")
    good = tmp_path / "good.safetensors"
    save_weights(model.state_dict(), good, model.config)
    assert load_weights(good)[1]["tensors_sha256"] == sha256_tensors(model.state_dict())
    plain = _raw(tmp_path / "plain.safetensors", model.state_dict(), sammoe_config="sammoe-tiny")
    volume = tmp_path / "v.nii.gz"
    nib.Nifti1Image(np.zeros((10, 10, 10), np.float32), np.eye(4)).to_filename(str(volume))
    args = [
        "segment",
        str(volume),
        "-o",
        str(tmp_path / "o.nii.gz"),
        "--point",
        "5,5,5",
        "--weights",
        str(plain),
        "--device",
        "cpu",
        "-q",
    ]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "--allow-unverified" in refused.output
    assert CliRunner().invoke(main, [*args, "--allow-unverified"]).exit_code == 0
