"""Sequence / pair classification and regression on the encoder (RE, NLI, STS).

Representations (``representation``):

* ``"pooled"`` — the encoder's pooler (tanh dense over [CLS]), as BERT fine-tuning does;
* ``"cls"`` — the final hidden state at position 0, no pooler;
* ``"entity_start"`` — the hidden states at the two entity-marker start tokens
  (``marker_positions[:, 0]`` = ``[E1]``, ``[:, 1]`` = ``[E2]``), concatenated (``[B, 2H]``),
  the "entity start" representation of Baldini Soares et al. (2019) used for RE.

Then dropout → dense to ``num_labels`` logits (``num_labels=1``: a regressor for STS, output
``[B]``). Params: ``{"encoder": <Encoder tree>, "classifier": {kernel [embed, labels], bias
[labels]}}`` — the ``encoder`` subtree is the one in ``EncoderForMLM`` so pretrained weights
load unchanged. Losses are pure functions returning ``(sum, weight)`` like
``token_classification.forward_loss``, so sums can be all-reduced before dividing.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gatortron_jax.core.errors import ConfigError
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.encoder import Encoder, _init, _partitioned

Array = jax.Array
REPRESENTATIONS = ("pooled", "cls", "entity_start")


def gather_positions(hidden: Array, positions: Array) -> Array:
    """``hidden[b, positions[b, k]]`` → ``[B, K, H]``."""
    return jnp.take_along_axis(hidden, positions[..., None].astype(jnp.int32), axis=1)


class EncoderForSequenceClassification(nn.Module):
    config: EncoderConfig
    num_labels: int  # 1: regression
    representation: str = "pooled"
    classifier_dropout: float | None = None  # None: the encoder's dropout_rate

    def setup(self) -> None:
        cfg = self.config
        if self.representation not in REPRESENTATIONS:
            raise ConfigError(f"representation {self.representation!r}: expected one of {REPRESENTATIONS}")
        if self.representation == "pooled" and not cfg.use_pooler:
            raise ConfigError("representation='pooled' needs EncoderConfig.use_pooler=True (or use 'cls')")
        if self.num_labels < 1:
            raise ConfigError(f"num_labels must be >= 1, got {self.num_labels}")
        self.encoder = Encoder(cfg)
        rate = cfg.dropout_rate if self.classifier_dropout is None else self.classifier_dropout
        self.dropout = nn.Dropout(rate)
        self.classifier = nn.Dense(
            self.num_labels,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weight_dtype,
            kernel_init=_partitioned(_init(cfg), ("embed", "labels")),
            bias_init=_partitioned(nn.initializers.zeros, ("labels",)),
        )

    def represent(self, hidden: Array, pooled: Array | None, marker_positions: Array | None) -> Array:
        if self.representation == "pooled":
            rep = pooled
        elif self.representation == "cls":
            rep = hidden[:, 0]
        else:
            if marker_positions is None:
                raise ConfigError("representation='entity_start' needs marker_positions [B, 2]")
            g = gather_positions(hidden, marker_positions)
            rep = g.reshape(g.shape[0], -1)
        return nn.with_logical_constraint(rep, ("activation_batch", "activation_embed"))

    def __call__(
        self,
        input_ids: Array,
        token_type_ids: Array | None = None,
        position_ids: Array | None = None,
        segment_ids: Array | None = None,
        marker_positions: Array | None = None,
        deterministic: bool = True,
    ) -> Array:
        """Logits ``[B, num_labels]`` (float32), or scores ``[B]`` when ``num_labels == 1``."""
        hidden, pooled = self.encoder(input_ids, token_type_ids, position_ids, segment_ids, deterministic)
        rep = self.dropout(self.represent(hidden, pooled, marker_positions), deterministic=deterministic)
        out = self.classifier(rep).astype(jnp.float32)
        return out[:, 0] if self.num_labels == 1 else out


def cross_entropy_loss(logits: Array, labels: Array, weights: Array | None = None) -> tuple[Array, Array]:
    """(summed negative log-likelihood, summed weight) for integer ``labels`` [B]."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    w = jnp.ones_like(nll) if weights is None else weights.astype(jnp.float32)
    return jnp.sum(nll * w), jnp.sum(w)


def mse_loss(predictions: Array, targets: Array, weights: Array | None = None) -> tuple[Array, Array]:
    """(summed squared error, summed weight)."""
    err = jnp.square(predictions.astype(jnp.float32) - targets.astype(jnp.float32))
    w = jnp.ones_like(err) if weights is None else weights.astype(jnp.float32)
    return jnp.sum(err * w), jnp.sum(w)


def forward_loss(model: EncoderForSequenceClassification, params, batch: dict, rng: Array | None) -> tuple[Array, Array]:
    """(loss sum, weight): cross-entropy, or MSE when ``num_labels == 1``. ``batch``:
    ``input_ids``, ``segment_ids`` (and optional ``token_type_ids``, ``marker_positions``,
    ``weights``), ``labels`` (int) or float scores. Dropout on when ``rng`` is given."""

    def fn(module, batch):
        out = module(batch["input_ids"], batch.get("token_type_ids"), None, batch.get("segment_ids"),
                     batch.get("marker_positions"), deterministic=rng is None)
        if module.num_labels == 1:
            return mse_loss(out, batch["labels"], batch.get("weights"))
        return cross_entropy_loss(out, batch["labels"], batch.get("weights"))

    return nn.apply(fn, model)({"params": params}, batch, rngs=None if rng is None else {"dropout": rng})


def predict(model: EncoderForSequenceClassification, params, batch: dict) -> Array:
    """Predicted label ids [B], or scores [B] for a regressor."""

    def fn(module, batch):
        out = module(batch["input_ids"], batch.get("token_type_ids"), None, batch.get("segment_ids"),
                     batch.get("marker_positions"), deterministic=True)
        return out if module.num_labels == 1 else jnp.argmax(out, axis=-1)

    return nn.apply(fn, model)({"params": params}, batch)
