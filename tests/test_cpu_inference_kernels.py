"""fp32 CPU inference kernels (core/compiler_options.py, models/encoder.py): Eigen dots and
attention scores in cache-sized row blocks — which programs get them, and that they change
speed only, not results.

Speed is benchmarks/bench_forward.py's business (it times ``auto`` against ``xla_default`` in
every fp32 run); these pin the wiring and the numbers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatortron_jax.core import compiler_options
from gatortron_jax.core.compiler_options import (FP32_CPU_INFERENCE, YNN_FUSION_OPTION, fp32_cpu_inference,
                                                 inference_compiler_options)
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models import encoder
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.encoder import Encoder, _attention_core, _attention_in_row_blocks, _score_rows_per_block

# The smallest hidden size that gets the fp32 CPU kernels (core.compiler_options.MIN_HIDDEN_SIZE).
TINY = EncoderConfig(vocab_size=97, hidden_size=384, num_layers=2, num_heads=3, mlp_dim=96, max_position_embeddings=64,
                     dropout_rate=0.0, attention_dropout_rate=0.0, use_pooler=False, target_platform="cpu")


def _compiled_text(config: EncoderConfig, options, batch: int = 4, seq: int = 32) -> str:
    ids = jnp.zeros((batch, seq), jnp.int32)
    params = Encoder(config).init(jax.random.key(0), ids)["params"]
    fn = jax.jit(lambda p, i: Encoder(config).apply({"params": p}, i)[0], compiler_options=options)
    return fn.lower(params, ids).compile().as_text()


def test_options_follow_dtype_quantization_platform_and_the_users_flags(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert inference_compiler_options(TINY) == FP32_CPU_INFERENCE and fp32_cpu_inference(TINY)
    for other in (TINY.replace(dtype="bfloat16"), TINY.replace(matmul_quantization="dynamic_int8"),
                  TINY.replace(cpu_inference_kernels="xla_default"), TINY.replace(target_platform="gpu"),
                  TINY.replace(target_platform="tpu"), TINY.replace(hidden_size=288)):
        assert inference_compiler_options(other) is None and not fp32_cpu_inference(other), other
    # A user who picks the dot library in XLA_FLAGS keeps XLA's kernels; one who sets the other
    # option keeps that one.
    monkeypatch.setenv("XLA_FLAGS", f"--{YNN_FUSION_OPTION}=LIBRARY_FUSION_TYPE_DOT")
    assert inference_compiler_options(TINY) is None and not fp32_cpu_inference(TINY)
    monkeypatch.setenv("XLA_FLAGS", f"--{compiler_options.FAST_MIN_MAX_OPTION}=false")
    assert inference_compiler_options(TINY) == {YNN_FUSION_OPTION: ""} and fp32_cpu_inference(TINY)
    with pytest.raises(ConfigError, match="cpu_inference_kernels"):
        TINY.replace(cpu_inference_kernels="eigen")


def test_fp32_programs_run_on_eigen_dots_and_bf16_keeps_ynnpack(monkeypatch):
    """The option reaches the compiler: no YNNPACK fusion is left in the fp32 program, while a
    bf16 program (whose speed depends on YNNPACK's bf16 dots) keeps them."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    ours = _compiled_text(TINY, inference_compiler_options(TINY))
    default = _compiled_text(TINY.replace(cpu_inference_kernels="xla_default"), None)
    bf16 = TINY.replace(dtype="bfloat16")
    assert "ynn_fusion" not in ours and " dot(" in ours
    assert "ynn_fusion" in default
    assert "ynn_fusion" in _compiled_text(bf16, inference_compiler_options(bf16))


@pytest.mark.parametrize("shape, rows", [
    ((32, 12, 256, 256), 1),  # MiniLM's predict batch: 3 MiB of scores a row
    ((64, 12, 128, 128), 4),  # 0.75 MiB a row: 5 fit, 4 divides 64
    ((256, 12, 32, 32), 64),
    ((4, 16, 512, 512), 1),  # GatorTron-base: 16 MiB a row, still one at a time
    ((6, 2, 16, 16), 6),  # everything fits: one block, no loop
    ((7, 12, 256, 256), 1),
])
def test_row_blocks_fit_the_cache_budget_and_divide_the_batch(shape, rows):
    assert _score_rows_per_block(*shape) == rows
    batch, heads, q_len, k_len = shape
    assert batch % rows == 0
    assert rows == 1 or rows * heads * q_len * k_len * 4 <= encoder.SCORE_BLOCK_BYTES


def test_row_blocked_attention_equals_the_whole_batch():
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.standard_normal((4, 3, 16, 8), dtype=np.float32)) for _ in range(3))
    segments = np.ones((4, 16), np.int32)
    segments[1, 10:] = 0  # padding
    segments[2, 6:] = 2  # two packed documents
    mask = encoder.attention_mask(jnp.asarray(segments))
    whole = _attention_core(q, k, v, mask)
    for rows in (1, 2):
        np.testing.assert_allclose(_attention_in_row_blocks(q, k, v, mask, rows), whole, rtol=0, atol=1e-6)
    np.testing.assert_allclose(_attention_in_row_blocks(q, k, v, None, 2), _attention_core(q, k, v, None),
                               rtol=0, atol=1e-6)


def test_encoder_blocks_fp32_cpu_inference_only_and_gives_the_same_hidden_states(monkeypatch):
    """With a budget of one row's scores, the fp32 CPU forward loops over batch rows (one more
    ``while`` per layer scan body), the ``xla_default`` and bf16 forwards do not, and the hidden
    states match the unblocked forward."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(encoder, "SCORE_BLOCK_BYTES", TINY.num_heads * 32 * 32 * 4)
    rng = np.random.default_rng(1)
    ids = jnp.asarray(rng.integers(0, 97, size=(4, 32)))
    segments = np.ones((4, 32), np.int32)
    segments[3, 20:] = 0
    segments = jnp.asarray(segments)
    params = Encoder(TINY).init(jax.random.key(0), ids)["params"]

    def forward(config):
        fn = jax.jit(lambda p: Encoder(config).apply({"params": p}, ids, None, None, segments)[0],
                     compiler_options=inference_compiler_options(config))
        return fn(params), fn.lower(params).as_text().count("stablehlo.while")

    (blocked, loops), (plain, plain_loops) = forward(TINY), forward(TINY.replace(cpu_inference_kernels="xla_default"))
    assert loops > plain_loops
    assert forward(TINY.replace(dtype="bfloat16"))[1] == plain_loops
    real = np.asarray(segments) > 0
    np.testing.assert_allclose(np.asarray(blocked)[real], np.asarray(plain)[real], rtol=0, atol=2e-5)


def test_predict_and_embed_compile_their_fp32_forward_with_the_cpu_options(tmp_path, repo_root, monkeypatch):
    """The product's jit sites pass the options: a streamed tagger's predict program (what
    predict, deid and evaluate run) and embed's forward have no YNNPACK fusion left; a bf16
    tagger's program keeps it."""
    from gatortron_jax.inference.embed import Embedder
    from gatortron_jax.inference.stream import ScoringTagger
    from gatortron_jax.models.model_dir import load_model_dir
    from test_predict_stream import make_model_dir

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    model_dir = str(make_model_dir(tmp_path / "ner", repo_root,
                                   config_overrides=dict(hidden_size=384, num_heads=6, num_layers=1, mlp_dim=128)))
    ids = np.ones((2, 64), np.int32)
    batch = {"input_ids": ids, "segment_ids": ids, "label_mask": ids}

    def predict_text(tagger):
        return tagger._predict.lower(tagger.params, batch).compile().as_text()

    assert "ynn_fusion" not in predict_text(ScoringTagger(model_dir, batch_size=2))
    assert "ynn_fusion" in predict_text(ScoringTagger(model_dir, batch_size=2, dtype="bfloat16"))
    config, params, vocab = load_model_dir(model_dir, encoder_only=True)
    embedder = Embedder(config, params["encoder"], vocab, batch_size=2)
    assert "ynn_fusion" not in embedder._forward.lower(embedder._params, ids, ids).compile().as_text()
