"""Extractive QA on the encoder: a dense layer to 2 outputs per token → start and end logits.

Params: ``{"encoder": <Encoder tree>, "qa_outputs": {kernel [embed, labels], bias [labels]}}``.
Positions where ``context_mask`` is False (question, specials, padding — but keep [CLS] at 0 for
"no answer") get a large negative logit. Unanswerable examples and windows that do not contain
the answer are trained with start = end = 0 ([CLS]), as in BERT-SQuAD v2.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.encoder import Encoder, _init, _partitioned

Array = jax.Array
NEG_INF = -1e9


class EncoderForQuestionAnswering(nn.Module):
    config: EncoderConfig

    def setup(self) -> None:
        cfg = self.config
        self.encoder = Encoder(cfg)
        self.qa_outputs = nn.Dense(
            2,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weight_dtype,
            kernel_init=_partitioned(_init(cfg), ("embed", "labels")),
            bias_init=_partitioned(nn.initializers.zeros, ("labels",)),
        )

    def __call__(
        self,
        input_ids: Array,
        token_type_ids: Array | None = None,
        position_ids: Array | None = None,
        segment_ids: Array | None = None,
        context_mask: Array | None = None,
        deterministic: bool = True,
    ) -> tuple[Array, Array]:
        """(start_logits, end_logits), each ``[B, L]`` float32."""
        hidden, _ = self.encoder(input_ids, token_type_ids, position_ids, segment_ids, deterministic)
        logits = self.qa_outputs(hidden).astype(jnp.float32)
        logits = nn.with_logical_constraint(logits, ("activation_batch", "activation_length", None))
        start, end = logits[..., 0], logits[..., 1]
        if context_mask is not None:
            start = jnp.where(context_mask, start, NEG_INF)
            end = jnp.where(context_mask, end, NEG_INF)
        return start, end


def span_loss(start_logits: Array, end_logits: Array, start_positions: Array, end_positions: Array,
              weights: Array | None = None) -> tuple[Array, Array]:
    """(summed loss, summed weight) with loss = (CE(start) + CE(end)) / 2 per example."""

    def ce(logits, pos):
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        return -jnp.take_along_axis(logp, pos[:, None].astype(jnp.int32), axis=-1)[:, 0]

    per = 0.5 * (ce(start_logits, start_positions) + ce(end_logits, end_positions))
    w = jnp.ones_like(per) if weights is None else weights.astype(jnp.float32)
    return jnp.sum(per * w), jnp.sum(w)


def forward_loss(model: EncoderForQuestionAnswering, params, batch: dict, rng: Array | None) -> tuple[Array, Array]:
    """``batch``: input_ids, token_type_ids, segment_ids, context_mask (optional),
    start_positions, end_positions, weights (optional)."""

    def fn(module, batch):
        s, e = module(batch["input_ids"], batch.get("token_type_ids"), None, batch.get("segment_ids"),
                      batch.get("context_mask"), deterministic=rng is None)
        return span_loss(s, e, batch["start_positions"], batch["end_positions"], batch.get("weights"))

    return nn.apply(fn, model)({"params": params}, batch, rngs=None if rng is None else {"dropout": rng})
