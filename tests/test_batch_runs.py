"""Batch runs without Ray: manifests in, static shards, the run manifest, resuming a killed run.

The model is the random 'sammoe-tiny' foundation (64³ crops) built from a weights file, so the
run manifest records a real weights hash. Volumes are small nibabel files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
from batch_support import label_bytes, write_cases, write_corrupt
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.distributed import (
    LocalEngine,
    SegmentSettings,
    Shard,
    folder_items,
    manifest_items,
    manifest_path,
    read_manifest,
    segment_batch,
)
from sammoe_core.errors import SammoeError
from sammoe_core.files.hashing import sha256_file
from sammoe_core.segmentation.predictor_spec import PredictorSpec
from sammoe_core.testing import make_test_foundation


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return make_test_foundation(tmp_path_factory.mktemp("weights") / "tiny.safetensors").weights


@pytest.fixture(scope="module")
def predictor(tiny_weights):
    return PredictorSpec(weights=str(tiny_weights), device="cpu").build()


def _count_segment_file_calls(monkeypatch) -> list[str]:
    """Record every call of the per-volume function (the one all engines reach)."""
    import sammoe_core.distributed.item as volume

    calls: list[str] = []
    original = volume.segment_file_deferred

    def counting(input_path, *args, **kwargs):
        calls.append(str(input_path))
        return original(input_path, *args, **kwargs)

    monkeypatch.setattr(volume, "segment_file_deferred", counting)
    return calls


def test_manifests_list_items_in_file_order_with_paths_resolved(tmp_path):
    data = tmp_path / "data"
    write_cases(data / "scans", 3, seed=1)
    out = tmp_path / "out"
    (data / "list.csv").write_text(
        "image,prompts,output\n"
        "scans/case2.nii.gz,scans/case2.prompts.json,\n"
        f"{data / 'scans' / 'case0.nii.gz'},,renamed.nii.gz\n"
    )
    items = manifest_items(data / "list.csv", out)
    assert [(i.key, i.input, i.prompts, i.output) for i in items] == [
        ("case2.nii.gz", data / "scans" / "case2.nii.gz", data / "scans" / "case2.prompts.json", out / "case2.nii.gz"),
        ("renamed.nii.gz", data / "scans" / "case0.nii.gz", None, out / "renamed.nii.gz"),
    ]
    (data / "list.jsonl").write_text(
        '{"image": "scans/case1.nii.gz"}\n\n{"image": "scans/case0.nii.gz", "output": "sub/zero.nii.gz"}\n'
    )
    items = manifest_items(data / "list.jsonl", out)
    assert [i.key for i in items] == ["case1.nii.gz", "sub/zero.nii.gz"] and items[1].name == "zero"

    for name, text, problem in (
        ("a.csv", "path,prompts\nx.nii.gz,\n", "'image' column"),
        ("b.csv", "image,label\nx.nii.gz,1\n", "unknown columns ['label']"),
        ("c.jsonl", '{"image": "x.nii.gz"}\n{"image": "y/x.nii.gz"}\n', "would both write"),
        ("d.jsonl", '{"image": "x.nii.gz"}\n[1]\n', "d.jsonl:2: each line must be a JSON object"),
        ("e.jsonl", '{"image": "x.nii.gz", "output": "x.png"}\n', "must end in .nii.gz or .nii"),
        ("f.jsonl", "", "lists no volumes"),
        (
            "g.csv",
            "image,output\nx.nii.gz,../../escaped.nii.gz\n",
            "g.csv:2: output '../../escaped.nii.gz' resolves outside",
        ),
        (
            "h.jsonl",
            json.dumps({"image": "x.nii.gz", "output": str(tmp_path / "abs.nii.gz")}) + "\n",
            "h.jsonl:1: output",
        ),
    ):
        (data / name).write_text(text)
        with pytest.raises(SammoeError, match=re.escape(problem)):
            manifest_items(data / name, out)


def test_shards_partition_the_inputs_exactly(tmp_path, predictor, monkeypatch):
    listing = tmp_path / "many.jsonl"
    listing.write_text("".join(json.dumps({"image": f"scan{i:03d}.nii.gz"}) + "\n" for i in range(60)))
    items = manifest_items(listing, tmp_path / "out")
    for count in (2, 3):
        shards = [Shard(i, count).select(items) for i in range(count)]
        keys = [item.key for shard in shards for item in shard]
        assert sorted(keys) == sorted(i.key for i in items) and len(keys) == len(set(keys))
        assert all(shards)
    assert Shard.parse("1/2") == Shard(1, 2) and str(Shard(1, 2)) == "1/2"
    for bad in ("2/2", "1", "a/b", "-1/2"):
        with pytest.raises(SammoeError, match="--shard|shard"):
            Shard.parse(bad)

    # end to end: two shards write disjoint outputs covering the folder, each its own manifest
    cases = tmp_path / "cases"
    write_cases(cases, 5, seed=7)
    out = tmp_path / "segs"
    engine = LocalEngine(predictor)
    reports = [segment_batch(cases, out, engine, shard=f"{i}/2", quiet=True) for i in range(2)]
    done = [{c["key"] for c in r.cases if c["status"] == "done"} for r in reports]
    assert done[0].isdisjoint(done[1]) and done[0] | done[1] == {f"case{i}.nii.gz" for i in range(5)}
    assert all((out / key).exists() for key in done[0] | done[1])
    assert [r.shard for r in reports] == ["0/2", "1/2"]
    assert {manifest_path(out, Shard(i, 2)).name for i in range(2)} <= {p.name for p in out.iterdir()}

    # an unsharded rerun finds everything done by the shards, with the same weights
    calls = _count_segment_file_calls(monkeypatch)
    report = segment_batch(cases, out, engine, quiet=True)
    assert calls == [] and report.counts == {"done": 0, "failed": 0, "skipped": 5}
    assert {c["reason"] for c in report.cases} == {"done in an earlier run with the same weights, settings and prompts"}


def test_failures_are_recorded_the_run_goes_on_and_a_rerun_retries_them(tmp_path, predictor, tiny_weights, monkeypatch):
    cases = tmp_path / "cases"
    write_cases(cases, 3, seed=3)
    write_corrupt(cases / "broken.nii.gz")
    (cases / "case1.prompts.json").replace(cases / "broken.prompts.json")
    out = tmp_path / "segs"
    report = segment_batch(cases, out, LocalEngine(predictor), quiet=True)
    status = {c["key"]: c["status"] for c in report.cases}
    assert status == {
        "broken.nii.gz": "failed",
        "case0.nii.gz": "done",
        "case1.nii.gz": "failed",
        "case2.nii.gz": "done",
    }
    assert report.counts == {"done": 2, "failed": 2, "skipped": 0} and report.volumes_per_minute > 0
    manifest = read_manifest(manifest_path(out))
    assert {k: e["status"] for k, e in manifest.items()} == status
    assert "not a volume" in manifest["broken.nii.gz"]["error"] and "no prompts" in manifest["case1.nii.gz"]["error"]
    assert manifest["case0.nii.gz"]["weights"]["weights_sha256"] == sha256_file(tiny_weights)
    header = json.loads(manifest_path(out).read_text().splitlines()[0])
    assert header["format"] == "sammoe-run-manifest" and header["shard"] is None

    # the rerun touches only the failed ones: one still fails, the repaired one is done
    write_cases(tmp_path / "fixed", 1, seed=9)
    (tmp_path / "fixed" / "case0.nii.gz").replace(cases / "broken.nii.gz")
    (tmp_path / "fixed" / "case0.prompts.json").replace(cases / "broken.prompts.json")
    calls = _count_segment_file_calls(monkeypatch)
    report = segment_batch(cases, out, LocalEngine(predictor), quiet=True)
    assert sorted(calls) == [str(cases / "broken.nii.gz")]  # case1 fails before segment_file: no prompts
    assert report.counts == {"done": 1, "failed": 1, "skipped": 2}
    assert read_manifest(manifest_path(out))["broken.nii.gz"]["status"] == "done"

    # other weights: done outputs are kept (and said to be stale) unless --overwrite
    other = make_test_foundation(tmp_path / "other.safetensors", seed=5).weights
    engine = LocalEngine(PredictorSpec(weights=str(other), device="cpu").build())
    calls.clear()
    report = segment_batch(cases, out, engine, quiet=True)
    assert {c["reason"] for c in report.cases if c["status"] == "skipped"} == {
        "output exists, made with other weights (pass --overwrite to redo it)"
    }
    assert calls == [] and report.counts == {"done": 0, "failed": 1, "skipped": 3}
    report = segment_batch(cases, out, engine, SegmentSettings(overwrite=True), quiet=True)
    assert report.counts == {"done": 3, "failed": 1, "skipped": 0} and len(calls) == 3
    recorded = read_manifest(manifest_path(out))["case0.nii.gz"]["weights"]
    assert recorded["weights_sha256"] == sha256_file(other)
    assert set(recorded) == {"weights_sha256", "settings_sha256", "prompts_sha256"}  # case0 has its own prompts file

    # other settings (here: the click policy) redo nothing silently either
    calls.clear()
    report = segment_batch(cases, out, engine, SegmentSettings(clicks="all"), quiet=True)
    assert calls == [] and {c["reason"] for c in report.cases if c["status"] == "skipped"} == {
        "output exists, made with other settings (pass --overwrite to redo it)"
    }


def test_a_rerun_with_changed_prompts_says_why_it_skips(tmp_path, tiny_weights):
    """Before: other prompts printed '0 done, 2 skipped' and the reason was only in the run report."""
    write_cases(tmp_path / "scans", 2, seed=9)
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "scans"), "-o", str(out), "--weights", str(tiny_weights), "--device", "cpu", "-q"]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "skipped" not in again.stderr  # unchanged: nothing to say
    prompts = tmp_path / "scans" / "case1.prompts.json"
    prompts.write_text(prompts.read_text().replace('"core"', '"moved"'))
    changed = CliRunner().invoke(main, args)
    assert changed.exit_code == 0
    assert (
        changed.stderr.strip() == "case1: skipped: output exists, made with other prompts (pass --overwrite to redo it)"
    )
    redone = CliRunner().invoke(main, [*args, "--overwrite"])
    assert redone.exit_code == 0 and redone.stderr == ""


@pytest.mark.slow
def test_a_killed_run_is_finished_by_rerunning_it(tmp_path, tiny_weights, predictor, monkeypatch):
    cases = tmp_path / "cases"
    write_cases(cases, 5, seed=11)
    out = tmp_path / "segs"
    # a separate process dies (no cleanup at all) as it starts its third volume, once the writer
    # thread has written the second one's outputs: their record never reached the manifest
    script = textwrap.dedent(f"""
        import os, time
        import sammoe_core.distributed.item as volume
        from sammoe_core.distributed import segment_folder
        from sammoe_core.segmentation.predictor_spec import PredictorSpec

        original, calls = volume.segment_file_deferred, []
        def dying(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                for _ in range(600):
                    if os.path.exists({str(out / "case1.json")!r}):
                        break
                    time.sleep(0.05)
                os._exit(9)
            return original(*args, **kwargs)
        volume.segment_file_deferred = dying
        predictor = PredictorSpec(weights={str(tiny_weights)!r}, device="cpu").build()
        segment_folder({str(cases)!r}, {str(out)!r}, predictor, quiet=True)
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr
    entries = read_manifest(manifest_path(out))
    assert sorted((k, e["status"]) for k, e in entries.items()) == [
        ("case0.nii.gz", "done"),
        ("case1.nii.gz", "pending"),
        ("case2.nii.gz", "pending"),
        ("case3.nii.gz", "pending"),
        ("case4.nii.gz", "pending"),
    ]
    assert (out / "case1.nii.gz").exists()  # written, never recorded: the rerun redoes it
    calls = _count_segment_file_calls(monkeypatch)
    report = segment_batch(cases, out, LocalEngine(predictor), quiet=True)
    assert sorted(calls) == [str(cases / f"case{i}.nii.gz") for i in (1, 2, 3, 4)]
    assert report.counts == {"done": 4, "failed": 0, "skipped": 1}
    assert all(e["status"] == "done" for e in read_manifest(manifest_path(out)).values())
    # the resumed outputs equal an uninterrupted run's
    fresh = segment_batch(cases, tmp_path / "fresh", LocalEngine(predictor), quiet=True)
    assert fresh.counts["done"] == 5
    for item in folder_items(cases, out):
        assert label_bytes(item.output) == label_bytes(tmp_path / "fresh" / item.key)


def test_two_runs_cannot_write_one_manifest(tmp_path):
    from sammoe_core.distributed import RunManifest

    first = RunManifest(tmp_path, Shard(0, 2))
    first.begin([])
    with pytest.raises(SammoeError, match="another run is writing"):
        RunManifest(tmp_path, Shard(0, 2)).begin([])
    other_shard = RunManifest(tmp_path, Shard(1, 2))
    other_shard.begin([])
    other_shard.finish()
    first.finish()
    again = RunManifest(tmp_path, Shard(0, 2))
    again.begin([])
    again.finish()


def test_a_manifest_row_cannot_write_outside_the_output_folder(tmp_path, tiny_weights):
    write_cases(tmp_path / "data" / "scans", 1, seed=3)
    listing = tmp_path / "data" / "list.csv"
    listing.write_text("image,output\nscans/case0.nii.gz,../../escaped.nii.gz\n")
    out = tmp_path / "deep" / "out"
    result = CliRunner().invoke(
        main,
        [
            "segment",
            str(listing),
            "-o",
            str(out),
            "--point",
            "10,10,8",
            "--weights",
            str(tiny_weights),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 2 and "list.csv:2: output '../../escaped.nii.gz' resolves outside" in result.output
    assert not list(tmp_path.rglob("escaped.nii.gz")) and not out.exists()


def test_cli_batch_from_a_manifest_with_a_shard(tmp_path, tiny_weights):
    write_cases(tmp_path / "scans", 4, seed=21)
    listing = tmp_path / "list.csv"
    listing.write_text("image\n" + "".join(f"scans/case{i}.nii.gz\n" for i in range(4)))
    out = tmp_path / "out"
    run = CliRunner().invoke
    result = run(
        main,
        [
            "segment",
            str(listing),
            "-o",
            str(out),
            "--point",
            "10,10,8",
            "--weights",
            str(tiny_weights),
            "--device",
            "cpu",
            "--shard",
            "1/2",
        ],
    )
    assert result.exit_code == 0, result.output
    expected = {i.key for i in Shard(1, 2).select(manifest_items(listing, out))}
    assert {p.name for p in out.glob("*.nii.gz")} == expected
    assert f"{len(expected)} done, 0 skipped, 0 failed" in result.output and "volumes/min" in result.output

    for args, problem in (
        (["--shard", "2/2"], "Error: shard 2/2"),
        (["--shard", "x"], "Error: --shard x: expected I/N"),
    ):
        result = run(
            main, ["segment", str(listing), "-o", str(out), "--point", "10,10,8", "--weights", str(tiny_weights), *args]
        )
        assert result.exit_code == 2 and result.output.strip().splitlines() == [result.output.strip()], result.output
        assert problem in result.output
    single = tmp_path / "scans" / "case0.nii.gz"
    result = run(
        main,
        [
            "segment",
            str(single),
            "-o",
            str(tmp_path / "one.nii.gz"),
            "--point",
            "5,5,5",
            "--weights",
            str(tiny_weights),
            "--engine",
            "ray",
        ],
    )
    assert result.exit_code == 2 and "take a folder of volumes or a manifest" in result.output


def test_a_batch_of_garbage_leaves_no_partial_output_folders(tmp_path, predictor):
    scans = tmp_path / "scans"
    write_cases(scans, 1, seed=4)
    write_corrupt(scans / "junk.nii.gz")
    (scans / "junk.prompts.json").write_text((scans / "case0.prompts.json").read_text())
    listing = tmp_path / "list.jsonl"
    listing.write_text(
        json.dumps(
            {"image": "scans/junk.nii.gz", "prompts": "scans/junk.prompts.json", "output": "deep/er/junk.nii.gz"}
        )
        + "\n"
    )
    out = tmp_path / "out"
    report = segment_batch(listing, out, LocalEngine(predictor), quiet=True)
    assert report.counts["failed"] == 1
    assert not (out / "deep").exists()  # before: out/deep/er was left empty
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("sammoe-")) == []


def test_the_local_loop_overlaps_reading_and_writing_with_segmenting_and_keeps_errors_per_item(
    tmp_path, predictor, monkeypatch
):
    """Read-ahead: case1 is read before case0's segmentation ends; outputs are written in the
    writer thread; a case that fails to read, and one whose write fails, fail alone with their own
    errors; every other output equals that of the loop without threads."""
    import threading

    import sammoe_core.distributed.item as volume
    import sammoe_core.io.volumes as volumes

    data = tmp_path / "data"
    write_cases(data, 3, seed=2)
    write_corrupt(data / "broken.nii.gz")
    (data / "broken.prompts.json").write_text((data / "case0.prompts.json").read_text())
    events: list[tuple[str, str, str]] = []
    read, deferred, write_result = volumes.read_volume, volume.segment_file_deferred, volume.write_result

    def reading(path, *args, **kwargs):
        events.append(("read", str(path).split("/")[-1], threading.current_thread().name))
        return read(path, *args, **kwargs)

    def segmenting(input_path, *args, **kwargs):
        events.append(("segment start", str(input_path).split("/")[-1], ""))
        try:
            return deferred(input_path, *args, **kwargs)
        finally:
            events.append(("segment end", str(input_path).split("/")[-1], ""))

    def writing(result, output_path, *args, **kwargs):
        events.append(("write", str(output_path).split("/")[-1], threading.current_thread().name))
        if "case2" in str(output_path):
            raise OSError(f"{output_path}: disk full (simulated)")
        return write_result(result, output_path, *args, **kwargs)

    monkeypatch.setattr(volumes, "read_volume", reading)
    monkeypatch.setattr(volume, "segment_file_deferred", segmenting)
    monkeypatch.setattr(volume, "write_result", writing)
    overlapped = segment_batch(data, tmp_path / "overlapped", LocalEngine(predictor), SegmentSettings(), quiet=True)
    reads = [e for e in events if e[0] == "read"]
    assert reads and all(thread.startswith("sammoe-read") for _, _, thread in reads)
    writes = [e for e in events if e[0] == "write"]
    assert len(writes) == 3 and all(thread.startswith("sammoe-write") for _, _, thread in writes)
    order = [e[:2] for e in events]
    first, second = [name for kind, name in order if kind == "segment start"][:2]
    assert order.index(("read", second)) < order.index(("segment end", first))
    monkeypatch.setattr(volumes, "read_volume", read)
    monkeypatch.setattr(volume, "write_result", write_result)
    plain = segment_batch(
        data, tmp_path / "plain", LocalEngine(predictor, overlap_io=False), SegmentSettings(), quiet=True
    )
    assert overlapped.counts["failed"] == 2 and plain.counts["failed"] == 1
    failed = {c["case"]: c["error"] for c in overlapped.cases if c["status"] == "failed"}
    assert sorted(failed) == ["broken", "case2"] and "disk full" in failed["case2"]
    assert not (tmp_path / "overlapped" / "case2.nii.gz").exists()
    for case in ("case0", "case1"):
        name = case + ".nii.gz"
        assert label_bytes(tmp_path / "overlapped" / name) == label_bytes(tmp_path / "plain" / name)


def test_only_an_unrecorded_output_of_an_interrupted_run_is_replaced_without_overwrite(tmp_path, predictor):
    """An item the manifest still calls pending is redone even though its output exists (the
    interrupted run wrote it); an output the manifest does not know stays, as before."""
    import json as json_

    data = tmp_path / "data"
    write_cases(data, 2, seed=4)
    out = tmp_path / "out"
    assert segment_batch(data, out, LocalEngine(predictor), quiet=True).counts["done"] == 2
    path = manifest_path(out)
    entry = dict(read_manifest(path)["case0.nii.gz"], status="pending")
    with open(path, "a", encoding="utf-8") as f:  # as if the run died after writing case0's outputs
        f.write(json_.dumps(entry) + "\n")
    write_cases(data / "more", 1, seed=5)
    (data / "more" / "case0.nii.gz").replace(data / "case2.nii.gz")
    (data / "more" / "case0.prompts.json").replace(data / "case2.prompts.json")
    (out / "case2.nii.gz").write_bytes(b"someone else's file")
    report = segment_batch(data, out, LocalEngine(predictor), quiet=True)
    status = {c["key"]: (c["status"], c.get("reason", "")) for c in report.cases}
    assert status["case0.nii.gz"][0] == "done"
    assert status["case1.nii.gz"][0] == "skipped"
    assert status["case2.nii.gz"] == ("skipped", "output exists (pass --overwrite to replace it)")
    assert (out / "case2.nii.gz").read_bytes() == b"someone else's file"
