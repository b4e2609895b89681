"""Sharded == unsharded: the same loss, gradients and update on 1 device and on 8 simulated
devices under (data, fsdp, tensor) meshes (8,1,1), (2,2,2), (1,4,2); params really sharded."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from gatortron_jax.core import partitioning
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.pretraining import steps
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
from gatortron_jax.core.train_state import create_train_state

CONFIG = EncoderConfig(vocab_size=256, hidden_size=64, num_layers=2, num_heads=4, mlp_dim=128,
                       max_position_embeddings=32, dropout_rate=0.0, attention_dropout_rate=0.0)
BATCH, LENGTH = 8, 16


def _batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(6, 256, size=(BATCH, LENGTH)).astype(np.int32)
    segments = np.ones((BATCH, LENGTH), np.int32)
    segments[:, 10:] = 2  # two packed documents per row
    segments[::2, 14:] = 0  # and some padding
    positions = np.where(np.arange(LENGTH) < 10, np.arange(LENGTH), np.arange(LENGTH) - 10).astype(np.int32)
    weights = (rng.random((BATCH, LENGTH)) < 0.3).astype(np.float32) * (segments > 0)
    return {
        "input_ids": ids, "token_type_ids": np.zeros_like(ids), "segment_ids": segments,
        "position_ids": np.broadcast_to(positions, ids.shape).copy(),
        "mlm_targets": rng.integers(6, 256, size=(BATCH, LENGTH)).astype(np.int32), "mlm_weights": weights,
    }


def _run(mesh_shape, num_microbatches=1):
    devices = jax.devices()[: int(np.prod(mesh_shape))]
    partitioner = partitioning.Partitioner(partitioning.create_mesh(*mesh_shape, devices=devices))
    model = EncoderForMLM(CONFIG)
    # A large eps keeps the first Adam update smooth in g (lr*g/(|g|+eps)) so that float
    # round-off in near-zero gradients cannot flip a whole-lr update.
    optimizer = make_optimizer(OptimizerConfig(learning_rate=1e-2, warmup_steps=0, eps=1e-2), 10)
    state, shardings = create_train_state(model, optimizer, partitioner, jax.random.key(0))
    batch = {k: jax.device_put(v, partitioner.data_sharding) for k, v in _batch().items()}
    train_step = steps.make_train_step(model, optimizer, num_microbatches=num_microbatches)

    def loss_and_grads(params, batch):
        def loss(p):
            s = steps._mlm_forward_sums(model, p, batch, None, real_vocab_size=None, max_predictions=None)
            return s["loss_sum"] / s["weight_sum"]
        return jax.value_and_grad(loss)(params)

    with partitioner.activate():
        loss, grads = jax.jit(loss_and_grads)(state.params, batch)
        init_params = jax.device_get(state.params)
        new_state, metrics = jax.jit(train_step, out_shardings=(shardings, partitioner.replicated))(
            state, batch, jax.random.key(1))
    return loss, jax.device_get(grads), jax.device_get(new_state.params), init_params, new_state, metrics


@pytest.fixture(scope="module")
def reference():
    return _run((1, 1, 1))


# (2, 2, 2) shards over all three axes at once and runs by default; the single-axis-heavy meshes
# compile the same program twice more (~20 s each on 2 cores) and run with the slow tests.
@pytest.mark.parametrize("mesh_shape", [pytest.param((8, 1, 1), marks=pytest.mark.slow), (2, 2, 2),
                                        pytest.param((1, 4, 2), marks=pytest.mark.slow)])
def test_sharded_matches_single_device(reference, mesh_shape):
    ref_loss, ref_grads, ref_new, ref_init, _, _ = reference
    loss, grads, new, init, state, _ = _run(mesh_shape)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), init, ref_init)  # same init values
    np.testing.assert_allclose(loss, ref_loss, atol=1e-5, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), grads, ref_grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), new, ref_new)

    data, fsdp, tensor = mesh_shape
    wi = state.params["encoder"]["layers"]["mlp"]["wi"]["kernel"]  # [layers, embed, mlp]
    assert wi.sharding.spec == P(None, "fsdp", "tensor")
    shard_shape = wi.addressable_shards[0].data.shape
    assert shard_shape == (CONFIG.num_layers, CONFIG.hidden_size // fsdp, CONFIG.mlp_dim // tensor)
    emb = state.params["encoder"]["embeddings"]["word_embeddings"]["embedding"]
    assert emb.addressable_shards[0].data.shape == (CONFIG.vocab_size // tensor, CONFIG.hidden_size // fsdp)
    # optimizer moments follow their params
    mu = state.opt_state[1][0].mu["encoder"]["layers"]["mlp"]["wi"]["kernel"]
    assert mu.sharding.spec == wi.sharding.spec


def test_gradient_accumulation_equals_full_batch(reference):
    _, _, ref_new, _, _, ref_metrics = reference
    _, _, new, _, _, metrics = _run((2, 2, 2), num_microbatches=2)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), new, ref_new)
    np.testing.assert_allclose(metrics["loss_sum"], ref_metrics["loss_sum"], rtol=1e-5)


def test_bad_mesh_is_one_clear_error():
    with pytest.raises(ConfigError, match="16 devices, but 8"):
        partitioning.create_mesh(4, 2, 2)


def test_rules_override_changes_layout():
    rules = partitioning.parse_rules_overrides((("embed", None),))
    assert dict(rules)["embed"] is None and rules[0] == ("embed", None)
    with pytest.raises(ConfigError, match="unknown axis"):
        partitioning.parse_rules_overrides((("embedd", "fsdp"),))
