"""Multi-process start-up on JAX's own runtime (``jax.distributed``)."""

from __future__ import annotations

import logging
import os

import jax

log = logging.getLogger("gatortron_jax")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: list[int] | None = None,
) -> None:
    """Join the cluster. With no arguments JAX auto-detects SLURM / Open MPI / cloud TPU envs.

    On CPU (tests, laptops) collectives go through gloo.
    """
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS", "") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )
    log.info(
        "process %d/%d: %d local / %d global devices",
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
    )
