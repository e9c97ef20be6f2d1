"""``sammoe cache`` and ``evaluate --cache-dir``: caches are visible, bounded and removable."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from sammoe_core.cli import main
from tests.data_support import write_sphere_dataset


def test_cache_info_and_clear(sammoe_home):
    (sammoe_home / "cache" / "volumes").mkdir(parents=True)
    (sammoe_home / "cache" / "volumes" / "a.npy").write_bytes(b"x" * 2_000_000)
    (sammoe_home / "cache" / "gate").mkdir()
    (sammoe_home / "cache" / "gate" / "b").write_bytes(b"y" * 1_000_000)
    info = CliRunner().invoke(main, ["cache", "info"]).output.splitlines()
    assert info[0].split() == ["CACHE", "MB", "PATH"]
    assert (
        info[1].split()[:2] == ["volumes", "2.0"]
        and info[2].split()[:2] == ["gate", "1.0"]
        and info[-1].split() == ["total", "3.0"]
    )
    cleared = CliRunner().invoke(main, ["cache", "clear", "gate"])
    assert cleared.exit_code == 0 and "cleared gate: 1.0 MB" in cleared.output
    assert not (sammoe_home / "cache" / "gate").exists() and (sammoe_home / "cache" / "volumes" / "a.npy").exists()
    CliRunner().invoke(main, ["cache", "clear"])
    assert not (sammoe_home / "cache" / "volumes").exists()


def test_the_volume_cache_goes_where_asked_and_stores_small_labels(tmp_path, sammoe_home):
    """Before: evaluate always wrote to SAMMOE_HOME/cache and stored labels as uint16."""
    from sammoe_core.segmentation.preprocessing import Preprocessing
    from sammoe_core.training.data import prepare_dataset

    data = write_sphere_dataset(tmp_path / "d", n=1)
    cases = prepare_dataset(data, tmp_path / "mycache", Preprocessing(crop_size=64), None, 0)
    assert cases[0].labels.dtype == np.uint8 and cases[0].image.dtype == np.float16
    assert list((tmp_path / "mycache").glob("*.npy")) and not (sammoe_home / "cache").exists()
    r = CliRunner().invoke(main, ["evaluate", "--help"])
    assert "--cache-dir" in r.output
