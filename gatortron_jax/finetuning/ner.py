"""Fine-tune a token-classification (NER / de-id) head on the encoder.

Checkpoint order (as in ``checkpoints.py``): the encoder comes from ``init_checkpoint`` (a
model dir from ``pretrain`` or an HF import: params only, its ``config.json`` gives the model
config and vocabulary), else it is freshly initialised from gin's ``EncoderConfig`` and
``NERDataConfig.vocab_path``. The classifier (and CRF) is always new.

Each epoch: shuffled windows of the train split → AdamW (optional layer-wise LR decay) →
dev predictions merged back to documents → strict entity F1. The best epoch's params are
the only checkpoint kept (orbax); training stops after ``patience`` epochs without
improvement. The output dir is self-contained for ``evaluate``/``predict``/``deid``:
config.json (model config, labels, scheme, window, task, vocab, run configs, seed, data
fingerprints, result), vocab/, checkpoints/.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gatortron_jax.core import partitioning
from gatortron_jax.finetuning import ner_tasks, windowing
from gatortron_jax.annotations.documents import Document
from gatortron_jax.core.batching import pad_rows
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.models import model_dir as model_dir_io
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.token_classification import EncoderForTokenClassification, forward_loss, predict_labels
from gatortron_jax.core.checkpoints import Checkpointer
from gatortron_jax.core.partitioning import MeshConfig
from gatortron_jax.finetuning.ner_config import NERDataConfig, NERTrainConfig
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
from gatortron_jax.finetuning.supervised import compile_supervised, init_encoder_from, train_epoch
from gatortron_jax.core.train_state import count_params, create_train_state

log = logging.getLogger("gatortron_jax")


# ----------------------------------------------------------------------------- optimizer


def _path_names(path) -> list[str]:
    return [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", "")))) for k in path]


def layerwise_lr_scale(decay: float, num_layers: int) -> optax.GradientTransformation:
    """Scales updates: layer i (0 = bottom) by decay^(L-i), embeddings by decay^(L+1), rest 1."""

    def factor_for(path, leaf):
        names = _path_names(path)
        if "encoder" not in names:
            return leaf
        if "embeddings" in names:
            return leaf * decay ** (num_layers + 1)
        if "layers" in names:  # scanned: leading axis is the layer
            f = decay ** (num_layers - jnp.arange(num_layers, dtype=jnp.float32))
            return leaf * f.reshape((num_layers,) + (1,) * (leaf.ndim - 1)).astype(leaf.dtype)
        for n in names:
            if n.startswith("layers_") and n[7:].isdigit():
                return leaf * decay ** (num_layers - int(n[7:]))
        return leaf

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        return jax.tree_util.tree_map_with_path(factor_for, updates), state

    return optax.GradientTransformation(init, update)


def make_ner_optimizer(
    config: OptimizerConfig, train: NERTrainConfig, total_steps: int, num_layers: int
) -> tuple[optax.GradientTransformation, OptimizerConfig]:
    if train.warmup_ratio is not None:
        config = dataclasses.replace(config, warmup_steps=int(round(train.warmup_ratio * total_steps)))
    opt = make_optimizer(config, total_steps)
    if train.layerwise_lr_decay is not None and train.layerwise_lr_decay < 1.0:
        opt = optax.chain(opt, layerwise_lr_scale(train.layerwise_lr_decay, num_layers))
    return opt, config


# ----------------------------------------------------------------------------- scoring


def score_documents(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, Any]:
    """Strict + lenient entity scores (strict micro F1 at ``["strict"]["micro"]["f1"]``)."""
    from gatortron_jax.evaluation.ner_metrics import entity_scores

    return entity_scores(list(gold), list(pred))


def strict_f1(scores: dict[str, Any]) -> float:
    return float(scores["strict"]["micro"]["f1"])


# ----------------------------------------------------------------------------- model dir


def _encoder_source(
    init_checkpoint: str | None, gin_model_config: EncoderConfig | None, data: NERDataConfig
) -> tuple[EncoderConfig, str]:
    """(encoder config, vocab file) from the init model dir, or gin + NERDataConfig.vocab_path."""
    if init_checkpoint:
        cfg = model_dir_io.read_model_info(init_checkpoint)
        if "model_config" not in cfg or not (cfg.get("vocab") or {}).get("path"):
            raise InputError(f"{init_checkpoint}/config.json: needs model_config and vocab.path")
        return EncoderConfig.from_dict(cfg["model_config"]), os.path.join(init_checkpoint, cfg["vocab"]["path"])
    if gin_model_config is None or not data.vocab_path:
        raise ConfigError(
            "no --init_checkpoint: a fresh encoder needs EncoderConfig bindings and NERDataConfig.vocab_path"
        )
    vocab = data.vocab_path
    if os.path.isdir(vocab):
        vocab = os.path.join(vocab, "vocab.txt")
    return gin_model_config, vocab


def _batches(features: dict[str, np.ndarray], order: np.ndarray, batch_size: int):
    shuffled = {k: v[order] for k, v in features.items()}
    for start in range(0, len(order), batch_size):
        yield pad_rows(shuffled, start, batch_size)


def finetune_ner(
    model_dir: str,
    data: NERDataConfig,
    train: NERTrainConfig = NERTrainConfig(),
    optimizer_config: OptimizerConfig = OptimizerConfig(learning_rate=5e-5),
    mesh: MeshConfig = MeshConfig(),
    *,
    init_checkpoint: str | None = None,
    model_config: EncoderConfig | None = None,
) -> dict[str, Any]:
    """Fine-tunes and writes the model dir; returns the result summary (also in config.json)."""
    from gatortron_jax.text.vocab import load_vocabulary
    from gatortron_jax.inference.ner_predict import predict_encoded

    if os.path.isdir(os.path.join(model_dir, "checkpoints")) and os.listdir(os.path.join(model_dir, "checkpoints")):
        raise ConfigError(f"--model_dir {model_dir} already holds a checkpoint; choose a new directory")
    enc_config, vocab_file = _encoder_source(init_checkpoint, model_config, data)
    if train.dropout_rate is not None:
        enc_config = enc_config.replace(dropout_rate=train.dropout_rate, attention_dropout_rate=train.dropout_rate)
    if data.max_length > enc_config.max_position_embeddings:
        raise ConfigError(
            f"NERDataConfig.max_length={data.max_length} exceeds max_position_embeddings={enc_config.max_position_embeddings}"
        )
    vocab = load_vocabulary(vocab_file)
    tokenizer = windowing.OffsetTokenizer(vocab)
    task = ner_tasks.get_ner_task(data.task, data.data_dir, data.splits())
    train_docs = task.documents("train")
    dev_docs = task.documents("dev")
    types = sorted({e.type for d in train_docs for e in d.entities})
    if not types:
        raise InputError(f"task {task.name}: the train split has no entities")
    labels = windowing.label_list(types, data.label_scheme)
    label_to_id = {l: i for i, l in enumerate(labels)}

    t0 = time.time()
    train_enc, train_stats = windowing.encode_documents(
        train_docs, tokenizer, data.max_length, data.overlap, label_to_id, data.label_scheme
    )
    dev_enc, dev_stats = windowing.encode_documents(
        dev_docs, tokenizer, data.max_length, data.overlap, label_to_id, data.label_scheme
    )
    for split, stats in (("train", train_stats), ("dev", dev_stats)):
        lost = stats.overlapping + stats.no_tokens + stats.unknown_type
        level = logging.WARNING if lost or stats.boundary_inside_token else logging.INFO
        log.log(level, "labels %s: %s", split, stats.as_dict())
    train_feats, train_rows = windowing.window_features(train_enc, tokenizer, data.max_length)
    n_tokens = int(train_feats["label_mask"].sum())
    log.info(
        "task %s: %d train docs → %d windows (%d tokens), %d dev docs; %d labels; prepared in %.1fs",
        task.name, len(train_docs), len(train_rows), n_tokens, len(dev_docs), len(labels), time.time() - t0,
    )

    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh.data, mesh.fsdp, mesh.tensor),
        partitioning.parse_rules_overrides(mesh.rules_overrides),
    )
    dp = partitioner.data_parallel_size
    if train.batch_size % dp or train.eval_batch_size % dp:
        raise ConfigError(
            f"NERTrainConfig.batch_size={train.batch_size} / eval_batch_size={train.eval_batch_size} must divide "
            f"by the data-parallel size {dp}"
        )
    steps_per_epoch = math.ceil(len(train_rows) / train.batch_size)
    if train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, train.max_steps_per_epoch)
    total_steps = steps_per_epoch * train.num_epochs
    model = EncoderForTokenClassification(
        enc_config, len(labels), use_crf=train.use_crf, classifier_dropout=train.classifier_dropout
    )
    optimizer, optimizer_config = make_ner_optimizer(optimizer_config, train, total_steps, enc_config.num_layers)
    state, shardings = create_train_state(model, optimizer, partitioner, jax.random.key(train.seed))
    if init_checkpoint:
        state = init_encoder_from(init_checkpoint, state, shardings)
    log.info("model: %s params, %s labels, %s", f"{count_params(state.params):,}", len(labels),
             "CRF" if train.use_crf else "softmax")

    data_sharding = partitioner.data_sharding
    p_train, p_predict = compile_supervised(model, optimizer, forward_loss, predict_labels, partitioner, shardings)

    # --- the model dir: vocab + config first, so a crashed run still says what it was ---
    vocab_copy = model_dir_io.copy_vocab(model_dir, vocab_file)
    run_info: dict[str, Any] = {
        "model_config": enc_config.to_dict(),
        "vocab": {"path": vocab_copy, "size": vocab.vocab_size, "lowercase": getattr(vocab, "lowercase", None)},
        "ner": {
            "labels": labels, "label_scheme": data.label_scheme, "use_crf": train.use_crf,
            "max_length": data.max_length, "overlap": data.overlap, "task": task.name,
            "output_format": task.output_format,
        },
        "finetune": {
            "data_config": dataclasses.asdict(data), "train_config": dataclasses.asdict(train),
            "optimizer_config": dataclasses.asdict(optimizer_config), "mesh": dict(partitioner.mesh.shape),
            "init_checkpoint": os.path.abspath(init_checkpoint) if init_checkpoint else None,
            "seed": train.seed, "total_steps": total_steps,
        },
        "data": {
            "task": task.name, "data_dir": task.data_dir,
            "fingerprints": {"train": ner_tasks.documents_fingerprint(train_docs),
                             "dev": ner_tasks.documents_fingerprint(dev_docs)},
            "documents": {"train": len(train_docs), "dev": len(dev_docs)},
            "label_stats": {"train": train_stats.as_dict(), "dev": dev_stats.as_dict()},
        },
    }

    def write_config(extra: dict[str, Any] | None = None) -> None:
        if jax.process_index() == 0:
            model_dir_io.write_config(model_dir, {**run_info, **(extra or {})})

    write_config()
    ckpt = Checkpointer(model_dir, max_to_keep=1)
    rng = jax.random.key(train.seed + 1)
    best_f1, best_epoch, best_scores, bad_epochs = -1.0, 0, None, 0
    history = []
    order_rng = np.random.default_rng(train.seed)
    with partitioner.activate():
        for epoch in range(1, train.num_epochs + 1):
            tick = time.time()
            state, train_loss, tokens = train_epoch(
                p_train, state, _batches(train_feats, order_rng.permutation(len(train_rows)), train.batch_size),
                steps_per_epoch, data_sharding, rng, epoch=epoch, log_every=train.log_every,
            )
            train_s = time.time() - tick
            pred_docs = predict_encoded(
                p_predict, state.params, dev_enc, tokenizer, data.max_length, labels,
                train.eval_batch_size, data_sharding,
            )
            scores = score_documents(dev_docs, pred_docs)
            f1 = strict_f1(scores)
            entry = {"epoch": epoch, "train_loss": train_loss, "dev_strict_f1": f1,
                     "epoch_train_seconds": train_s, "train_tokens_per_second": tokens / max(train_s, 1e-9),
                     "eval_seconds": time.time() - tick - train_s}
            history.append(entry)
            improved = f1 > best_f1
            log.info("epoch %d/%d | train loss %.4f | dev strict F1 %.4f%s | %.1fs (%s tok/s)",
                     epoch, train.num_epochs, train_loss, f1, " (best)" if improved else "", train_s,
                     f"{entry['train_tokens_per_second']:,.0f}")
            if improved:
                best_f1, best_epoch, best_scores, bad_epochs = f1, epoch, scores, 0
                ckpt.save(epoch, {"params": state.params}, {"epoch": epoch, "dev_strict_f1": f1}, force=True)
            else:
                bad_epochs += 1
                if train.patience is not None and bad_epochs >= train.patience:
                    log.info("early stopping: no dev F1 gain for %d epochs", bad_epochs)
                    break
    ckpt.close()
    result = {"best_epoch": best_epoch, "best_dev_strict_f1": best_f1, "dev_scores": best_scores, "history": history}
    write_config({"result": result})
    return result


# ----------------------------------------------------------------------------- evaluation


def evaluate_ner(model_dir: str, data: NERDataConfig, split: str = "test", batch_size: int = 32) -> dict[str, Any]:
    """Scores a fine-tuned model dir on a split of the task in ``data`` (strict + lenient)."""
    from gatortron_jax.inference.ner_predict import NERPredictor

    predictor = NERPredictor(model_dir, batch_size=batch_size)
    task = ner_tasks.get_ner_task(data.task, data.data_dir, data.splits())
    gold = task.documents(split)
    tick = time.time()
    pred = predictor.predict([Document(d.id, d.text, [], [], d.source) for d in gold])
    seconds = time.time() - tick
    scores = score_documents(gold, pred)
    return {
        "task": task.name, "split": split, "data_dir": task.data_dir, "model_dir": os.path.abspath(model_dir),
        "documents": len(gold), "fingerprint": ner_tasks.documents_fingerprint(gold),
        "predict_seconds": seconds, "scores": scores,
    }
