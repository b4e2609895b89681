"""``evaluate``: score a fine-tuned model dir on a split of its task, with the recipe.

NER/de-id: strict + lenient entity F1 (``NERPredictor``), and under ``official`` the
challenge script's figures where ``score`` reproduces one (:mod:`gatortron_jax.scoring.tasks`).
Sentence/pair/QA tasks: the task's metric over every example, with each (id, gold, pred) listed
(``TaskPredictor``). Every result carries ``recipe``: seed, the run's configs, the init checkpoint's fingerprint (recorded at
fine-tuning), the evaluated model's fingerprint, a sha256 of each split file the model was
trained, selected and scored on, package versions, and the decoding ``predict``/``deid`` use by
default (stored operating point thresholds and pattern recipe: which recognizers, their type map).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from gatortron_jax.annotations.documents import Document
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.evaluation.classification_metrics import document_relation_prf
from gatortron_jax.finetuning import ner_tasks
from gatortron_jax.finetuning.adapters.sequence import limit_examples, score_predictions
from gatortron_jax.finetuning.adapters.span_qa import score as score_qa
from gatortron_jax.finetuning.adapters.token_classification import score_documents
from gatortron_jax.finetuning.config import NERDataConfig, TaskDataConfig
from gatortron_jax.finetuning.recipe import model_dir_fingerprint, package_versions, tree_sha256
from gatortron_jax.finetuning.relations import predictions_from_examples, relations_to_brat
from gatortron_jax.inference.ner_predict import NERPredictor
from gatortron_jax.inference.tasks import TaskPredictor
from gatortron_jax.scoring.tasks import official_scores


def recipe(model_dir: str, info: Mapping[str, Any], split_paths: Mapping[str, str]) -> dict[str, Any]:
    """Everything needed to trace the score back and rerun it."""
    ft = info.get("finetune", {})
    return {
        "seed": ft.get("seed"),
        "config": {k: ft.get(k) for k in ("data_config", "train_config", "optimizer_config",
                                          "effective_optimizer_config", "init_checkpoint")},
        "init_checkpoint_fingerprint": ft.get("init_fingerprint"),
        "model_fingerprint": model_dir_fingerprint(model_dir),
        "data_files": {split: {"path": os.path.abspath(p), "sha256": tree_sha256(p)}
                       for split, p in split_paths.items()},
        "packages": package_versions(),
        "decoding": decoding_recipe(info),
    }


def decoding_recipe(info: Mapping[str, Any]) -> dict[str, Any]:
    """How ``predict``/``deid`` decode by default: the stored operating point's thresholds (None:
    argmax) and the stored pattern recipe (None: the model alone), as ``config.json`` holds them."""
    op = info.get("operating_point")
    return {"operating_point": None if op is None else {"thresholds": op.get("thresholds"),
                                                        "target_recall": op.get("target_recall")},
            "patterns": info.get("patterns")}


def evaluate_ner(model_dir: str, data: NERDataConfig, split: str = "test", batch_size: int = 32, *,
                 extra_scores: Mapping[str, Callable[[list, list], Any]] | None = None,
                 quantize: str | None = None, dtype: str | None = None) -> dict[str, Any]:
    """Scores a fine-tuned NER model dir on a split of the task in ``data`` (strict + lenient);
    ``extra_scores`` adds ``name: scorer(gold docs, predicted docs)`` (e.g. the de-id scores);
    ``quantize``: ``EncoderConfig.matmul_quantization`` for this run, ``dtype`` its compute dtype
    (default: the model's); both recorded in the recipe."""
    predictor = NERPredictor(model_dir, batch_size=batch_size, quantize=quantize, dtype=dtype)
    task = ner_tasks.get_ner_task(data.task, data.data_dir, data.splits())
    gold = task.documents(split, strict=data.strict)
    tick = time.time()
    pred = predictor.predict([Document(d.id, d.text, [], [], d.source) for d in gold])
    seconds = time.time() - tick
    scores = score_documents(gold, pred)
    splits = {s: task.split_path(s) for s in dict.fromkeys(("train", "dev", split))}
    return {
        "task": task.name, "split": split, "data_dir": task.data_dir, "model_dir": os.path.abspath(model_dir),
        "documents": len(gold), "fingerprint": ner_tasks.documents_fingerprint(gold),
        "predict_seconds": seconds, "scores": scores,
        "recipe": {**recipe(model_dir, predictor.config, splits), "matmul_quantization": quantize,
                   "compute_dtype": predictor.dtype},
        "official": official_scores(task.name, gold, pred),  # what `score` gives predict's files (None: no script)
        **{name: scorer(gold, pred) for name, scorer in (extra_scores or {}).items()},
    }


def evaluate_task(model_dir: str, data: TaskDataConfig | None = None, split: str = "test",
                  batch_size: int = 32, *, strict: bool = False, quantize: str | None = None,
                  dtype: str | None = None) -> dict[str, Any]:
    """Scores a fine-tuned sequence-task / QA model dir on a split; the JSON lists every (id, gold, pred)."""
    predictor = TaskPredictor(model_dir, batch_size=batch_size, quantize=quantize, dtype=dtype)
    if data is None:
        data = predictor.data_config()
    task = predictor.task
    if data.task and data.task != task.name:
        raise ConfigError(f"{model_dir} was fine-tuned on {task.name}, not {data.task}")
    ex_set = task.read(split, data.data_dir, data.splits()[split], strict=strict or data.strict_reading(), data=data)
    examples = limit_examples(ex_set.examples, data.max_eval_examples)
    tick = time.time()
    preds, enc = predictor.predict(examples, where=f"{task.name}/{split}")
    seconds = time.time() - tick
    if predictor.qa:
        gold = [[a.text for a in e.answers] for e in examples]
        scores = score_qa(examples, {e.id: p for e, p in zip(examples, preds)})
    else:
        gold = [e.label for e in examples]
        scores = score_predictions(task, gold, preds, predictor.labels)
    if ex_set.documents is not None and data.max_eval_examples is None:
        # brat RE: also match predicted relations to *all* gold relations (incl. non-candidates)
        by_doc = predictions_from_examples([e.ref for e in examples], preds, task.negative_label or "none")
        pred_docs = [relations_to_brat(d, by_doc.get(d.id, [])) for d in ex_set.documents]
        scores["document_level"] = document_relation_prf(ex_set.documents, pred_docs)
        official = official_scores(task.name, ex_set.documents, pred_docs)
        if official is not None:  # the challenge script's relation figures (what `score` prints)
            scores["official"] = official
    names = data.splits()
    splits = {s: task.split_path(s, data.data_dir, names[s]) for s in dict.fromkeys(("train", "dev", split))}
    return {"task": task.name, "split": split, "data_dir": data.data_dir or task.data_dir,
            "model_dir": os.path.abspath(model_dir), "examples": len(examples), "predict_seconds": seconds,
            "metric": scores["metric"], "value": scores["value"], "scores": scores, "read": ex_set.summary,
            "encoding": enc, "recipe": {**recipe(model_dir, predictor.config, splits), "matmul_quantization": quantize,
                                        "compute_dtype": predictor.dtype},
            "predictions": [{"id": e.id, "gold": g, "pred": p} for e, g, p in zip(examples, gold, preds)]}
