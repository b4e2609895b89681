"""Fine-tuning configuration for sentence / pair tasks (RE, NLI, STS): plain dataclasses,
bound by gin at the edge (``cli/gin_config.py``). Task names come from
``gatortron_jax.finetuning.task_registry``."""

from __future__ import annotations

import dataclasses

from gatortron_jax.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TaskDataConfig:
    task: str | None = None  # a name from gatortron_jax.finetuning.task_registry (None: not a sequence task)
    data_dir: str | None = None  # None: the task's default (synthetic sample / ../shared/data)
    vocab_path: str | None = None  # only for a fresh encoder (no --init_checkpoint)
    max_length: int = 128  # [CLS] a [SEP] b [SEP] incl. specials; longer pairs are truncated and counted
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"
    # True: a bad example is an error naming file:line and id. False: it is skipped, counted and
    # listed in the read summary. None: follow the command's --strict flag (default: skip).
    strict: bool | None = None
    max_train_examples: int | None = None  # first N train examples (subset runs); None: all
    max_eval_examples: int | None = None  # first N dev/test examples; None: all
    # relation extraction from brat documents (n2c2 2018)
    window_sentences: int = 0
    negative_ratio: float | None = None  # train only: at most ratio * #positives negatives
    typed_markers: bool = False
    # span QA (emrQA / BioASQ, SQuAD-style)
    doc_stride: int = 64  # tokens between the starts of consecutive context windows
    max_query_length: int = 48  # longer questions are cut (counted)
    max_answer_length: int = 30  # tokens
    n_best: int = 20
    null_threshold: float = 0.0  # v2: answer "" when null score - best span score > this

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ConfigError(f"TaskDataConfig.max_length={self.max_length} is too small")

    def splits(self) -> dict[str, str]:
        return {"train": self.train_split, "dev": self.dev_split, "test": self.test_split}

    def strict_reading(self) -> bool:
        """``strict`` if bound, else the process-wide input policy (``--strict``)."""
        from gatortron_jax.annotations.input_policy import resolve_strict

        return resolve_strict(self.strict)


@dataclasses.dataclass(frozen=True)
class TaskTrainConfig:
    num_epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 32
    seed: int = 0
    representation: str | None = None  # pooled | cls | entity_start; None: the task's default
    classifier_dropout: float | None = None
    dropout_rate: float | None = None
    layerwise_lr_decay: float | None = None
    warmup_ratio: float | None = 0.1
    patience: int | None = 3  # epochs without a better dev metric before stopping
    log_every: int = 50
    max_steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.layerwise_lr_decay is not None and not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise ConfigError(f"TaskTrainConfig.layerwise_lr_decay={self.layerwise_lr_decay}: must be in (0, 1]")
        if self.num_epochs < 1 or self.batch_size < 1:
            raise ConfigError("TaskTrainConfig.num_epochs and batch_size must be >= 1")
