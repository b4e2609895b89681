"""Plain-text clinical-note corpora as a seqio ``DataSource``.

Clinical corpora arrive as directories of notes, either one note per ``.txt`` file or one
note per line (``.txt`` lines, or ``.jsonl`` records with a ``text`` field). This module
turns such a directory into ``{"id", "text"}`` examples for seqio while keeping the two
properties pretraining depends on:

* **Determinism.** File order, the hashed train/validation split and per-host file shards
  are pure functions of the file names and the seed, so a restarted trainer that skips the
  batches it already consumed sees exactly the same stream.
* **No silent loss, no PHI.** Every document read is either used or skipped with a
  reason and counted (:class:`CorpusStats`, an
  :class:`~gatortron_jax.annotations.input_policy.InputReport`); problems are reported by file,
  line and byte offset, never with the note text. The policy for undecodable bytes and
  malformed ``.jsonl`` lines (replace/skip and warn by default, raise
  :class:`~gatortron_jax.core.errors.InputError` when ``strict``) is documented in
  :mod:`gatortron_jax.annotations.input_policy`.

Errors raised while ``tf.data`` iterates reach the caller wrapped in a ``tf.errors``
exception (TensorFlow cannot re-raise Python types from a generator), with our message
inside; call :meth:`TextCorpusSource.validate` up front to get a real ``InputError``
before training starts.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import itertools
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from absl import logging
import numpy as np
import seqio
import tensorflow as tf

from gatortron_jax.annotations.input_policy import (
    EMPTY,
    MAX_ISSUES,
    FileIssue,
    InputReport,
    format_summary,
)
from gatortron_jax.annotations.notes import NoteRecord, iter_file_records, list_corpus_files
from gatortron_jax.core.errors import ConfigError, InputError

TRAIN = "train"
VALIDATION = "validation"


@dataclasses.dataclass
class CorpusStats(InputReport):
    """Counts from a pass over one split: an :class:`InputReport` with the older names."""

    @property
    def documents(self) -> int:
        """Documents that are (or will be) yielded."""
        return self.used

    @property
    def empty_documents(self) -> int:
        """Empty / whitespace-only documents that are skipped."""
        return self.skipped[EMPTY]


def in_validation_split(doc_id: str, validation_fraction: float) -> bool:
    """Stable hash split: the same id lands in the same split on every host and run.

    Uses SHA-256 (not Python's salted ``hash``) so the split never changes between
    processes.
    """
    h = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < validation_fraction


# ----------------------------------------------------------------------------- source


class TextCorpusSource(seqio.DataSource):
    """A directory of clinical notes as ``{"id": tf.string, "text": tf.string}`` examples.

    Splits: if ``corpus_dir`` has both ``train/`` and ``validation/`` subdirectories they
    are used as-is; otherwise every document is assigned by a stable hash of its id, with
    ``validation_fraction`` of them held out. In hashed one-document-per-line mode both
    splits read every file and filter lines, so file-level shards still partition the data.

    Sharding is at the file level (``list_shards`` lists the split's files); seqio falls
    back to example-level sharding when there are fewer files than hosts.

    Each call to ``get_dataset(shuffle=True)`` reshuffles the file order for every pass
    (epoch) as a function of ``(seed, epoch)``; a fresh dataset always starts at epoch 0,
    so rebuilding the pipeline replays the same stream.

    ``strict`` (the input policy of :mod:`~gatortron_jax.annotations.input_policy`, passed
    explicitly) makes undecodable bytes and malformed ``.jsonl`` lines raise
    instead of being replaced / skipped, counted and warned about once per file.
    """

    def __init__(
        self,
        corpus_dir: str,
        *,
        doc_per_line: bool = False,
        validation_fraction: float = 0.05,
        strict: bool = False,
        show_text: bool = False,
    ):
        root = Path(corpus_dir)
        if not root.is_dir():
            raise InputError(f"corpus directory does not exist: {corpus_dir}")
        if not 0.0 <= validation_fraction < 1.0:
            raise ConfigError(
                f"validation_fraction must be in [0, 1), got {validation_fraction} "
                f"(corpus {corpus_dir})"
            )
        self._root = root
        self._doc_per_line = doc_per_line
        self._validation_fraction = validation_fraction
        self._strict = bool(strict)
        self._show_text = bool(show_text)
        self._explicit_splits = (root / TRAIN).is_dir() and (root / VALIDATION).is_dir()
        self._files = self._split_files()
        #: Per-split counts of one full pass, filled by :meth:`validate`.
        self.stats: dict[str, CorpusStats] = {}
        #: True once :meth:`validate` has read every split to the end.
        self.validated = False
        #: Per-split counts over every ``get_dataset`` pass so far (partial passes included).
        self.pass_stats: dict[str, CorpusStats] = {TRAIN: CorpusStats(), VALIDATION: CorpusStats()}
        #: First location and count of each (file, kind) problem; each is warned about once.
        self.file_issues: dict[tuple[str, str], FileIssue] = {}
        super().__init__(splits=(TRAIN, VALIDATION))

    @property
    def corpus_dir(self) -> str:
        return str(self._root)

    @property
    def strict(self) -> bool:
        return self._strict

    @property
    def skipped_empty(self) -> collections.Counter[str]:
        """Empty documents skipped while iterating, per split (cumulative over passes)."""
        return collections.Counter({split: r.empty_documents for split, r in self.pass_stats.items()})

    # -- layout -------------------------------------------------------------------------

    def _split_files(self) -> dict[str, list[Path]]:
        """Files backing each split; raises if the corpus obviously has no documents."""
        if self._explicit_splits:
            files = {s: list_corpus_files(self._root / s) for s in (TRAIN, VALIDATION)}
            for split, paths in files.items():
                if not paths:
                    raise InputError(
                        f"no *.txt or *.jsonl documents found under {self._root / split}"
                    )
        else:
            paths = list_corpus_files(self._root)
            if not paths:
                raise InputError(f"no *.txt or *.jsonl documents found under {self._root}")
            if self._per_line(paths):
                files = {TRAIN: paths, VALIDATION: paths}
            else:
                held_out = [in_validation_split(self._doc_id(p), self._validation_fraction) for p in paths]
                files = {
                    TRAIN: [p for p, v in zip(paths, held_out) if not v],
                    VALIDATION: [p for p, v in zip(paths, held_out) if v],
                }
        all_paths = set(files[TRAIN]) | set(files[VALIDATION])
        if all(p.stat().st_size == 0 for p in all_paths):
            raise InputError(f"every document file under {self._root} is empty")
        for split, paths in files.items():
            if not paths:
                logging.warning("corpus %s: split %r has no files", self._root, split)
        return files

    def _per_line(self, paths: Sequence[Path]) -> bool:
        return self._doc_per_line or any(p.suffix == ".jsonl" for p in paths)

    def _doc_id(self, path: Path) -> str:
        return path.relative_to(self._root).as_posix()

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ConfigError(
                f"unknown split {split!r} for corpus {self._root}; expected one of {self.splits}"
            )

    def iter_records(self, split: str, files: Optional[Sequence[Path]] = None) -> Iterator[NoteRecord]:
        """Yields the split's documents in file order, empty and rejected ones included."""
        self._check_split(split)
        filter_lines = not self._explicit_splits and self._per_line(self._files[split])
        for path in self._files[split] if files is None else files:
            docs = iter_file_records(path, self._doc_id(path), doc_per_line=self._doc_per_line,
                                     strict=self._strict, show_text=self._show_text, on_issue=self._note_issue)
            for doc in docs:
                if filter_lines and in_validation_split(doc.id, self._validation_fraction) != (
                    split == VALIDATION
                ):
                    continue
                yield doc

    @functools.cached_property
    def _hashed_per_line(self) -> bool:
        return not self._explicit_splits and self._per_line(self._files[TRAIN])

    def files(self) -> list[Path]:
        """Every file backing either split, each once, in sorted order."""
        return sorted(set(self._files[TRAIN]) | set(self._files[VALIDATION]),
                      key=lambda p: self._doc_id(p))

    def iter_file_split_records(self, path: Path) -> Iterator[tuple[str, NoteRecord]]:
        """``(split, record)`` for every document of one file: each file is read once, even in
        hashed per-line mode where one file feeds both splits (``prepare-corpus`` reads this way)."""
        if self._explicit_splits:
            fixed = TRAIN if path.is_relative_to(self._root / TRAIN) else VALIDATION
        elif not self._hashed_per_line:
            fixed = VALIDATION if in_validation_split(self._doc_id(path), self._validation_fraction) else TRAIN
        else:
            fixed = None
        for doc in iter_file_records(path, self._doc_id(path), doc_per_line=self._doc_per_line,
                                     strict=self._strict, show_text=self._show_text, on_issue=self._note_issue):
            if fixed is not None:
                yield fixed, doc
            else:
                yield (VALIDATION if in_validation_split(doc.id, self._validation_fraction) else TRAIN), doc

    def _note_issue(self, issue: FileIssue) -> None:
        """Warns about a file's problem the first time any pass finds it (never with text)."""
        key = (issue.path, issue.kind)
        if key in self.file_issues:
            return
        self.file_issues[key] = issue
        if len(self.file_issues) <= MAX_ISSUES:
            logging.warning("corpus %s: %s", self._root, issue.message())
        elif len(self.file_issues) == MAX_ISSUES + 1:
            logging.warning("corpus %s: more files with problems; see the input report counts", self._root)

    # -- seqio DataSource ---------------------------------------------------------------

    @property
    def supports_arbitrary_sharding(self) -> bool:
        return False

    def list_shards(self, split: str) -> Sequence[str]:
        self._check_split(split)
        return [self._doc_id(p) for p in self._files[split]]

    def num_input_examples(self, split: str) -> Optional[int]:
        """Non-empty document count, known only after :meth:`validate`.

        Counting needs a full read of the corpus, which seqio would otherwise trigger on
        every ``get_dataset`` call, so it is never computed implicitly.
        """
        self._check_split(split)
        return self.stats[split].documents if split in self.stats else None

    def validate(self) -> dict[str, CorpusStats]:
        """Reads every document once; raises ``InputError`` on the first bad file if strict.

        Lets the CLI fail before training starts rather than hours in. Also raises if a
        split that has files contains no usable document. Returns (and stores in
        :attr:`stats`) per-split counts, every skipped document counted with its reason,
        and logs them when anything was skipped or altered.
        """
        self.validated = False
        for split in self.splits:
            stats = CorpusStats(files=len(self._files[split]))
            for doc in self.iter_records(split):
                _count(doc, stats)
            stats.check()
            if stats.files and not stats.used and (split == TRAIN or self._explicit_splits):
                skipped = ", ".join(f"{k} {v}" for k, v in sorted(stats.skipped.items()))
                raise InputError(
                    f"corpus {self._root}: split {split!r} has no non-empty documents (skipped: {skipped})"
                )
            if stats.has_problems:
                logging.warning("corpus %s: split %r: %s", self._root, split, stats.summary())
            self.stats[split] = stats
        self.validated = True
        return dict(self.stats)

    def summary(self) -> str:
        """One PHI-free line: full-pass counts if validated, else counts streamed so far."""
        return format_summary(self.stats if self.validated else self.pass_stats)

    def input_report(self) -> dict[str, Any]:
        """JSON-ready account of everything read: counts, paths and offsets, never text."""
        issues = sorted(self.file_issues.values(), key=lambda i: (i.path, i.kind))
        return {
            "corpus_dir": str(self._root),
            "strict": self._strict,
            "validated": self.validated,
            "splits": {split: r.to_dict() for split, r in self.stats.items()},
            "streamed": {split: r.to_dict() for split, r in self.pass_stats.items()},
            "file_issues": [i.to_dict() for i in issues[:MAX_ISSUES]],
            "file_issues_omitted": max(0, len(issues) - MAX_ISSUES),
        }

    def get_dataset(
        self,
        split: str = TRAIN,
        shuffle: bool = True,
        seed: Optional[int] = None,
        shard_info: Optional[seqio.ShardInfo] = None,
        *,
        sequence_length: Optional[Mapping[str, int]] = None,  # Unused (seqio interface)
        use_cached: bool = False,  # Unused (seqio interface)
        num_epochs: Optional[int] = 1,  # Unused (seqio interface)
    ) -> tf.data.Dataset:
        """One pass over the split's (shard of) files; skips and counts unusable documents."""
        del sequence_length, use_cached, num_epochs
        self._check_split(split)
        files = list(self._files[split])
        if shard_info is not None and shard_info.num_shards > 1:
            files = files[shard_info.index :: shard_info.num_shards]
        epochs = itertools.count()

        def generate() -> Iterator[dict[str, str]]:
            epoch = next(epochs)
            order = files
            if shuffle:
                rng = np.random.default_rng(None if seed is None else [seed, epoch])
                order = [files[i] for i in rng.permutation(len(files))]
            this_pass = CorpusStats(files=len(order))
            self.pass_stats[split].files += len(order)
            for doc in self.iter_records(split, order):
                reason = _count(doc, this_pass, self.pass_stats[split])
                if reason is not None:
                    logging.debug("corpus %s: skipping %s document %s", self._root, reason, doc.id)
                    continue
                yield {"id": doc.id, "text": doc.text}
            if this_pass.has_problems:
                logging.warning("corpus %s: split %r pass %d: %s", self._root, split, epoch, this_pass.summary())

        return tf.data.Dataset.from_generator(
            generate,
            output_signature={
                "id": tf.TensorSpec([], tf.string),
                "text": tf.TensorSpec([], tf.string),
            },
        )

    def __repr__(self) -> str:
        return (
            f"TextCorpusSource(corpus_dir={str(self._root)!r}, doc_per_line={self._doc_per_line}, "
            f"validation_fraction={self._validation_fraction}, strict={self._strict}, "
            f"explicit_splits={self._explicit_splits})"
        )


def _count(doc: NoteRecord, *reports: InputReport) -> Optional[str]:
    """Counts ``doc`` in every report; returns its skip reason (None when it is used)."""
    reason = doc.skip_reason
    for report in reports:
        report.add(reason, replaced_sequences=doc.replaced_sequences, replaced_bytes=doc.replaced_bytes)
    return reason
