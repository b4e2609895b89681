"""Each gin model size has its published parameter count (abstractly: nothing allocated)."""

import gin
import jax
import jax.numpy as jnp
import pytest

from gatortron_jax.cli import gin_config
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.encoder import Encoder
from gatortron_jax.models.heads import EncoderForMLM


def _count(config: EncoderConfig, with_mlm_head: bool = False) -> int:
    """Encoder params as HF ``MegatronBertModel`` counts them (embeddings, blocks, final LN,
    pooler); published sizes are for the encoder, not the pretraining head."""
    model = EncoderForMLM(config) if with_mlm_head else Encoder(config)
    shapes = jax.eval_shape(lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32)), jax.random.key(0))
    return sum(x.size for x in jax.tree.leaves(shapes))


@pytest.mark.parametrize(
    "gin_file, published",
    [("gin/models/base.gin", 345e6), ("gin/models/medium.gin", 3.9e9), ("gin/models/large.gin", 8.9e9)],
)
def test_published_sizes(gin_file, published):
    gin_config.parse([gin_file], [])
    config = gin_config.build(EncoderConfig)
    n = _count(config)
    assert abs(n - published) / published < 0.03, f"{gin_file}: {n:,} params vs published {published:,.0f}"
    gin.clear_config()


def test_base_matches_hf_gatortron_base_shape():
    gin_config.parse(["gin/models/base.gin"], [])
    c = gin_config.build(EncoderConfig)
    gin.clear_config()
    assert (c.num_layers, c.hidden_size, c.num_heads, c.mlp_dim, c.vocab_size, c.max_position_embeddings) == (
        24, 1024, 16, 4096, 50176, 512)
    assert not c.post_ln


def test_tiny_is_override_of_base():
    gin_config.parse(["gin/models/tiny.gin"], [])
    c = gin_config.build(EncoderConfig)
    gin.clear_config()
    assert c.hidden_size == 128 and c.num_layers == 2
    assert c.type_vocab_size == 2 and c.layer_norm_eps == 1e-12  # inherited from base.gin


def test_scan_and_loop_layouts_have_same_count():
    small = EncoderConfig(vocab_size=256, hidden_size=64, num_layers=3, num_heads=4, mlp_dim=128,
                          max_position_embeddings=32)
    assert _count(small, True) == _count(small.replace(scan_layers=False), True)


def test_mlm_head_adds_transform_ln_and_bias_only():
    small = EncoderConfig(vocab_size=256, hidden_size=64, num_layers=1, num_heads=4, mlp_dim=128,
                          max_position_embeddings=32)
    # transform dense (H*H + H) + LN (2H) + output bias (V); the decoder is tied to the embeddings.
    assert _count(small, True) - _count(small) == 64 * 64 + 64 + 2 * 64 + 256
