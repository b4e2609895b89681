"""The adapter interface the fine-tuning loop is written against (see ``adapters/__init__``)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from gatortron_jax.models.config import EncoderConfig


@dataclasses.dataclass
class Prepared:
    """A task's data, encoded once before training."""

    train_features: dict[str, np.ndarray]  # rows for the train step (shuffled per epoch)
    dev_features: dict[str, np.ndarray]  # rows for the dev predict pass
    dev: Any  # whatever ``score`` needs to turn dev row outputs into a metric
    section: dict[str, Any]  # the adapter's config.json section (read back at inference)
    data_info: dict[str, Any]  # config.json "data": task, data dir, fingerprints, read/encoding stats
    num_outputs: int | None = None  # labels (classification), 1 (regression), None (QA)


class Adapter:
    """Base class: one subclass per task kind. Methods are pure given their arguments."""

    section: str = ""  # config.json key of a model dir fine-tuned with this adapter
    data_config_name: str = ""  # for error messages: the gin name of the data config

    def prepare(self, data: Any, train: Any, tokenizer: Any, enc_config: EncoderConfig) -> Prepared:
        raise NotImplementedError

    def build_model(self, enc_config: EncoderConfig, section: Mapping[str, Any], train: Any = None) -> Any:
        """The head on the encoder; from the section alone at inference (``train`` None)."""
        raise NotImplementedError

    def loss_of(self, model, params, batch: dict, rng) -> tuple[Any, Any]:
        raise NotImplementedError

    def finalize_params(self, params: Any, prepared: Prepared) -> Any:
        """The params written as the model (best checkpoint): the trained ones, unless the adapter
        trained in a transformed space it folds back here (a regressor's standardised targets)."""
        return params

    def packs(self, train: Any) -> bool:
        """Whether training batches may be packed (``core.batching.pack_batch``): only losses
        that are sums over tokens with per-segment attention (not a pooled row or a CRF chain)."""
        return False

    def predict_of(self, model, params, batch: dict) -> Any:
        raise NotImplementedError

    def score(self, prepared: Prepared, outputs: np.ndarray) -> dict[str, Any]:
        """``{"metric": name, "value": number, ...details}`` for the dev pass's row outputs."""
        raise NotImplementedError

    def metric_label(self, metric: str) -> str:
        return metric

    def result_extra(self, best_value: float) -> dict[str, Any]:
        """Kind-specific result keys kept for callers that read them (e.g. best_dev_strict_f1)."""
        return {}

    def describe_model(self, prepared: Prepared, train: Any) -> str:
        return ""
