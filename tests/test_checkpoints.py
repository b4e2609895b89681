"""Orbax checkpoints: save → restore gives identical state, also onto a different mesh."""

import jax
import numpy as np
import pytest

from gatortron_jax.core import partitioning
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.core.checkpoints import Checkpointer, restore_params
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
from gatortron_jax.core.train_state import abstract_train_state, create_train_state

CONFIG = EncoderConfig(vocab_size=128, hidden_size=32, num_layers=2, num_heads=2, mlp_dim=64,
                       max_position_embeddings=16)


def _partitioner(shape):
    return partitioning.Partitioner(partitioning.create_mesh(*shape, devices=jax.devices()[: int(np.prod(shape))]))


def test_save_restore_identical_and_resharded(tmp_path):
    model, opt = EncoderForMLM(CONFIG), make_optimizer(OptimizerConfig(), 10)
    saver_partitioner = _partitioner((2, 2, 2))
    state, _ = create_train_state(model, opt, saver_partitioner, jax.random.key(3))
    state = state.replace(step=state.step + 7)
    ckpt = Checkpointer(str(tmp_path), max_to_keep=2)
    ckpt.save(7, state, {"step": 7, "data_batches_consumed": 7}, force=True)
    ckpt.close()

    # Restore onto a different mesh: values identical, layout follows the new shardings.
    restore_partitioner = _partitioner((1, 1, 2))
    abstract, _ = abstract_train_state(model, opt, restore_partitioner)
    reader = Checkpointer(str(tmp_path))
    assert reader.latest_step() == 7
    restored, meta = reader.restore(abstract)
    assert meta["data_batches_consumed"] == 7 and int(restored.step) == 7
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), restored, state)
    kernel = restored.params["encoder"]["layers"]["mlp"]["wi"]["kernel"]
    assert kernel.sharding.mesh.shape["tensor"] == 2 and kernel.addressable_shards[0].data.shape[-1] == 32

    params = restore_params(str(tmp_path), abstract.params)  # params only (pretrain → fine-tune)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, state.params)


def test_incompatible_config_names_the_parameter(tmp_path):
    model, opt = EncoderForMLM(CONFIG), make_optimizer(OptimizerConfig(), 10)
    state, _ = create_train_state(model, opt, _partitioner((1, 1, 1)), jax.random.key(0))
    ckpt = Checkpointer(str(tmp_path), async_save=False)
    ckpt.save(1, state, {"step": 1}, force=True)
    ckpt.close()
    bigger = EncoderForMLM(CONFIG.replace(mlp_dim=96))
    abstract, _ = abstract_train_state(bigger, opt, _partitioner((1, 1, 1)))
    with pytest.raises(ConfigError, match=r"encoder/layers/mlp/wi/bias has shape \(2, 64\).*expects \(2, 96\)"):
        restore_params(str(tmp_path), abstract.params)
    # resuming a run (full train state) with the wrong model config names the parameter too
    full_abstract, _ = abstract_train_state(bigger, opt, _partitioner((1, 1, 1)))
    with pytest.raises(ConfigError, match=r"params/encoder/layers/mlp/wi/bias has shape \(2, 64\).*expects \(2, 96\)"):
        Checkpointer(str(tmp_path)).restore(full_abstract)
