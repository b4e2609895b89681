"""The masked-LM pretraining loop (t5x-style, short enough to read top to bottom).

The step is pure and donated (``steps.py``); everything with side effects lives here:
data iteration, host→device transfer, metrics, eval, checkpoints, resume.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from typing import Any, Iterator

import jax
import numpy as np
from clu import metric_writers

from gatortron_jax.core import distributed, partitioning
from gatortron_jax.core.preemption import PreemptionNotice
from gatortron_jax.annotations.input_policy import write_json
from gatortron_jax.pretraining import cache_pipeline, prepare, seqio_tasks as tasks
from gatortron_jax.pretraining.corpus_cache import CorpusCache, is_cache
from gatortron_jax.core.errors import ConfigError, GatortronError, InputError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.pretraining import steps
from gatortron_jax.core.checkpoints import Checkpointer, restore_params
from gatortron_jax.core.compiler_options import inference_compiler_options
from gatortron_jax.core.partitioning import MeshConfig
from gatortron_jax.pretraining.config import MLMDataConfig, TrainConfig
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer, make_schedule
from gatortron_jax.models.model_dir import copy_vocab, model_config_of, read_model_info, write_config
from gatortron_jax.core.train_state import abstract_train_state, count_params, create_train_state

log = logging.getLogger("gatortron_jax")


class TrainingDiverged(GatortronError):
    """Too many consecutive non-finite steps: the run stops, the last checkpoint is intact."""


def _global_batches(local_batches, sharding) -> Iterator[dict[str, jax.Array]]:
    for local in local_batches:
        yield {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


def open_corpus_cache(data: MLMDataConfig, seq_len: int, model_dir: str, *,
                      lowercase: bool | None = None) -> CorpusCache:
    """The run's token cache: ``corpus_dir`` itself if it is a prepared cache (only its manifest is
    read), else raw notes prepared once into ``MODEL_DIR/corpus_cache`` (reused while unchanged).

    Writes MODEL_DIR/input_report.json from the manifest and logs its one-line summary.
    """
    if is_cache(data.corpus_dir):
        cache = CorpusCache(data.corpus_dir)
    else:
        target = os.path.join(model_dir, "corpus_cache")
        if jax.process_index() == 0:
            prepare.prepare_corpus(
                data.corpus_dir, data.vocab_path, target,
                prepare.PrepareOptions(seq_len=seq_len, doc_per_line=data.doc_per_line,
                                       validation_fraction=data.validation_fraction,
                                       strict=data.strict, lowercase=lowercase),
                num_workers=1, show_text=data.show_text,
            )
        if jax.process_count() > 1:  # the other hosts wait for process 0's cache (shared filesystem)
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("corpus_cache")
        cache = CorpusCache(target)
    cache.check_compatible(vocab_path=data.vocab_path, seq_len=seq_len)
    splits = cache.manifest["splits"]
    log.info("corpus cache %s: %s train / %s validation chunks of <= %d tokens (%s tokens)", cache.directory,
             f"{splits['train']['chunks']:,}", f"{splits['validation']['chunks']:,}", seq_len,
             f"{splits['train']['tokens']:,}")
    report = cache.input_report()
    log.info("input summary (%s): %s", report["corpus_dir"], report["summary"])
    if jax.process_index() == 0:
        os.makedirs(model_dir, exist_ok=True)
        write_json(os.path.join(model_dir, "input_report.json"), report)
    return cache


def _continue_from(init_checkpoint: str, gin_model: EncoderConfig,
                   data: MLMDataConfig) -> tuple[EncoderConfig, MLMDataConfig, bool | None]:
    """The checkpoint's architecture (gin's runtime dtypes / remat), vocabulary and casing."""
    info = read_model_info(init_checkpoint)
    config = model_config_of(init_checkpoint, info).replace(
        dtype=gin_model.dtype, param_dtype=gin_model.param_dtype, remat_policy=gin_model.remat_policy)
    vocab_path = os.path.join(init_checkpoint, (info.get("vocab") or {}).get("path", ""))
    if not os.path.isfile(vocab_path):
        raise InputError(f"{init_checkpoint}: config.json names no vocabulary file (vocab.path)")
    if data.vocab_path and os.path.abspath(data.vocab_path) != os.path.abspath(vocab_path):
        log.info("--init_checkpoint: using its vocabulary %s (not MLMDataConfig.vocab_path %s)",
                 vocab_path, data.vocab_path)
    return config, dataclasses.replace(data, vocab_path=vocab_path), (info.get("vocab") or {}).get("lowercase")


def _resume_position(meta: dict[str, Any], expected: dict[str, Any], step: int,
                     model_dir: str) -> cache_pipeline.Position:
    """This process's saved stream position; one error line if the run's data setup changed."""
    saved = meta.get("data_position")
    if saved is None:
        raise ConfigError(f"cannot resume {model_dir} at step {step}: its checkpoint has no data position "
                          "(written before the corpus cache); start a new model dir")
    names = {"manifest": "corpus (manifest fingerprint)", "global_batch": "TrainConfig.batch_size",
             "process_count": "process count", "seq_len": "TrainConfig.seq_len", "seed": "TrainConfig.seed"}
    for key, name in names.items():
        if saved.get(key) != expected[key]:
            old, new = saved.get(key), expected[key]
            if key == "manifest":
                old, new = str(old)[:12], str(new)[:12]
            raise ConfigError(f"cannot resume {model_dir} at step {step}: the {name} changed ({old} -> {new}); "
                              "the data position would not match. Restore it or start a new model dir")
    epoch, index = saved["positions"][jax.process_index()]
    return cache_pipeline.Position(int(epoch), int(index))


def _all_positions(position: cache_pipeline.Position) -> list[list[int]]:
    """Every process's stream position (process 0 writes the checkpoint meta)."""
    mine = np.array(position.to_list(), np.int64)
    if jax.process_count() == 1:
        return [mine.tolist()]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, 2).tolist()


def _eval_batches(cache: CorpusCache, train: TrainConfig, rows: int, tables, n_proc: int) -> list[dict[str, np.ndarray]]:
    """The first ``eval_batches`` batches of this process's validation shard (fixed order and masks)."""
    split = cache.split("validation")
    if cache_pipeline.shard_size(split.num_chunks, jax.process_index(), n_proc) == 0:
        return []
    spec = cache_pipeline.StreamSpec(cache.directory, "validation", train.seq_len, rows, train.seed + 1,
                                     shuffle=False, process_index=jax.process_index(), process_count=n_proc,
                                     num_epochs=1)
    with cache_pipeline.CacheBatches(cache, spec, tables) as stream:
        return list(itertools.islice(stream, train.eval_batches))


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
    *,
    init_checkpoint: str | None = None,
) -> dict[str, Any]:
    """Pretrain (or resume) an MLM encoder; returns a summary with first/last losses.

    ``init_checkpoint`` (a model dir from ``pretrain`` or ``import-hf``) continues MLM training
    from its encoder and MLM head (padded vocabulary rows included): the architecture and the
    vocabulary are the checkpoint's (gin keeps only dtype / param_dtype / remat_policy), the
    optimizer and step start fresh. A model dir that already has checkpoints resumes instead.
    """
    lowercase = None
    if init_checkpoint is not None:
        model_config, data, lowercase = _continue_from(init_checkpoint, model_config, data)
    vocab = prepare.open_vocabulary(data.vocab_path, lowercase)
    if model_config.vocab_size < vocab.vocab_size:
        raise ConfigError(
            f"EncoderConfig.vocab_size={model_config.vocab_size} is smaller than the vocabulary "
            f"{data.vocab_path} ({vocab.vocab_size} entries)"
        )
    if train.seq_len > model_config.max_position_embeddings:
        raise ConfigError(
            f"TrainConfig.seq_len={train.seq_len} exceeds max_position_embeddings={model_config.max_position_embeddings}"
        )
    cache = open_corpus_cache(data, train.seq_len, model_dir, lowercase=lowercase)
    # The registry is where users find (and extend) the corpus task; the run reads its source's cache.
    cache = tasks.register_mlm_cache_task(data.task_name, cache.directory, data.vocab_path).source.cache
    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh.data, mesh.fsdp, mesh.tensor),
        partitioning.parse_rules_overrides(mesh.rules_overrides),
    )
    distributed.check_devices(partitioner.mesh.devices.size)
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
    expected_position = {"manifest": cache.fingerprint, "global_batch": train.batch_size, "process_count": n_proc,
                         "seq_len": train.seq_len, "seed": train.seed}
    start = ckpt.latest_step()
    position = cache_pipeline.Position()
    if start is not None:
        meta = ckpt.read_meta(start)
        position = _resume_position(meta, expected_position, start, model_dir)
        state, meta = ckpt.restore(abstract)
        log.info("resumed from %s at step %d (data position: epoch %d, chunk %d of this process's shard)",
                 ckpt.directory, start, position.epoch, position.index)
    else:
        state, _ = create_train_state(model, optimizer, partitioner, jax.random.key(train.seed))
        if init_checkpoint is not None:
            state = state.replace(params=restore_params(init_checkpoint, abstract.params))
            log.info("initialised encoder and MLM head from %s (optimizer and step fresh)", init_checkpoint)
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
        "init_checkpoint": os.path.abspath(init_checkpoint) if init_checkpoint else None,
        "corpus_cache": {"dir": cache.directory, "fingerprint": cache.fingerprint},
    }
    if jax.process_index() == 0:
        # One model dir = everything later commands need: config, checkpoints and the vocabulary.
        vocab_copy = copy_vocab(model_dir, data.vocab_path)
        run_info["vocab"] = {"path": vocab_copy, "size": vocab.vocab_size,
                             "lowercase": getattr(vocab, "lowercase", None)}
        write_config(model_dir, run_info)

    local_batch = train.batch_size // n_proc
    tables = cache_pipeline.MaskingTables.from_vocabulary(vocab, mask_rate=data.mask_rate, whole_word=data.whole_word)
    train_stream = cache_pipeline.CacheBatches(
        cache, cache_pipeline.StreamSpec(cache.directory, "train", train.seq_len, local_batch, train.seed,
                                         process_index=jax.process_index(), process_count=n_proc),
        tables, position, num_workers=data.num_workers,
    )  # resumes at the saved position directly: no replay of consumed batches

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
        p_eval = jax.jit(eval_step, in_shardings=(shardings.params, data_sharding), out_shardings=partitioner.replicated,
                         compiler_options=inference_compiler_options(model_config))

    def evaluate(params) -> dict[str, float]:
        local = _eval_batches(cache, train, local_batch, tables, n_proc)
        totals: dict[str, float] = {}
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
    batches = _global_batches(train_stream, data_sharding)
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
                data_position = {**expected_position, "positions": _all_positions(train_stream.position)}
                ckpt.save(done, state, {"step": done, "data_batches_consumed": done, "data_position": data_position,
                                        **run_info}, force=True)
            if preempted:
                log.warning("preemption notice (SIGTERM): checkpoint saved at step %d; rerun to resume", done)
                break
    batches.close()
    train_stream.close()  # stops the worker processes now, not at garbage collection
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
