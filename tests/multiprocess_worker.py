"""One process of the multi-process equivalence test (``tests/test_multiprocess.py``).

    python tests/multiprocess_worker.py --out F.json --devices 2 \\
        --coordinator 127.0.0.1:PORT --num_processes 2 --process_id I

Every process builds the same fixed global batch with numpy, supplies only the rows its
devices hold (``jax.make_array_from_process_local_data``), runs the real train step for a
few steps on a (data=2, fsdp=2) mesh and writes the losses and a parameter checksum.
The test runs the single-process reference in its own process with :func:`run`.
"""

import json
import os
import sys
import time

import numpy as np

_T0 = time.monotonic()

BATCH, SEQ, VOCAB = 8, 16, 128


def global_batch(perturb: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    ids = rng.integers(5, VOCAB, size=(BATCH, SEQ)).astype(np.int32)
    weights = (rng.random((BATCH, SEQ)) < 0.25).astype(np.float32)
    weights[:, 1] = 1.0  # at least one prediction per row
    segments = np.ones((BATCH, SEQ), np.int32)
    segments[::2, SEQ - 3:] = 0  # some padding
    inputs = np.where(weights > 0, 4, ids).astype(np.int32)  # 4 = [MASK]
    if perturb:  # what a process feeding the wrong rows would look like
        inputs = inputs[::-1].copy()
    return {
        "input_ids": inputs,
        "token_type_ids": np.zeros((BATCH, SEQ), np.int32),
        "position_ids": np.broadcast_to(np.arange(SEQ, dtype=np.int32), (BATCH, SEQ)).copy(),
        "segment_ids": segments,
        "mlm_targets": ids,
        "mlm_weights": weights * (segments > 0),
    }


def local_rows(sharding, shape) -> np.ndarray:
    """Row indices of the global batch held by this process's devices (in order)."""
    rows = set()
    for index in sharding.addressable_devices_indices_map(shape).values():
        rows.update(range(*index[0].indices(shape[0])))
    return np.array(sorted(rows))


def run(devices=None, steps: int = 3) -> dict:
    """Train ``steps`` steps on a (data=2, fsdp=2) mesh over ``devices`` (default: all global)."""
    import jax

    from gatortron_jax.core import partitioning
    from gatortron_jax.models.config import EncoderConfig
    from gatortron_jax.models.heads import EncoderForMLM
    from gatortron_jax.pretraining import steps as steps_lib
    from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
    from gatortron_jax.core.train_state import create_train_state

    def to_global(batch, sharding):
        rows = local_rows(sharding, (BATCH, SEQ))
        return {k: jax.make_array_from_process_local_data(sharding, v[rows], (BATCH, SEQ)) for k, v in batch.items()}

    config = EncoderConfig(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4, mlp_dim=64,
                           max_position_embeddings=SEQ, dropout_rate=0.1, attention_dropout_rate=0.0)
    partitioner = partitioning.Partitioner(partitioning.create_mesh(data=2, fsdp=2, tensor=1, devices=devices))
    model = EncoderForMLM(config)
    optimizer = make_optimizer(OptimizerConfig(learning_rate=1e-2, warmup_steps=0), 100)
    state, shardings = create_train_state(model, optimizer, partitioner, jax.random.key(0))
    with partitioner.activate():
        p_train = jax.jit(steps_lib.make_train_step(model, optimizer),
                          in_shardings=(shardings, partitioner.data_sharding, partitioner.replicated),
                          out_shardings=(shardings, partitioner.replicated), donate_argnums=(0,))
        p_eval = jax.jit(steps_lib.make_eval_step(model), in_shardings=(shardings.params, partitioner.data_sharding),
                         out_shardings=partitioner.replicated)
        checksum = jax.jit(lambda p: sum(jax.numpy.sum(jax.numpy.abs(x)) for x in jax.tree.leaves(p)),
                           out_shardings=partitioner.replicated)
        batch = to_global(global_batch(), partitioner.data_sharding)
        # Compile everything first, then wait for every process: gloo sets up its cross-process
        # context at the first collective and gives the peer a fixed 30 s to show up there, which
        # a process still compiling on a busy machine misses.
        p_train = p_train.lower(state, batch, jax.random.key(7)).compile()
        p_eval = p_eval.lower(state.params, batch).compile()
        checksum = checksum.lower(state.params).compile()
        barrier("compiled")
        losses = []
        for _ in range(steps):
            state, metrics = p_train(state, batch, jax.random.key(7))
            losses.append(float(metrics["loss_sum"]) / float(metrics["weight_sum"]))
        ev = p_eval(state.params, batch)
        result = {
            "process_index": jax.process_index(), "process_count": jax.process_count(),
            "mesh_devices": partitioner.mesh.devices.size,
            "mesh_ids": [d.id for d in partitioner.mesh.devices.flat],
            "local_rows": local_rows(partitioner.data_sharding, (BATCH, SEQ)).tolist(),
            "losses": losses, "eval_loss": float(ev["loss_sum"]) / float(ev["weight_sum"]),
            "param_checksum": float(checksum(state.params)),
        }
        if jax.process_count() == 1:  # sensitivity: the same check on a batch with rows swapped
            ev_bad = p_eval(state.params, to_global(global_batch(perturb=True), partitioner.data_sharding))
            result["perturbed_eval_loss"] = float(ev_bad["loss_sum"]) / float(ev_bad["weight_sum"])
    return result


# Generous JAX coordination-service limits, so that a process slowed by a busy machine (2
# cores shared with other work) is waited for instead of failing the run: JAX's defaults are
# 300 s to connect, 100 s without a heartbeat, and 300 s at the shutdown barrier, where a
# process that finished early waits for the others (jax.distributed.initialize, jax 0.10.2).
INITIALIZATION_TIMEOUT_S = 900
HEARTBEAT_TIMEOUT_S = 900
SHUTDOWN_TIMEOUT_S = 900


def barrier(name: str) -> None:
    """Wait (up to SHUTDOWN_TIMEOUT_S) until every process got here; a no-op in one process.

    JAX's coordination-service barrier (the client ``jax.distributed`` holds): it needs no
    collective, so unlike ``multihost_utils.sync_global_devices`` it is not bound by gloo's 30 s.
    """
    from jax._src import distributed as jax_distributed

    client = jax_distributed.global_state.client
    if client is not None:
        phase(f"at barrier {name}")
        client.wait_at_barrier(f"multiprocess_worker_{name}", timeout_in_ms=SHUTDOWN_TIMEOUT_S * 1000)


def phase(name: str) -> None:
    """One line per stage, so a test that fails can say how far each process got."""
    print(f"phase {name} t={time.monotonic() - _T0:.1f}s", file=sys.stderr, flush=True)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--devices", type=int, required=True, help="simulated CPU devices in this process")
    parser.add_argument("--coordinator", default=None)
    parser.add_argument("--num_processes", type=int, default=1)
    parser.add_argument("--process_id", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--slurm", action="store_true", help="join from SLURM_* variables alone (no address flags)")
    args = parser.parse_args()
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import functools
    import logging

    import jax

    logging.basicConfig(level=logging.INFO)
    from gatortron_jax.core import distributed

    # The library's initialize passes JAX's defaults for the heartbeat and shutdown limits; the
    # real jax.distributed.initialize is called, with the generous limits above added.
    jax.distributed.initialize = functools.partial(jax.distributed.initialize,
                                                   heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
                                                   shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
    phase("start")
    if args.slurm:  # JAX's SLURM detection + every local device (local_device_ids_from_env)
        distributed.initialize(initialization_timeout=INITIALIZATION_TIMEOUT_S)
    elif args.coordinator:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                               initialization_timeout=INITIALIZATION_TIMEOUT_S)
    phase("joined")
    result = run(steps=args.steps)
    phase("trained")
    result.update(local_devices=[d.id for d in jax.local_devices()], global_devices=jax.device_count(),
                  env_local_device_ids=distributed.local_device_ids_from_env(),
                  mesh_device_ids=sorted(int(i) for i in result.pop("mesh_ids")))
    with open(args.out, "w") as f:
        json.dump(result, f)
    print("ok", result, flush=True)
    if jax.process_count() > 1:
        phase("at shutdown barrier")  # waits here for every other process
        jax.distributed.shutdown()
    phase("done")


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # noqa: BLE001 - report, then leave at once
        import traceback

        traceback.print_exc()
        phase("failed")
        # Skip JAX's exit-time shutdown barrier: it would hold a failed process for up to
        # SHUTDOWN_TIMEOUT_S waiting for the others, hiding the failure from the test that long.
        os._exit(1)
