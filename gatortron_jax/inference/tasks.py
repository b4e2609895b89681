"""Run a fine-tuned sentence/pair (RE, NLI, STS) or span-QA model dir on examples.

The model dir's ``sequence_task`` section names the task and kind; the matching fine-tuning
adapter (``finetuning.adapters``) rebuilds the head, encodes the examples exactly as training
did and decodes the outputs, so training, evaluation and prediction cannot drift apart.
Batched prediction is ``core.batching.predict_rows``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

from gatortron_jax.annotations.formats.brat import write_brat_dir
from gatortron_jax.core.batching import bucket_lengths, predict_rows
from gatortron_jax.core.errors import InputError
from gatortron_jax.finetuning import adapters, task_registry
from gatortron_jax.finetuning.adapters import sequence as sequence_adapter
from gatortron_jax.finetuning.adapters import span_qa as qa_adapter
from gatortron_jax.finetuning.config import TaskDataConfig
from gatortron_jax.finetuning.relations import predictions_from_examples, relations_to_brat
from gatortron_jax.finetuning.supervised import load_for_inference
from gatortron_jax.finetuning.task_registry import TaskExample
from gatortron_jax.models.model_dir import model_config_of, read_model_info, require_vocab
from gatortron_jax.text.offsets import OffsetTokenizer


class TaskPredictor:
    """Loads a fine-tuned sequence-task model dir once; ``predict(examples)`` → labels, scores or answers."""

    def __init__(self, model_dir: str, batch_size: int = 32, quantize: str | None = None, dtype: str | None = None):
        self.model_dir = model_dir
        self.config = read_model_info(model_dir)
        self.adapter = adapters.for_model_info(self.config, model_dir)
        if self.adapter.section != sequence_adapter.SECTION:
            raise InputError(f"{model_dir}: config.json has no '{sequence_adapter.SECTION}' section "
                             "(not a fine-tuned sequence-task model)")
        sec = self.section = self.config[sequence_adapter.SECTION]
        self.task = task_registry.get_task(sec["task"])
        self.labels = sec.get("labels")
        self.max_length = int(sec["max_length"])
        self.qa = sec["kind"] == "qa"
        self.with_null = bool(sec.get("with_null"))
        model_config = model_config_of(model_dir, self.config).for_inference(dtype, quantize)
        self.dtype = model_config.dtype
        self.model = self.adapter.build_model(model_config, sec)
        self.tokenizer = OffsetTokenizer(require_vocab(model_dir, self.config))
        self.partitioner, self.batch_size, self.params, self._predict = load_for_inference(
            self.model, model_dir, batch_size, self.adapter.predict_of
        )

    def data_config(self, **overrides: Any) -> TaskDataConfig:
        """The data config the model was fine-tuned with (QA decoding settings live there)."""
        return TaskDataConfig(**{**self.config.get("finetune", {}).get("data_config", {}), **overrides})

    def _rows(self, feats) -> Any:
        with self.partitioner.activate():
            return predict_rows(self._predict, self.params, feats, self.batch_size, self.partitioner.data_sharding,
                               length_buckets=bucket_lengths(self.max_length))

    def predict(self, examples: Sequence[TaskExample], where: str = "predict") -> tuple[list, dict[str, Any]]:
        """Labels / scores / answer strings (QA), in example order, and the encoding stats."""
        if self.qa:
            data = self.data_config()
            feats, rows_ex, offsets, stats = qa_adapter.encode_qa(examples, self.tokenizer, self.max_length, data,
                                                                  where)
            answers = qa_adapter.decode(examples, rows_ex, offsets, self._rows(feats), data, self.with_null)
            return [answers[e.id] for e in examples], stats
        regression = self.task.kind == "regression"
        label_to_id = None if regression else {l: i for i, l in enumerate(self.labels)}
        feats, stats = sequence_adapter.encode_examples(examples, self.tokenizer, self.max_length, label_to_id,
                                                        regression=regression, where=where)
        return sequence_adapter.decode_outputs(self.task, self._rows(feats), self.labels), stats


def predict_task(model_dir: str, input_path: str, output_dir: str, batch_size: int = 32, *,
                 strict: bool = False, quantize: str | None = None) -> dict[str, Any]:
    """Predicts every example of ``input_path`` (a file in the task's format, or for n2c2 RE a
    brat directory whose entities are used; gold labels/relations in it are ignored). Writes
    ``predictions.jsonl`` (id, prediction) and, for brat RE, ``.txt``/``.ann`` with ``R`` lines."""
    predictor = TaskPredictor(model_dir, batch_size=batch_size, quantize=quantize)
    task = predictor.task
    data = predictor.data_config(negative_ratio=None)
    ex_set = task.reader(input_path, strict=strict or data.strict_reading(), split="predict", data=data)
    preds, enc = predictor.predict(ex_set.examples, where=input_path)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "predictions.jsonl"), "w", encoding="utf-8") as f:
        for e, p in zip(ex_set.examples, preds):
            f.write(json.dumps({"id": e.id, "prediction": p, "source": e.source}) + "\n")
    written = ["predictions.jsonl"]
    if ex_set.documents is not None:
        by_doc = predictions_from_examples([e.ref for e in ex_set.examples], preds, task.negative_label or "none")
        docs = [relations_to_brat(d, by_doc.get(d.id, [])) for d in ex_set.documents]
        write_brat_dir(docs, output_dir)
        written.append(f"{len(docs)} brat documents")
    return {"examples": len(ex_set.examples), "written": written, "encoding": enc, "output": output_dir,
            "matmul_quantization": quantize}
