"""Linear-chain CRF in pure JAX: log-likelihood (forward algorithm) and Viterbi decoding.

Shapes: emissions ``[B, L, K]``, tags ``[B, L]`` int, mask ``[B, L]`` (1 = real position),
transitions ``[K, K]`` (``transitions[i, j]`` scores tag i → tag j), start/end ``[K]``.
Masked positions may sit anywhere (e.g. [CLS] at 0): they are skipped, the chain runs over
the unmasked positions in order. A row with no unmasked position has log-likelihood 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def sequence_score(emissions: Array, tags: Array, mask: Array, transitions: Array, start: Array, end: Array) -> Array:
    """Unnormalised score of ``tags`` for each row: ``[B]``."""
    transitions, start, end = jnp.asarray(transitions), jnp.asarray(start), jnp.asarray(end)
    mask = mask.astype(emissions.dtype)
    emit = jnp.take_along_axis(emissions, tags[..., None], axis=-1)[..., 0] * mask

    def step(carry, xs):
        prev_tag, started, score = carry
        tag, m = xs
        trans = jnp.where(started, transitions[prev_tag, tag], start[tag])
        score = score + m * trans
        prev_tag = jnp.where(m > 0, tag, prev_tag)
        started = started | (m > 0)
        return (prev_tag, started, score), None

    b = emissions.shape[0]
    init = (jnp.zeros(b, tags.dtype), jnp.zeros(b, bool), jnp.zeros(b, emissions.dtype))
    (last, started, score), _ = jax.lax.scan(step, init, (tags.T, mask.T))
    score = score + jnp.where(started, end[last], 0.0)
    return score + emit.sum(-1)


def log_partition(emissions: Array, mask: Array, transitions: Array, start: Array, end: Array) -> Array:
    """``log Z`` per row via the forward algorithm: ``[B]``."""
    transitions, start, end = jnp.asarray(transitions), jnp.asarray(start), jnp.asarray(end)
    b, _, k = emissions.shape

    def step(carry, xs):
        alpha, started = carry
        e, m = xs  # [B, K], [B]
        first = start[None, :] + e
        nxt = jax.nn.logsumexp(alpha[:, :, None] + transitions[None], axis=1) + e
        new = jnp.where(started[:, None], nxt, first)
        alpha = jnp.where((m > 0)[:, None], new, alpha)
        return (alpha, started | (m > 0)), None

    init = (jnp.zeros((b, k), emissions.dtype), jnp.zeros(b, bool))
    (alpha, started), _ = jax.lax.scan(step, init, (jnp.swapaxes(emissions, 0, 1), mask.T))
    return jnp.where(started, jax.nn.logsumexp(alpha + end[None], axis=-1), 0.0)


def log_likelihood(emissions: Array, tags: Array, mask: Array, transitions: Array, start: Array, end: Array) -> Array:
    """``log p(tags | emissions)`` per row: ``[B]``."""
    emissions = emissions.astype(jnp.float32)
    return sequence_score(emissions, tags, mask, transitions, start, end) - log_partition(
        emissions, mask, transitions, start, end
    )


def viterbi_decode(emissions: Array, mask: Array, transitions: Array, start: Array, end: Array) -> Array:
    """Best tag sequence ``[B, L]`` (0 at masked positions)."""
    transitions, start, end = jnp.asarray(transitions), jnp.asarray(start), jnp.asarray(end)
    emissions = emissions.astype(jnp.float32)
    b, length, k = emissions.shape

    def forward(carry, xs):
        score, started = carry
        e, m = xs
        cand = score[:, :, None] + transitions[None]  # [B, from, to]
        best_prev = jnp.argmax(cand, axis=1)  # [B, K]
        nxt = jnp.max(cand, axis=1) + e
        new = jnp.where(started[:, None], nxt, start[None] + e)
        active = m > 0
        score = jnp.where(active[:, None], new, score)
        # Masked (or first) positions point to themselves so backtracking passes through.
        identity = jnp.broadcast_to(jnp.arange(k), (b, k))
        back = jnp.where((active & started)[:, None], best_prev, identity)
        return (score, started | active), back

    init = (jnp.zeros((b, k), jnp.float32), jnp.zeros(b, bool))
    (score, _), backs = jax.lax.scan(forward, init, (jnp.swapaxes(emissions, 0, 1), mask.T))
    last = jnp.argmax(score + end[None], axis=-1)  # [B]

    def backward(tag, xs):
        back, m = xs
        out = jnp.where(m > 0, tag, 0)
        prev = jnp.take_along_axis(back, tag[:, None], axis=1)[:, 0]
        return prev, out

    _, path = jax.lax.scan(backward, last, (backs, mask.T), reverse=True)
    return path.T
