"""The one fine-tuning loop: NER, de-id, RE, NLI, STS and span QA, through a task adapter.

Checkpoint order (as in ``core/checkpoints.py``):

1. ``model_dir`` holds an unfinished run of the *same* configuration → resume it from the last
   completed epoch (params, optimizer state, step, data order, best-so-far, history), so a
   rerun of a killed command ends bitwise where an uninterrupted run would on CPU. A run with
   a different configuration is one error naming the first differing setting; a finished run
   is reported and left alone.
2. else the encoder comes from ``init_checkpoint`` (a model dir from ``pretrain`` or
   ``import-hf``: params only; its config.json gives the model config and vocabulary);
3. else it is freshly initialised from gin's ``EncoderConfig`` and the data config's
   ``vocab_path``. The head is always new.

With ``FinetuneConfig.checkpoint_every_steps`` the resume point also moves every that many
steps inside an epoch (a kill loses at most that many steps; the resumed epoch skips the
batches already trained, in the same order, and carries their loss sums).

Each epoch: rows shuffled (``numpy`` permutation from the seed) → batches of ``batch_size``
rows, packed into fewer rows when the adapter allows it (token classification with a softmax
head: ``core.batching.pack_batch``) and cut to a length bucket → AdamW (warmup ratio,
optional layer-wise LR decay) → dev predictions → the adapter's metric. The best epoch's
params are the only checkpoint kept in ``checkpoints/`` (what ``evaluate``/``predict``/
``export-hf`` load); ``train_state/`` holds the last epoch's full state for resuming and is
removed when the run finishes (params + two Adam moments: ~12 bytes per parameter, 4.1 GB for
GatorTron-base's 345M, 107 GB for the 8.9B model). Training stops after ``patience`` epochs
without improvement. config.json: model config, vocab, the adapter's section, the run's
configs, data summaries and the result.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from typing import Any, Mapping

import jax
import numpy as np

from gatortron_jax.core import partitioning
from gatortron_jax.core.batching import bucket_lengths, pack_batch, pad_rows, predict_rows, trim_to_bucket
from gatortron_jax.core.checkpoints import Checkpointer
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.core.optimizer import OptimizerConfig
from gatortron_jax.core.partitioning import MeshConfig
from gatortron_jax.core.preemption import PreemptionNotice
from gatortron_jax.core.train_state import count_params, create_train_state
from gatortron_jax.finetuning import adapters
from gatortron_jax.finetuning.config import FinetuneConfig
from gatortron_jax.finetuning.recipe import model_dir_fingerprint
from gatortron_jax.finetuning.supervised import (
    compile_supervised, init_encoder_from, make_finetune_optimizer, train_epoch,
)
from gatortron_jax.models import model_dir as model_dir_io
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.text.offsets import OffsetTokenizer
from gatortron_jax.text.vocab import load_vocabulary

log = logging.getLogger("gatortron_jax")

RESUME_DIR = "train_state"  # model_dir/train_state/checkpoints/<epoch>: the last epoch's full state
DEFAULT_LEARNING_RATE = {"ner": 5e-5, "sequence_task": 2e-5}  # when no OptimizerConfig is passed
# Settings that may differ between a run and its resumption (they change no number).
_RESUME_IGNORES = {"log_every"}


def encoder_source(init_checkpoint: str | None, gin_model_config: EncoderConfig | None, data: Any,
                   data_config_name: str) -> tuple[EncoderConfig, str]:
    """(encoder config, vocab file) from the init model dir, or gin + the data config's vocab_path."""
    if init_checkpoint:
        cfg = model_dir_io.read_model_info(init_checkpoint)
        if not (cfg.get("vocab") or {}).get("path"):
            raise InputError(f"{init_checkpoint}/config.json: needs model_config and vocab.path")
        config = model_dir_io.model_config_of(init_checkpoint, cfg)
        return config, os.path.join(init_checkpoint, cfg["vocab"]["path"])
    if gin_model_config is None or not data.vocab_path:
        raise ConfigError(f"no --init_checkpoint: a fresh encoder needs EncoderConfig bindings and "
                          f"{data_config_name}.vocab_path")
    vocab = data.vocab_path
    if os.path.isdir(vocab):
        vocab = os.path.join(vocab, "vocab.txt")
    return gin_model_config, vocab


class _Preempted(Exception):
    """Raised after the resume point is saved on a preemption notice; caught in :func:`finetune`."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"preempted in epoch {epoch} at step {step}")
        self.epoch, self.step = epoch, step


def _batches(features: dict[str, np.ndarray], order: np.ndarray, batch_size: int, buckets: tuple[int, ...] | None,
             pack_to: int | None = None, row_multiple: int = 1):
    """Host batches of ``batch_size`` rows in ``order``; packed into rows of ``pack_to`` when set."""
    shuffled = {k: v[order] for k, v in features.items()}
    for start in range(0, len(order), batch_size):
        batch = pad_rows(shuffled, start, batch_size)
        if pack_to:
            batch = pack_batch(batch, pack_to, row_multiple)
        yield trim_to_bucket(batch, buckets)


def _first_difference(saved: Mapping[str, Any], now: Mapping[str, Any], prefix: str) -> str | None:
    for key in sorted(set(saved) | set(now)):
        if key in _RESUME_IGNORES:
            continue
        a, b = saved.get(key), now.get(key)
        if isinstance(a, list):
            a = tuple(a)
        if isinstance(b, list):
            b = tuple(b)
        if a != b:
            return f"{prefix}.{key}: {a!r} in the model dir, {b!r} now"
    return None


def _check_resumable(model_dir: str, run: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any] | None:
    """The saved config.json when ``model_dir`` holds a run of this configuration; None when empty."""
    resume_dir = os.path.join(model_dir, RESUME_DIR)
    if not (model_dir_io.has_checkpoint(model_dir) or model_dir_io.has_checkpoint(resume_dir)):
        return None
    try:
        saved = model_dir_io.read_model_info(model_dir)
    except InputError:
        saved = {}
    prev = saved.get("finetune")
    if not prev:
        raise ConfigError(f"--model_dir {model_dir} already holds a checkpoint that is not a fine-tuning run; "
                          "choose a new directory")
    for key, label in names.items():
        a, b = prev.get(key), run[key]
        if isinstance(a, dict) and isinstance(b, dict):
            diff = _first_difference(a, b, label)
        else:
            diff = None if a == b else f"{label}: {a!r} in the model dir, {b!r} now"
        if diff:
            raise ConfigError(f"--model_dir {model_dir} holds a fine-tuning run with a different configuration "
                              f"({diff}); rerun with the same settings to resume, or choose a new directory")
    return saved


def finetune(
    model_dir: str,
    data: Any,
    train: FinetuneConfig = FinetuneConfig(),
    optimizer_config: OptimizerConfig | None = None,
    mesh: MeshConfig = MeshConfig(),
    *,
    init_checkpoint: str | None = None,
    model_config: EncoderConfig | None = None,
) -> dict[str, Any]:
    """Fine-tunes (or resumes) and writes the model dir; returns the result (also in config.json).

    ``data`` is an ``NERDataConfig`` (token classification) or a ``TaskDataConfig`` (its task's
    kind picks the sequence or span-QA adapter). ``optimizer_config`` None: AdamW at the kind's
    default learning rate.
    """
    adapter = adapters.for_data(data)
    dname, tname = adapter.data_config_name, type(train).__name__
    if optimizer_config is None:
        optimizer_config = OptimizerConfig(learning_rate=DEFAULT_LEARNING_RATE[adapter.section])
    enc_config, vocab_file = encoder_source(init_checkpoint, model_config, data, dname)
    if train.dropout_rate is not None:
        enc_config = enc_config.replace(dropout_rate=train.dropout_rate, attention_dropout_rate=train.dropout_rate)
    if train.compute_dtype is not None:
        if train.compute_dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"{tname}.compute_dtype={train.compute_dtype!r}: 'float32' or 'bfloat16'")
        enc_config = enc_config.replace(dtype=train.compute_dtype)
    if data.max_length > enc_config.max_position_embeddings:
        raise ConfigError(f"{dname}.max_length={data.max_length} exceeds max_position_embeddings="
                          f"{enc_config.max_position_embeddings}")
    run_configs = {
        "data_config": dataclasses.asdict(data), "train_config": dataclasses.asdict(train),
        "optimizer_config": dataclasses.asdict(optimizer_config),
        "init_checkpoint": os.path.abspath(init_checkpoint) if init_checkpoint else None,
        "model_config": enc_config.to_dict(),
    }
    saved = _check_resumable(model_dir, run_configs, {
        "data_config": dname, "train_config": tname, "optimizer_config": "OptimizerConfig",
        "init_checkpoint": "--init_checkpoint", "model_config": "EncoderConfig"})
    if saved is not None and saved.get("result"):
        log.info("nothing to do: %s already holds the finished run (best epoch %d)", model_dir,
                 saved["result"]["best_epoch"])
        return saved["result"]

    vocab = load_vocabulary(vocab_file)
    tokenizer = OffsetTokenizer(vocab)
    t0 = time.time()
    prepared = adapter.prepare(data, train, tokenizer, enc_config)
    n_train_rows = len(prepared.train_features["input_ids"])
    log.info("data prepared in %.1fs", time.time() - t0)

    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh.data, mesh.fsdp, mesh.tensor),
        partitioning.parse_rules_overrides(mesh.rules_overrides),
    )
    dp = partitioner.data_parallel_size
    if train.batch_size % dp or train.eval_batch_size % dp:
        raise ConfigError(f"{tname}.batch_size={train.batch_size} / eval_batch_size={train.eval_batch_size} "
                          f"must divide by the data-parallel size {dp}")
    steps_per_epoch = math.ceil(n_train_rows / train.batch_size)
    if train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, train.max_steps_per_epoch)
    total_steps = steps_per_epoch * train.num_epochs
    model = adapter.build_model(enc_config, prepared.section, train)
    optimizer, optimizer_config = make_finetune_optimizer(optimizer_config, train, total_steps, enc_config.num_layers)
    state, shardings = create_train_state(model, optimizer, partitioner, jax.random.key(train.seed))
    if init_checkpoint:
        state = init_encoder_from(init_checkpoint, state, shardings)
    log.info("model: %s params, %s", f"{count_params(state.params):,}", adapter.describe_model(prepared, train))
    p_train, p_predict = compile_supervised(model, optimizer, adapter.loss_of, adapter.predict_of, partitioner,
                                            shardings)
    data_sharding = partitioner.data_sharding
    buckets = bucket_lengths(data.max_length) if train.length_buckets else None
    if buckets:
        log.info("length buckets %s: each batch runs at the smallest that holds its longest row", list(buckets))
    pack_to = data.max_length if adapter.packs(train) else None
    if pack_to:
        log.info("packing each batch's %d rows into as few rows of %d as hold them", train.batch_size, pack_to)

    # --- the model dir: vocab + config first, so a crashed run still says what it was ---
    vocab_copy = model_dir_io.copy_vocab(model_dir, vocab_file)
    run_info: dict[str, Any] = {
        "model_config": enc_config.to_dict(),
        "vocab": {"path": vocab_copy, "size": vocab.vocab_size, "lowercase": getattr(vocab, "lowercase", None)},
        adapter.section: prepared.section,
        "finetune": {**run_configs, "effective_optimizer_config": dataclasses.asdict(optimizer_config),
                     "mesh": dict(partitioner.mesh.shape), "seed": train.seed, "total_steps": total_steps,
                     "init_fingerprint": saved["finetune"].get("init_fingerprint") if saved else
                     (model_dir_fingerprint(init_checkpoint) if init_checkpoint else None)},
        "data": prepared.data_info,
    }

    def write_config(extra: dict[str, Any] | None = None) -> None:
        if jax.process_index() == 0:
            model_dir_io.write_config(model_dir, {**run_info, **(extra or {})})

    best_ckpt = Checkpointer(model_dir, max_to_keep=1)
    resume_ckpt = Checkpointer(os.path.join(model_dir, RESUME_DIR), max_to_keep=1)
    best, best_epoch, best_scores, bad_epochs, history, done = -math.inf, 0, None, 0, [], 0
    start, partial = 0, None  # resuming inside an epoch: batches already trained and their sums
    if resume_ckpt.latest_step() is not None:
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
        state, meta = resume_ckpt.restore(abstract)
        done, best_epoch, best_scores = int(meta["epoch"]), int(meta["best_epoch"]), meta["best_scores"]
        best = -math.inf if meta["best"] is None else float(meta["best"])
        bad_epochs, history = int(meta["bad_epochs"]), list(meta["history"])
        start, partial = int(meta.get("step_in_epoch", 0)), meta.get("partial")
        log.info("resumed from %s after epoch %d%s (step %d)%s", resume_ckpt.directory, done,
                 f" + {start} steps" if start else "", int(state.step),
                 f"; best dev {adapter.metric_label(best_scores['metric'])} {best_scores['value']:.4f} at epoch "
                 f"{best_epoch}" if best_scores else "")
    write_config()
    rng = jax.random.key(train.seed + 1)
    order_rng = np.random.default_rng(train.seed)
    for _ in range(done):  # the data order of the epochs already trained
        order_rng.permutation(n_train_rows)
    stopped = train.patience is not None and bad_epochs >= train.patience

    def resume_meta(epoch_done: int, step_in_epoch: int = 0, sums: dict | None = None) -> dict[str, Any]:
        return {"epoch": epoch_done, "step_in_epoch": step_in_epoch, "partial": sums,
                "best": best if math.isfinite(best) else None, "best_epoch": best_epoch, "best_scores": best_scores,
                "bad_epochs": bad_epochs, "history": history}

    def checkpoint_inside_epoch(epoch: int):
        every = train.checkpoint_every_steps

        def on_step(i: int, state_now, sums: dict[str, float]) -> None:
            preempted = notice.agreed(check_collectively=i % train.log_every == 0) and i < steps_per_epoch
            if (every and i % every == 0 and i < steps_per_epoch) or preempted:
                resume_ckpt.save(int(state_now.step), state_now, resume_meta(epoch - 1, i, sums), force=True)
            if preempted:
                raise _Preempted(epoch, i)

        return on_step

    preempted_at = None
    with partitioner.activate(), PreemptionNotice() as notice:
        log.info("training: epoch %d%s, %d steps each (SIGTERM saves the resume point and exits)", done + 1,
                 f" to {train.num_epochs}" if train.num_epochs > done + 1 else "", steps_per_epoch)
        try:
            for epoch in range(done + 1, train.num_epochs + 1):
                if stopped:
                    break
                tick = time.time()
                state, train_loss, tokens = train_epoch(
                    p_train, state, _batches(prepared.train_features, order_rng.permutation(n_train_rows),
                                             train.batch_size, buckets, pack_to, dp),
                    steps_per_epoch, data_sharding, rng, epoch=epoch, log_every=train.log_every,
                    start=start, partial=partial, on_step=checkpoint_inside_epoch(epoch),
                )
                start, partial = 0, None
                train_s = time.time() - tick
                outputs = predict_rows(p_predict, state.params, prepared.dev_features, train.eval_batch_size,
                                       data_sharding, length_buckets=buckets)
                scores = adapter.score(prepared, outputs)
                value = float(scores["value"])
                entry = {"epoch": epoch, "train_loss": train_loss, f"dev_{scores['metric']}": value,
                         "epoch_train_seconds": train_s, "train_tokens": tokens,
                         "train_tokens_per_second": tokens / max(train_s, 1e-9),
                         "eval_seconds": time.time() - tick - train_s}
                history.append(entry)
                improved = ((not math.isnan(value)) and value > best) or best_epoch == 0
                label = adapter.metric_label(scores["metric"])
                log.info("epoch %d/%d | train loss %.4f | dev %s %.4f%s | %.1fs (%s tok/s)", epoch, train.num_epochs,
                         train_loss, label, value, " (best)" if improved else "", train_s,
                         f"{entry['train_tokens_per_second']:,.0f}")
                if improved:
                    best = value if not math.isnan(value) else -math.inf
                    best_epoch, best_scores, bad_epochs = epoch, scores, 0
                    if best_ckpt.latest_step() != epoch:  # a resumed epoch may have saved it before the kill
                        best_ckpt.save(epoch, {"params": adapter.finalize_params(state.params, prepared)},
                                       {"epoch": epoch, "dev_metric": value}, force=True)
                else:
                    bad_epochs += 1
                    stopped = train.patience is not None and bad_epochs >= train.patience
                    if stopped:
                        log.info("early stopping: no dev %s gain for %d epochs", label, bad_epochs)
                best_ckpt.wait()  # the best params are on disk before the resume point moves past them
                resume_ckpt.save(int(state.step), state, resume_meta(epoch), force=True)
                if notice.agreed(check_collectively=True) and epoch < train.num_epochs and not stopped:
                    raise _Preempted(epoch, 0)  # at an epoch end: the resume point was just saved
        except _Preempted as p:
            preempted_at = p
    if preempted_at is not None:
        best_ckpt.close()
        resume_ckpt.close()
        log.warning("preemption notice (SIGTERM): resume point saved after epoch %d%s; rerun the same command "
                    "to resume", preempted_at.epoch - (1 if preempted_at.step else 0),
                    f" + {preempted_at.step} steps" if preempted_at.step else "")
        return {"preempted": True, "epoch": preempted_at.epoch, "step_in_epoch": preempted_at.step}
    best_ckpt.close()
    resume_ckpt.close()
    result = {"best_epoch": best_epoch, "metric": best_scores["metric"], "best_dev_metric": best_scores["value"],
              **adapter.result_extra(best_scores["value"]), "dev_scores": best_scores, "history": history}
    write_config({"result": result})
    if jax.process_index() == 0:  # finished: the resume state is dead weight (~3x the params)
        shutil.rmtree(os.path.join(model_dir, RESUME_DIR), ignore_errors=True)
    return result
