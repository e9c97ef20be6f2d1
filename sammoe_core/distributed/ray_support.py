"""Ray, optional: connecting to a cluster (or starting a local one) and mapping rows over actors.

Ray is the ``sammoe[ray]`` extra and is imported only here, only when a Ray engine is asked
for. :func:`map_with_actors` is the one Ray Data pattern sammoe uses: small JSON rows (paths,
never voxel arrays) go through ``map_batches`` with a callable class, so each actor of a fixed
pool builds its model once and handles rows one at a time (or a few, for batched passes); rows
come back as they finish. The variables naming sammoe's state (``SAMMOE_HOME``, offline
switches) are passed to the actors.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from sammoe_core.errors import SammoeError

FORWARDED_ENV = ("SAMMOE_HOME", "SAMMOE_OFFLINE", "HF_HUB_OFFLINE", "HF_HOME")
_MAX_BLOCKS = 10_000  # rows per block stay few, so idle actors pick up work at the tail


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` of a running cluster (None: start Ray here, with
    ``local_cpus`` CPUs), ``workers`` actors, each with ``gpus_per_worker`` GPUs (fractions
    share a GPU) and ``cpus_per_worker`` CPUs. ``items_per_call``: volumes an actor takes at once
    (more than one: it reads the next and writes the previous while it segments, as the local
    loop does; their records come back together)."""

    address: str | None = None
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    local_cpus: int | None = None
    items_per_call: int = 1
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SammoeError(f"--workers {self.workers}: need at least 1")
        if self.items_per_call < 1:
            raise SammoeError(f"--items-per-call {self.items_per_call}: need at least 1")
        if self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise SammoeError("GPUs per worker must be >= 0 and CPUs per worker > 0")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "quiet"}


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SammoeError("the Ray engine needs Ray Data: pip install 'sammoe[ray]'") from None
    return ray


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Ray connected for the block: an existing connection is reused (and left open), else
    ``ray.init`` to ``options.address``, or a local Ray, shut down afterwards."""
    ray = import_ray()
    levels = {name: logging.getLogger(name).level for name in ("ray", "ray.data")}
    if options.quiet:
        for name in levels:
            logging.getLogger(name).setLevel(logging.ERROR)
    started = False
    try:
        if not ray.is_initialized():
            if options.address is not None:
                ray.init(address=options.address, log_to_driver=not options.quiet)
            else:
                ray.init(num_cpus=options.local_cpus, include_dashboard=False, log_to_driver=not options.quiet)
            started = True
        yield ray
    finally:
        if started:
            ray.shutdown()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def map_with_actors(
    rows: list[dict[str, str]],
    actor_class: type,
    constructor_kwargs: dict[str, Any],
    options: RayOptions,
    rows_per_call: int = 1,
) -> Iterator[dict[str, Any]]:
    """Rows through a fixed pool of ``options.workers`` actors of ``actor_class``, ``rows_per_call``
    rows (at most) per call.

    ``actor_class(**constructor_kwargs)`` is built once per actor (load the model there); its
    ``__call__`` takes a batch ``{column: array of those rows' values}`` and returns one. Output
    rows are yielded as they finish. A failure of Ray itself (an actor that cannot start) is a
    :class:`SammoeError` naming the last line of Ray's message.
    """
    if not rows:
        return
    with ray_session(options) as ray:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = not options.quiet
        env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
        dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), _MAX_BLOCKS))
        mapped = dataset.map_batches(
            actor_class,
            fn_constructor_kwargs=constructor_kwargs,
            batch_size=rows_per_call,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(options.workers, len(rows)), max_tasks_in_flight_per_actor=2),
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker or None,
            runtime_env={"env_vars": env} if env else None,
        )
        try:
            yield from mapped.iter_rows()
        except SammoeError:
            raise
        except Exception as e:  # noqa: BLE001 - Ray's own failures, one line for the CLI
            raise SammoeError(f"Ray run failed: {_last_line(e)}") from e
