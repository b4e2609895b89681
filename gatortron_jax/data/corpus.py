"""Plain-text clinical-note corpora as a seqio ``DataSource``.

Clinical corpora arrive as directories of notes, either one note per ``.txt`` file or one
note per line (``.txt`` lines, or ``.jsonl`` records with a ``text`` field). This module
turns such a directory into ``{"id", "text"}`` examples for seqio while keeping the two
properties pretraining depends on:

* **Determinism.** File order, the hashed train/validation split and per-host file shards
  are pure functions of the file names and the seed, so a restarted trainer that skips the
  batches it already consumed sees exactly the same stream.
* **Loud, PHI-free failures.** Bad bytes, bad JSON and empty corpora raise
  :class:`~gatortron_jax.errors.InputError` naming the file, line and byte offset, never
  the note text. Empty notes are skipped but counted (:attr:`TextCorpusSource.stats`).

Errors raised while ``tf.data`` iterates reach the caller wrapped in a ``tf.errors``
exception (TensorFlow cannot re-raise Python types from a generator), with our message
inside; call :meth:`TextCorpusSource.validate` up front to get a real ``InputError``
before training starts.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
import json
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

from absl import logging
import numpy as np
import seqio
import tensorflow as tf

from gatortron_jax.errors import ConfigError, InputError

TRAIN = "train"
VALIDATION = "validation"
_SUFFIXES = (".txt", ".jsonl")
_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass
class CorpusStats:
    """Counts from a full pass over one split (see :meth:`TextCorpusSource.validate`)."""

    files: int = 0
    documents: int = 0  # non-empty documents that will be yielded
    empty_documents: int = 0  # empty / whitespace-only documents that are skipped


# ----------------------------------------------------------------------------- readers


def list_corpus_files(directory: Path) -> list[Path]:
    """All ``*.txt`` / ``*.jsonl`` files under ``directory``, recursively, in sorted order.

    Sorting by relative POSIX path makes the file list (and hence every shard and shuffle
    derived from it) independent of filesystem enumeration order. Hidden files are ignored.
    """
    files = [
        p
        for p in directory.rglob("*")
        if p.is_file()
        and p.suffix in _SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


def _decode(raw: bytes, path: Path, line_start: int, lineno: int) -> str:
    """Strict UTF-8 decode; the error names file, line and absolute byte offset only."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path}: not valid UTF-8 at byte offset {line_start + e.start} "
            f"(line {lineno}: {e.reason})"
        ) from None


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yields ``(1-based line number, decoded line without newline)``, streaming."""
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            start = offset
            offset += len(raw)
            if lineno == 1 and raw.startswith(_BOM):
                raw, start = raw[len(_BOM) :], start + len(_BOM)
            yield lineno, _decode(raw.rstrip(b"\r\n"), path, start, lineno)


def _jsonl_text(line: str, path: Path, lineno: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise InputError(f'{path}:{lineno}: expected a JSON object with a string "text" field')
    return record["text"]


def iter_file_documents(
    path: Path, doc_id: str, *, doc_per_line: bool
) -> Iterator[tuple[str, str]]:
    """Yields ``(id, text)`` for every document in one file, empty ones included.

    ``.jsonl`` files are always one record per line; ``.txt`` files are one document per
    line when ``doc_per_line`` and otherwise one document per file. Line ids are
    ``"<doc_id>:<1-based line>"``. A blank ``.jsonl`` line is reported as an empty
    document so callers can count it rather than drop it silently.
    """
    if path.suffix == ".jsonl":
        for lineno, line in _iter_lines(path):
            text = _jsonl_text(line, path, lineno) if line.strip() else ""
            yield f"{doc_id}:{lineno}", text
    elif doc_per_line:
        for lineno, line in _iter_lines(path):
            yield f"{doc_id}:{lineno}", line
    else:
        raw = path.read_bytes()
        start = len(_BOM) if raw.startswith(_BOM) else 0
        try:
            text = raw[start:].decode("utf-8")
        except UnicodeDecodeError as e:
            offset = start + e.start
            lineno = raw.count(b"\n", 0, offset) + 1
            raise InputError(
                f"{path}: not valid UTF-8 at byte offset {offset} (line {lineno}: {e.reason})"
            ) from None
        yield doc_id, text


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
    """

    def __init__(
        self,
        corpus_dir: str,
        *,
        doc_per_line: bool = False,
        validation_fraction: float = 0.05,
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
        self._explicit_splits = (root / TRAIN).is_dir() and (root / VALIDATION).is_dir()
        self._files = self._split_files()
        #: Per-split counts, filled by :meth:`validate`.
        self.stats: dict[str, CorpusStats] = {}
        #: Empty documents skipped while iterating, per split (cumulative over passes).
        self.skipped_empty: collections.Counter[str] = collections.Counter()
        super().__init__(splits=(TRAIN, VALIDATION))

    @property
    def corpus_dir(self) -> str:
        return str(self._root)

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

    def iter_documents(
        self, split: str, files: Optional[Sequence[Path]] = None
    ) -> Iterator[tuple[str, str]]:
        """Yields ``(id, text)`` for the split's documents in file order, empties included."""
        self._check_split(split)
        filter_lines = not self._explicit_splits and self._per_line(self._files[split])
        for path in self._files[split] if files is None else files:
            docs = iter_file_documents(path, self._doc_id(path), doc_per_line=self._doc_per_line)
            for doc_id, text in docs:
                if filter_lines and in_validation_split(doc_id, self._validation_fraction) != (
                    split == VALIDATION
                ):
                    continue
                yield doc_id, text

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
        """Reads every document once; raises ``InputError`` on the first bad file.

        Lets the CLI fail before training starts rather than hours in. Also raises if a
        split that has files contains no non-empty document. Returns (and stores in
        :attr:`stats`) per-split counts, including skipped empty documents.
        """
        for split in self.splits:
            stats = CorpusStats(files=len(self._files[split]))
            for _, text in self.iter_documents(split):
                if text.strip():
                    stats.documents += 1
                else:
                    stats.empty_documents += 1
            if stats.files and not stats.documents and (split == TRAIN or self._explicit_splits):
                raise InputError(
                    f"corpus {self._root}: split {split!r} has no non-empty documents "
                    f"({stats.empty_documents} empty skipped)"
                )
            if stats.empty_documents:
                logging.warning(
                    "corpus %s: split %r: skipping %d empty documents",
                    self._root, split, stats.empty_documents,
                )
            self.stats[split] = stats
        return dict(self.stats)

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
        """One pass over the split's (shard of) files; skips and counts empty documents."""
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
            skipped = 0
            for doc_id, text in self.iter_documents(split, order):
                if not text.strip():
                    skipped += 1
                    self.skipped_empty[split] += 1
                    logging.debug("corpus %s: skipping empty document %s", self._root, doc_id)
                    continue
                yield {"id": doc_id, "text": text}
            if skipped:
                logging.warning(
                    "corpus %s: split %r pass %d: skipped %d empty documents",
                    self._root, split, epoch, skipped,
                )

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
            f"validation_fraction={self._validation_fraction}, "
            f"explicit_splits={self._explicit_splits})"
        )
