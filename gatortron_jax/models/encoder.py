"""Megatron-BERT encoder (GatorTron) and classic post-LN BERT, in Flax linen.

Every parameter and activation is annotated with *logical* axis names only
(`vocab`, `embed`, `heads`, `kv`, `mlp`, `layers`, and `activation_*` for activations);
`gatortron_jax.core.partitioning` alone maps those names onto mesh axes.

Layout follows Megatron-LM / HF ``MegatronBertModel`` so released checkpoints map 1:1:

    pre-LN (post_ln=False):  x = x + Attn(LN(x)); x = x + MLP(LN(x)); ...; final LN
    post-LN (post_ln=True):  embeddings LN; x = LN(x + Attn(x)); x = LN(x + MLP(x))

The block stack is an ``nn.scan`` (params stacked on a leading ``layers`` axis) so a 56-layer
model compiles as fast as a 2-layer one; remat policies are chosen by name.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from gatortron_jax.core.compiler_options import fp32_cpu_inference
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.quantization import int8_dot_general, int8_einsum

Array = jax.Array

BATCH_LENGTH_EMBED = ("activation_batch", "activation_length", "activation_embed")


def _init(config: EncoderConfig) -> Callable:
    return nn.initializers.normal(stddev=config.initializer_range)


def _partitioned(init: Callable, names: tuple[str, ...]) -> Callable:
    return nn.with_logical_partitioning(init, names)


def _layer_norm(config: EncoderConfig, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(
        epsilon=config.layer_norm_eps,
        dtype=config.compute_dtype,
        param_dtype=config.weight_dtype,
        scale_init=_partitioned(nn.initializers.ones, ("embed",)),
        bias_init=_partitioned(nn.initializers.zeros, ("embed",)),
        name=name,
    )


def _constrain(x: Array, names: tuple[str, ...] = BATCH_LENGTH_EMBED) -> Array:
    return nn.with_logical_constraint(x, names)


def _accumulate_in_f32(cfg: EncoderConfig) -> bool:
    """bf16 matmuls on CPU ask for an f32 result, then cast back to bf16.

    XLA:CPU has no bf16 x bf16 -> bf16 dot kernel: it upcasts both operands and runs the fp32
    kernel, so bf16 compute ran at fp32 speed. A bf16 x bf16 -> f32 dot maps onto the CPU's
    native bf16 dot-product instructions (AVX512_BF16, AMX): 390 vs 207 GFLOP/s at 2048^2 on the
    AVX512_BF16 CPU here (benchmarks/RESULTS.md, issue 26). GPUs and TPUs keep their programs:
    they accumulate in f32 inside the bf16 kernel already.
    """
    return cfg.compute_dtype != jnp.float32 and cfg.platform == "cpu"


def _f32_accumulating_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None,
                                  **kwargs):
    """``lax.dot_general`` with an f32 result cast to the operands' dtype (flax ``Dense``'s hook)."""
    out = jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                              preferred_element_type=jnp.float32, **kwargs)
    return out.astype(lhs.dtype)


def _project(cfg: EncoderConfig, equation: str, x: Array, kernel: Array) -> Array:
    """A dense projection's einsum: fp32/bf16 (bf16 accumulating in f32 on CPU, see
    :func:`_accumulate_in_f32`), or with ``cfg.matmul_quantization="dynamic_int8"`` the int8 one
    (models/quantization.py)."""
    if cfg.matmul_quantization is not None:
        return int8_einsum(equation, x, kernel)
    if _accumulate_in_f32(cfg):
        return jnp.einsum(equation, x, kernel, preferred_element_type=jnp.float32).astype(x.dtype)
    return jnp.einsum(equation, x, kernel)


def gelu(x: Array) -> Array:
    """Exact (erf) GELU, as Megatron-LM and HF ``hidden_act="gelu"`` use."""
    return nn.gelu(x, approximate=False)


class Embeddings(nn.Module):
    """Word + learned absolute position + token-type embeddings (+ LN for post-LN BERT)."""

    config: EncoderConfig

    def setup(self) -> None:
        cfg = self.config
        embed = lambda n, names, name: nn.Embed(  # noqa: E731
            n,
            cfg.hidden_size,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weight_dtype,
            embedding_init=_partitioned(_init(cfg), names),
            name=name,
        )
        self.word_embeddings = embed(cfg.vocab_size, ("vocab", "embed"), "word_embeddings")
        self.position_embeddings = embed(
            cfg.max_position_embeddings, ("position", "embed"), "position_embeddings"
        )
        self.token_type_embeddings = embed(
            cfg.type_vocab_size, ("token_type", "embed"), "token_type_embeddings"
        )
        if cfg.post_ln:
            self.ln = _layer_norm(cfg, "ln")
        self.dropout = nn.Dropout(cfg.dropout_rate)

    def __call__(
        self, input_ids: Array, token_type_ids: Array, position_ids: Array, deterministic: bool
    ) -> Array:
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(position_ids)
            + self.token_type_embeddings(token_type_ids)
        )
        if self.config.post_ln:
            x = self.ln(x)
        x = self.dropout(x, deterministic=deterministic)
        return _constrain(x)

    def attend(self, x: Array) -> Array:
        """Logits against the (tied) word-embedding matrix."""
        return self.word_embeddings.attend(x)


class HeadProjection(nn.Module):
    """Kernel + bias contracted by einsum, for the per-head q/k/v and output projections.

    (flax's DenseGeneral initialises a flattened 2-D kernel and then applies the 3-D logical
    constraint to it when a mesh is active, which fails; an explicit einsum also keeps the
    [embed, heads, kv] layout that checkpoint converters map onto.) :meth:`weights` hands the
    cast kernel and bias to :class:`SelfAttention`'s CPU path, which folds the softmax scale
    into the q kernel and projects into its own layout without changing the stored params.
    """

    config: EncoderConfig
    equation: str
    kernel_shape: tuple[int, ...]
    kernel_axes: tuple[str, ...]
    bias_shape: tuple[int, ...]
    bias_axes: tuple[str, ...]

    def setup(self) -> None:
        cfg = self.config
        self.kernel = self.param("kernel", _partitioned(_init(cfg), self.kernel_axes), self.kernel_shape,
                                 cfg.weight_dtype)
        self.bias = self.param("bias", _partitioned(nn.initializers.zeros, self.bias_axes), self.bias_shape,
                               cfg.weight_dtype)

    def weights(self) -> tuple[Array, Array]:
        dtype = self.config.compute_dtype
        return self.kernel.astype(dtype), self.bias.astype(dtype)

    def __call__(self, x: Array) -> Array:
        kernel, bias = self.weights()
        return _project(self.config, self.equation, x.astype(kernel.dtype), kernel) + bias


# Activation names of q/k/v and the attention output in the two layouts.
BSND = ("activation_batch", "activation_length", "activation_heads", "activation_kv")
BNSD = ("activation_batch", "activation_heads", "activation_length", "activation_kv")


class SelfAttention(nn.Module):
    """Multi-head self-attention; the path depends on the target platform (``cfg.platform``).

    * GPU/TPU: q/k/v as [batch, seq, heads, kv] into ``jax.nn.dot_product_attention`` (cuDNN's
      fused flash attention on GPU with bf16).
    * CPU, and attention-prob dropout anywhere: :meth:`_spelled_out`, in the [batch, heads, seq,
      kv] layout the batched score matmuls want (XLA:CPU transposes operands whose batch dims
      are not leading: the old [batch, seq, heads, kv] einsums cost 1.7x the CPU time per
      attention layer at MiniLM's predict shape; benchmarks/RESULTS.md, issue 26).
    """

    config: EncoderConfig

    def setup(self) -> None:
        cfg = self.config
        proj = lambda name: HeadProjection(  # noqa: E731
            cfg, "bsh,hnd->bsnd", (cfg.hidden_size, cfg.num_heads, cfg.kv_dim),
            ("embed", "heads", "kv"), (cfg.num_heads, cfg.kv_dim), ("heads", "kv"), name=name,
        )
        self.query, self.key, self.value = proj("query"), proj("key"), proj("value")
        self.out = HeadProjection(
            cfg, "bsnd,ndh->bsh", (cfg.num_heads, cfg.kv_dim, cfg.hidden_size),
            ("heads", "kv", "embed"), (cfg.hidden_size,), ("embed",), name="out",
        )
        self.dropout = nn.Dropout(cfg.attention_dropout_rate)

    def __call__(self, x: Array, mask: Array | None, deterministic: bool) -> Array:
        cfg = self.config
        use_dropout = not deterministic and cfg.attention_dropout_rate > 0.0
        if use_dropout or _use_einsum_attention(cfg):
            out = self._spelled_out(x, mask, use_dropout, rows_first=deterministic)
        else:
            q = checkpoint_name(nn.with_logical_constraint(self.query(x), BSND), "query_proj")
            k = checkpoint_name(nn.with_logical_constraint(self.key(x), BSND), "key_proj")
            v = checkpoint_name(nn.with_logical_constraint(self.value(x), BSND), "value_proj")
            out = jax.nn.dot_product_attention(q, k, v, mask=mask, implementation=cfg.attention_impl)
            out = self.out(nn.with_logical_constraint(out, BSND))
        return checkpoint_name(_constrain(out), "attention_out")

    def _spelled_out(self, x: Array, mask: Array | None, use_dropout: bool, rows_first: bool = False) -> Array:
        """Attention as matmuls + softmax, in the [batch, heads, seq, kv] layout throughout.

        * q/k/v are projected straight into [batch, heads, seq, kv]: no transposing copies
          between projection and scores. (One einsum against the three kernels stacked at
          compute time measured no faster on CPU: the stack copies 3 H^2 weights per call.)
        * 1/sqrt(kv) is folded into the q kernel and bias (a [H, N, D] multiply instead of one
          over every activation).
        * Softmax normalisation is deferred (:func:`_attention_core`).
        * ``rows_first`` (inference): q/k/v as plain ``[B*S, H] x [H, N*D]`` matmuls held behind an
          optimization barrier, then moved to [B, N, S, D] with the bias. Left to itself XLA:CPU
          computes the einsum's transpose (``W^T x^T``, after a transposing copy of x) and copies
          each result into [B, N, S, D]; the row form cut the MiniLM forward's copies from 118 to
          48 ms and predict on long notes by 10% (benchmarks/RESULTS.md, issue 26). The scores
          are then computed a block of batch rows at a time, sized to stay in cache
          (:func:`_score_rows_per_block`).
        """
        cfg = self.config
        dtype = cfg.compute_dtype
        scale = jnp.asarray(1.0 / cfg.kv_dim**0.5, dtype)
        (wq, bq), (wk, bk), (wv, bv) = self.query.weights(), self.key.weights(), self.value.weights()
        x = x.astype(dtype)
        weights = ((wq * scale, bq * scale), (wk, bk), (wv, bv))
        if rows_first:
            batch, seq, hidden = x.shape
            rows = x.reshape(batch * seq, hidden)
            ys = jax.lax.optimization_barrier(tuple(_project(cfg, "mh,hk->mk", rows, w.reshape(hidden, -1))
                                                    for w, _ in weights))
            q, k, v = ((y + b.reshape(-1)).reshape(batch, seq, cfg.num_heads, cfg.kv_dim).transpose(0, 2, 1, 3)
                       for y, (_, b) in zip(ys, weights))
        else:
            q, k, v = (_project(cfg, "bsh,hnd->bnsd", x, w) + b[:, None, :] for w, b in weights)
        q, k, v = (checkpoint_name(nn.with_logical_constraint(t, BNSD), name)
                   for t, name in zip((q, k, v), ("query_proj", "key_proj", "value_proj")))
        dropout = (lambda p: self.dropout(p, deterministic=False)) if use_dropout else None
        rows = q.shape[0]
        if rows_first and fp32_cpu_inference(cfg):
            rows = _score_rows_per_block(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        if rows < q.shape[0]:
            out = _attention_in_row_blocks(q, k, v, mask, rows)
        else:
            out = _attention_core(q, k, v, mask, dropout)
        wo, bo = self.out.weights()
        out = nn.with_logical_constraint(out, BNSD)
        return _project(cfg, "bnsd,ndh->bsh", out, wo) + bo


def _attention_core(q: Array, k: Array, v: Array, mask: Array | None,
                    dropout: Callable[[Array], Array] | None = None) -> Array:
    """softmax(q k^T, masked) v on [batch, heads, seq, kv] (q already scaled), normalised late.

    ``exp(logits - max) @ v`` is divided by the row sums afterwards: the divide runs over
    [.., q, kv] instead of the [.., q, k] probabilities (8x fewer elements at 256 positions and
    head dim 32). Attention-prob dropout commutes with the per-row divide, so training with
    dropout keeps the same distribution.
    """
    logits = jnp.einsum("bnqd,bnkd->bnqk", q, k, preferred_element_type=jnp.float32)
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    # Shift by the row max for range only; softmax is invariant to it, so no gradient flows.
    unnormalised = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))
    denominator = unnormalised.sum(-1, keepdims=True)
    if dropout is not None:
        unnormalised = dropout(unnormalised)
    out = jnp.einsum("bnqk,bnkd->bnqd", unnormalised.astype(q.dtype), v, preferred_element_type=jnp.float32)
    return (out / denominator).astype(q.dtype)


# Scores of one block of batch rows, [rows, heads, q, k] fp32, sized to stay in cache (L2 + a
# share of L3 on the CPUs measured): see _score_rows_per_block.
SCORE_BLOCK_BYTES = 4 * 2**20


def _score_rows_per_block(batch: int, heads: int, q_len: int, k_len: int) -> int:
    """Batch rows per block of the CPU inference attention: the largest divisor of ``batch``
    whose fp32 scores fit :data:`SCORE_BLOCK_BYTES` (at least 1); ``batch`` means one block.

    Measured on the whole MiniLM forward (6 x H384, 12 heads), Eigen dots, 2 cores: 32 x 256
    one row at a time (3 MiB of scores) 1,223 vs 1,279 ms; 64 x 128, 2-8 rows 1,144-1,150 vs
    1,184 ms; 256 x 32 and 8 x 192 within noise; GatorTron-base 4 x 512 (16.8 MiB a row)
    633 vs 638 ms (benchmarks/RESULTS.md, issue 26). Only fp32 CPU inference blocks
    (``core.compiler_options.fp32_cpu_inference``): with YNNPACK's dots (bf16, int8) the same
    blocking made the MiniLM forward 1.3x slower.
    """
    fit = max(1, SCORE_BLOCK_BYTES // (heads * q_len * k_len * 4))
    return max(d for d in range(1, min(batch, fit) + 1) if batch % d == 0)


def _attention_in_row_blocks(q: Array, k: Array, v: Array, mask: Array | None, rows: int) -> Array:
    """:func:`_attention_core` a block of ``rows`` batch rows at a time (``lax.map``, inference).

    The [B, N, S, S] scores of a whole batch (100 MB at MiniLM's 32 x 256) go through memory
    four times (dot, mask, max, exp); a block's scores stay in cache between those passes.
    """
    batch = q.shape[0]
    blocks = lambda t: t.reshape(batch // rows, rows, *t.shape[1:])  # noqa: E731
    if mask is None:
        out = jax.lax.map(lambda a: _attention_core(*a, None), (blocks(q), blocks(k), blocks(v)))
    else:
        mask = jnp.broadcast_to(mask, (batch,) + mask.shape[1:])
        out = jax.lax.map(lambda a: _attention_core(*a), (blocks(q), blocks(k), blocks(v), blocks(mask)))
    return out.reshape(q.shape)


def _use_einsum_attention(cfg: EncoderConfig) -> bool:
    """``"einsum"`` forces the spelled-out path; ``None`` (auto) picks it when the target
    platform is CPU only, so GPUs keep cuDNN's fused kernel."""
    impl = cfg.attention_impl
    return impl == "einsum" or (impl is None and cfg.platform == "cpu")


class Mlp(nn.Module):
    config: EncoderConfig

    @nn.compact
    def __call__(self, x: Array) -> Array:
        cfg = self.config
        dot_general = (int8_dot_general if cfg.matmul_quantization
                       else _f32_accumulating_dot_general if _accumulate_in_f32(cfg)
                       else None)  # None: flax's lax.dot_general
        h = nn.Dense(
            cfg.mlp_dim,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weight_dtype,
            kernel_init=_partitioned(_init(cfg), ("embed", "mlp")),
            bias_init=_partitioned(nn.initializers.zeros, ("mlp",)),
            dot_general=dot_general,
            name="wi",
        )(x)
        h = gelu(nn.with_logical_constraint(h, ("activation_batch", "activation_length", "activation_mlp")))
        return nn.Dense(
            cfg.hidden_size,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weight_dtype,
            kernel_init=_partitioned(_init(cfg), ("mlp", "embed")),
            bias_init=_partitioned(nn.initializers.zeros, ("embed",)),
            dot_general=dot_general,
            name="wo",
        )(h)


class Block(nn.Module):
    """One transformer layer. Returns ``(x, None)`` so it can be the body of ``nn.scan``."""

    config: EncoderConfig

    @nn.compact
    def __call__(self, x: Array, mask: Array | None, deterministic: bool) -> tuple[Array, None]:
        cfg = self.config
        drop = nn.Dropout(cfg.dropout_rate)
        attention = SelfAttention(cfg, name="attention")
        mlp = Mlp(cfg, name="mlp")
        if cfg.post_ln:
            x = _layer_norm(cfg, "attention_ln")(x + drop(attention(x, mask, deterministic), deterministic))
            x = _layer_norm(cfg, "mlp_ln")(x + drop(mlp(x), deterministic))
        else:
            h = attention(_layer_norm(cfg, "attention_ln")(x), mask, deterministic)
            x = x + drop(h, deterministic)
            x = x + drop(mlp(_layer_norm(cfg, "mlp_ln")(x)), deterministic)
        return _constrain(x), None


def _remat_policy(name: str) -> Any:
    policies = jax.checkpoint_policies
    return {
        "full": policies.nothing_saveable,
        "dots": policies.checkpoint_dots,
        "dots_no_batch": policies.dots_with_no_batch_dims_saveable,
        "qkv_proj": policies.save_only_these_names("query_proj", "key_proj", "value_proj", "attention_out"),
    }[name]


def attention_mask(segment_ids: Array | None) -> Array | None:
    """Boolean [batch, 1, q, k] mask: a token attends only within its own segment.

    ``segment_ids`` is 0 for padding and 1..k for the packed documents of a row, so packed
    documents never see each other and real tokens never see padding.
    """
    if segment_ids is None:
        return None
    return (segment_ids[:, None, :, None] == segment_ids[:, None, None, :])


class Encoder(nn.Module):
    """Embeddings → N blocks → final LN (pre-LN) → optional pooler."""

    config: EncoderConfig

    def setup(self) -> None:
        cfg = self.config
        self.embeddings = Embeddings(cfg)
        block: Any = Block
        if cfg.remat_policy != "none":
            block = nn.remat(
                Block, policy=_remat_policy(cfg.remat_policy), static_argnums=(3,), prevent_cse=not cfg.scan_layers
            )
        if cfg.scan_layers:
            self.layers = nn.scan(
                block,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(nn.broadcast, nn.broadcast),
                length=cfg.num_layers,
                unroll=min(cfg.scan_unroll, cfg.num_layers),
                metadata_params={nn.PARTITION_NAME: "layers"},
            )(cfg)
        else:
            self.layers = [block(cfg) for _ in range(cfg.num_layers)]
        if not cfg.post_ln:
            self.final_ln = _layer_norm(cfg, "final_ln")
        if cfg.use_pooler:
            self.pooler = nn.Dense(
                cfg.hidden_size,
                dtype=cfg.compute_dtype,
                param_dtype=cfg.weight_dtype,
                kernel_init=_partitioned(_init(cfg), ("embed", "mlp")),
                bias_init=_partitioned(nn.initializers.zeros, ("mlp",)),
            )

    def __call__(
        self,
        input_ids: Array,
        token_type_ids: Array | None = None,
        position_ids: Array | None = None,
        segment_ids: Array | None = None,
        deterministic: bool = True,
    ) -> tuple[Array, Array | None]:
        """Returns (last hidden states [B, L, H], pooled [B, H] or None)."""
        if self.config.matmul_quantization and not deterministic:
            raise ConfigError(f"EncoderConfig.matmul_quantization={self.config.matmul_quantization!r} is for "
                              "inference only (rounding has no gradient): unset it to train")
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        if position_ids is None:
            position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)
        x = self.embeddings(input_ids, token_type_ids, position_ids, deterministic)
        mask = attention_mask(segment_ids)
        if self.config.scan_layers:
            x, _ = self.layers(x, mask, deterministic)
        else:
            for layer in self.layers:
                x, _ = layer(x, mask, deterministic)
        if not self.config.post_ln:
            x = self.final_ln(x)
        pooled = None
        if self.config.use_pooler:
            pooled = jnp.tanh(self.pooler(x[:, 0]))
        return x, pooled

    def attend(self, x: Array) -> Array:
        return self.embeddings.attend(x)
