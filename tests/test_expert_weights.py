"""Expert manifests and delta weights: validation, deltas, composition sharing the foundation,
lazy loading, tampered files and foreign foundations refused."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from sammoe_core.errors import SammoeError
from sammoe_core.experts import Expert, FoundationMismatch, read_manifest
from sammoe_core.experts.weights import compose, make_delta, overrides_encoder
from sammoe_core.model.checkpoint import WeightsError, load_weights
from sammoe_core.testing import check_expert_folder, make_test_foundation


def edit_manifest(folder, **changes) -> None:
    path = folder / "expert.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "changes, complaint",
    [
        ({"name": "Spinal Cord"}, "name: String should match pattern"),
        ({"license": "not-a-licence"}, "license: Value error, not an SPDX license expression"),
        ({"version": "one"}, "version: Value error, 'one' is not a version"),
        ({"modality": "pet"}, "modality: Input should be 'ct', 'mr' or 'any'"),
        ({"overrides": ["mask decoder"]}, "overrides: Value error, not tensor names"),
        ({"calibration": {"path": "../elsewhere", "classes": ["structure"]}}, "calibration.path"),
        ({"calibration": {"path": "cal", "classes": ["liver"]}}, "calibration classes ['liver'] are not among"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_manifest_validation_names_the_field(make_expert, changes, complaint):
    folder = make_expert().folder
    edit_manifest(folder, **changes)
    with pytest.raises(SammoeError, match="invalid expert manifest") as err:
        read_manifest(folder)
    assert complaint in str(err.value)


def test_manifest_canonicalises_and_round_trips(make_expert):
    expert = make_expert(license="apache-2.0 OR mit", version="1.0")
    assert expert.manifest.license == "Apache-2.0 OR MIT"
    assert expert.manifest.version == "1.0"
    assert read_manifest(expert.folder) == expert.manifest


def test_make_delta_keeps_only_changed_tensors_of_the_named_parts(test_foundation):
    base, _ = load_weights(test_foundation.weights)
    tuned = dict(base)
    changed = ["mask_decoder.iou_token.weight", "prompt_encoder.not_a_point_embed.weight"]
    for key in changed:
        tuned[key] = base[key] + 1
    delta = make_delta(base, tuned, "decoder")
    assert sorted(delta) == sorted(changed)
    assert not overrides_encoder(delta)
    with pytest.raises(SammoeError, match="changed outside the parts"):
        make_delta(base, tuned, ["mask_decoder"])
    with pytest.raises(SammoeError, match="changed nothing"):
        make_delta(base, base, "all")
    tuned["image_encoder.pos_embed"] = base["image_encoder.pos_embed"] * 2
    assert overrides_encoder(make_delta(base, tuned, "all"))


def test_compose_shares_unchanged_parameters_and_equals_the_finetuned_network(test_foundation, make_expert):
    expert = make_expert()
    foundation = test_foundation.load()
    model = expert.build(foundation, test_foundation.sha256)
    shared = dict(foundation.named_parameters())
    delta = expert.load_delta()
    for name, p in model.named_parameters():
        same_storage = p.data_ptr() == shared[name].data_ptr()
        assert same_storage == (name not in delta), name
    # the composed network computes what a full copy with the delta loaded computes
    full = test_foundation.load()
    full.load_state_dict({**full.state_dict(), **delta})
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(1, 1, 64, 64, 64, generator=gen)
    points, labels = torch.tensor([[[30.0, 32.0, 31.0]]]), torch.tensor([[1]])
    with torch.no_grad():
        emb = model.encode(image)
        torch.testing.assert_close(model.decode(emb, points, labels), full.decode(full.encode(image), points, labels))
        assert not torch.equal(model.decode(emb, points, labels), foundation.decode(emb, points, labels))


def test_compose_rejects_tensors_of_another_shape(test_foundation):
    foundation = test_foundation.load()
    with pytest.raises(WeightsError, match="wrong shapes: mask_decoder.iou_token.weight"):
        compose(foundation, {"mask_decoder.iou_token.weight": torch.zeros(2, 2)})
    with pytest.raises(WeightsError, match="unexpected keys: mask_decoder.extra"):
        compose(foundation, {"mask_decoder.extra": torch.zeros(2)})


def test_weights_are_read_only_when_used(make_expert, tmp_path):
    folder = tmp_path / "lazy"
    shutil.copytree(make_expert().folder, folder)
    (folder / "model.safetensors").unlink()
    expert = Expert.from_folder(folder)  # the manifest alone is enough to list the expert
    assert expert.name == "test-expert"
    with pytest.raises(SammoeError, match="expert weights file missing"):
        expert.load_delta()


def test_tampered_weights_are_refused(make_expert, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(make_expert().folder, folder)
    weights = folder / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="sha256 mismatch .*tampered with or damaged"):
        check_expert_folder(folder)
    # a manifest updated to the new hash still fails: the header's content digest disagrees
    from sammoe_core.files.hashing import sha256_file

    edit_manifest(folder, weights={"file": "model.safetensors", "sha256": sha256_file(weights)})
    with pytest.raises(WeightsError, match="does not match the digest in its header"):
        check_expert_folder(folder)


def test_an_expert_built_on_another_foundation_is_refused_naming_both_hashes(make_expert, test_foundation, tmp_path):
    expert = make_expert()
    other = make_test_foundation(tmp_path / "other.safetensors", seed=5)
    with pytest.raises(FoundationMismatch) as err:
        expert.build(other.load(), other.sha256)
    assert test_foundation.sha256 in str(err.value) and other.sha256 in str(err.value)
    # a manifest edited to claim the other foundation disagrees with its weights' header
    edit_manifest(expert.folder, foundation={"config": "sammoe-tiny", "sha256": other.sha256})
    with pytest.raises(FoundationMismatch, match=f"made on foundation {test_foundation.sha256}"):
        Expert.from_folder(expert.folder).build(other.load(), other.sha256)


def test_weights_outside_the_declared_overrides_are_refused(make_expert):
    expert = make_expert()
    edit_manifest(expert.folder, overrides=["mask_decoder."])
    with pytest.raises(SammoeError, match="not covered by the manifest's overrides: prompt_encoder"):
        check_expert_folder(expert.folder)


def test_check_expert_folder_composes_onto_the_given_foundation(make_expert, test_foundation):
    expert = check_expert_folder(make_expert("encoder-too", parts="all").folder, foundation=test_foundation)
    assert expert.overrides_encoder


def test_calibration_set_must_have_the_dataset_layout(make_expert):
    expert = make_expert(calibration={"path": "calibration", "classes": ["structure"]})
    with pytest.raises(SammoeError, match="calibration set lacks dataset.json, images, labels"):
        check_expert_folder(expert.folder)
    cal = expert.folder / "calibration"
    for sub in ("images", "labels"):
        (cal / sub).mkdir(parents=True)
    (cal / "dataset.json").write_text("{}")
    assert check_expert_folder(expert.folder).calibration_dir == cal
