"""Token classification (NER) on the encoder: dropout + linear head, optional CRF on top.

Params: ``{"encoder": <Encoder tree>, "classifier": {kernel [embed, labels], bias [labels]},
"crf": {transitions [labels, labels], start [labels], end [labels]}}`` — the ``encoder``
subtree is exactly the one in ``EncoderForMLM``, so a pretrained checkpoint's encoder loads
into it unchanged.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gatortron_jax.models import crf as crf_lib
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.encoder import Encoder, _init, _partitioned

Array = jax.Array


class CRFParams(nn.Module):
    num_labels: int

    @nn.compact
    def __call__(self) -> tuple[Array, Array, Array]:
        k = self.num_labels
        zeros = nn.initializers.zeros
        transitions = self.param("transitions", _partitioned(zeros, ("labels", None)), (k, k), jnp.float32)
        start = self.param("start", _partitioned(zeros, ("labels",)), (k,), jnp.float32)
        end = self.param("end", _partitioned(zeros, ("labels",)), (k,), jnp.float32)
        return transitions, start, end


class EncoderForTokenClassification(nn.Module):
    config: EncoderConfig
    num_labels: int
    use_crf: bool = False
    classifier_dropout: float | None = None  # None: the encoder's dropout_rate

    def setup(self) -> None:
        cfg = self.config
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
        if self.use_crf:
            self.crf = CRFParams(self.num_labels)

    def __call__(
        self,
        input_ids: Array,
        token_type_ids: Array | None = None,
        position_ids: Array | None = None,
        segment_ids: Array | None = None,
        deterministic: bool = True,
    ) -> Array:
        """Per-token label logits (emissions) ``[B, L, num_labels]`` in float32."""
        hidden, _ = self.encoder(input_ids, token_type_ids, position_ids, segment_ids, deterministic)
        hidden = self.dropout(hidden, deterministic=deterministic)
        logits = self.classifier(hidden).astype(jnp.float32)
        if self.use_crf:
            self.crf()  # create the CRF params at init
        return logits

    def crf_params(self) -> tuple[Array, Array, Array]:
        return self.crf()

    def loss_sums(self, logits: Array, labels: Array, mask: Array) -> tuple[Array, Array]:
        """(summed loss, weight): token cross-entropy, or CRF negative log-likelihood per row."""
        mask = mask.astype(jnp.float32)
        if self.use_crf:
            transitions, start, end = self.crf()
            ll = crf_lib.log_likelihood(logits, labels, mask, transitions, start, end)
            return -jnp.sum(ll), jnp.sum(mask)
        logp = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
        return jnp.sum(nll * mask), jnp.sum(mask)

    def decode(self, logits: Array, mask: Array) -> Array:
        if self.use_crf:
            transitions, start, end = self.crf()
            return crf_lib.viterbi_decode(logits, mask, transitions, start, end)
        return jnp.argmax(logits, axis=-1)


def forward_loss(model: EncoderForTokenClassification, params, batch: dict, rng: Array | None) -> tuple[Array, Array]:
    """(loss sum, weight) for a batch; dropout on when ``rng`` is given."""

    def fn(module, batch):
        logits = module(batch["input_ids"], None, batch.get("position_ids"), batch["segment_ids"],
                        deterministic=rng is None)
        return module.loss_sums(logits, batch["labels"], batch["label_mask"])

    return nn.apply(fn, model)({"params": params}, batch, rngs=None if rng is None else {"dropout": rng})


def predict_labels(model: EncoderForTokenClassification, params, batch: dict) -> Array:
    def fn(module, batch):
        logits = module(batch["input_ids"], None, None, batch["segment_ids"], deterministic=True)
        return module.decode(logits, batch["label_mask"])

    return nn.apply(fn, model)({"params": params}, batch)


def token_marginals(model: EncoderForTokenClassification, logits: Array, mask: Array) -> Array:
    """``p(label | window)`` per token ``[B, L, K]``: softmax, or the CRF's exact marginals.

    CRF marginals come from the forward algorithm already used for the loss: the gradient of
    ``log Z`` with respect to the emissions is the posterior marginal of each (position, label)
    (the standard forward-backward identity), so no second recursion is written.
    """
    if not model.use_crf:
        return jax.nn.softmax(logits, axis=-1)
    transitions, start, end = model.crf()
    mask = mask.astype(jnp.float32)
    return jax.grad(lambda e: jnp.sum(crf_lib.log_partition(e, mask, transitions, start, end)))(logits)


def predict_labels_scores_marginals(model: EncoderForTokenClassification, params,
                                    batch: dict) -> tuple[Array, Array, Array]:
    """(label ids ``[B, L]``, probability of each predicted label ``[B, L]`` float32, every
    label's marginal ``[B, L, K]`` float32: what the recall operating point thresholds).

    Softmax heads: the argmax label and its softmax probability (the max token probability).
    CRF heads: the Viterbi path and, per token, the marginal probability of the label the path
    chose there (which can be below that token's most probable marginal). Entity confidence is
    the mean of these over the entity's tokens (``inference/stream.py``).
    """

    def fn(module, batch):
        logits = module(batch["input_ids"], None, None, batch["segment_ids"], deterministic=True)
        labels = module.decode(logits, batch["label_mask"])
        marginals = token_marginals(module, logits.astype(jnp.float32), batch["label_mask"])
        scores = jnp.take_along_axis(marginals, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
        return labels, scores.astype(jnp.float32), marginals.astype(jnp.float32)

    return nn.apply(fn, model)({"params": params}, batch)


def predict_labels_and_scores(model: EncoderForTokenClassification, params, batch: dict) -> tuple[Array, Array]:
    """(label ids ``[B, L]``, probability of each predicted label ``[B, L]``): see
    :func:`predict_labels_scores_marginals` (XLA drops the unused marginals)."""
    labels, scores, _ = predict_labels_scores_marginals(model, params, batch)
    return labels, scores
