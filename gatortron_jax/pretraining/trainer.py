"""The masked-LM pretraining loop (t5x-style, short enough to read top to bottom).

The step is pure and donated (``steps.py``); everything with side effects lives here:
data iteration, host→device transfer, metrics, eval, checkpoints, resume.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from typing import Any, Iterator

import jax
import numpy as np
from clu import metric_writers

from gatortron_jax.core import partitioning
from gatortron_jax.pretraining import pipeline, seqio_tasks as tasks
from gatortron_jax.text.vocab import load_vocabulary
from gatortron_jax.core.errors import ConfigError, GatortronError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.pretraining import steps
from gatortron_jax.core.checkpoints import Checkpointer
from gatortron_jax.core.partitioning import MeshConfig
from gatortron_jax.pretraining.config import MLMDataConfig, TrainConfig
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer, make_schedule
from gatortron_jax.models.model_dir import copy_vocab, write_config
from gatortron_jax.core.train_state import abstract_train_state, count_params, create_train_state

log = logging.getLogger("gatortron_jax")


class TrainingDiverged(GatortronError):
    """Too many consecutive non-finite steps: the run stops, the last checkpoint is intact."""


class PreemptionNotice:
    """SIGTERM (the scheduler's preemption notice) sets a flag; the loop checkpoints and exits.

    With several processes every host must stop at the same step, so the flag is combined
    across processes, but only every ``log_every`` steps (a host sync is not free).
    """

    def __init__(self) -> None:
        self.received = False
        self._previous = None

    def __enter__(self) -> "PreemptionNotice":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, signum, frame) -> None:
        self.received = True

    def agreed(self, check_collectively: bool) -> bool:
        if jax.process_count() == 1:
            return self.received
        if not check_collectively:
            return False
        from jax.experimental import multihost_utils

        return bool(np.max(multihost_utils.process_allgather(np.int32(self.received))))


def _global_batches(ds, sharding) -> Iterator[dict[str, jax.Array]]:
    for local in ds.as_numpy_iterator():
        yield {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


def _finish(sums: dict[str, float]) -> dict[str, float]:
    weight = max(sums["weight_sum"], 1.0)
    return {"loss": sums["loss_sum"] / weight, "accuracy": sums["correct_sum"] / weight}


def _fmt_eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def train_mlm(
    model_dir: str,
    model_config: EncoderConfig,
    data: MLMDataConfig,
    train: TrainConfig = TrainConfig(),
    optimizer_config: OptimizerConfig = OptimizerConfig(),
    mesh: MeshConfig = MeshConfig(),
) -> dict[str, Any]:
    """Pretrain (or resume) an MLM encoder; returns a summary with first/last losses."""
    vocab = load_vocabulary(data.vocab_path)
    if model_config.vocab_size < vocab.vocab_size:
        raise ConfigError(
            f"EncoderConfig.vocab_size={model_config.vocab_size} is smaller than the vocabulary "
            f"{data.vocab_path} ({vocab.vocab_size} entries)"
        )
    if train.seq_len > model_config.max_position_embeddings:
        raise ConfigError(
            f"TrainConfig.seq_len={train.seq_len} exceeds max_position_embeddings={model_config.max_position_embeddings}"
        )
    task = tasks.register_mlm_corpus_task(
        data.task_name, data.corpus_dir, data.vocab_path, doc_per_line=data.doc_per_line,
        validation_fraction=data.validation_fraction, whole_word=data.whole_word, mask_rate=data.mask_rate,
        strict=data.strict or None,
    )
    if data.validate_corpus:  # fail on a bad file now, not hours into the run
        counts = task.source.validate()
        log.info("corpus %s: %s", data.corpus_dir, {k: v.documents for k, v in counts.items()})
    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh.data, mesh.fsdp, mesh.tensor),
        partitioning.parse_rules_overrides(mesh.rules_overrides),
    )
    n_proc, dp = jax.process_count(), partitioner.data_parallel_size
    if train.batch_size % dp or train.batch_size % n_proc or (train.batch_size // dp) % train.num_microbatches:
        raise ConfigError(
            f"TrainConfig.batch_size={train.batch_size} must divide by the data-parallel size {dp}, "
            f"the process count {n_proc} and num_microbatches={train.num_microbatches} per device"
        )

    model = EncoderForMLM(model_config)
    optimizer = make_optimizer(optimizer_config, train.num_steps)
    schedule = make_schedule(optimizer_config, train.num_steps)
    ckpt = Checkpointer(model_dir, max_to_keep=train.keep_checkpoints)
    abstract, shardings = abstract_train_state(model, optimizer, partitioner)
    start = ckpt.latest_step()
    if start is not None:
        state, meta = ckpt.restore(abstract)
        log.info("resumed from %s at step %d", ckpt.directory, start)
    else:
        state, _ = create_train_state(model, optimizer, partitioner, jax.random.key(train.seed))
        start = 0
    log.info(
        "model: %s params | mesh %s | vocab %d (%s) | %s",
        f"{count_params(state.params):,}", dict(partitioner.mesh.shape), vocab.vocab_size,
        data.vocab_path, "post-LN BERT" if model_config.post_ln else "pre-LN Megatron-BERT",
    )
    run_info = {
        "model_config": model_config.to_dict(),
        "train_config": dataclasses.asdict(train),
        "optimizer_config": dataclasses.asdict(optimizer_config),
        "data_config": dataclasses.asdict(data),
        "mesh": dict(partitioner.mesh.shape),
    }
    if jax.process_index() == 0:
        # One model dir = everything later commands need: config, checkpoints and the vocabulary.
        vocab_copy = copy_vocab(model_dir, data.vocab_path)
        run_info["vocab"] = {"path": vocab_copy, "size": vocab.vocab_size,
                             "lowercase": getattr(vocab, "lowercase", None)}
        write_config(model_dir, run_info)

    local_batch = train.batch_size // n_proc
    train_ds = pipeline.get_mlm_dataset(
        task.name, "train", sequence_length=train.seq_len, batch_size=local_batch, shuffle=True,
        seed=train.seed, shard_index=jax.process_index(), num_shards=n_proc,
    ).skip(start)  # deterministic pipeline: skipping consumed batches restores the position

    data_sharding = partitioner.data_sharding
    train_step = steps.make_train_step(
        model, optimizer, num_microbatches=train.num_microbatches,
        real_vocab_size=vocab.vocab_size, max_predictions=train.max_predictions,
    )
    eval_step = steps.make_eval_step(model, real_vocab_size=vocab.vocab_size)
    with partitioner.activate():
        p_train = jax.jit(
            train_step, in_shardings=(shardings, data_sharding, partitioner.replicated),
            out_shardings=(shardings, partitioner.replicated), donate_argnums=(0,),
        )
        p_eval = jax.jit(eval_step, in_shardings=(shardings.params, data_sharding), out_shardings=partitioner.replicated)

    def evaluate(params) -> dict[str, float]:
        eval_ds = pipeline.get_mlm_dataset(
            task.name, "validation", sequence_length=train.seq_len, batch_size=local_batch, shuffle=False,
            seed=train.seed + 1, num_epochs=1, shard_index=jax.process_index(), num_shards=n_proc,
        ).take(train.eval_batches)
        totals: dict[str, float] = {}
        local = list(eval_ds.as_numpy_iterator())
        if n_proc > 1:
            # Hosts' validation shards can hold different numbers of batches; every host must
            # run the same number of (collective) eval steps or the larger ones hang.
            from jax.experimental import multihost_utils

            local = local[: int(np.min(multihost_utils.process_allgather(np.int32(len(local)))))]
        with partitioner.activate():
            for host_batch in local:
                batch = {k: jax.make_array_from_process_local_data(data_sharding, np.asarray(v))
                         for k, v in host_batch.items()}
                for k, v in jax.device_get(p_eval(params, batch)).items():
                    totals[k] = totals.get(k, 0.0) + float(v)
        return _finish(totals) if totals else {}

    writer = metric_writers.create_default_writer(
        os.path.join(model_dir, "tensorboard"), just_logging=jax.process_index() > 0
    )
    rng = jax.random.key(train.seed + 1)
    history: list[tuple[int, float]] = []
    pending: list[dict[str, jax.Array]] = []
    tick, tick_step = time.time(), start
    batches = _global_batches(train_ds, data_sharding)
    nonfinite_streak, preempted, last, done = 0, False, None, start
    with partitioner.activate(), PreemptionNotice() as notice:
        for step in range(start, train.num_steps):
            state, metrics = p_train(state, next(batches), rng)
            if last is not None:  # the previous step has finished by now: reading its flag does not stall
                nonfinite_streak = nonfinite_streak + 1 if float(last["nonfinite"]) else 0
            last = metrics
            pending.append(metrics)
            done = step + 1
            if nonfinite_streak >= train.max_consecutive_nonfinite:
                ckpt.close()
                raise TrainingDiverged(
                    f"{nonfinite_streak} consecutive steps with a non-finite loss or gradient (up to step "
                    f"{done - 1}); updates were skipped, the last checkpoint in {ckpt.directory} is intact"
                )
            if done % train.log_every == 0 or done == train.num_steps:
                sums = {k: float(sum(np.asarray(m[k]) for m in pending)) for k in pending[0]}
                scalars = _finish(sums)
                elapsed = time.time() - tick
                tokens_per_s = sums["tokens"] / max(elapsed, 1e-9)
                eta = elapsed / (done - tick_step) * (train.num_steps - done)
                scalars.update(
                    grad_norm=sums["grad_norm"] / len(pending), learning_rate=float(schedule(step)),
                    tokens_per_second=tokens_per_s, dropped_targets=sums["dropped_targets"],
                    nonfinite_steps=sums["nonfinite"],
                )
                writer.write_scalars(done, {f"train/{k}": v for k, v in scalars.items()})
                log.info(
                    "step %d/%d | loss %.4f | acc %.3f | lr %.2e | %s tok/s | ETA %s%s",
                    done, train.num_steps, scalars["loss"], scalars["accuracy"], scalars["learning_rate"],
                    f"{tokens_per_s:,.0f}", _fmt_eta(eta),
                    f" | {sums['nonfinite']:.0f} non-finite steps skipped" if sums["nonfinite"] else "",
                )
                history.append((done, scalars["loss"]))
                pending, tick, tick_step = [], time.time(), done
            if train.eval_every and (done % train.eval_every == 0 or done == train.num_steps):
                ev = evaluate(state.params)
                if ev:
                    writer.write_scalars(done, {f"eval/{k}": v for k, v in ev.items()})
                    log.info("eval step %d | loss %.4f | acc %.3f", done, ev["loss"], ev["accuracy"])
            preempted = notice.agreed(check_collectively=done % train.log_every == 0) and done < train.num_steps
            if done % train.checkpoint_every == 0 or done == train.num_steps or preempted:
                ckpt.save(done, state, {"step": done, "data_batches_consumed": done, **run_info}, force=True)
            if preempted:
                log.warning("preemption notice (SIGTERM): checkpoint saved at step %d; rerun to resume", done)
                break
    # Close the input iterator here: left to garbage collection after train_mlm returned, its
    # tf.data teardown stalled the end of a 1200-step sample run by ~30 s (0.01 s this way).
    batches.close()
    ckpt.close()
    writer.flush()
    return {
        "start_step": start,
        "end_step": done if preempted else train.num_steps,
        "preempted": preempted,
        "first_loss": history[0][1] if history else None,
        "last_loss": history[-1][1] if history else None,
        "history": history,
    }
