"""Pure, jit-able train and eval steps for masked-LM.

``train_step(state, batch, rng) -> (state, metrics)``: the state is donated, dropout RNG is
``fold_in(rng, step)`` so a resumed run draws the same numbers, and gradient accumulation
scans over microbatches inside the step (one optimizer update per step). Metrics are sums
so that the loop can combine them exactly.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gatortron_jax.pretraining.losses import mlm_sums, select_predictions
from gatortron_jax.core.train_state import TrainState

Batch = dict[str, jax.Array]


def _mlm_forward_sums(
    model: nn.Module,
    params,
    batch: Batch,
    rng: jax.Array | None,
    *,
    real_vocab_size: int | None,
    max_predictions: int | None,
) -> dict[str, jax.Array]:
    positions, targets, weights = None, batch["mlm_targets"], batch["mlm_weights"]
    dropped = jnp.zeros((), jnp.float32)
    if max_predictions:
        positions, targets, weights, dropped = select_predictions(batch, max_predictions)
    logits, _ = model.apply(
        {"params": params},
        batch["input_ids"],
        batch["token_type_ids"],
        batch["position_ids"],
        batch["segment_ids"],
        mlm_positions=positions,
        deterministic=rng is None,
        rngs=None if rng is None else {"dropout": rng},
    )
    sums = mlm_sums(logits, targets, weights, real_vocab_size)
    sums["dropped_targets"] = dropped.astype(jnp.float32)
    sums["tokens"] = jnp.sum(batch["segment_ids"] > 0).astype(jnp.float32)
    return sums


def make_train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    *,
    num_microbatches: int = 1,
    real_vocab_size: int | None = None,
    max_predictions: int | None = None,
) -> Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    forward = lambda p, b, r: _mlm_forward_sums(  # noqa: E731
        model, p, b, r, real_vocab_size=real_vocab_size, max_predictions=max_predictions
    )

    def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        rng = jax.random.fold_in(rng, state.step)
        # Normalise by the weight of the *whole* batch so accumulated grads equal full-batch grads.
        total_weight = jnp.maximum(jnp.sum(batch["mlm_weights"]), 1.0)

        def loss_fn(params, micro: Batch, micro_rng: jax.Array):
            sums = forward(params, micro, micro_rng)
            return sums["loss_sum"] / total_weight, sums

        grad_fn = jax.grad(loss_fn, has_aux=True)
        if num_microbatches == 1:
            grads, sums = grad_fn(state.params, batch, rng)
        else:
            # [B, ...] -> [n, B/n, ...] such that each device's rows stay on that device.
            micro = jax.tree.map(
                lambda x: jnp.swapaxes(x.reshape(x.shape[0] // num_microbatches, num_microbatches, *x.shape[1:]), 0, 1),
                batch,
            )

            def body(carry, xs):
                acc_grads, acc_sums = carry
                index, mb = xs
                mb = jax.tree.map(
                    lambda x: nn.with_logical_constraint(x, ("activation_batch",) + (None,) * (x.ndim - 1)), mb
                )
                g, s = grad_fn(state.params, mb, jax.random.fold_in(rng, index))
                return (jax.tree.map(jnp.add, acc_grads, g), jax.tree.map(jnp.add, acc_sums, s)), None

            zero_sums = jax.eval_shape(lambda: forward(state.params, jax.tree.map(lambda x: x[0], micro), rng))
            init = (
                jax.tree.map(jnp.zeros_like, state.params),
                jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zero_sums),
            )
            (grads, sums), _ = jax.lax.scan(body, init, (jnp.arange(num_microbatches), micro))
        grad_norm = optax.global_norm(grads)
        # Non-finite guard: a NaN/Inf loss or gradient skips the update (params and optimizer
        # moments stay as they were) and is counted; the loop decides when to give up. A cond,
        # not a select, so no second copy of the state is materialised.
        finite = jnp.isfinite(grad_norm) & jnp.isfinite(sums["loss_sum"])

        def apply_update(_):
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
            return optax.apply_updates(state.params, updates), opt_state

        params, opt_state = jax.lax.cond(finite, apply_update, lambda _: (state.params, state.opt_state), None)
        # A skipped step contributes nothing to the logged loss/accuracy (its NaN would poison the sums).
        sums = {k: jnp.where(finite, v, 0.0) if k in ("loss_sum", "correct_sum", "weight_sum") else v
                for k, v in sums.items()}
        metrics = dict(sums, grad_norm=grad_norm, nonfinite=(~finite).astype(jnp.float32))
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics

    return train_step


def make_eval_step(
    model: nn.Module, *, real_vocab_size: int | None = None
) -> Callable[[dict, Batch], dict[str, jax.Array]]:
    """Deterministic forward over every selected position (no sparse cap at eval)."""

    def eval_step(params, batch: Batch) -> dict[str, jax.Array]:
        return _mlm_forward_sums(model, params, batch, None, real_vocab_size=real_vocab_size, max_predictions=None)

    return eval_step
