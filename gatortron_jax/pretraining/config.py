"""Run configuration dataclasses for pretraining (bound by gin in ``gin_config``)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MLMDataConfig:
    # A prepared corpus cache (``prepare-corpus``; recognised by its manifest.json), or a
    # directory of raw notes, prepared once into MODEL_DIR/corpus_cache (small corpora).
    corpus_dir: str
    vocab_path: str
    task_name: str = "mlm_corpus"
    doc_per_line: bool = False
    validation_fraction: float = 0.05
    whole_word: bool = False
    mask_rate: float = 0.15
    # Kept for old gin files; no effect: preparing the cache reads every document once, and a
    # run's start-up reads only the cache's manifest.
    validate_corpus: bool = True
    # Data-loader worker processes (read + mask + pack); 0: in the training process, which is the
    # faster choice at the measured ~19 M tokens per CPU-second (cache_pipeline docstring).
    num_workers: int = 0
    # Bad bytes / malformed .jsonl lines raise InputError instead of being replaced or skipped,
    # counted and warned about (policy: annotations/input_policy.py). The CLI's --strict sets it.
    strict: bool = False
    # Replaced-byte warnings may quote an escaped excerpt (local debugging; may be PHI). The CLI's --show_text sets it.
    show_text: bool = False


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    num_steps: int = 1000
    batch_size: int = 32  # global, across all hosts
    seq_len: int = 128
    num_microbatches: int = 1
    max_predictions: int | None = None  # sparse MLM predictions per row; None = all positions
    eval_every: int = 200
    eval_batches: int = 8
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 20
    seed: int = 0
    max_consecutive_nonfinite: int = 20  # skipped NaN/Inf steps in a row before the run stops
