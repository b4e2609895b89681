"""One adapter per task kind: everything the single fine-tuning loop (``finetuning.loop``)
and the model-dir predictors (``inference``) need to know about a kind of head.

An adapter encodes a task's data into row features, builds the head on the encoder, names its
loss and predict functions, decodes and scores predictions, and writes/reads its section of
the model dir's config.json. A new task kind is one adapter file here plus a gin file.

    kind                    section          adapters module
    token classification    "ner"            token_classification (NER, de-identification)
    classification/regression "sequence_task" sequence (RE, NLI, STS)
    span QA                 "sequence_task"  span_qa (emrQA, BioASQ; kind "qa")
"""

from __future__ import annotations

from typing import Any, Mapping

from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.finetuning import task_registry
from gatortron_jax.finetuning.adapters.base import Adapter, Prepared
from gatortron_jax.finetuning.adapters.sequence import SequenceAdapter
from gatortron_jax.finetuning.adapters.span_qa import SpanQAAdapter
from gatortron_jax.finetuning.adapters.token_classification import TokenClassificationAdapter
from gatortron_jax.finetuning.config import NERDataConfig, TaskDataConfig

__all__ = ["Adapter", "Prepared", "for_data", "for_model_info"]


def for_data(data: Any) -> Adapter:
    """The adapter for a data config: NER data → token classification; a task by its kind."""
    if isinstance(data, NERDataConfig):
        return TokenClassificationAdapter()
    if isinstance(data, TaskDataConfig):
        if not data.task:
            raise ConfigError("TaskDataConfig.task is not set")
        return SpanQAAdapter() if task_registry.get_task(data.task).kind == "qa" else SequenceAdapter()
    raise ConfigError(f"no fine-tuning adapter for {type(data).__name__}")


def for_model_info(info: Mapping[str, Any], model_dir: str = "") -> Adapter:
    """The adapter that wrote a fine-tuned model dir's config.json (its section says which)."""
    if info.get(TokenClassificationAdapter.section):
        return TokenClassificationAdapter()
    sec = info.get(SequenceAdapter.section)
    if sec:
        return SpanQAAdapter() if sec.get("kind") == "qa" else SequenceAdapter()
    raise InputError(f"{model_dir}: config.json has no 'ner' or 'sequence_task' section (not a fine-tuned model)")
