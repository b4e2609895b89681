"""Multi-process start-up on JAX's own runtime (``jax.distributed``).

Three ways to say who is who (first that applies wins):

1. explicit arguments (``--coordinator_address host:port --num_processes N --process_id I``);
2. environment ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` (any launcher);
3. nothing: JAX auto-detects SLURM (``srun``), Open MPI and cloud TPU environments.

**Every GPU of every node.** The launch is one process per node driving all of its GPUs
(``launch/slurm.sbatch``: ``--ntasks-per-node=1``). Left alone, JAX's SLURM detection sets
``local_device_ids=[SLURM_LOCALID]`` = ``[0]``, so each node would expose one of its 8 GPUs.
:func:`local_device_ids_from_env` therefore passes all of them: ``JAX_LOCAL_DEVICE_IDS``
(``0,1,...``) if set, else, under SLURM with one task per node, ``range(SLURM_GPUS_ON_NODE)``.
(One task per GPU also works: with ``SLURM_NTASKS_PER_NODE`` > 1 nothing is overridden.)
:func:`check_devices` then asserts the mesh covers ``jax.device_count()`` devices.

Every process then sees all global devices; each feeds only its own rows of a global batch
(``jax.make_array_from_process_local_data``) and orbax writes checkpoints cooperatively.
On CPU (tests, laptops) cross-process collectives go through gloo.
"""

from __future__ import annotations

import logging
import os

import jax

from gatortron_jax.core.errors import ConfigError

log = logging.getLogger("gatortron_jax")


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def local_device_ids_from_env(env: dict[str, str] | None = None) -> list[int] | None:
    """All local GPUs for a one-process-per-node launch, or None to let JAX decide."""
    env = os.environ if env is None else env
    explicit = env.get("JAX_LOCAL_DEVICE_IDS", "")
    if explicit:
        return [int(x) for x in explicit.split(",") if x.strip()]
    if "SLURM_JOB_ID" not in env or env.get("SLURM_NTASKS_PER_NODE", "1").split("(")[0] != "1":
        return None
    gpus = env.get("SLURM_GPUS_ON_NODE", "")
    if not gpus.isdigit() or int(gpus) < 1:
        return None
    return list(range(int(gpus)))


def describe_devices() -> str:
    """``process 0/2: 8 local devices [0..7] of 16 global`` (logged at start-up on every host)."""
    local = [d.id for d in jax.local_devices()]
    return (f"process {jax.process_index()}/{jax.process_count()}: {len(local)} local devices {local} / "
            f"{jax.device_count()} global devices ({jax.devices()[0].platform})")


def check_devices(mesh_size: int) -> None:
    """The mesh must use every device of every process (else GPUs sit idle or the run mis-sizes)."""
    if mesh_size != jax.device_count():
        raise ConfigError(
            f"the mesh has {mesh_size} devices but {jax.device_count()} are visible "
            f"({jax.process_count()} process(es) x {jax.local_device_count()} local); set MeshConfig axes whose "
            "product is the device count (or -1 for one axis)")
    log.info("%s", describe_devices())


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
    if local_device_ids is None:
        local_device_ids = local_device_ids_from_env()
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
    log.info("%s (local_device_ids %s)", describe_devices(), local_device_ids)
