"""Fine-tune / evaluate / predict sentence and pair tasks: relation extraction (ChemProt,
n2c2 2018), NLI (MedNLI) and STS regression (n2c2 2019, BIOSSES).

Mirrors ``finetune_ner``: the encoder comes from ``init_checkpoint`` (config + vocab from its
``config.json``) or fresh from gin; the head (``EncoderForSequenceClassification``, one output
for regression) is new. Inputs are ``[CLS] a [SEP] b [SEP]`` with token types 0/1 (single
sequence ``[CLS] a [SEP]`` for RE). When a pair is longer than ``max_length`` the longer side
is cut token by token; for RE the window is moved to keep both entity markers. Every
truncation is counted and logged (``data.encoding`` in config.json), never silent. Entity
markers are plain text (``[E1] … [/E1]`` or ChemProt's ``@CHEMICAL$``/``@GENE$``); the
"entity start" positions are the first tokens at the markers' character offsets.

Each epoch: AdamW (``make_ner_optimizer``: warmup ratio, optional layer-wise LR decay) →
dev predictions → task metric (ChemProt / n2c2 RE micro-F1 without the negative label,
accuracy, Pearson r). The best epoch's params are the only orbax checkpoint; early stopping
after ``patience`` epochs without improvement. The model dir holds config.json (model config,
``sequence_task`` section with task/kind/labels/representation/max_length, vocab, run configs,
data summaries, result), vocab/ and checkpoints/.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gatortron_jax.core import partitioning
from gatortron_jax.finetuning import task_registry, windowing
from gatortron_jax.finetuning.task_registry import TaskExample
from gatortron_jax.core.batching import predict_rows
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.models import model_dir as model_dir_io
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.model_dir import read_model_info, require_vocab
from gatortron_jax.models.sequence_classification import EncoderForSequenceClassification, forward_loss, predict
from gatortron_jax.core.checkpoints import Checkpointer
from gatortron_jax.core.partitioning import MeshConfig
from gatortron_jax.finetuning.ner import _batches, _encoder_source, make_ner_optimizer
from gatortron_jax.core.optimizer import OptimizerConfig
from gatortron_jax.finetuning.task_config import TaskDataConfig, TaskTrainConfig
from gatortron_jax.finetuning.supervised import (
    compile_supervised, init_encoder_from, load_for_inference, train_epoch,
)
from gatortron_jax.core.train_state import count_params, create_train_state

log = logging.getLogger("gatortron_jax")

SECTION = "sequence_task"  # config.json key of a fine-tuned sequence-task model dir


class SequenceClassifier(EncoderForSequenceClassification):
    """``EncoderForSequenceClassification`` (same params) that initialises without markers."""

    def __call__(self, input_ids, token_type_ids=None, position_ids=None, segment_ids=None, marker_positions=None,
                 deterministic=True):
        if marker_positions is None and self.representation == "entity_start":
            marker_positions = jnp.zeros((input_ids.shape[0], 2), jnp.int32)
        return super().__call__(input_ids, token_type_ids, position_ids, segment_ids, marker_positions, deterministic)


# ----------------------------------------------------------------------------- encoding


def encode_examples(
    examples: Sequence[TaskExample], tokenizer: windowing.OffsetTokenizer, max_length: int,
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
    from gatortron_jax.evaluation import classification_metrics as cm

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


def _better(value: float, best: float) -> bool:
    return (not math.isnan(value)) and value > best


# ----------------------------------------------------------------------------- prediction


def _decode(task: task_registry.SequenceTask, preds: np.ndarray, labels: Sequence[str] | None) -> list:
    if task.kind == "regression":
        return [float(x) for x in preds]
    return [labels[int(x)] for x in preds]


def _limit(examples: list, n: int | None) -> list:
    return examples if n is None else examples[:n]


class TaskPredictor:
    """Loads a fine-tuned sequence-task model dir once; ``predict(examples)`` → labels or scores."""

    def __init__(self, model_dir: str, batch_size: int = 32):
        self.model_dir = model_dir
        self.config = read_model_info(model_dir)
        sec = self.config.get(SECTION)
        if not sec:
            raise InputError(f"{model_dir}: config.json has no '{SECTION}' section (not a fine-tuned sequence-task model)")
        self.section = sec
        self.task = task_registry.get_task(sec["task"])
        self.labels = sec.get("labels")
        self.max_length = int(sec["max_length"])
        enc = EncoderConfig.from_dict(self.config["model_config"])
        self.qa = sec["kind"] == "qa"
        self.with_null = bool(sec.get("with_null"))
        if self.qa:
            from gatortron_jax.finetuning import qa as finetune_qa

            self.model, predict_of = finetune_qa.make_model(enc), finetune_qa.predict_logits
        else:
            self.model = SequenceClassifier(enc, 1 if sec["kind"] == "regression" else len(self.labels),
                                            representation=sec["representation"])
            predict_of = predict
        self.tokenizer = windowing.OffsetTokenizer(require_vocab(model_dir, self.config))
        self.partitioner, self.batch_size, self.params, self._predict = load_for_inference(
            self.model, model_dir, batch_size, predict_of
        )

    def predict(self, examples: Sequence[TaskExample], where: str = "predict") -> tuple[list, dict[str, Any]]:
        """Labels / scores / answer strings (QA), in example order, and the encoding stats."""
        if self.qa:
            from gatortron_jax.finetuning import qa as finetune_qa

            data = TaskDataConfig(**self.config.get("finetune", {}).get("data_config", {}))
            feats, rows_ex, offsets, stats = finetune_qa.encode_qa(examples, self.tokenizer, self.max_length, data, where)
            with self.partitioner.activate():
                logits = predict_rows(self._predict, self.params, feats, self.batch_size,
                                          self.partitioner.data_sharding)
            answers = finetune_qa.decode(examples, rows_ex, offsets, logits, data, self.with_null)
            return [answers[e.id] for e in examples], stats
        regression = self.task.kind == "regression"
        label_to_id = None if regression else {l: i for i, l in enumerate(self.labels)}
        feats, stats = encode_examples(examples, self.tokenizer, self.max_length, label_to_id,
                                       regression=regression, where=where)
        with self.partitioner.activate():
            preds = predict_rows(self._predict, self.params, feats, self.batch_size, self.partitioner.data_sharding)
        return _decode(self.task, preds, self.labels), stats


# ----------------------------------------------------------------------------- fine-tuning


def finetune_task(
    model_dir: str,
    data: TaskDataConfig,
    train: TaskTrainConfig = TaskTrainConfig(),
    optimizer_config: OptimizerConfig = OptimizerConfig(learning_rate=2e-5),
    mesh: MeshConfig = MeshConfig(),
    *,
    init_checkpoint: str | None = None,
    model_config: EncoderConfig | None = None,
) -> dict[str, Any]:
    """Fine-tunes and writes the model dir; returns the result summary (also in config.json)."""
    from gatortron_jax.text.vocab import load_vocabulary

    if not data.task:
        raise ConfigError("TaskDataConfig.task is not set")
    if os.path.isdir(os.path.join(model_dir, "checkpoints")) and os.listdir(os.path.join(model_dir, "checkpoints")):
        raise ConfigError(f"--model_dir {model_dir} already holds a checkpoint; choose a new directory")
    task = task_registry.get_task(data.task)
    qa = task.kind == "qa"
    enc_config, vocab_file = _encoder_source(init_checkpoint, model_config, data)
    if train.dropout_rate is not None:
        enc_config = enc_config.replace(dropout_rate=train.dropout_rate, attention_dropout_rate=train.dropout_rate)
    if data.max_length > enc_config.max_position_embeddings:
        raise ConfigError(f"TaskDataConfig.max_length={data.max_length} exceeds max_position_embeddings="
                          f"{enc_config.max_position_embeddings}")
    representation = train.representation or task.representation
    if representation == "pooled" and not enc_config.use_pooler:
        log.info("the encoder has no pooler: representation 'cls' instead of 'pooled'")
        representation = "cls"
    regression = task.kind == "regression"
    vocab = load_vocabulary(vocab_file)
    tokenizer = windowing.OffsetTokenizer(vocab)
    splits = data.splits()

    t0 = time.time()
    train_set = task.read("train", data.data_dir, splits["train"], strict=data.strict_reading(), data=data)
    dev_set = task.read("dev", data.data_dir, splits["dev"], strict=data.strict_reading(), data=data)
    train_ex = _limit(train_set.examples, data.max_train_examples)
    dev_ex = _limit(dev_set.examples, data.max_eval_examples)
    with_null = False
    if qa:
        from gatortron_jax.finetuning import qa as finetune_qa

        labels = None
        with_null = any(e.is_impossible for e in train_set.examples)
        train_feats, _, _, train_enc = finetune_qa.encode_qa(train_ex, tokenizer, data.max_length, data,
                                                             f"{task.name}/train")
        dev_feats, dev_rows, dev_off, dev_enc = finetune_qa.encode_qa(dev_ex, tokenizer, data.max_length, data,
                                                                      f"{task.name}/dev")
    elif regression:
        labels, label_to_id = None, None
    else:
        labels = list(task.labels) if task.labels else sorted({e.label for e in train_set.examples} | (
            {task.negative_label} if task.negative_label else set()))
        label_to_id = {l: i for i, l in enumerate(labels)}
    if not qa:
        train_feats, train_enc = encode_examples(train_ex, tokenizer, data.max_length, label_to_id,
                                                 regression=regression, where=f"{task.name}/train")
        dev_feats, dev_enc = encode_examples(dev_ex, tokenizer, data.max_length, label_to_id,
                                             regression=regression, where=f"{task.name}/dev")
    n_train_rows = len(train_feats["input_ids"])
    dev_gold = [getattr(e, "label", None) for e in dev_ex]
    log.info("task %s (%s, %s): %d train / %d dev examples, %s; prepared in %.1fs", task.name, task.kind,
             task.metric, len(train_ex), len(dev_ex), f"{len(labels)} labels" if labels else "regression",
             time.time() - t0)

    partitioner = partitioning.Partitioner(
        partitioning.create_mesh(mesh.data, mesh.fsdp, mesh.tensor),
        partitioning.parse_rules_overrides(mesh.rules_overrides),
    )
    dp = partitioner.data_parallel_size
    if train.batch_size % dp or train.eval_batch_size % dp:
        raise ConfigError(f"TaskTrainConfig.batch_size={train.batch_size} / eval_batch_size={train.eval_batch_size} "
                          f"must divide by the data-parallel size {dp}")
    steps_per_epoch = math.ceil(n_train_rows / train.batch_size)
    if train.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, train.max_steps_per_epoch)
    total_steps = steps_per_epoch * train.num_epochs
    if qa:
        from gatortron_jax.models import span_qa

        model, loss_of, predict_of = finetune_qa.make_model(enc_config), span_qa.forward_loss, finetune_qa.predict_logits
    else:
        model = SequenceClassifier(enc_config, 1 if regression else len(labels), representation=representation,
                                   classifier_dropout=train.classifier_dropout)
        loss_of, predict_of = forward_loss, predict
    optimizer, optimizer_config = make_ner_optimizer(optimizer_config, train, total_steps, enc_config.num_layers)
    state, shardings = create_train_state(model, optimizer, partitioner, jax.random.key(train.seed))
    if init_checkpoint:
        state = init_encoder_from(init_checkpoint, state, shardings)
    log.info("model: %s params, %s, representation %s", f"{count_params(state.params):,}",
             "span QA" if qa else "regressor" if regression else f"{len(labels)} labels",
             "start/end logits" if qa else representation)

    data_sharding = partitioner.data_sharding
    p_train, p_predict = compile_supervised(model, optimizer, loss_of, predict_of, partitioner, shardings)

    vocab_copy = model_dir_io.copy_vocab(model_dir, vocab_file)
    run_info: dict[str, Any] = {
        "model_config": enc_config.to_dict(),
        "vocab": {"path": vocab_copy, "size": vocab.vocab_size, "lowercase": getattr(vocab, "lowercase", None)},
        SECTION: {"task": task.name, "kind": task.kind, "metric": task.metric, "labels": labels,
                  "negative_label": task.negative_label, "representation": representation,
                  "max_length": data.max_length, "pair": task.pair, "with_null": with_null},
        "finetune": {
            "data_config": dataclasses.asdict(data), "train_config": dataclasses.asdict(train),
            "optimizer_config": dataclasses.asdict(optimizer_config), "mesh": dict(partitioner.mesh.shape),
            "init_checkpoint": os.path.abspath(init_checkpoint) if init_checkpoint else None,
            "seed": train.seed, "total_steps": total_steps,
        },
        "data": {"task": task.name, "data_dir": data.data_dir or task.data_dir,
                 "examples": {"train": len(train_ex), "dev": len(dev_ex)},
                 "read": {"train": train_set.summary, "dev": dev_set.summary}, "strict": data.strict_reading(),
                 "encoding": {"train": train_enc, "dev": dev_enc}},
    }

    def write_config(extra: dict[str, Any] | None = None) -> None:
        if jax.process_index() == 0:
            model_dir_io.write_config(model_dir, {**run_info, **(extra or {})})

    write_config()
    ckpt = Checkpointer(model_dir, max_to_keep=1)
    rng = jax.random.key(train.seed + 1)
    best, best_epoch, best_scores, bad_epochs = -math.inf, 0, None, 0
    history = []
    order_rng = np.random.default_rng(train.seed)
    with partitioner.activate():
        for epoch in range(1, train.num_epochs + 1):
            tick = time.time()
            state, train_loss, tokens = train_epoch(
                p_train, state, _batches(train_feats, order_rng.permutation(n_train_rows), train.batch_size),
                steps_per_epoch, data_sharding, rng, epoch=epoch, log_every=train.log_every,
            )
            train_s = time.time() - tick
            rows = predict_rows(p_predict, state.params, dev_feats, train.eval_batch_size, data_sharding)
            if qa:
                scores = finetune_qa.score(dev_ex, finetune_qa.decode(dev_ex, dev_rows, dev_off, rows, data, with_null))
            else:
                scores = score_predictions(task, dev_gold, _decode(task, rows, labels), labels)
            value = float(scores["value"])
            entry = {"epoch": epoch, "train_loss": train_loss, f"dev_{scores['metric']}": value,
                     "epoch_train_seconds": train_s, "train_tokens": tokens,
                     "train_tokens_per_second": tokens / max(train_s, 1e-9),
                     "eval_seconds": time.time() - tick - train_s}
            history.append(entry)
            improved = _better(value, best) or best_epoch == 0
            log.info("epoch %d/%d | train loss %.4f | dev %s %.4f%s | %.1fs (%s tok/s)", epoch, train.num_epochs,
                     train_loss, scores["metric"], value, " (best)" if improved else "", train_s,
                     f"{entry['train_tokens_per_second']:,.0f}")
            if improved:
                best = value if not math.isnan(value) else -math.inf
                best_epoch, best_scores, bad_epochs = epoch, scores, 0
                ckpt.save(epoch, {"params": state.params}, {"epoch": epoch, "dev_metric": value}, force=True)
            else:
                bad_epochs += 1
                if train.patience is not None and bad_epochs >= train.patience:
                    log.info("early stopping: no dev %s gain for %d epochs", scores["metric"], bad_epochs)
                    break
    ckpt.close()
    result = {"best_epoch": best_epoch, "metric": best_scores["metric"], "best_dev_metric": best_scores["value"],
              "dev_scores": best_scores, "history": history}
    write_config({"result": result})
    return result


# ----------------------------------------------------------------------------- evaluate / predict


def evaluate_task(model_dir: str, data: TaskDataConfig | None = None, split: str = "test",
                  batch_size: int = 32) -> dict[str, Any]:
    """Scores a fine-tuned model dir on a split; the JSON lists every (id, gold, pred)."""
    predictor = TaskPredictor(model_dir, batch_size=batch_size)
    if data is None:
        data = TaskDataConfig(**predictor.config.get("finetune", {}).get("data_config", {}))
    task = predictor.task
    if data.task and data.task != task.name:
        raise ConfigError(f"{model_dir} was fine-tuned on {task.name}, not {data.task}")
    ex_set = task.read(split, data.data_dir, data.splits()[split], strict=data.strict_reading(), data=data)
    examples = _limit(ex_set.examples, data.max_eval_examples)
    tick = time.time()
    preds, enc = predictor.predict(examples, where=f"{task.name}/{split}")
    seconds = time.time() - tick
    if predictor.qa:
        from gatortron_jax.finetuning import qa as finetune_qa

        gold = [[a.text for a in e.answers] for e in examples]
        scores = finetune_qa.score(examples, {e.id: p for e, p in zip(examples, preds)})
    else:
        gold = [e.label for e in examples]
        scores = score_predictions(task, gold, preds, predictor.labels)
    if ex_set.documents is not None and data.max_eval_examples is None:
        # brat RE: also match predicted relations to *all* gold relations (incl. non-candidates)
        from gatortron_jax.finetuning.relations import predictions_from_examples, relations_to_brat
        from gatortron_jax.evaluation.classification_metrics import document_relation_prf

        by_doc = predictions_from_examples([e.ref for e in examples], preds, task.negative_label or "none")
        pred_docs = [relations_to_brat(d, by_doc.get(d.id, [])) for d in ex_set.documents]
        scores["document_level"] = document_relation_prf(ex_set.documents, pred_docs)
    return {"task": task.name, "split": split, "data_dir": data.data_dir or task.data_dir,
            "model_dir": os.path.abspath(model_dir), "examples": len(examples), "predict_seconds": seconds,
            "metric": scores["metric"], "value": scores["value"], "scores": scores, "read": ex_set.summary,
            "encoding": enc, "predictions": [{"id": e.id, "gold": g, "pred": p} for e, g, p in zip(examples, gold, preds)]}


def predict_task(model_dir: str, input_path: str, output_dir: str, batch_size: int = 32) -> dict[str, Any]:
    """Predicts every example of ``input_path`` (a file in the task's format, or for n2c2 RE a
    brat directory whose entities are used; gold labels/relations in it are ignored). Writes
    ``predictions.jsonl`` (id, prediction) and, for brat RE, ``.txt``/``.ann`` with ``R`` lines."""
    from gatortron_jax.finetuning.relations import predictions_from_examples, relations_to_brat

    predictor = TaskPredictor(model_dir, batch_size=batch_size)
    task = predictor.task
    data = TaskDataConfig(**{**predictor.config.get("finetune", {}).get("data_config", {}), "negative_ratio": None})
    ex_set = task.reader(input_path, strict=data.strict_reading(), split="predict", data=data)
    preds, enc = predictor.predict(ex_set.examples, where=input_path)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "predictions.jsonl"), "w", encoding="utf-8") as f:
        for e, p in zip(ex_set.examples, preds):
            f.write(json.dumps({"id": e.id, "prediction": p, "source": e.source}) + "\n")
    written = ["predictions.jsonl"]
    if ex_set.documents is not None:
        from gatortron_jax.annotations.formats.brat import write_brat_dir

        by_doc = predictions_from_examples([e.ref for e in ex_set.examples], preds, task.negative_label or "none")
        docs = [relations_to_brat(d, by_doc.get(d.id, [])) for d in ex_set.documents]
        write_brat_dir(docs, output_dir)
        written.append(f"{len(docs)} brat documents")
    return {"examples": len(ex_set.examples), "written": written, "encoding": enc, "output": output_dir}
