"""The speed-motivated code paths compute the same numbers as their plain references.

* ``mlm_sums`` (one-hot target logit, accuracy from the row max) against PyTorch's
  ``cross_entropy`` and autograd, including Megatron's padded-vocab masking.
* (The spelled-out einsum attention against ``jax.nn.dot_product_attention``: tests/test_attention_paths.py.)
* The MLM output-bias add with a matrix-vector bias gradient against a plain broadcast add,
  and against PyTorch autograd.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
