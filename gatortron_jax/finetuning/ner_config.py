"""Fine-tuning configuration for token classification (NER, de-identification).

Plain dataclasses (gin binds them at the edge, ``cli/gin_config.py``); kept free of heavy imports.
"""

from __future__ import annotations

import dataclasses

from gatortron_jax.core.errors import ConfigError

SCHEMES = ("BIO", "BIOES")


@dataclasses.dataclass(frozen=True)
class NERDataConfig:
    task: str = "conll_ner"  # a name from gatortron_jax.finetuning.ner_tasks
    data_dir: str | None = None  # None: the task's default (the shipped synthetic sample)
    vocab_path: str | None = None  # only for a fresh encoder (no --init_checkpoint)
    max_length: int = 128  # window length in tokens, incl. [CLS] and [SEP]
    overlap: int = 32  # tokens shared by consecutive windows of a long note
    label_scheme: str = "BIO"  # BIO | BIOES
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"

    def __post_init__(self) -> None:
        if self.label_scheme not in SCHEMES:
            raise ConfigError(f"NERDataConfig.label_scheme={self.label_scheme!r}: use {SCHEMES}")
        if self.max_length < 4:
            raise ConfigError(f"NERDataConfig.max_length={self.max_length} is too small")

    def splits(self) -> dict[str, str]:
        return {"train": self.train_split, "dev": self.dev_split, "test": self.test_split}


@dataclasses.dataclass(frozen=True)
class NERTrainConfig:
    num_epochs: int = 3
    batch_size: int = 16  # windows per step (global)
    eval_batch_size: int = 32
    seed: int = 0
    use_crf: bool = False
    classifier_dropout: float | None = None  # None: EncoderConfig.dropout_rate
    dropout_rate: float | None = None  # override the encoder's (hidden + attention) dropout
    layerwise_lr_decay: float | None = None  # e.g. 0.9: layer i gets lr * decay^(L - i)
    warmup_ratio: float | None = 0.1  # overrides OptimizerConfig.warmup_steps when set
    patience: int | None = 3  # stop after this many epochs without a better dev F1
    log_every: int = 50
    max_steps_per_epoch: int | None = None  # cap (smoke tests)

    def __post_init__(self) -> None:
        if self.layerwise_lr_decay is not None and not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise ConfigError(f"NERTrainConfig.layerwise_lr_decay={self.layerwise_lr_decay}: must be in (0, 1]")
        if self.num_epochs < 1 or self.batch_size < 1:
            raise ConfigError("NERTrainConfig.num_epochs and batch_size must be >= 1")
