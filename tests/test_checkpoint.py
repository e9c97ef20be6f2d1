"""Official .pth import and sammoe safetensors files: bit-identical round trip, strict errors."""

from __future__ import annotations

import argparse
import json
import struct

import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.model import Sam3D
from sammoe_core.model.checkpoint import (
    BOX_KEYS,
    WeightsError,
    convert_checkpoint,
    load_model,
    load_weights,
    read_official_checkpoint,
)
from tests.conftest import randomize_weights

CFG = "sammoe-tiny"


@pytest.fixture
def tiny_state(fresh_seed):
    model = Sam3D(CFG)
    randomize_weights(model, fresh_seed)
    return model.state_dict()


def _outputs(model: Sam3D, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    s = model.config.image_size
    with torch.no_grad():
        emb = model.encode(torch.randn(1, 1, s, s, s, generator=gen))
        pts = torch.randint(0, s, (1, 2, 3), generator=gen).float()
        return model.decode(emb, pts, torch.tensor([[1, 0]]))


def test_pth_to_safetensors_to_model_is_bit_identical(tmp_path, tiny_state, fresh_seed):
    src = tmp_path / "official.pth"
    torch.save({"model_state_dict": tiny_state}, src)
    out = tmp_path / "converted.safetensors"
    result = convert_checkpoint(src, out, config=CFG)
    assert result.num_tensors == len(tiny_state)
    direct = Sam3D(CFG).eval()
    direct.load_state_dict(tiny_state, strict=True)
    loaded = load_model(out)
    assert loaded.config.name == CFG
    for k, v in direct.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert torch.equal(_outputs(direct, fresh_seed), _outputs(loaded, fresh_seed))


def test_accepts_bare_dict_and_module_prefix(tmp_path, tiny_state):
    bare = tmp_path / "bare.pth"
    torch.save(tiny_state, bare)
    assert set(read_official_checkpoint(bare)) == set(tiny_state)
    ddp = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in tiny_state.items()}, ddp)
    assert set(read_official_checkpoint(ddp)) == set(tiny_state)


def test_accepts_train_py_checkpoint_with_namespace(tmp_path, tiny_state):
    path = tmp_path / "sam_model_latest.pth"
    torch.save({"epoch": 3, "model_state_dict": tiny_state, "args": argparse.Namespace(lr=8e-5)}, path)
    assert set(read_official_checkpoint(path)) == set(tiny_state)


class _Evil:
    def __reduce__(self):
        return (print, ("pickle ran code",))


def test_refuses_arbitrary_pickled_objects(tmp_path, tiny_state, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": tiny_state, "payload": _Evil()}, path)
    with pytest.raises(WeightsError, match="weights-only"):
        read_official_checkpoint(path)
    assert "pickle ran code" not in capsys.readouterr().out


def test_missing_extra_and_wrong_shape_keys_are_named(tmp_path, tiny_state):
    cases = {
        "missing": (
            {k: v for k, v in tiny_state.items() if k != "mask_decoder.iou_token.weight"},
            "missing keys: mask_decoder.iou_token.weight",
        ),
        "extra": (
            {**tiny_state, "image_encoder.extra.weight": torch.zeros(2)},
            "unexpected keys: image_encoder.extra.weight",
        ),
        "shape": (
            {**tiny_state, "image_encoder.pos_embed": torch.zeros(1, 2, 2, 2, 48)},
            "wrong shapes: image_encoder.pos_embed (1, 2, 2, 2, 48)",
        ),
    }
    for name, (state, message) in cases.items():
        src = tmp_path / f"{name}.pth"
        torch.save(state, src)
        with pytest.raises(WeightsError, match=message.replace("(", r"\(").replace(")", r"\)")):
            convert_checkpoint(src, tmp_path / f"{name}.safetensors", config=CFG)
        assert not (tmp_path / f"{name}.safetensors").exists()


def test_box_embeddings_recognised_by_name(tmp_path):
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Sam3D("sam-med3d-vit-b-box").state_dict().items()}
    assert set(BOX_KEYS) <= set(shapes)
    model_no_box = Sam3D(CFG)
    state = dict(model_no_box.state_dict())
    state.update({k: torch.zeros(1, 48) for k in BOX_KEYS})
    src = tmp_path / "cvpr.pth"
    torch.save(state, src)
    with pytest.raises(WeightsError, match="box embeddings .*point_embeddings.2.weight"):
        convert_checkpoint(src, tmp_path / "cvpr.safetensors", config=CFG)


def test_box_config_runs_box_prompts(fresh_seed):
    model = Sam3D("sam-med3d-vit-b-box").eval()
    with torch.no_grad():
        emb = torch.randn(1, 384, 8, 8, 8)
        out = model.decode(emb, boxes=torch.tensor([[[10.0, 20, 30], [60, 70, 80]]]))
    assert out.shape == (1, 1, 32, 32, 32)
    with pytest.raises(ValueError, match="no box embeddings"):
        Sam3D(CFG).decode(torch.randn(1, 48, 4, 4, 4), boxes=torch.zeros(1, 2, 3))


def _data_offset(path) -> int:
    with open(path, "rb") as f:
        return 8 + struct.unpack("<Q", f.read(8))[0]


def test_tampered_and_truncated_safetensors_are_refused(tmp_path, tiny_state):
    src = tmp_path / "m.pth"
    torch.save(tiny_state, src)
    good = tmp_path / "good.safetensors"
    res = convert_checkpoint(src, good, config=CFG)
    raw = bytearray(good.read_bytes())
    pos = _data_offset(good) + 1000
    raw[pos] ^= 0xFF
    tampered = tmp_path / "tampered.safetensors"
    tampered.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="does not match the digest"):
        load_model(tampered)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_weights(tampered, expected_sha256=res.output_sha256)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: len(raw) // 2])
    with pytest.raises(WeightsError, match="truncated|not a readable"):
        load_model(truncated)
    assert load_weights(good, expected_sha256=res.output_sha256)[1]["source_sha256"] == res.source_sha256


def test_safetensors_load_is_strict(tmp_path, tiny_state):
    from sammoe_core.model import get_config
    from sammoe_core.model.checkpoint import save_weights

    path = tmp_path / "partial.safetensors"
    partial = {k: v for k, v in tiny_state.items() if not k.startswith("mask_decoder.")}
    save_weights(partial, path, get_config(CFG))
    with pytest.raises(WeightsError, match="missing keys: mask_decoder"):
        load_model(path)


def test_cli_convert(tmp_path, tiny_state):
    src = tmp_path / "m.pth"
    torch.save({"model_state_dict": tiny_state}, src)
    out = tmp_path / "m.safetensors"
    runner = CliRunner()
    r = runner.invoke(main, ["convert", str(src), str(out), "--config", CFG])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["config"] == CFG and len(info["sha256"]) == 64
    r = runner.invoke(main, ["convert", str(src), str(out), "--config", CFG])
    assert r.exit_code == 2 and "output exists" in r.output
    r = runner.invoke(main, ["convert", str(tmp_path / "nope.pth"), str(tmp_path / "x.safetensors")])
    assert r.exit_code == 2 and "nope.pth: no such file" in r.output


def test_loading_weights_does_not_import_torch_dynamo(tmp_path):
    """Checking and loading build the network on the meta device; a normal draw (nn.Embedding's
    init, randn) goes through torch's reference kernels there, whose first use imports
    torch._dynamo or sympy (about a second of every `sammoe segment`). The network avoids both,
    and off the meta device draws the values torch.randn draws."""
    from sammoe_core.model.layers import standard_normal

    torch.manual_seed(11)
    expected = torch.randn(4, 6)
    torch.manual_seed(11)
    assert torch.equal(standard_normal(4, 6), expected)
    import subprocess
    import sys

    from sammoe_core.model import Sam3D
    from sammoe_core.model.checkpoint import save_weights

    model = Sam3D("sammoe-tiny")
    path = tmp_path / "tiny.safetensors"
    save_weights(model.state_dict(), path, model.config)
    code = (
        "import sys; from sammoe_core.model.checkpoint import load_model; "
        f"load_model({str(path)!r}); print('torch._dynamo' in sys.modules, 'sympy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False False"
