"""Packed fine-tuning batches: the same tokens, labels and loss as the unpacked rows, with
attention confined to each packed sentence (the speed of ``FinetuneConfig.pack_rows``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.core.batching import pack_batch
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.token_classification import EncoderForTokenClassification, forward_loss


def _rows(n=16, L=64, seed=0, vocab=64):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, L + 1, n)
    lengths[-2:] = 0  # padding rows of a short last batch
    feats = {"input_ids": np.zeros((n, L), np.int32), "segment_ids": np.zeros((n, L), np.int32),
             "labels": np.zeros((n, L), np.int32), "label_mask": np.zeros((n, L), np.float32)}
    for i, k in enumerate(lengths):
        feats["input_ids"][i, :k] = rng.integers(1, vocab, k)
        feats["segment_ids"][i, :k] = 1
        feats["labels"][i, :k] = rng.integers(0, 5, k)
        feats["label_mask"][i, 1:max(k - 1, 1)] = rng.integers(0, 2, max(k - 2, 0)) if k > 2 else 0
    return feats, lengths


def test_pack_batch_places_every_token_once_and_fewer_rows():
    feats, lengths = _rows()
    packed = pack_batch(feats, 64, row_multiple=2)
    rows = len(packed["input_ids"])
    assert rows % 2 == 0 and rows < len(lengths)
    assert rows <= -(-int(lengths.sum()) // 64) + 2  # first-fit decreasing: near the token bound
    # each packed segment is one source row, verbatim, with positions from 0
    seen = []
    for b in range(rows):
        seg = packed["segment_ids"][b]
        for s in sorted(set(seg[seg > 0].tolist())):
            idx = np.flatnonzero(seg == s)
            assert np.all(np.diff(idx) == 1), "a segment is contiguous"
            np.testing.assert_array_equal(packed["position_ids"][b, idx], np.arange(len(idx)))
            ids = packed["input_ids"][b, idx]
            src = [r for r in range(len(lengths)) if lengths[r] == len(idx)
                   and np.array_equal(feats["input_ids"][r, :len(idx)], ids) and r not in seen]
            assert src, "segment matches a source row"
            r = src[0]
            seen.append(r)
            np.testing.assert_array_equal(packed["labels"][b, idx], feats["labels"][r, :len(idx)])
            np.testing.assert_array_equal(packed["label_mask"][b, idx], feats["label_mask"][r, :len(idx)])
    assert sorted(seen) == [r for r in range(len(lengths)) if lengths[r] > 0]
    assert packed["label_mask"].sum() == feats["label_mask"].sum()


def test_packed_loss_and_gradients_equal_unpacked():
    config = EncoderConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, mlp_dim=64,
                           max_position_embeddings=64, initializer_range=0.5)  # attention far from uniform
    model = EncoderForTokenClassification(config, 5)
    params = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    feats, _ = _rows(L=64)
    packed = pack_batch(feats, 64)

    def loss(p, batch):
        s, w = forward_loss(model, p, batch, None)
        return s / w

    grad_fn = jax.jit(jax.value_and_grad(loss))  # compiled: op-by-op dispatch of the backward pass is slower
    l0, g0 = grad_fn(params, feats)
    l1, g1 = grad_fn(params, packed)
    np.testing.assert_allclose(float(l1), float(l0), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-3, atol=2e-6)
    # without per-segment attention the loss would differ: packing is not a no-op
    unmasked = dict(packed, segment_ids=(packed["segment_ids"] > 0).astype(np.int32))
    assert abs(float(loss(params, unmasked)) - float(l0)) > 1e-2


def test_pack_batch_rejects_row_level_features():
    feats, _ = _rows()
    feats["label"] = np.zeros((16,), np.int32)
    with pytest.raises(ValueError, match="'label' has no length axis"):
        pack_batch(feats, 64)
