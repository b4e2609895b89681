"""A NaN/Inf loss or gradient skips the update and is counted."""

import jax
import jax.numpy as jnp
import numpy as np

from gatortron_jax.core import partitioning
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.pretraining import steps
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
from gatortron_jax.core.train_state import create_train_state

CONFIG = EncoderConfig(vocab_size=64, hidden_size=32, num_layers=1, num_heads=2, mlp_dim=64,
                       max_position_embeddings=16, dropout_rate=0.0, attention_dropout_rate=0.0)


def _batch(weight_value: float):
    ids = np.arange(2 * 8, dtype=np.int32).reshape(2, 8) % 60 + 4
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "segment_ids": np.ones_like(ids),
            "position_ids": np.broadcast_to(np.arange(8, dtype=np.int32), ids.shape).copy(),
            "mlm_targets": ids, "mlm_weights": np.full(ids.shape, weight_value, np.float32)}


def test_nan_skips_update_and_is_counted():
    partitioner = partitioning.Partitioner(partitioning.create_mesh(1, 1, 1, devices=jax.devices()[:1]))
    model, opt = EncoderForMLM(CONFIG), make_optimizer(OptimizerConfig(warmup_steps=0), 10)
    state, _ = create_train_state(model, opt, partitioner, jax.random.key(0))
    step = jax.jit(steps.make_train_step(model, opt))
    before = jax.device_get(state)
    with partitioner.activate():
        bad_state, bad = step(state, _batch(np.nan), jax.random.key(1))
        good_state, good = step(state, _batch(1.0), jax.random.key(1))
    assert float(bad["nonfinite"]) == 1.0 and float(good["nonfinite"]) == 0.0
    assert int(bad_state.step) == 1  # the batch is consumed either way
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), bad_state.params, before.params)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 bad_state.opt_state, before.opt_state)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), good_state.params, before.params)
    assert any(jax.tree.leaves(changed))
