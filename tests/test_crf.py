"""CRF forward algorithm and Viterbi against brute-force enumeration on tiny cases."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.models import crf


def _brute(emissions, mask, transitions, start, end):
    """All scores over tag sequences of the unmasked positions."""
    k = emissions.shape[-1]
    pos = [t for t in range(emissions.shape[0]) if mask[t]]
    scores = {}
    for seq in itertools.product(range(k), repeat=len(pos)):
        s = 0.0
        for i, (t, tag) in enumerate(zip(pos, seq)):
            s += emissions[t, tag] + (start[tag] if i == 0 else transitions[seq[i - 1], tag])
        if pos:
            s += end[seq[-1]]
        scores[seq] = s
    return pos, scores


@pytest.mark.parametrize("mask_row", [[1, 1, 1, 1], [0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0], [0, 0, 1, 0]])
def test_crf_matches_enumeration(mask_row):
    rng = np.random.default_rng(sum(mask_row) * 7 + len(mask_row))
    k, length = 3, len(mask_row)
    em = rng.normal(size=(2, length, k)).astype(np.float32)
    tr, st, en = (rng.normal(size=s).astype(np.float32) for s in ((k, k), (k,), (k,)))
    mask = np.array([mask_row, [1] * length], np.float32)
    tags = rng.integers(0, k, size=(2, length))
    ll = np.asarray(crf.log_likelihood(jnp.asarray(em), jnp.asarray(tags), jnp.asarray(mask), tr, st, en))
    path = np.asarray(crf.viterbi_decode(jnp.asarray(em), jnp.asarray(mask), tr, st, en))
    for b in range(2):
        pos, scores = _brute(em[b], mask[b], tr, st, en)
        if not pos:
            assert abs(ll[b]) < 1e-6
            assert (path[b] == 0).all()
            continue
        log_z = np.logaddexp.reduce(np.array(list(scores.values()), np.float64))
        gold = scores[tuple(int(tags[b, t]) for t in pos)]
        np.testing.assert_allclose(ll[b], gold - log_z, rtol=1e-5, atol=1e-5)
        best = max(scores, key=scores.get)
        assert tuple(int(path[b, t]) for t in pos) == best
        assert all(path[b, t] == 0 for t in range(length) if not mask[b, t])


def test_crf_gradient_is_finite_and_jits():
    k = 4
    em = jax.random.normal(jax.random.key(0), (2, 5, k))
    tags = jnp.array([[0, 1, 2, 3, 0], [1, 1, 1, 0, 0]])
    mask = jnp.array([[0, 1, 1, 1, 0], [1, 1, 1, 0, 0]], jnp.float32)
    params = (jnp.zeros((k, k)), jnp.zeros(k), jnp.zeros(k))
    g = jax.jit(jax.grad(lambda p, e: -crf.log_likelihood(e, tags, mask, *p).sum(), argnums=(0, 1)))(params, em)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(g))
