"""Task heads on top of the encoder.

The MLM head matches Megatron/BERT: dense → GELU → LN → logits against the tied word
embeddings plus an output bias. It can run on gathered positions only ("sparse
predictions"): at vocab 50k most MLM FLOPs are in this projection and only ~15% of positions
carry loss.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.encoder import Encoder, _constrain, _init, _layer_norm, _partitioned, gelu

Array = jax.Array


@jax.custom_vjp
def add_bias_matvec_grad(x: Array, bias: Array) -> Array:
    """``x + bias`` (bias on the last axis) whose bias gradient is a matrix-vector product.

    The gradient of a broadcast add is a sum over every leading axis. XLA:CPU runs that
    column reduction ~70x slower than the same sum written as ``ones @ g`` (measured: 324 ms vs
    4.6 ms for [1024, 50176]); for the MLM output bias it was 522 ms of op time in a 2.7 s dense
    train step at vocab 50176 (XLA ran it beside a matmul, so wall time moved ~1%, CPU time
    ~18%; benchmarks/RESULTS.md, profile_step.py). Same values, same sharding rules.
    """
    return x + bias


def _add_bias_fwd(x: Array, bias: Array) -> tuple[Array, None]:
    return x + bias, None


def _add_bias_bwd(_: None, g: Array) -> tuple[Array, Array]:
    rows = g.reshape(-1, g.shape[-1])
    return g, jnp.einsum("t,tv->v", jnp.ones((rows.shape[0],), g.dtype), rows)


add_bias_matvec_grad.defvjp(_add_bias_fwd, _add_bias_bwd)


def add_output_bias(logits: Array, bias: Array, platform: str = "cpu") -> Array:
    """The vocab bias add: the matvec-gradient form on CPU, a plain add elsewhere (GPU/TPU
    reductions are fast and the plain form lets XLA fuse them). ``platform`` is the compile
    target (``EncoderConfig.platform``), not necessarily this process's backend."""
    bias = bias.astype(logits.dtype)
    return add_bias_matvec_grad(logits, bias) if platform == "cpu" else logits + bias


class MLMHead(nn.Module):
    config: EncoderConfig

    @nn.compact
    def __call__(self, hidden: Array, encoder: Encoder) -> Array:
        cfg = self.config
        h = nn.Dense(
            cfg.hidden_size,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weight_dtype,
            kernel_init=_partitioned(_init(cfg), ("embed", "mlp")),
            bias_init=_partitioned(nn.initializers.zeros, ("mlp",)),
            name="transform",
        )(hidden)
        # Constrain before the LN: left to propagation, XLA shards the LN's feature dim over
        # `tensor` and, on a (2,2,2) mesh, produced wrong gradients (tests/test_sharding.py).
        h = _layer_norm(cfg, "transform_ln")(gelu(_constrain(h)))
        logits = encoder.attend(h)
        bias = self.param(
            "output_bias", _partitioned(nn.initializers.zeros, ("vocab",)), (cfg.vocab_size,), cfg.weight_dtype
        )
        logits = add_output_bias(logits, bias, cfg.platform)
        return nn.with_logical_constraint(logits, ("activation_batch", "activation_length", "activation_vocab"))


class EncoderForMLM(nn.Module):
    """Encoder + MLM head: the pretraining model."""

    config: EncoderConfig

    def setup(self) -> None:
        self.encoder = Encoder(self.config)
        self.mlm_head = MLMHead(self.config)

    def __call__(
        self,
        input_ids: Array,
        token_type_ids: Array | None = None,
        position_ids: Array | None = None,
        segment_ids: Array | None = None,
        mlm_positions: Array | None = None,
        deterministic: bool = True,
    ) -> tuple[Array, Array]:
        """Returns (logits, hidden). Logits are [B, L, V], or [B, P, V] at ``mlm_positions``."""
        hidden, _ = self.encoder(input_ids, token_type_ids, position_ids, segment_ids, deterministic)
        selected = hidden
        if mlm_positions is not None:
            selected = jnp.take_along_axis(hidden, mlm_positions[..., None], axis=1)
        return self.mlm_head(selected, self.encoder), hidden
