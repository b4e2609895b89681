"""Sequence-classification / regression and span-QA heads on a tiny encoder."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models import sequence_classification as sc
from gatortron_jax.models import span_qa
from gatortron_jax.models.config import EncoderConfig

TINY = EncoderConfig(vocab_size=128, hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32,
                     max_position_embeddings=32, dropout_rate=0.1, attention_dropout_rate=0.0,
                     scan_layers=False)  # the heads are under test; unscanned inits faster
B, L = 3, 12


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 128, (B, L)).astype(np.int32)
    seg = np.ones((B, L), np.int32)
    seg[1, 9:] = 0  # padding
    return jnp.asarray(ids), jnp.asarray(seg)


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(tree))


def test_classifier_shapes_and_axes():
    ids, seg = _batch()
    markers = jnp.array([[1, 4], [2, 7], [0, 11]], jnp.int32)
    for rep in ("pooled", "cls", "entity_start"):
        model = sc.EncoderForSequenceClassification(TINY, num_labels=5, representation=rep)
        variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), ids, None, None, seg, markers))
        params = variables["params"]
        assert set(params) == {"encoder", "classifier"}
        kernel = params["classifier"]["kernel"]
        assert isinstance(kernel, nn.Partitioned) and kernel.names == ("embed", "labels")
        width = 2 * TINY.hidden_size if rep == "entity_start" else TINY.hidden_size
        assert kernel.value.shape == (width, 5)
        assert params["classifier"]["bias"].names == ("labels",)
        logits = jax.eval_shape(lambda v: model.apply(v, ids, None, None, seg, markers), variables)
        assert logits.shape == (B, 5) and logits.dtype == jnp.float32


def test_classifier_loss_grads_predict():
    model = sc.EncoderForSequenceClassification(TINY, num_labels=5, representation="entity_start")
    ids, seg = _batch()
    markers = jnp.array([[1, 4], [2, 7], [0, 11]], jnp.int32)
    plain = nn.unbox(model.init(jax.random.PRNGKey(0), ids, None, None, seg, markers)["params"])
    batch = {"input_ids": ids, "segment_ids": seg, "marker_positions": markers, "labels": jnp.array([0, 3, 4])}
    loss_fn = lambda p: (lambda s, w: s / w)(*sc.forward_loss(model, p, batch, jax.random.PRNGKey(1)))  # noqa: E731
    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(plain)  # compiled: faster than op-by-op dispatch
    assert np.isfinite(float(loss)) and _finite(grads)
    assert float(jnp.abs(grads["classifier"]["kernel"]).sum()) > 0
    assert sum(float(jnp.abs(g).sum()) for g in jax.tree_util.tree_leaves(grads["encoder"])) > 0
    pred = sc.predict(model, plain, batch)
    assert pred.shape == (B,) and jnp.issubdtype(pred.dtype, jnp.integer)


def test_entity_start_gathers_marker_vectors():
    model = sc.EncoderForSequenceClassification(TINY, num_labels=4, representation="entity_start")
    ids, seg = _batch(1)
    markers = jnp.array([[1, 4], [8, 2], [0, 11]], jnp.int32)
    variables = model.init(jax.random.PRNGKey(0), ids, None, None, seg, markers)
    params = nn.unbox(variables["params"])
    hidden, _ = nn.apply(lambda m: m.encoder(ids, None, None, seg, True), model)({"params": params})
    rep = nn.apply(lambda m: m.represent(hidden, None, markers), model)({"params": params})
    manual = np.stack([np.concatenate([np.asarray(hidden)[b, int(markers[b, 0])],
                                       np.asarray(hidden)[b, int(markers[b, 1])]]) for b in range(B)])
    np.testing.assert_allclose(np.asarray(rep), manual, rtol=0, atol=0)
    k, bias = params["classifier"]["kernel"], params["classifier"]["bias"]
    logits = model.apply({"params": params}, ids, None, None, seg, markers)
    np.testing.assert_allclose(np.asarray(logits), manual @ np.asarray(k) + np.asarray(bias), rtol=1e-5, atol=1e-5)
    swapped = model.apply({"params": params}, ids, None, None, seg, markers[:, ::-1])
    assert not np.allclose(np.asarray(swapped), np.asarray(logits))  # order of E1/E2 matters


def test_regressor_mse():
    model = sc.EncoderForSequenceClassification(TINY, num_labels=1, representation="cls")
    ids, seg = _batch(2)
    params = nn.unbox(model.init(jax.random.PRNGKey(0), ids, None, None, seg)["params"])
    out = model.apply({"params": params}, ids, None, None, seg)
    assert out.shape == (B,)
    batch = {"input_ids": ids, "segment_ids": seg, "labels": jnp.array([0.0, 2.5, 5.0])}
    s, w = sc.forward_loss(model, params, batch, None)
    np.testing.assert_allclose(float(s) / float(w), float(jnp.mean((out - batch["labels"]) ** 2)), rtol=1e-5)
    grads = jax.grad(lambda p: sc.forward_loss(model, p, batch, jax.random.PRNGKey(3))[0])(params)
    assert _finite(grads)


def test_losses_reference():
    logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    s, w = sc.cross_entropy_loss(logits, jnp.array([0, 2]), jnp.array([1.0, 0.5]))
    ref = -(np.log(np.exp(2) / (np.exp(2) + 1 + np.exp(-1))) * 1.0 + np.log(1 / 3) * 0.5)
    assert float(s) == pytest.approx(ref, rel=1e-6) and float(w) == 1.5
    s, w = sc.mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
    assert float(s) == pytest.approx(5.0) and float(w) == 2.0


def test_bad_config():
    cfg = EncoderConfig(**{**TINY.__dict__, "use_pooler": False})
    ids, seg = _batch()
    with pytest.raises(ConfigError, match="use_pooler"):
        jax.eval_shape(lambda: sc.EncoderForSequenceClassification(cfg, 3, "pooled").init(jax.random.PRNGKey(0), ids))
    with pytest.raises(ConfigError, match="marker_positions"):
        jax.eval_shape(lambda: sc.EncoderForSequenceClassification(TINY, 3, "entity_start").init(
            jax.random.PRNGKey(0), ids))


def test_span_qa_head():
    model = span_qa.EncoderForQuestionAnswering(TINY)
    ids, seg = _batch(3)
    ctx = np.zeros((B, L), bool)
    ctx[:, 0] = True  # [CLS] for "no answer"
    ctx[:, 5:9] = True
    variables = model.init(jax.random.PRNGKey(0), ids, None, None, seg, jnp.asarray(ctx))
    kernel = variables["params"]["qa_outputs"]["kernel"]
    assert kernel.names == ("embed", "labels") and kernel.value.shape == (TINY.hidden_size, 2)
    params = nn.unbox(variables["params"])
    s, e = model.apply({"params": params}, ids, None, None, seg, jnp.asarray(ctx))
    assert s.shape == e.shape == (B, L)
    assert bool(jnp.all(jnp.where(ctx, True, s <= -1e8))) and bool(jnp.all(jnp.isfinite(jnp.where(ctx, s, 0))))
    batch = {"input_ids": ids, "segment_ids": seg, "context_mask": jnp.asarray(ctx),
             "start_positions": jnp.array([5, 0, 6]), "end_positions": jnp.array([7, 0, 6])}
    loss_fn = lambda p: (lambda a, b: a / b)(*span_qa.forward_loss(model, p, batch, jax.random.PRNGKey(2)))  # noqa: E731
    loss, grads = jax.value_and_grad(loss_fn)(params)
    assert np.isfinite(float(loss)) and _finite(grads)
    # loss equals the mean of start and end cross-entropies
    s0, e0 = model.apply({"params": params}, ids, None, None, seg, jnp.asarray(ctx))
    ls = -jax.nn.log_softmax(s0)[jnp.arange(B), batch["start_positions"]]
    le = -jax.nn.log_softmax(e0)[jnp.arange(B), batch["end_positions"]]
    tot, w = span_qa.span_loss(s0, e0, batch["start_positions"], batch["end_positions"])
    assert float(tot / w) == pytest.approx(float(jnp.mean((ls + le) / 2)), rel=1e-6)
