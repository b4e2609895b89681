"""The step machinery of supervised fine-tuning (every task kind): the optimizer (warmup
ratio, optional layer-wise LR decay), encoder initialisation from a pretrained model dir, the
pure donated train step, one epoch over host batches, and jitting with the run's shardings.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import optax

from gatortron_jax.core import partitioning
from gatortron_jax.core.checkpoints import restore_params
from gatortron_jax.core.compiler_options import inference_compiler_options
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
from gatortron_jax.core.train_state import TrainState, abstract_train_state
from gatortron_jax.finetuning.config import FinetuneConfig

log = logging.getLogger("gatortron_jax")


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


def make_finetune_optimizer(
    config: OptimizerConfig, train: FinetuneConfig, total_steps: int, num_layers: int
) -> tuple[optax.GradientTransformation, OptimizerConfig]:
    if train.warmup_ratio is not None:
        config = dataclasses.replace(config, warmup_steps=int(round(train.warmup_ratio * total_steps)))
    opt = make_optimizer(config, total_steps)
    if train.layerwise_lr_decay is not None and train.layerwise_lr_decay < 1.0:
        opt = optax.chain(opt, layerwise_lr_scale(train.layerwise_lr_decay, num_layers))
    return opt, config


# loss_of(model, params, batch, rng) -> (loss_sum, weight)
LossFn = Callable[[Any, Any, dict, jax.Array], tuple[jax.Array, jax.Array]]


def init_encoder_from(init_checkpoint: str, state: TrainState, shardings: TrainState) -> TrainState:
    """Replace the (fresh) encoder params with a pretrained model dir's, restored sharded."""
    abstract = {"encoder": jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        state.params["encoder"], shardings.params["encoder"],
    )}
    encoder = restore_params(init_checkpoint, abstract)["encoder"]
    log.info("encoder initialised from %s", init_checkpoint)
    return state.replace(params={**state.params, "encoder": encoder})


def make_supervised_step(model, optimizer: optax.GradientTransformation, loss_of: LossFn):
    """Pure, donatable ``(state, batch, rng) -> (state, metrics)`` for a weighted loss."""

    def train_step(state: TrainState, batch, rng):
        rng = jax.random.fold_in(rng, state.step)

        def loss_fn(params):
            loss_sum, weight = loss_of(model, params, batch, rng)
            return loss_sum / jnp.maximum(weight, 1.0), (loss_sum, weight)

        grads, (loss_sum, weight) = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss_sum": loss_sum, "weight": weight, "grad_norm": optax.global_norm(grads)}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step


def train_epoch(
    p_train, state: TrainState, batches: Iterable[dict], steps_per_epoch: int, data_sharding, rng: jax.Array,
    *, epoch: int, log_every: int, start: int = 0, partial: dict[str, float] | None = None,
    on_step: Callable[[int, TrainState, dict[str, float]], None] | None = None,
) -> tuple[TrainState, float, float]:
    """One pass over (at most ``steps_per_epoch``) host batches; returns (state, mean loss, real tokens).

    Resuming inside an epoch: the first ``start`` batches are skipped (the data order is the
    same) and ``partial`` carries their loss/weight/token sums. ``on_step(i, state, sums)``
    runs after step ``i`` (1-based) — the loop checkpoints there.
    """
    sums = {"loss_sum": 0.0, "weight": 0.0, "tokens": 0.0, **(partial or {})}
    for i, batch in enumerate(batches):
        if i >= steps_per_epoch:
            break
        if i < start:
            continue
        sums["tokens"] += float((batch["segment_ids"] != 0).sum())
        state, metrics = p_train(state, {k: jax.device_put(v, data_sharding) for k, v in batch.items()}, rng)
        if (i + 1) % log_every == 0:
            m = jax.device_get(metrics)
            log.info("epoch %d step %d/%d | loss %.4f", epoch, i + 1, steps_per_epoch,
                     float(m["loss_sum"]) / max(float(m["weight"]), 1.0))
        for k in ("loss_sum", "weight"):
            sums[k] += float(metrics[k])
        if on_step is not None:
            on_step(i + 1, state, dict(sums))
    train_loss = sums["loss_sum"] / max(sums["weight"], 1.0)
    if not math.isfinite(train_loss):
        raise FloatingPointError(f"non-finite fine-tuning loss in epoch {epoch}")
    return state, train_loss, sums["tokens"]


def compile_supervised(model, optimizer: optax.GradientTransformation, loss_of: LossFn, predict_of, partitioner,
                       shardings: TrainState):
    """Jit the donated train step and the predict function with the run's shardings."""
    data_sharding = partitioner.data_sharding
    train_step = make_supervised_step(model, optimizer, loss_of)
    with partitioner.activate():
        p_train = jax.jit(
            train_step, in_shardings=(shardings, data_sharding, partitioner.replicated),
            out_shardings=(shardings, partitioner.replicated), donate_argnums=(0,),
        )
        p_predict = jax.jit(lambda p, b: predict_of(model, p, b), in_shardings=(shardings.params, data_sharding),
                            compiler_options=inference_compiler_options(model.config))
    return p_train, p_predict


def load_for_inference(model, model_dir: str, batch_size: int, predict_of):
    """(partitioner, batch size rounded up to the data-parallel size, params, jitted predict) for a model dir."""
    partitioner = partitioning.Partitioner(partitioning.create_mesh(-1, 1, 1))
    dp = partitioner.data_parallel_size
    batch_size = max(dp, (batch_size + dp - 1) // dp * dp)
    abstract, _ = abstract_train_state(model, optax.identity(), partitioner)
    params = restore_params(model_dir, abstract.params)
    with partitioner.activate():
        predict_fn = jax.jit(lambda p, b: predict_of(model, p, b),
                             compiler_options=inference_compiler_options(model.config))
    return partitioner, batch_size, params, predict_fn
