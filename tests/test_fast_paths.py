"""The speed-motivated code paths compute the same numbers as their plain references.

* ``mlm_sums`` (one-hot target logit, accuracy from the row max) against PyTorch's
  ``cross_entropy`` and autograd, including Megatron's padded-vocab masking.
* The spelled-out einsum attention (the CPU default) against ``jax.nn.dot_product_attention``'s
  XLA path, forward and gradients, with packed-segment masks.
* The MLM output-bias add with a matrix-vector bias gradient against a plain broadcast add,
  and against PyTorch autograd.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.pretraining.losses import mlm_sums

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("real_vocab", [None, 45])
def test_mlm_sums_match_torch_cross_entropy(real_vocab):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 7, 50)).astype(np.float32) * 3
    targets = rng.integers(0, real_vocab or 50, size=(3, 7))
    weights = (rng.random((3, 7)) < 0.5).astype(np.float32)
    weights[0, 0] = 1.0

    def ours(lg):
        return mlm_sums(lg, jnp.asarray(targets), jnp.asarray(weights), real_vocab)

    sums, vjp = jax.vjp(ours, jnp.asarray(logits))
    (grad,) = vjp({k: jnp.ones_like(v) if k == "loss_sum" else jnp.zeros_like(v) for k, v in sums.items()})

    t_logits = torch.tensor(logits, requires_grad=True)
    masked = t_logits if real_vocab is None else t_logits.masked_fill(
        torch.arange(50) >= real_vocab, torch.finfo(torch.float32).min)
    nll = torch.nn.functional.cross_entropy(masked.reshape(-1, 50), torch.tensor(targets).reshape(-1),
                                            reduction="none")
    ref_loss = (nll * torch.tensor(weights).reshape(-1)).sum()
    ref_loss.backward()
    ref_correct = ((masked.argmax(-1).numpy() == targets) * weights).sum()

    assert float(sums["loss_sum"]) == pytest.approx(ref_loss.item(), rel=1e-5)
    assert float(sums["correct_sum"]) == ref_correct
    assert float(sums["weight_sum"]) == weights.sum()
    np.testing.assert_allclose(np.asarray(grad), t_logits.grad.numpy(), atol=1e-6)


def test_einsum_attention_matches_jax_xla_attention():
    base = EncoderConfig(vocab_size=97, hidden_size=48, num_layers=2, num_heads=3, mlp_dim=96,
                         max_position_embeddings=32, dropout_rate=0.0, attention_dropout_rate=0.0,
                         use_pooler=False)
    rng = np.random.default_rng(1)
    ids = jnp.asarray(rng.integers(0, 97, size=(2, 16)))
    segments = np.ones((2, 16), np.int32)
    segments[0, 9:] = 2  # two packed documents
    segments[1, 12:] = 0  # padding
    targets = jnp.asarray(rng.integers(0, 97, size=(2, 16)))
    weights = jnp.asarray(segments > 0, jnp.float32)
    params = EncoderForMLM(base).init(jax.random.key(0), ids)["params"]

    def loss_and_grads(impl):
        model = EncoderForMLM(dataclasses.replace(base, attention_impl=impl))

        def loss(p):
            logits, _ = model.apply({"params": p}, ids, None, None, jnp.asarray(segments))
            return mlm_sums(logits, targets, weights)["loss_sum"]

        return jax.value_and_grad(loss)(params)

    loss_e, grads_e = loss_and_grads("einsum")
    loss_x, grads_x = loss_and_grads("xla")
    assert float(loss_e) == pytest.approx(float(loss_x), rel=1e-6)
    for a, b in zip(jax.tree.leaves(grads_e), jax.tree.leaves(grads_x)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-6)


def test_output_bias_matvec_gradient_matches_plain_add_and_torch():
    from gatortron_jax.models.heads import add_bias_matvec_grad, add_output_bias

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 40)).astype(np.float32)
    b = rng.normal(size=(40,)).astype(np.float32)
    w = rng.normal(size=(3, 5, 40)).astype(np.float32)  # a non-uniform upstream gradient

    def loss(add):
        return lambda x, b: jnp.sum(jnp.sin(add(x, b)) * w)

    plain = jax.grad(loss(lambda x, b: x + b), argnums=(0, 1))(x, b)
    for add in (add_bias_matvec_grad, add_output_bias):
        np.testing.assert_array_equal(add(x, b), x + b)
        got = jax.jit(jax.grad(loss(add), argnums=(0, 1)))(x, b)
        np.testing.assert_allclose(got[0], plain[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got[1], plain[1], rtol=1e-5, atol=1e-5)
    tx, tb = torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True)
    (torch.sin(tx + tb) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(got[1], tb.grad.numpy(), rtol=1e-5, atol=1e-5)
