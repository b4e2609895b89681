"""Token classification (NER, de-identification) for the fine-tuning loop.

Notes are tokenized with character offsets and cut into windows (``finetuning.windowing``);
entity spans become BIO/BIOES labels on the tokens (what cannot be encoded is counted and
logged, never silent). The head is ``EncoderForTokenClassification`` (softmax or CRF). Dev
row predictions are merged back per token (each token from its most central window) into
character-offset entities and scored with strict + lenient entity F1 (strict micro F1 is the
model-selection metric).

config.json section ``ner``: labels, label_scheme, use_crf, max_length, overlap, task,
output_format, label_all_subwords — everything ``inference.ner_predict.NERPredictor`` needs.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np

from gatortron_jax.annotations.documents import Document
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.evaluation.ner_metrics import entity_scores
from gatortron_jax.finetuning import ner_tasks, windowing
from gatortron_jax.finetuning.adapters.base import Adapter, Prepared
from gatortron_jax.finetuning.config import NERDataConfig
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.token_classification import EncoderForTokenClassification, forward_loss, predict_labels

log = logging.getLogger("gatortron_jax")


def score_documents(gold: Sequence[Document], pred: Sequence[Document]) -> dict[str, Any]:
    """Strict + lenient entity scores (strict micro F1 at ``["strict"]["micro"]["f1"]``)."""
    return entity_scores(list(gold), list(pred))


def strict_f1(scores: dict[str, Any]) -> float:
    return float(scores["strict"]["micro"]["f1"])


class TokenClassificationAdapter(Adapter):
    section = "ner"
    data_config_name = "NERDataConfig"

    def prepare(self, data: NERDataConfig, train, tokenizer, enc_config: EncoderConfig) -> Prepared:
        all_subwords = data.all_subwords(train.use_crf)
        if train.use_crf and not all_subwords:
            raise ConfigError("NERTrainConfig.use_crf=True needs NERDataConfig.label_all_subwords=True (a CRF "
                              "scores every token; first-subword labelling leaves most of them unlabelled)")
        task = ner_tasks.get_ner_task(data.task, data.data_dir, data.splits())
        train_docs = task.documents("train", strict=data.strict)
        dev_docs = task.documents("dev", strict=data.strict)
        types = sorted({e.type for d in train_docs for e in d.entities})
        if not types:
            raise InputError(f"task {task.name}: the train split has no entities")
        labels = windowing.label_list(types, data.label_scheme)
        label_to_id = {l: i for i, l in enumerate(labels)}
        encode = dict(tokenizer=tokenizer, max_length=data.max_length, overlap=data.overlap,
                      label_to_id=label_to_id, scheme=data.label_scheme,
                      first_subword=not all_subwords)
        train_enc, train_stats = windowing.encode_documents(train_docs, **encode)
        dev_enc, dev_stats = windowing.encode_documents(dev_docs, **encode)
        for split, stats in (("train", train_stats), ("dev", dev_stats)):
            lost = stats.overlapping + stats.no_tokens + stats.unknown_type
            level = logging.WARNING if lost or stats.boundary_inside_token else logging.INFO
            log.log(level, "labels %s: %s", split, stats.as_dict())
        train_feats, train_rows = windowing.window_features(train_enc, tokenizer, data.max_length)
        dev_feats, dev_rows = windowing.window_features(dev_enc, tokenizer, data.max_length)
        log.info("task %s: %d train docs → %d windows (%d tokens), %d dev docs; %d labels", task.name,
                 len(train_docs), len(train_rows), int(train_feats["label_mask"].sum()), len(dev_docs), len(labels))
        section = {"labels": labels, "label_scheme": data.label_scheme, "use_crf": train.use_crf,
                   "max_length": data.max_length, "overlap": data.overlap, "task": task.name,
                   "output_format": task.output_format, "label_all_subwords": all_subwords}
        data_info = {
            "task": task.name, "data_dir": task.data_dir,
            "fingerprints": {"train": ner_tasks.documents_fingerprint(train_docs),
                             "dev": ner_tasks.documents_fingerprint(dev_docs)},
            "documents": {"train": len(train_docs), "dev": len(dev_docs)},
            "label_stats": {"train": train_stats.as_dict(), "dev": dev_stats.as_dict()},
        }
        return Prepared(train_feats, dev_feats, (dev_docs, dev_enc, dev_rows), section, data_info, len(labels))

    def build_model(self, enc_config: EncoderConfig, section: Mapping[str, Any], train=None):
        return EncoderForTokenClassification(
            enc_config, len(section["labels"]), use_crf=bool(section["use_crf"]),
            classifier_dropout=None if train is None else train.classifier_dropout,
        )

    def loss_of(self, model, params, batch, rng):
        return forward_loss(model, params, batch, rng)

    def packs(self, train) -> bool:
        return bool(train.pack_rows) and not train.use_crf  # a CRF's chain would cross segments

    def predict_of(self, model, params, batch):
        return predict_labels(model, params, batch)

    def score(self, prepared: Prepared, outputs: np.ndarray) -> dict[str, Any]:
        dev_docs, dev_enc, dev_rows = prepared.dev
        pred = windowing.predictions_to_documents(dev_enc, dev_rows, outputs, prepared.section["labels"])
        scores = score_documents(dev_docs, pred)
        return {"metric": "strict_f1", "value": strict_f1(scores), **scores}

    def metric_label(self, metric: str) -> str:
        return "strict F1"

    def result_extra(self, best_value: float) -> dict[str, Any]:
        return {"best_dev_strict_f1": best_value}

    def describe_model(self, prepared: Prepared, train) -> str:
        return f"{prepared.num_outputs} labels, {'CRF' if train.use_crf else 'softmax'}"
