"""Masked-LM loss and accuracy as weighted sums (so microbatches and hosts add up exactly)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mask_padded_vocab(logits: jax.Array, real_vocab_size: int | None) -> jax.Array:
    """Padded embedding rows (Megatron pads the vocab) can never be predicted."""
    if real_vocab_size is None or real_vocab_size >= logits.shape[-1]:
        return logits
    valid = jnp.arange(logits.shape[-1]) < real_vocab_size
    return jnp.where(valid, logits, jnp.finfo(logits.dtype).min)


def mlm_sums(
    logits: jax.Array, targets: jax.Array, weights: jax.Array, real_vocab_size: int | None = None
) -> dict[str, jax.Array]:
    """Sum of cross-entropy, correct predictions and weights over selected positions.

    Computed in float32 regardless of the compute dtype.
    """
    logits = mask_padded_vocab(logits.astype(jnp.float32), real_vocab_size)
    # One fused pass each for max, log-sum-exp and the target logit: a one-hot product (not
    # take_along_axis, whose gradient materialises a zero [B, L, V] buffer and scatters into
    # it) and "target logit == row max" for accuracy (not a separate argmax reduction).
    row_max = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    shifted = logits - row_max
    log_z = jnp.log(jnp.sum(jnp.exp(shifted), axis=-1))
    one_hot = targets[..., None] == jnp.arange(logits.shape[-1], dtype=targets.dtype)
    target_shifted = jnp.sum(jnp.where(one_hot, shifted, 0.0), axis=-1)
    nll = log_z - target_shifted
    weights = weights.astype(jnp.float32)
    correct = (target_shifted >= 0.0).astype(jnp.float32)
    return {
        "loss_sum": jnp.sum(nll * weights),
        "correct_sum": jnp.sum(correct * weights),
        "weight_sum": jnp.sum(weights),
    }


def select_predictions(
    batch: dict[str, jax.Array], max_predictions: int
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Positions, targets and weights of up to ``max_predictions`` selected tokens per row.

    Returns also the number of selected tokens that did not fit (reported as a metric, never
    hidden). Earlier positions win ties so the choice is deterministic.
    """
    weights = batch["mlm_weights"]
    length = weights.shape[-1]
    score = (weights > 0).astype(jnp.float32) * 2.0 - jnp.arange(length) / length
    _, positions = jax.lax.top_k(score, max_predictions)
    sel_w = jnp.take_along_axis(weights, positions, axis=1)
    sel_t = jnp.take_along_axis(batch["mlm_targets"], positions, axis=1)
    dropped = jnp.sum(weights > 0) - jnp.sum(sel_w > 0)
    return positions, sel_t, sel_w, dropped
