"""The CPU attention path ([batch, heads, seq, kv] layout, scale folded into the q kernel,
deferred softmax normalisation) against the GPU/TPU path (``jax.nn.dot_product_attention``), under every
remat policy, with packed segments, in bf16, and with attention-prob dropout.

HF parity (tests/test_hf_parity.py) pins the CPU path to transformers; these pin the other
branches of ``SelfAttention`` to it.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.pretraining.losses import mlm_sums

BASE = EncoderConfig(vocab_size=97, hidden_size=48, num_layers=2, num_heads=3, mlp_dim=96, max_position_embeddings=32,
                     dropout_rate=0.0, attention_dropout_rate=0.0, use_pooler=False, target_platform="cpu")


def _batch():
    rng = np.random.default_rng(1)
    ids = jnp.asarray(rng.integers(0, 97, size=(2, 16)))
    segments = np.ones((2, 16), np.int32)
    segments[0, 9:] = 2  # two packed documents
    segments[1, 12:] = 0  # padding
    targets = jnp.asarray(rng.integers(0, 97, size=(2, 16)))
    return ids, jnp.asarray(segments), targets, jnp.asarray(segments > 0, jnp.float32)


def _loss_and_grads(config, params, rngs=None, deterministic=True):
    ids, segments, targets, weights = _batch()
    model = EncoderForMLM(config)

    def loss(p):
        logits, _ = model.apply({"params": p}, ids, None, None, segments, deterministic=deterministic, rngs=rngs)
        return mlm_sums(logits, targets, weights)["loss_sum"]

    return jax.value_and_grad(loss)(params)


@pytest.fixture(scope="module")
def params():
    return EncoderForMLM(BASE).init(jax.random.key(0), _batch()[0])["params"]


def test_param_tree_is_the_same_on_every_platform(params):
    ids = _batch()[0]
    for platform in ("gpu", "tpu"):
        shapes = jax.eval_shape(lambda: EncoderForMLM(BASE.replace(target_platform=platform)).init(jax.random.key(0), ids))
        assert jax.tree.map(lambda a: a.shape, shapes["params"]) == jax.tree.map(lambda a: a.shape, params)


def test_forced_attention_impl_einsum_matches_xla(params):
    """``EncoderConfig.attention_impl`` overrides the platform's choice either way."""
    loss_e, grads_e = _loss_and_grads(BASE.replace(attention_impl="einsum"), params)
    loss_x, grads_x = _loss_and_grads(BASE.replace(attention_impl="xla"), params)
    assert float(loss_e) == pytest.approx(float(loss_x), rel=1e-6)
    for a, b in zip(jax.tree.leaves(grads_e), jax.tree.leaves(grads_x)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-6)


@pytest.mark.parametrize("remat", ["none", "dots", "qkv_proj"])  # none, the default, and the one naming q/k/v
def test_cpu_path_matches_the_gpu_path_forward_and_gradients(params, remat):
    loss_cpu, grads_cpu = _loss_and_grads(BASE.replace(remat_policy=remat), params)
    # target "gpu" traces the dot_product_attention branch; run here it is XLA's implementation
    loss_gpu, grads_gpu = _loss_and_grads(BASE.replace(remat_policy=remat, target_platform="gpu"), params)
    assert float(loss_cpu) == pytest.approx(float(loss_gpu), rel=1e-6)
    for a, b in zip(jax.tree.leaves(grads_cpu), jax.tree.leaves(grads_gpu)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-6)


def test_bf16_compute_stays_close_to_fp32(params):
    loss32, _ = _loss_and_grads(BASE, params)
    loss16, grads16 = _loss_and_grads(BASE.replace(dtype="bfloat16"), params)
    assert float(loss16) == pytest.approx(float(loss32), rel=2e-2)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads16))


def test_attention_dropout_is_applied_and_seeded(params):
    config = dataclasses.replace(BASE, attention_dropout_rate=0.5)
    rngs = lambda seed: {"dropout": jax.random.key(seed)}  # noqa: E731
    off, _ = _loss_and_grads(config, params)  # deterministic: dropout off
    a, grads = _loss_and_grads(config, params, rngs(1), deterministic=False)
    b, _ = _loss_and_grads(config, params, rngs(1), deterministic=False)
    c, _ = _loss_and_grads(config, params, rngs(2), deterministic=False)
    assert float(off) == pytest.approx(float(_loss_and_grads(BASE, params)[0]), rel=1e-6)
    assert float(a) == float(b) and float(a) != float(c) and float(a) != float(off)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def _dot_types(config, params):
    """(lhs, rhs, result) element types of every dot_general in the lowered encoder forward
    (the layer stack is scanned: one layer's dots)."""
    import re

    from gatortron_jax.models.encoder import Encoder

    ids, segments, _, _ = _batch()
    model = Encoder(config)
    text = jax.jit(lambda p: model.apply({"params": p}, ids, None, None, segments)[0]).lower(params["encoder"]).as_text()
    sig = re.compile(r"stablehlo\.dot_general.*:\s*\(tensor<[^>]*x(\w+)>, tensor<[^>]*x(\w+)>\)\s*->\s*tensor<[^>]*x(\w+)>")
    return [m.groups() for m in sig.finditer(text)]


def test_bf16_dots_on_cpu_accumulate_in_f32(params):
    """XLA:CPU runs a bf16 x bf16 -> bf16 dot as an upcast fp32 one (no bf16 speed-up); the CPU
    program asks every bf16 encoder dot for an f32 result (native bf16 dot instructions). The
    GPU program is left as it was: its bf16 projections still return bf16."""
    cpu = _dot_types(BASE.replace(dtype="bfloat16"), params)
    # q, k, v, out, the two attention matmuls and the two FFN matmuls of the scanned layer
    assert cpu == [("bf16", "bf16", "f32")] * 8
    assert _dot_types(BASE, params) == [("f32", "f32", "f32")] * 8
    gpu = _dot_types(BASE.replace(dtype="bfloat16", target_platform="gpu"), params)
    assert ("bf16", "bf16", "bf16") in gpu
