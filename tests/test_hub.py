"""Experts and foundations on the Hub: export, publish, add-expert hf://..., foundation set hf://...,
offline use, and the failures a user must understand, against the real huggingface_hub client
talking to an in-process test double of the Hub (tests/hub_double.py)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.experts import enabled_experts
from sammoe_core.experts.registry import Registry
from sammoe_core.files.atomic import usual_mode
from sammoe_core.testing import make_test_expert
from tests.hub_double import HubDouble, UnreachableHub

TOKEN = "hf_sammoeTestToken0123456789abcdefXYZ"
OFFICIAL = "blueyo0/SAM-Med3D"


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code == 0) == ok, result.output
    if not ok:
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    return result


@pytest.fixture
def hub(sammoe_home, no_builtin_foundation, tmp_path, monkeypatch):
    """An empty Hub double that accepts TOKEN, the client pointed at it, and a fresh HF cache."""
    from huggingface_hub import constants

    for variable in ("SAMMOE_OFFLINE", "HF_HUB_OFFLINE", "SAMMOE_HUB_CACHE", "HF_HUB_CACHE", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.test")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    double = HubDouble(token=TOKEN)
    double.install()
    yield double
    HubDouble.uninstall()


@pytest.fixture
def liver(tmp_path, test_foundation):
    """An expert on the (pretend-official) foundation, with an evaluation and a calibration set."""
    spec = test_foundation.model_copy(update={"hub_id": OFFICIAL})
    folder = tmp_path / "made" / "liver"
    expert = make_test_expert(
        folder,
        spec,
        name="liver",
        targets=[{"name": "Liver", "labels": [1]}],
        calibration={"path": "calibration", "classes": ["Liver"]},
        evaluation=[{"dataset": "AMOS22", "target": "Liver", "metric": "dice", "value": 0.9321, "cases": 40}],
    )
    for part in ("images", "labels"):
        (folder / "calibration" / part).mkdir(parents=True)
        (folder / "calibration" / part / "case_000.nii.gz").write_bytes(f"{part} of case 0".encode())
    (folder / "calibration" / "dataset.json").write_text('{"labels": {"1": "Liver"}}\n')
    return expert


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hub_cache() -> Path:
    """The Hub cache sammoe uses in these tests (HF_HOME/hub; HF_HOME is set by the ``hub`` fixture)."""
    return Path(os.environ["HF_HOME"]) / "hub"


# --- export ------------------------------------------------------------------------------------


def test_export_writes_the_repo_layout_with_a_model_card(liver, tmp_path, sammoe_home, plugin_host):
    from huggingface_hub import ModelCard

    out = tmp_path / "export"
    run("export", str(liver.folder), str(out), "--repo-id", "lab/liver")
    exported = files_under(out)
    assert out.stat().st_mode & 0o777 == usual_mode(directory=True)  # not mkdtemp's 0700
    assert exported.pop("README.md")
    assert exported == files_under(liver.folder)  # manifest, weights, calibration: byte for byte

    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "sammoe" and data["pipeline_tag"] == "image-segmentation"
    assert data["base_model"] == OFFICIAL and data["base_model_relation"] == "adapter"
    assert data["license"] == "apache-2.0"
    assert data["tags"] == ["medical", "3d", "segmentation", "sam-med3d-moe", "ct", "liver"]
    assert "| AMOS22 | Liver | dice | 0.9321 | 40 |" in card.text
    assert "sammoe add-expert hf://lab/liver@0.1.0" in card.text
    assert liver.manifest.weights.sha256 in card.text and "`calibration/`" in card.text


def test_a_card_without_known_foundation_or_hub_licence(make_expert, tmp_path, sammoe_home, plugin_host):
    from huggingface_hub import ModelCard

    expert = make_expert("kidney", license="LicenseRef-Clinic-Only", modality="any", evaluation=[])
    run("export", str(expert.folder), str(tmp_path / "out"))
    card = ModelCard.load(tmp_path / "out" / "README.md")
    data = card.data.to_dict()
    assert "base_model" not in data and "base_model_relation" not in data
    assert data["license"] == "other" and data["license_name"] == "licenseref-clinic-only"
    assert "any" not in data["tags"] and "structure" in data["tags"]
    assert "not reported an evaluation" in card.text and "hf://ORG/kidney@0.1.0" in card.text


def test_export_never_replaces_what_it_did_not_write(make_expert, tmp_path, sammoe_home, plugin_host):
    folder = str(make_expert("kidney").folder)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert "exists (pass --overwrite" in run("export", folder, str(busy), ok=False).output
    assert "not an expert folder" in run("export", folder, str(busy), "--overwrite", ok=False).output
    assert (busy / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    run("export", folder, str(tmp_path / "empty"))
    run("export", folder, str(tmp_path / "empty"), "--overwrite")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["README.md", "expert.json", "model.safetensors"]


def test_export_refuses_a_broken_expert(make_expert, tmp_path, sammoe_home, plugin_host):
    expert = make_expert("kidney")
    (expert.folder / "model.safetensors").write_bytes(b"garbage")
    assert "sha256 mismatch" in run("export", str(expert.folder), str(tmp_path / "out"), ok=False).output
    assert not (tmp_path / "out").exists()


# --- publish and add-expert hf:// ----------------------------------------------------------------


def test_publish_then_add_expert_round_trips_byte_for_byte(hub, liver, sammoe_home, test_foundation):
    from huggingface_hub import ModelCard

    published = json.loads(run("publish", str(liver.folder), "--repo-id", "lab/liver").output)
    assert published == {
        "repo_id": "lab/liver",
        "url": "http://hub.test/lab/liver",
        "commit": hub.repos["lab/liver"].tags["0.1.0"],
        "tag": "0.1.0",
        "uri": "hf://lab/liver@0.1.0",
    }
    commits = [path for method, path in hub.requests if method == "POST" and "/commit/" in path]
    assert commits == ["/api/models/lab/liver/commit/main"]  # one upload commit
    on_hub = hub.files("lab/liver", "0.1.0")
    assert sorted(on_hub) == sorted([".gitattributes", "README.md", *files_under(liver.folder)])

    added = json.loads(run("add-expert", "hf://lab/liver@0.1.0").output)
    assert added == {"source": "hf://lab/liver@0.1.0", "kind": "hub", "experts": ["liver"], "problems": []}
    copy = sammoe_home / "experts" / "liver"
    assert files_under(copy) == files_under(liver.folder)  # manifest, weights, calibration
    assert not list(hub_cache().rglob("README.md"))  # only the files the manifest names are downloaded
    assert ModelCard(on_hub["README.md"].decode()).data.library_name == "sammoe"

    record = Registry().read().experts["liver"]
    assert (record.source, record.origin, record.path) == ("hub", "hf://lab/liver@0.1.0", "experts/liver")
    expert = enabled_experts()["liver"]
    assert expert.source.describe() == "hub hf://lab/liver@0.1.0"
    expert.build(test_foundation.load(), test_foundation.sha256)  # usable like any other expert
    run("experts", "disable", "liver")
    assert "liver" not in enabled_experts()
    run("experts", "remove", "liver")
    assert not copy.exists()


def test_the_first_party_plugin_expert_round_trips(hub, sammoe_home):
    folder = Path(__file__).parents[1] / "plugins/sammoe-expert-spinal-cord/sammoe_expert_spinal_cord/expert-data"
    run("publish", str(folder), "--repo-id", "sammoe/spinal-cord")
    run("add-expert", "hf://sammoe/spinal-cord@0.1.0")
    assert files_under(sammoe_home / "experts" / "spinal-cord") == files_under(folder)


def test_the_token_never_appears_in_output_logs_or_files(hub, liver, sammoe_home, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    outputs = [
        run("publish", str(liver.folder), "--repo-id", "lab/liver", "--revision", "v1").output,
        run("add-expert", "hf://lab/liver@v1").output,
        run("export", "liver", str(tmp_path / "export")).output,
    ]
    assert hub.repos["lab/liver"].tags["v1"]  # the token was used: the double accepts no other
    written = [c for commit in hub.repos["lab/liver"].commits.values() for c in commit.values()]
    for folder in (sammoe_home, hub_cache(), tmp_path / "export"):
        written += files_under(folder).values()
    assert written and not any(TOKEN.encode() in content for content in written)
    assert not any(TOKEN in text for text in [*outputs, caplog.text])


def test_a_refused_token_is_one_line_without_the_token(hub, liver, monkeypatch):
    wrong = "hf_wrongWrongWrong0123456789"
    monkeypatch.setenv("HF_TOKEN", wrong)
    failed = run("publish", str(liver.folder), "--repo-id", "lab/liver", ok=False).output
    assert "Error: hf://lab/liver@0.1.0: the Hub refused the request (401)" in failed
    assert "hf auth login" in failed and wrong not in failed and TOKEN not in failed
    assert "lab/liver" not in hub.repos


def test_publish_private_with_a_revision_and_never_moves_a_tag(hub, liver):
    publish = ("publish", str(liver.folder), "--repo-id", "lab/liver")
    first = json.loads(run(*publish, "--private", "--revision", "v1").output)
    assert hub.repos["lab/liver"].private and hub.repos["lab/liver"].tags == {"v1": first["commit"]}
    assert "sammoe add-expert hf://lab/liver@v1" in hub.files("lab/liver", "v1")["README.md"].decode()
    commits = len(hub.repos["lab/liver"].commits)
    again = run(*publish, "--revision", "v1", ok=False).output
    assert "lab/liver already has a revision 'v1'" in again
    assert len(hub.repos["lab/liver"].commits) == commits  # refused before uploading
    run(*publish)  # the manifest's version, 0.1.0
    assert set(hub.repos["lab/liver"].tags) == {"v1", "0.1.0"}


def test_publish_checks_its_arguments_before_any_request(hub, liver, monkeypatch):
    assert "give the repo as ORG/NAME" in run("publish", str(liver.folder), "--repo-id", "liver", ok=False).output
    assert "no expert named 'nope'" in run("publish", "nope", "--repo-id", "lab/x", ok=False).output
    monkeypatch.setenv("SAMMOE_OFFLINE", "1")
    offline = run("publish", str(liver.folder), "--repo-id", "lab/liver", ok=False).output
    assert "sammoe is offline (SAMMOE_OFFLINE=1)" in offline and "sammoe export liver DIR" in offline
    assert hub.requests == []


def test_tampered_weights_on_the_hub_are_refused(hub, liver, sammoe_home):
    run("publish", str(liver.folder), "--repo-id", "lab/liver")
    weights = bytearray(hub.files("lab/liver")["model.safetensors"])
    weights[-1] ^= 0xFF
    hub.tamper("lab/liver", "model.safetensors", bytes(weights))
    failed = run("add-expert", "hf://lab/liver", ok=False).output
    assert "sha256 mismatch" in failed and "tampered with or damaged" in failed
    assert Registry().read().experts == {} and not (sammoe_home / "experts" / "liver").exists()
    run("add-expert", "hf://lab/liver@0.1.0")  # the tagged version is intact


def test_missing_revision_repo_and_manifest_are_clear_errors(hub, liver):
    run("publish", str(liver.folder), "--repo-id", "lab/liver")
    assert (
        "Error: hf://lab/liver@9.9.9: lab/liver has no revision '9.9.9' (it has tags 0.1.0; branches main)"
        in run("add-expert", "hf://lab/liver@9.9.9", ok=False).output
    )
    assert "no model repo lab/nothing on http://hub.test" in run("add-expert", "hf://lab/nothing", ok=False).output
    hub.seed("lab/weights-only", {"README.md": b"# just weights\n", "model.safetensors": b"x" * 64}, tag="v1")
    assert (
        "hf://lab/weights-only@v1: the repo holds no expert.json at 'v1': not a sammoe expert"
        in run("add-expert", "hf://lab/weights-only@v1", ok=False).output
    )
    assert "not a file in one" in run("add-expert", "hf://lab/liver/expert.json", ok=False).output
    assert "-U and -e apply to plugin packages" in run("add-expert", "-U", "hf://lab/liver", ok=False).output


# --- offline -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["SAMMOE_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_uses_the_cache_and_names_what_is_missing(hub, liver, sammoe_home, monkeypatch, variable):
    run("publish", str(liver.folder), "--repo-id", "lab/liver")
    run("add-expert", "hf://lab/liver@0.1.0")  # fills the local Hub cache
    run("experts", "remove", "liver")
    served = len(hub.requests)
    monkeypatch.setenv(variable, "1")

    run("add-expert", "hf://lab/liver@0.1.0")
    assert files_under(sammoe_home / "experts" / "liver") == files_under(liver.folder)
    missing = run("add-expert", "hf://lab/liver@0.2.0", ok=False).output
    assert missing.startswith(
        f"Error: hf://lab/liver@0.2.0: its expert.json is not in the local Hub cache ({hub_cache()})"
    )
    assert f"sammoe is offline ({variable}=1)" in missing
    assert "run `sammoe add-expert hf://lab/liver@0.2.0`" in missing and "`sammoe add-expert ./folder`" in missing
    assert len(hub.requests) == served  # offline means no request at all


def test_without_network_cached_experts_work_and_missing_ones_fail_at_once(hub, liver, sammoe_home):
    run("publish", str(liver.folder), "--repo-id", "lab/liver")
    run("add-expert", "hf://lab/liver@0.1.0")
    run("experts", "remove", "liver")
    no_network = UnreachableHub()
    no_network.install()

    run("add-expert", "hf://lab/liver@0.1.0")
    assert (sammoe_home / "experts" / "liver" / "model.safetensors").is_file()
    missing = run("add-expert", "hf://lab/other@v2", ok=False).output
    assert "Error: hf://lab/other@v2: its expert.json is not in the local Hub cache" in missing
    assert "http://hub.test cannot be reached (ConnectError)" in missing
    assert "run `sammoe add-expert hf://lab/other@v2`" in missing
    tries = [path for path in no_network.attempts if "/lab/other" in path]
    assert tries == ["/api/models/lab/other/revision/v2"]  # one try, no retries


def test_an_interrupted_download_is_reported_as_incomplete(hub, liver, sammoe_home, monkeypatch):
    run("publish", str(liver.folder), "--repo-id", "lab/liver")
    run("add-expert", "hf://lab/liver@0.1.0")
    run("experts", "remove", "liver")
    for weights in hub_cache().rglob("model.safetensors"):
        weights.unlink()  # as if the download had stopped after the manifest
    monkeypatch.setenv("SAMMOE_OFFLINE", "1")
    failed = run("add-expert", "hf://lab/liver@0.1.0", ok=False).output
    assert "its weights (model.safetensors, calibration/) is not in the local Hub cache" in failed


# --- foundations from the Hub --------------------------------------------------------------------


@pytest.fixture
def official_pth(tmp_path):
    """An 'official' checkpoint: a bare sammoe-tiny state dict saved by torch.save."""
    import torch

    from sammoe_core.testing import random_state

    path = tmp_path / "tiny_turbo.pth"
    torch.save({"model_state_dict": random_state("sammoe-tiny", 5)}, path)
    return path


def test_foundation_set_from_the_hub_converts_once_and_is_cached(hub, official_pth, sammoe_home, monkeypatch, tmp_path):
    import sammoe_core.model.checkpoint as checkpoint
    from sammoe_core.experts.foundations import resolve_foundation

    commit = hub.seed("uni/tiny-sam", {"tiny_turbo.pth": official_pth.read_bytes()}, tag="v1")
    conversions = []
    real_convert = checkpoint.convert_checkpoint

    def counted_convert(*args, **kwargs):
        conversions.append(args)
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "convert_checkpoint", counted_convert)

    uri = "hf://uni/tiny-sam@v1/tiny_turbo.pth"
    first = json.loads(run("foundation", "set", uri, "--config", "sammoe-tiny").output)
    converted = sammoe_home / "foundations" / "uni--tiny-sam" / commit / "tiny_turbo.safetensors"
    assert first["weights"] == str(converted.resolve()) and first["hub_id"] == "uni/tiny-sam"
    assert first["config"] == "sammoe-tiny"
    local = checkpoint.convert_checkpoint(official_pth, tmp_path / "local.safetensors", config="sammoe-tiny")
    assert first["sha256"] == local.output_sha256  # the same identity as a local `sammoe convert`
    assert len(conversions) == 2  # the Hub one and the local one

    second = json.loads(run("foundation", "set", uri, "--config", "sammoe-tiny").output)
    assert second == first and len(conversions) == 2  # cached: not converted again
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert json.loads(run("foundation", "set", uri).output) == first
    in_use = resolve_foundation()
    assert (in_use.sha256, in_use.hub_id, in_use.name) == (first["sha256"], "uni/tiny-sam", "tiny_turbo")


def test_a_sammoe_safetensors_foundation_is_taken_as_it_is(hub, test_foundation, tmp_path):
    from safetensors.numpy import save_file

    hub.seed("lab/foundations", {"tiny.safetensors": test_foundation.weights.read_bytes()})
    chosen = json.loads(run("foundation", "set", "hf://lab/foundations/tiny.safetensors").output)
    assert (chosen["sha256"], chosen["hub_id"]) == (test_foundation.sha256, "lab/foundations")
    save_file({"w": np.zeros(3, dtype=np.float32)}, str(tmp_path / "plain.safetensors"))
    hub.seed("lab/plain", {"plain.safetensors": (tmp_path / "plain.safetensors").read_bytes()})
    refused = run("foundation", "set", "hf://lab/plain/plain.safetensors", ok=False).output
    assert "not a sammoe safetensors file" in refused


def test_foundation_from_the_hub_errors(hub, official_pth, monkeypatch):
    hub.seed("uni/tiny-sam", {"tiny_turbo.pth": official_pth.read_bytes(), "notes.txt": b"hi"})
    assert (
        "hf://uni/tiny-sam/missing.pth: uni/tiny-sam has no file 'missing.pth' at 'main'"
        in run("foundation", "set", "hf://uni/tiny-sam/missing.pth", ok=False).output
    )
    not_weights = run("foundation", "set", "hf://uni/tiny-sam/notes.txt", ok=False).output
    assert "a .pth checkpoint or a sammoe .safetensors" in not_weights
    assert "name a file in the repo" in run("foundation", "set", "hf://uni/tiny-sam", ok=False).output
    assert (
        "--config applies to checkpoints fetched from the Hub"
        in run("foundation", "set", "x.safetensors", "--config", "sammoe-tiny", ok=False).output
    )
    monkeypatch.setenv("SAMMOE_OFFLINE", "1")
    offline = run("foundation", "set", "hf://uni/tiny-sam/tiny_turbo.pth", ok=False).output
    assert "hf://uni/tiny-sam/tiny_turbo.pth: tiny_turbo.pth is not in the local Hub cache" in offline
    assert "run `sammoe foundation set hf://uni/tiny-sam/tiny_turbo.pth`" in offline
    local = "`sammoe convert tiny_turbo.pth foundation.safetensors && sammoe foundation set foundation.safetensors`"
    assert local in offline


# --- Hub locations -----------------------------------------------------------------------------


def test_hub_locations_parse_like_huggingface_hub():
    from sammoe_core.errors import SammoeError
    from sammoe_core.hub import HubRef, parse_hub_uri

    assert parse_hub_uri("hf://lab/liver@v1.2") == HubRef("lab/liver", "v1.2", "")
    assert parse_hub_uri("hf://blueyo0/SAM-Med3D/sam_med3d_turbo.pth", want_path=True) == HubRef(
        "blueyo0/SAM-Med3D", None, "sam_med3d_turbo.pth"
    )
    ref = parse_hub_uri("hf://lab/w@v2/sub/w.pth")
    assert (ref.path, ref.revision_or_default, ref.uri) == ("sub/w.pth", "v2", "hf://lab/w@v2/sub/w.pth")
    for bad, why in [
        ("hf://liver", "not a Hub location"),
        ("hf://datasets/lab/cases", "a dataset repo"),
        ("lab/liver", "not a Hub location"),
    ]:
        with pytest.raises(SammoeError, match=why):
            parse_hub_uri(bad)


# --- Hub references that must not reach the filesystem --------------------------------------------


@pytest.mark.parametrize(
    ("uri", "field"),
    [
        ("hf://a/b@main/../../../../x.safetensors", "path"),
        ("hf://a/b/sub/../../x.safetensors", "path"),
        ("hf://a/b/./x.pth", "path"),
        ("hf://a/b/sub\\x.pth", "path"),
        ("hf://a/b/%2E%2E/x.pth", "path"),
        ("hf://a/b@..%2F..", "revision"),
        ("hf://a/b@..%2F../x.safetensors", "revision"),
        ("hf://a/b@%252E%252E/x.pth", "revision"),
        ("hf://a/b@%2Fetc/x.pth", "revision"),
        ("hf://a/b@main%00/x.pth", "revision"),
        ("hf://a/b@v1\\..", "revision"),
    ],
)
def test_bad_hub_references_are_input_errors_naming_the_field(uri, field):
    from sammoe_core.errors import InputError
    from sammoe_core.hub import parse_hub_uri

    with pytest.raises(InputError, match=f"^{re.escape(uri)}: {field} "):
        parse_hub_uri(uri)


def test_hub_refs_check_every_field_however_made():
    from sammoe_core.errors import InputError
    from sammoe_core.hub import HubRef, parse_hub_uri

    for fields, field in [
        (("../..",), "repo id"),
        (("a/../b",), "repo id"),
        (("a/b/c",), "repo id"),
        (("a--b/c",), "repo id"),
        (("a/b", "../.."), "revision"),
        (("a/b", "/refs/heads/main"), "revision"),
        (("a/b", None, "/etc/passwd"), "path"),
        (("a/b", None, "C:/x.pth"), "path"),
        (("a/b", None, "x\x00.pth"), "path"),
    ]:
        with pytest.raises(InputError, match=f"^{field} "):
            HubRef(*fields)
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert parse_hub_uri(f"hf://lab/liver@{commit}").revision == commit
    assert parse_hub_uri("hf://lab/liver@release%2Fv1.2/w.pth") == HubRef("lab/liver", "release/v1.2", "w.pth")
    assert parse_hub_uri("hf://lab/my_net.v2/sub-dir/w_1.0.safetensors").path == "sub-dir/w_1.0.safetensors"


def test_a_reference_out_of_the_cache_is_refused_before_any_request(hub, test_foundation, sammoe_home, monkeypatch):
    outside = hub_cache().parent / "x.safetensors"  # where hf://a/b@main/../../../../x.safetensors leads
    outside.parent.mkdir(parents=True)
    outside.write_bytes(test_foundation.weights.read_bytes())  # a valid foundation: only the path is wrong
    hub.seed("a/b", {"tiny.safetensors": test_foundation.weights.read_bytes()})
    run("foundation", "set", "hf://a/b/tiny.safetensors")  # the snapshot folder the path climbs out of exists
    chosen = Registry().read().foundation
    served = len(hub.requests)

    escaping = run("foundation", "set", "hf://a/b@main/../../../../x.safetensors", ok=False).output
    assert escaping.startswith("Error: hf://a/b@main/../../../../x.safetensors: path '../../../../x.safetensors'")
    assert "revision '../..' holds '..'" in run("add-expert", "hf://a/b@..%2F..", ok=False).output
    assert "revision '../..'" in run("foundation", "set", "hf://a/b@..%2F../x.safetensors", ok=False).output
    monkeypatch.setenv("SAMMOE_OFFLINE", "1")  # offline the revision would be read as refs/../.. in the cache
    assert "revision '../..'" in run("add-expert", "hf://a/b@..%2F..", ok=False).output

    assert len(hub.requests) == served
    assert Registry().read().foundation == chosen and not list(sammoe_home.rglob("x.safetensors"))
    assert outside.read_bytes() == test_foundation.weights.read_bytes()


def test_cached_files_linking_out_of_the_cache_are_never_used(
    hub, liver, test_foundation, sammoe_home, tmp_path, monkeypatch
):
    hub.seed("lab/foundations", {"tiny.safetensors": test_foundation.weights.read_bytes()})
    run("foundation", "set", "hf://lab/foundations/tiny.safetensors")
    run("publish", str(liver.folder), "--repo-id", "lab/liver")
    run("add-expert", "hf://lab/liver@0.1.0")
    run("experts", "remove", "liver")
    (sammoe_home / "registry.json").unlink()
    for converted in (sammoe_home / "foundations").rglob("*.safetensors"):
        converted.unlink()  # so that the cached Hub file is read again
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "tiny.safetensors").write_bytes(test_foundation.weights.read_bytes())
    (outside / "secret.nii.gz").write_bytes(b"secret outside the cache")
    [weights] = hub_cache().rglob("snapshots/*/tiny.safetensors")
    [case] = hub_cache().rglob("snapshots/*/calibration/images/case_000.nii.gz")
    for cached, target in ((weights, outside / "tiny.safetensors"), (case, outside / "secret.nii.gz")):
        cached.unlink()
        cached.symlink_to(target)  # as if someone changed the cache behind sammoe's back
    monkeypatch.setenv("SAMMOE_OFFLINE", "1")

    foundation = run("foundation", "set", "hf://lab/foundations/tiny.safetensors", ok=False).output
    assert f"the cached file '{weights}' resolves outside {hub_cache().resolve()}" in foundation
    expert = run("add-expert", "hf://lab/liver@0.1.0", ok=False).output
    assert f"'{case}' resolves outside" in expert
    assert not list((sammoe_home / "foundations").rglob("*.safetensors"))
    assert not (sammoe_home / "experts" / "liver").exists()
    assert not [p for p in sammoe_home.rglob("*") if p.is_file() and b"secret outside" in p.read_bytes()]
    assert Registry().read().foundation is None and Registry().read().experts == {}
    assert (outside / "secret.nii.gz").read_bytes() == b"secret outside the cache"
