"""The Ray engine on a local Ray with 2 CPUs: the same outputs as the local loop, failures
recorded, the CLI path, and the retrain-gate cache filled by Ray actors.

Ray starts once for the module (it costs seconds); the engines reuse that connection.
"""

from __future__ import annotations

import json

import pytest
from batch_support import label_bytes, write_cases, write_corrupt
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.distributed import LocalEngine, manifest_path, read_manifest, segment_batch
from sammoe_core.distributed.ray_engine import RayEngine
from sammoe_core.distributed.ray_support import RayOptions
from sammoe_core.files.hashing import sha256_file
from sammoe_core.segmentation.predictor_spec import PredictorSpec
from sammoe_core.testing import make_test_foundation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return make_test_foundation(tmp_path_factory.mktemp("weights") / "tiny.safetensors").weights


@pytest.fixture
def one_thread():
    """The local loop on one thread, like each Ray actor, so float sums add up in the same order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_ray_gives_the_local_loops_outputs_and_records_a_corrupt_volume(tmp_path, local_ray, tiny_weights, one_thread):
    scans = tmp_path / "scans"
    write_cases(scans, 4, seed=31)
    write_corrupt(scans / "broken.nii.gz")
    (scans / "broken.prompts.json").write_text((scans / "case0.prompts.json").read_text())
    listing = tmp_path / "list.jsonl"
    listing.write_text(
        "".join(
            json.dumps({"image": f"scans/{name}.nii.gz", "prompts": f"scans/{name}.prompts.json"}) + "\n"
            for name in ("case0", "broken", "case1", "case2", "case3")
        )
    )
    spec = PredictorSpec(weights=str(tiny_weights), device="cpu")
    local = segment_batch(listing, tmp_path / "local", LocalEngine(spec.build()), quiet=True)
    engine = RayEngine(spec, RayOptions(workers=2, items_per_call=2))  # each call reads ahead, writes behind
    distributed = segment_batch(listing, tmp_path / "ray", engine, quiet=True)

    assert local.counts == distributed.counts == {"done": 4, "failed": 1, "skipped": 0}
    assert distributed.data["engine"] == "ray" and distributed.data["ray"]["workers"] == 2
    assert distributed.data["model"] == local.data["model"] and distributed.data["model"][
        "weights_sha256"
    ] == sha256_file(tiny_weights)
    for i in range(4):
        ours = label_bytes(tmp_path / "ray" / f"case{i}.nii.gz")
        assert ours == label_bytes(tmp_path / "local" / f"case{i}.nii.gz"), f"case{i}"
    entries = read_manifest(manifest_path(tmp_path / "ray"))
    assert entries["broken.nii.gz"]["status"] == "failed" and "not a volume" in entries["broken.nii.gz"]["error"]
    local_entries = read_manifest(manifest_path(tmp_path / "local"))
    for i in range(4):
        recorded = entries[f"case{i}.nii.gz"]["weights"]
        assert recorded["weights_sha256"] == sha256_file(tiny_weights)
        assert set(recorded) == {"weights_sha256", "settings_sha256", "prompts_sha256"}
        assert recorded == local_entries[f"case{i}.nii.gz"]["weights"]
    assert not list((tmp_path / "ray").glob(".*part*"))  # every output was written whole

    # a rerun retries only the failed volume
    again = segment_batch(listing, tmp_path / "ray", engine, quiet=True)
    assert again.counts == {"done": 0, "failed": 1, "skipped": 4}


def test_cli_engine_ray(tmp_path, local_ray, tiny_weights):
    write_cases(tmp_path / "scans", 3, seed=41)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "segment",
            str(tmp_path / "scans"),
            "-o",
            str(out),
            "--weights",
            str(tiny_weights),
            "--device",
            "cpu",
            "--engine",
            "ray",
            "--workers",
            "2",
            "--items-per-call",
            "2",
            "--split",
            "--statistics",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 done, 0 skipped, 0 failed" in result.output
    report = json.loads(next(out.glob("sammoe-run-*.json")).read_text())
    assert report["engine"] == "ray" and [c["status"] for c in report["cases"]] == ["done"] * 3
    assert report["ray"]["items_per_call"] == 2
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["case0.nii.gz", "case1.nii.gz", "case2.nii.gz"]
    for case in ("case0", "case1", "case2"):  # the per-target outputs come back from the actors too
        assert (out / case / "core.nii.gz").is_file()
        assert json.loads((out / f"{case}.statistics.json").read_text())["core"]["label"] == 3


def test_retrain_gate_fills_its_cache_on_ray(
    tmp_path, local_ray, sammoe_home, plugin_host, test_foundation, one_thread
):
    import torch

    from sammoe_core.devices import resolve_device
    from sammoe_core.experts.foundations import choose_foundation
    from sammoe_core.experts.registry import Registry
    from sammoe_core.moe.gate_training import GateCache, iter_dataset_prompt_refs
    from sammoe_core.moe.retrain import load_candidates, retrain_gate
    from sammoe_core.segmentation.preprocessing import Preprocessing
    from sammoe_core.testing import make_test_expert
    from tests.data_support import write_sphere_dataset

    choose_foundation(str(test_foundation.weights))
    data = write_sphere_dataset(tmp_path / "spheres", n=2)
    for name, seed in (("alpha", 11), ("beta", 12)):
        folder = make_test_expert(
            tmp_path / "experts" / name, test_foundation, name=name, seed=seed, targets=[{"name": "sphere"}]
        ).folder
        result = CliRunner().invoke(main, ["add-expert", str(folder)])
        assert result.exit_code == 0, result.output

    result = CliRunner().invoke(
        main,
        [
            "retrain-gate",
            "--data",
            str(data),
            "--epochs",
            "5",
            "--device",
            "cpu",
            "--prompts-per-class",
            "2",
            "--engine",
            "ray",
            "--workers",
            "2",
            "--batch-size",
            "3",  # each actor call fills up to 3 prompts in one batched pass
            "--json",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    n = summary["prompts"]
    assert n >= 4 and summary["computed"] == {
        "encoder_passes": n,
        "candidate_passes": {"foundation": n, "alpha": n, "beta": n},
    }
    assert Registry().read().gate is not None

    # the workers filled the whole cache: training again computes nothing
    again = retrain_gate([data], epochs=5, device="cpu", prompts_per_class=2, progress=False)
    assert again.prompts == n and again.cache.encoder_passes == 0 and again.cache.candidate_passes == {}

    # and what they cached equals what this process computes
    home = Registry().home
    refs = list(iter_dataset_prompt_refs(data, Preprocessing(crop_size=64), home / "cache" / "volumes", None, 2, 0))
    chosen = load_candidates(resolve_device("cpu"))
    ours, _ = GateCache(tmp_path / "local-cache").build(
        (r.load() for r in refs[:3]), chosen.foundation, chosen.candidates[1:], resolve_device("cpu"), batch_size=3
    )
    theirs, _ = GateCache(home / "cache" / "gate").build(
        (r.load() for r in refs[:3]), chosen.foundation, chosen.candidates[1:], resolve_device("cpu")
    )
    for a, b in zip(ours, theirs):
        assert a["dice"] == b["dice"]
        for part in ("embedding", "sparse"):
            assert torch.allclose(a["features"][part], b["features"][part], atol=1e-5, rtol=1e-5)
