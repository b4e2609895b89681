"""Sentence and pair tasks (relation extraction, NLI, STS regression) for the fine-tuning loop.

Inputs are ``[CLS] a [SEP] b [SEP]`` with token types 0/1 (single sequence ``[CLS] a [SEP]``
for RE). When a pair is longer than ``max_length`` the longer side is cut token by token; for
RE the window is moved to keep both entity markers. Every truncation is counted and logged
(``data.encoding`` in config.json), never silent. Entity markers are plain text (``[E1] …
[/E1]`` or ChemProt's ``@CHEMICAL$``/``@GENE$``); the "entity start" positions are the first
tokens at the markers' character offsets. The head is ``EncoderForSequenceClassification``
(one output for regression); the metric is the task's (ChemProt / n2c2 RE micro-F1 without the
negative label, accuracy, Pearson r).

config.json section ``sequence_task``: task, kind, metric, labels, negative_label,
representation, max_length, pair, with_null.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.evaluation import classification_metrics as cm
from gatortron_jax.finetuning import task_registry
from gatortron_jax.finetuning.adapters.base import Adapter, Prepared
from gatortron_jax.finetuning.config import TaskDataConfig
from gatortron_jax.finetuning.task_registry import ExampleSet, TaskExample
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.sequence_classification import EncoderForSequenceClassification, forward_loss, predict
from gatortron_jax.text.offsets import OffsetTokenizer

log = logging.getLogger("gatortron_jax")

SECTION = "sequence_task"  # config.json key of a fine-tuned sequence-task (or span-QA) model dir


class SequenceClassifier(EncoderForSequenceClassification):
    """``EncoderForSequenceClassification`` (same params) that initialises without markers."""

    def __call__(self, input_ids, token_type_ids=None, position_ids=None, segment_ids=None, marker_positions=None,
                 deterministic=True):
        if marker_positions is None and self.representation == "entity_start":
            marker_positions = jnp.zeros((input_ids.shape[0], 2), jnp.int32)
        return super().__call__(input_ids, token_type_ids, position_ids, segment_ids, marker_positions, deterministic)


# ----------------------------------------------------------------------------- encoding


def encode_examples(
    examples: Sequence[TaskExample], tokenizer: OffsetTokenizer, max_length: int,
    label_to_id: dict[str, int] | None, *, regression: bool = False, where: str = "",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Model features for every example, and counts of what truncation did."""
    n = len(examples)
    feats = {
        "input_ids": np.full((n, max_length), tokenizer.pad_id, np.int32),
        "token_type_ids": np.zeros((n, max_length), np.int32),
        "segment_ids": np.zeros((n, max_length), np.int32),
        "marker_positions": np.zeros((n, 2), np.int32),
        "labels": np.zeros((n,), np.float32 if regression else np.int32),
        "weights": np.ones((n,), np.float32),
    }
    stats = {"examples": n, "truncated": 0, "tokens_cut": 0, "markers_out_of_window": 0, "max_tokens_seen": 0,
             "truncated_ids": []}
    for i, ex in enumerate(examples):
        ids_a, starts_a, _ = tokenizer(ex.text_a)
        ids_b = tokenizer(ex.text_b)[0] if ex.text_b is not None else None
        la, lb = len(ids_a), (len(ids_b) if ids_b is not None else 0)
        budget = max_length - (3 if ids_b is not None else 2)
        stats["max_tokens_seen"] = max(stats["max_tokens_seen"], la + lb + (3 if ids_b is not None else 2))
        a0 = 0  # first kept token of a
        marks = None
        if ex.markers is not None:
            marks = np.searchsorted(starts_a, np.asarray(ex.markers), side="left").clip(0, max(la - 1, 0))
        if la + lb > budget:
            stats["truncated"] += 1
            stats["tokens_cut"] += la + lb - budget
            if len(stats["truncated_ids"]) < 50:
                stats["truncated_ids"].append(ex.id)
            if ids_b is not None:  # longest-first
                keep_a, keep_b = la, lb
                while keep_a + keep_b > budget:
                    if keep_a >= keep_b:
                        keep_a -= 1
                    else:
                        keep_b -= 1
                ids_a, ids_b, la, lb = ids_a[:keep_a], ids_b[:keep_b], keep_a, keep_b
            else:
                if marks is not None:
                    lo, hi = int(marks.min()), int(marks.max())
                    if hi - lo + 1 <= budget:
                        slack = budget - (hi - lo + 1)
                        a0 = max(0, min(lo - slack // 2, la - budget))
                    else:
                        stats["markers_out_of_window"] += 1
                        a0 = lo
                ids_a, la = ids_a[a0:a0 + budget], budget
        row = [tokenizer.cls_id, *ids_a.tolist(), tokenizer.sep_id]
        types = [0] * len(row)
        if ids_b is not None:
            row += [*ids_b.tolist(), tokenizer.sep_id]
            types += [1] * (lb + 1)
        k = len(row)
        feats["input_ids"][i, :k] = row
        feats["token_type_ids"][i, :k] = types
        feats["segment_ids"][i, :k] = 1
        if marks is not None:
            feats["marker_positions"][i] = np.clip(marks - a0 + 1, 0, la)  # +1 for [CLS]
        if label_to_id is None and not regression:
            continue
        if regression:
            if ex.label is not None:
                feats["labels"][i] = float(ex.label)
        elif ex.label is not None:
            if ex.label not in label_to_id:
                raise InputError(f"{ex.source or where}: example {ex.id!r}: label {str(ex.label)[:30]!r} not in the "
                                 f"label set {sorted(label_to_id)} (of the train split / the model)")
            feats["labels"][i] = label_to_id[ex.label]
    if stats["truncated"]:
        log.warning("%s: %d of %d examples longer than max_length=%d were truncated (%d tokens cut, %d with a "
                    "marker outside the kept window; longest %d tokens); first ids: %s", where or "encode",
                    stats["truncated"], n, max_length, stats["tokens_cut"], stats["markers_out_of_window"],
                    stats["max_tokens_seen"], ", ".join(stats["truncated_ids"][:5]))
    return feats, stats


# ----------------------------------------------------------------------------- metrics


def score_predictions(task: task_registry.SequenceTask, gold: Sequence, pred: Sequence,
                      labels: Sequence[str] | None) -> dict[str, Any]:
    """``{"metric": name, "value": main number, ...details}`` for the task's standard metric."""
    if task.metric == "relation_micro_f1":
        positives = [l for l in labels if l != task.negative_label] if labels else None
        prf = cm.relation_prf(list(gold), list(pred), negative_labels=(task.negative_label,), labels=positives)
        return {"metric": "micro_f1", "value": prf["micro"]["f1"], "micro": prf["micro"], "per_type": prf["per_type"],
                "positive_labels": prf["positive_labels"], "accuracy": cm.accuracy(list(gold), list(pred))}
    if task.metric == "accuracy":
        return {"metric": "accuracy", "value": cm.accuracy(list(gold), list(pred))}
    if task.metric == "pearson":
        r = cm.pearson(gold, pred)
        mse = float(np.mean((np.asarray(gold, np.float64) - np.asarray(pred, np.float64)) ** 2))
        return {"metric": "pearson", "value": r, "mse": mse}
    raise ConfigError(f"task {task.name}: metric {task.metric!r} not supported here")


def decode_outputs(task: task_registry.SequenceTask, preds: np.ndarray, labels: Sequence[str] | None) -> list:
    if task.kind == "regression":
        return [float(x) for x in preds]
    return [labels[int(x)] for x in preds]


def target_scale(targets: np.ndarray) -> tuple[float, float]:
    """(mean, sd) of a regressor's train targets. A head starting at 0 with a small learning rate
    otherwise spends its few steps (BIOSSES: 64 pairs, 8 steps an epoch) reaching the mean of
    scores on 0-4 / 0-5 scales before it learns anything about the pairs."""
    mean = float(np.mean(targets)) if len(targets) else 0.0
    std = float(np.std(targets)) if len(targets) else 1.0
    return mean, (std if std > 1e-6 else 1.0)


def limit_examples(examples: list, n: int | None) -> list:
    return examples if n is None else examples[:n]


# ----------------------------------------------------------------------------- the adapter


def read_splits(task: task_registry.SequenceTask, data: TaskDataConfig) -> tuple[ExampleSet, ExampleSet, list, list]:
    """(train set, dev set, train examples, dev examples) with the configured subset limits."""
    splits = data.splits()
    train_set = task.read("train", data.data_dir, splits["train"], strict=data.strict_reading(), data=data)
    dev_set = task.read("dev", data.data_dir, splits["dev"], strict=data.strict_reading(), data=data)
    dev_limits = [n for n in (data.max_eval_examples, data.max_dev_examples) if n is not None]
    return (train_set, dev_set, limit_examples(train_set.examples, data.max_train_examples),
            limit_examples(dev_set.examples, min(dev_limits) if dev_limits else None))


def task_section(task: task_registry.SequenceTask, data: TaskDataConfig, labels, representation, with_null=False):
    return {"task": task.name, "kind": task.kind, "metric": task.metric, "labels": labels,
            "negative_label": task.negative_label, "representation": representation,
            "max_length": data.max_length, "pair": task.pair, "with_null": with_null}


def task_data_info(task, data: TaskDataConfig, train_set, dev_set, train_ex, dev_ex, train_enc, dev_enc):
    return {"task": task.name, "data_dir": data.data_dir or task.data_dir,
            "examples": {"train": len(train_ex), "dev": len(dev_ex)},
            "read": {"train": train_set.summary, "dev": dev_set.summary}, "strict": data.strict_reading(),
            "encoding": {"train": train_enc, "dev": dev_enc}}


class SequenceAdapter(Adapter):
    section = SECTION
    data_config_name = "TaskDataConfig"

    def prepare(self, data: TaskDataConfig, train, tokenizer, enc_config: EncoderConfig) -> Prepared:
        task = task_registry.get_task(data.task)
        representation = train.representation or task.representation
        if representation == "pooled" and not enc_config.use_pooler:
            log.info("the encoder has no pooler: representation 'cls' instead of 'pooled'")
            representation = "cls"
        regression = task.kind == "regression"
        train_set, dev_set, train_ex, dev_ex = read_splits(task, data)
        if regression:
            labels, label_to_id = None, None
        else:
            labels = list(task.labels) if task.labels else sorted({e.label for e in train_set.examples} | (
                {task.negative_label} if task.negative_label else set()))
            label_to_id = {l: i for i, l in enumerate(labels)}
        train_feats, train_enc = encode_examples(train_ex, tokenizer, data.max_length, label_to_id,
                                                 regression=regression, where=f"{task.name}/train")
        dev_feats, dev_enc = encode_examples(dev_ex, tokenizer, data.max_length, label_to_id,
                                             regression=regression, where=f"{task.name}/dev")
        log.info("task %s (%s, %s): %d train / %d dev examples, %s", task.name, task.kind, task.metric,
                 len(train_ex), len(dev_ex), f"{len(labels)} labels" if labels else "regression")
        dev_gold = [getattr(e, "label", None) for e in dev_ex]
        section = task_section(task, data, labels, representation)
        if regression:  # train on standardised targets; finalize_params folds the scale into the head
            mean, std = target_scale(train_feats["labels"])
            train_feats = {**train_feats, "labels": ((train_feats["labels"] - mean) / std).astype(np.float32)}
            dev_feats = {**dev_feats, "labels": ((dev_feats["labels"] - mean) / std).astype(np.float32)}
            section["target_scale"] = {"mean": mean, "std": std}
            log.info("regression targets standardised for training (train mean %.4f, sd %.4f); the saved head "
                     "predicts on the original scale", mean, std)
        return Prepared(train_feats, dev_feats, (task, dev_gold), section,
                        task_data_info(task, data, train_set, dev_set, train_ex, dev_ex, train_enc, dev_enc),
                        1 if regression else len(labels))

    def finalize_params(self, params, prepared: Prepared):
        scale = prepared.section.get("target_scale")
        if not scale:
            return params
        head = params["classifier"]
        return {**params, "classifier": {**head, "kernel": head["kernel"] * scale["std"],
                                         "bias": head["bias"] * scale["std"] + scale["mean"]}}

    def build_model(self, enc_config: EncoderConfig, section: Mapping[str, Any], train=None):
        n = 1 if section["kind"] == "regression" else len(section["labels"])
        return SequenceClassifier(enc_config, n, representation=section["representation"],
                                  classifier_dropout=None if train is None else train.classifier_dropout)

    def loss_of(self, model, params, batch, rng):
        return forward_loss(model, params, batch, rng)

    def predict_of(self, model, params, batch):
        return predict(model, params, batch)

    def score(self, prepared: Prepared, outputs: np.ndarray) -> dict[str, Any]:
        task, gold = prepared.dev
        labels = prepared.section["labels"]
        scale = prepared.section.get("target_scale")
        if scale:  # dev runs on the training params: back to the original scale
            outputs = np.asarray(outputs, np.float64) * scale["std"] + scale["mean"]
        return score_predictions(task, gold, decode_outputs(task, outputs, labels), labels)

    def describe_model(self, prepared: Prepared, train) -> str:
        sec = prepared.section
        kind = "regressor" if sec["kind"] == "regression" else f"{len(sec['labels'])} labels"
        return f"{kind}, representation {sec['representation']}"
