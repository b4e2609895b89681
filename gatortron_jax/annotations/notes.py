"""Raw clinical notes as files: decoding under the input policy, one note per file or per line.

Every note reader (the pretraining corpus, ``predict``/``deid``/``embed`` inputs) goes through
here, so bad bytes are handled once: replaced with U+FFFD and counted (or an
:class:`~gatortron_jax.core.errors.InputError` naming ``file:line`` under ``strict``), malformed
``.jsonl`` lines skipped and counted, a BOM dropped, CRLF normalised. A record that is skipped
still comes out (:attr:`NoteRecord.skip_reason`), so callers count it rather than lose it.
Never logs note text.
"""

from __future__ import annotations

import codecs
import collections
import dataclasses
import json
import logging as std_logging
from pathlib import Path
import re
import threading
from typing import Any, Callable, Iterator, Optional

from gatortron_jax.annotations.input_policy import (
    EMPTY,
    INVALID_JSON,
    NO_TEXT,
    REPLACED_BYTES,
    UNPAIRED_SURROGATE,
    FileIssue,
    escaped_excerpt,
)
from gatortron_jax.core.errors import InputError

_SUFFIXES = (".txt", ".jsonl")
_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE_BYTES = len("\\ud800")
_REPLACE_AND_COUNT = "gatortron_jax.replace_and_count"  # codec error handler name


@dataclasses.dataclass(slots=True)  # not frozen: frozen init is measurably slower per line
class NoteRecord:
    """One document as read, plus what the reader had to do to it (never logged)."""

    id: str
    text: str
    skip: Optional[str] = None  # set when the reader rejected the record (lenient mode only)
    replaced_sequences: int = 0  # undecodable sequences replaced with U+FFFD
    replaced_bytes: int = 0

    @property
    def skip_reason(self) -> Optional[str]:
        """Why the document is not used (the reader's reason, or empty text); None if used."""
        if self.skip is not None:
            return self.skip
        return None if self.text.strip() else EMPTY


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


class _ReplacementTally:
    """Undecodable sequences seen by one ``bytes.decode`` call (see :func:`_count_and_replace`)."""

    def __init__(self) -> None:
        self.sequences = 0
        self.bytes = 0
        self.first: Optional[tuple[int, str]] = None  # (offset, reason) of the first one


_tallies = threading.local()


def _count_and_replace(e: UnicodeError) -> tuple[str, int]:
    """A codec error handler: ``errors="replace"`` that also tallies what it replaced.

    An error handler keeps decoding in one C pass; re-decoding slices after each error
    instead copies the rest of the input per error (quadratic on a corrupt file).
    """
    if not isinstance(e, UnicodeDecodeError):
        raise e
    tally: _ReplacementTally = _tallies.current
    if tally.first is None:
        tally.first = (e.start, e.reason)
    tally.sequences += 1
    tally.bytes += e.end - e.start
    return "\ufffd", e.end


codecs.register_error(_REPLACE_AND_COUNT, _count_and_replace)


def _decode_replacing(raw: bytes) -> tuple[str, _ReplacementTally]:
    """UTF-8 text with each undecodable sequence as U+FFFD, exactly as ``errors="replace"``.

    Offsets in the tally are relative to ``raw``. Callers try a strict decode first: valid
    input (the hot path) never comes here.
    """
    tally = _tallies.current = _ReplacementTally()
    try:
        return raw.decode("utf-8", _REPLACE_AND_COUNT), tally
    finally:
        _tallies.current = None


def _iter_raw_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """Yields ``(1-based line, absolute byte offset, raw line without newline)``, streaming.

    A UTF-8 BOM at the start of the file is dropped (offsets still count it); CRLF
    endings are removed with the newline. Lines of any length are read whole.
    """
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            start = offset
            offset += len(raw)
            if lineno == 1 and raw.startswith(_BOM):
                raw, start = raw[len(_BOM) :], start + len(_BOM)
            yield lineno, start, raw.rstrip(b"\r\n")


def read_note_file(path: str, *, strict: bool = False, show_text: bool = False) -> tuple[str, Optional[FileIssue]]:
    """A whole ``.txt`` note under the input policy: ``(text, issue or None)``.

    For the raw notes of ``predict`` / ``deid`` / ``embed``: undecodable bytes become U+FFFD
    and are reported as one :class:`FileIssue` (path, line, byte offset, count; never text
    unless ``--show_text``), logged here as one warning, or raise :class:`InputError` when
    strict. A leading UTF-8 BOM is kept as U+FEFF so character offsets stay those of the file
    as Python decodes it.
    """
    with open(path, "rb") as f:
        raw = f.read()
    reader = FileReader(Path(path), strict, show_text)
    text, _, _ = reader.decode(raw, 0, 1)
    issues = reader.issues()
    if issues:
        std_logging.getLogger("gatortron_jax").warning("%s", issues[0].message())
    return text, (issues[0] if issues else None)


class FileReader:
    """Applies the input policy to one file and aggregates its problems per kind.

    Aggregating lets a file with thousands of bad lines produce one :class:`FileIssue`
    (first location + count) instead of thousands of warnings.
    """

    def __init__(self, path: Path, strict: bool, show_text: bool = False):
        self.path = path
        self.strict = strict
        self.show_text = show_text  # a replaced-byte warning may quote an escaped excerpt (local debugging)
        self._first: dict[str, FileIssue] = {}
        self._counts: collections.Counter[str] = collections.Counter()

    def issues(self) -> list[FileIssue]:
        return [dataclasses.replace(issue, count=self._counts[kind]) for kind, issue in self._first.items()]

    def _note(self, kind: str, count: int, line: int, *, offset: Optional[int] = None, detail: str = "",
              excerpt: Optional[Callable[[], str]] = None) -> None:
        self._counts[kind] += count
        if kind not in self._first:
            text = excerpt() if excerpt is not None and self.show_text else None
            self._first[kind] = FileIssue(str(self.path), kind, 0, line, offset, detail, text)

    def decode(self, raw: bytes, start: int, first_line: int) -> tuple[str, int, int]:
        """``(text, sequences, bytes replaced)`` for ``raw``, found at byte ``start`` on ``first_line``."""
        try:
            return raw.decode("utf-8"), 0, 0
        except UnicodeDecodeError:
            pass
        text, tally = _decode_replacing(raw)
        if tally.first is None:  # unreachable: strict decoding just failed
            return text, 0, 0
        rel, reason = tally.first
        offset, line = start + rel, first_line + raw.count(b"\n", 0, rel)
        if self.strict:
            raise InputError(f"{self.path}: not valid UTF-8 at byte offset {offset} (line {line}: {reason})")
        self._note(REPLACED_BYTES, tally.sequences, line, offset=offset, detail=reason,
                   excerpt=lambda: escaped_excerpt(raw, rel))
        return text, tally.sequences, tally.bytes

    def text_document(self, doc_id: str, raw: bytes, start: int, first_line: int) -> NoteRecord:
        text, sequences, nbytes = self.decode(raw, start, first_line)
        return NoteRecord(doc_id, text, replaced_sequences=sequences, replaced_bytes=nbytes)

    def jsonl_document(self, doc_id: str, raw: bytes, start: int, lineno: int) -> NoteRecord:
        """A ``.jsonl`` line's ``text``; a blank line is an (empty, counted) document."""
        line, sequences, nbytes = self.decode(raw, start, lineno)
        if not line.strip():
            return NoteRecord(doc_id, "")
        try:
            record: Any = json.loads(line)
        except json.JSONDecodeError as e:
            return self._reject(doc_id, INVALID_JSON, lineno, f"{e.msg} at column {e.colno}",
                                f"invalid JSON ({e.msg} at column {e.colno})")
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            return self._reject(doc_id, NO_TEXT, lineno, "", 'expected a JSON object with a string "text" field')
        text, lone = self._scrub_surrogates(record["text"], lineno)
        return NoteRecord(doc_id, text, replaced_sequences=sequences + lone,
                        replaced_bytes=nbytes + lone * _SURROGATE_ESCAPE_BYTES)

    def _reject(self, doc_id: str, kind: str, lineno: int, detail: str, strict_message: str) -> NoteRecord:
        if self.strict:
            raise InputError(f"{self.path}:{lineno}: {strict_message}")
        self._note(kind, 1, lineno, detail=detail)
        return NoteRecord(doc_id, "", skip=kind)

    def _scrub_surrogates(self, text: str, lineno: int) -> tuple[str, int]:
        """Replaces unpaired ``\\uD800``-``\\uDFFF`` escapes, which no UTF-8 consumer (tf.data) accepts."""
        if not _SURROGATE.search(text):
            return text, 0
        if self.strict:
            raise InputError(f"{self.path}:{lineno}: unpaired surrogate escape in the JSON text (not valid Unicode)")
        text, count = _SURROGATE.subn("\ufffd", text)
        self._note(UNPAIRED_SURROGATE, count, lineno)
        return text, count


def iter_file_records(
    path: Path,
    doc_id: str,
    *,
    doc_per_line: bool,
    strict: bool = False,
    show_text: bool = False,
    on_issue: Optional[Callable[[FileIssue], None]] = None,
) -> Iterator[NoteRecord]:
    """Yields every document in one file, empty and rejected ones included.

    ``.jsonl`` files are always one record per line; ``.txt`` files are one document per
    line when ``doc_per_line`` and otherwise one document per file (CRLF normalised
    to LF). Line ids are ``"<doc_id>:<1-based line>"``. Callers count every record
    (:attr:`NoteRecord.skip_reason`) rather than drop any silently. ``strict`` raises on bad bytes / bad JSON instead; otherwise, once the file
    is fully read, each kind of problem found is passed to ``on_issue`` once.
    """
    reader = FileReader(path, strict, show_text)
    if path.suffix == ".jsonl":
        for lineno, start, raw in _iter_raw_lines(path):
            yield reader.jsonl_document(f"{doc_id}:{lineno}", raw, start, lineno)
    elif doc_per_line:
        for lineno, start, raw in _iter_raw_lines(path):
            yield reader.text_document(f"{doc_id}:{lineno}", raw, start, lineno)
    else:
        raw = path.read_bytes()
        start = len(_BOM) if raw.startswith(_BOM) else 0
        doc = reader.text_document(doc_id, raw[start:], start, 1)
        yield dataclasses.replace(doc, text=doc.text.replace("\r\n", "\n"))
    if on_issue is not None:
        for issue in reader.issues():
            on_issue(issue)
