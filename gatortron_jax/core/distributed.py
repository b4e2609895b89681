"""Multi-process start-up on JAX's own runtime (``jax.distributed``).

Three ways to say who is who (first that applies wins):

1. explicit arguments (``--coordinator_address host:port --num_processes N --process_id I``);
2. environment ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` (any launcher);
3. nothing: JAX auto-detects SLURM (``srun``), Open MPI and cloud TPU environments.

Every process then sees all global devices; each feeds only its own rows of a global batch
(``jax.make_array_from_process_local_data``) and orbax writes checkpoints cooperatively.
On CPU (tests, laptops) cross-process collectives go through gloo.
"""

from __future__ import annotations

import logging
import os

import jax

log = logging.getLogger("gatortron_jax")


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: list[int] | None = None,
    initialization_timeout: int = 300,
) -> None:
    """Join the cluster (a no-op if this process already joined)."""
    if jax.distributed.is_initialized():
        return
    if coordinator_address is None and os.environ.get("JAX_COORDINATOR_ADDRESS"):
        coordinator_address = os.environ["JAX_COORDINATOR_ADDRESS"]
        num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
        process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS", "") == "cpu":
        # Only affects the CPU backend (harmless on GPU hosts, where NCCL does the work).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        initialization_timeout=initialization_timeout,
    )
    log.info(
        "process %d/%d: %d local / %d global devices",
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
    )
