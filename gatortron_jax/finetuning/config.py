"""Fine-tuning configuration: one train config for every task kind, one data config per
family of inputs (annotated notes for token classification; example files for sentence, pair
and QA tasks).

Plain frozen dataclasses (gin binds them at the edge, ``cli/gin_config.py``), free of heavy
imports. ``NERTrainConfig`` and ``TaskTrainConfig`` are the names gin files already use; they
are the same fields as :class:`FinetuneConfig` (thin subclasses), so ``NERTrainConfig.seed``,
``TaskTrainConfig.seed`` and ``FinetuneConfig.seed`` all bind one value.
"""

from __future__ import annotations

import dataclasses

from gatortron_jax.core.errors import ConfigError

SCHEMES = ("BIO", "BIOES")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    num_epochs: int = 3
    batch_size: int = 16  # rows per step (global): NER windows, examples, QA windows
    eval_batch_size: int = 32
    seed: int = 0
    use_crf: bool = False  # token classification: a CRF over the label logits
    representation: str | None = None  # sequence tasks: pooled | cls | entity_start; None: the task's default
    classifier_dropout: float | None = None  # None: EncoderConfig.dropout_rate
    dropout_rate: float | None = None  # override the encoder's (hidden + attention) dropout
    # override the encoder's compute dtype ('bfloat16' on GPU/TPU); params and optimizer state stay in
    # EncoderConfig.param_dtype (fp32 master weights). None: the pretrained model's.
    compute_dtype: str | None = None
    layerwise_lr_decay: float | None = None  # e.g. 0.9: layer i gets lr * decay^(L - i)
    warmup_ratio: float | None = 0.1  # overrides OptimizerConfig.warmup_steps when set
    patience: int | None = 3  # stop after this many epochs without a better dev metric
    log_every: int = 50
    max_steps_per_epoch: int | None = None  # cap (smoke tests)
    # Compute follows real tokens: each batch runs at the smallest of a few fixed lengths
    # (core.batching.bucket_lengths: 16, 32, 48, 64, 80, 96, 128 for max_length 128) that holds
    # its longest row; a bounded number of shapes compile. False: every batch is max_length.
    length_buckets: bool = True
    # Token classification with a softmax head: the rows of each batch are packed into as few
    # max_length rows as hold them (attention confined to each, positions from 0; the same
    # sentences, labels and loss per step), so short sentences stop paying for padding.
    pack_rows: bool = True
    # Also save the resume point every N steps inside an epoch (None: at epoch ends only). Each
    # save writes params + Adam moments (~12 bytes/parameter: 4.1 GB for GatorTron-base).
    checkpoint_every_steps: int | None = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.layerwise_lr_decay is not None and not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise ConfigError(f"{name}.layerwise_lr_decay={self.layerwise_lr_decay}: must be in (0, 1]")
        if self.num_epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"{name}.num_epochs and batch_size must be >= 1")


@dataclasses.dataclass(frozen=True)
class NERTrainConfig(FinetuneConfig):
    """:class:`FinetuneConfig` under the name NER gin files use."""


@dataclasses.dataclass(frozen=True)
class TaskTrainConfig(FinetuneConfig):
    """:class:`FinetuneConfig` under the name sentence/pair/QA gin files use."""


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
    # True: every WordPiece of an entity is labelled (B- on the first, I- on the rest) and
    # decoding repairs invalid tag runs (an orphan I- starts an entity). False (the HF recipe):
    # only a word's first piece carries a label and a loss weight, and decoding reads each
    # word's first piece with seqeval's strict IOB2 rules (an orphan I- is dropped).
    # None (default): False for a softmax head (measured better: benchmarks/bench_finetune.py,
    # README), True with a CRF (the CRF scores every token).
    label_all_subwords: bool | None = None
    # Annotations whose offsets do not match their note raise instead of being dropped, warned
    # about and counted (the input policy; the CLI's --strict sets it).
    strict: bool = False

    def all_subwords(self, use_crf: bool) -> bool:
        return use_crf if self.label_all_subwords is None else self.label_all_subwords

    def __post_init__(self) -> None:
        if self.label_scheme not in SCHEMES:
            raise ConfigError(f"NERDataConfig.label_scheme={self.label_scheme!r}: use {SCHEMES}")
        if self.max_length < 4:
            raise ConfigError(f"NERDataConfig.max_length={self.max_length} is too small")

    def splits(self) -> dict[str, str]:
        return {"train": self.train_split, "dev": self.dev_split, "test": self.test_split}


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
    # listed in the read summary (the input policy; the CLI's --strict sets it).
    strict: bool = False
    max_train_examples: int | None = None  # first N train examples (subset runs); None: all
    max_eval_examples: int | None = None  # first N dev/test examples; None: all
    max_dev_examples: int | None = None  # first N dev examples for model selection only (test untouched)
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
        """Whether bad examples raise (``--strict``) rather than being skipped and counted."""
        return bool(self.strict)
