"""Note tables as streams: a ``.txt`` tree, ``.jsonl``, CSV or Parquet, one note at a time.

``predict`` / ``deid`` run over whole EHR note tables (an OMOP ``note`` export has
``note_id`` and ``note_text`` columns), so no reader here holds more than one record batch:
``.txt`` trees list file *names* up front (~100 bytes per note: 10 GB of names at 100M
notes in one directory tree; shard the tree or use a table format beyond ~10M), ``.jsonl``
is read line by line, CSV and Parquet by pyarrow record batches.

Every input record comes out as a :class:`SourceNote` with its global ``index`` (position in
the input, the shard key) — a record that cannot be used carries ``reason`` instead of being
dropped, so the driver lists it in the summary. Bad bytes follow the input policy of
:mod:`gatortron_jax.annotations.notes` (U+FFFD + counted, or one ``InputError`` naming
file and line/row under ``--strict``). Note text is never logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Callable, Iterator, Optional

from gatortron_jax.annotations import notes as notes_lib
from gatortron_jax.core.errors import ConfigError, InputError

log = logging.getLogger("gatortron_jax")

KINDS = ("txt", "jsonl", "csv", "parquet")
_RECORD_BATCH_ROWS = 1024  # CSV/Parquet rows decoded at a time (bounded memory)

# Reasons a record is listed as failed (stable strings: they are summary.json keys).
NO_ID = "no id"
NO_TEXT = "no text"
INVALID_JSON = "invalid JSON"
UNSAFE_ID = "id not usable as a relative file name"
DUPLICATE_ID = "duplicate id"


@dataclasses.dataclass(slots=True)
class SourceNote:
    index: int  # 0-based position among all records of the input (shard assignment uses it)
    id: str
    text: str
    where: str  # "file:line" / "file row N" for messages (never text)
    reason: Optional[str] = None  # set when the note cannot be processed
    replaced: int = 0  # undecodable byte sequences replaced with U+FFFD
    gold: Optional[list] = None  # gold PHI entities (``gold_field`` of a .jsonl table), offsets into ``text``


def detect_kind(path: str) -> str:
    """``txt`` for a directory or .txt file, else by extension (.jsonl, .csv/.tsv, .parquet/.pq)."""
    if os.path.isdir(path):
        return "txt"
    ext = os.path.splitext(path)[1].lower()
    kind = {".txt": "txt", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
    if ext not in kind:
        raise InputError(f"{path}: cannot tell the input format from the extension; use a directory of .txt, "
                         f"or a .jsonl, .csv or .parquet file (or --input_format)")
    return kind[ext]


def safe_relative_id(note_id: str) -> bool:
    """True if ``note_id`` can name per-note output files inside the output dir (no escape, no oddities)."""
    if not note_id or "\x00" in note_id or "\\" in note_id or note_id.startswith("/") or len(note_id) > 200:
        return False
    return all(part not in ("", ".", "..") and not part.startswith(".") for part in note_id.split("/"))


class NoteSource:
    """One input (file or directory) of one kind; iterate with :meth:`notes`."""

    def __init__(self, path: str, kind: Optional[str] = None, *, id_field: Optional[str] = None,
                 text_field: Optional[str] = None, strict: bool = False, show_text: bool = False,
                 gold_field: Optional[str] = None):
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file or directory")
        self.path = path
        self.kind = kind or detect_kind(path)
        if self.kind not in KINDS:
            raise ConfigError(f"--input_format {self.kind!r}: choose one of {KINDS}")
        table_defaults = ("note_id", "note_text") if self.kind in ("csv", "parquet") else ("id", "text")
        self.id_field = id_field or table_defaults[0]
        self.text_field = text_field or table_defaults[1]
        # A table column of gold PHI spans (annotations/note_table.py): a JSON list in .jsonl, a JSON
        # string in CSV, a JSON string or list<struct<start, end, type>> column in Parquet.
        self.gold_field = gold_field
        if gold_field and self.kind == "txt":
            raise ConfigError("--gold_field: .txt notes carry no gold PHI spans; give a .jsonl, CSV or Parquet "
                              "note table (convert-notes writes one from annotated notes)")
        self.strict = bool(strict)
        self.show_text = bool(show_text)
        self._txt_files: Optional[list[tuple[str, str]]] = None

    # --------------------------------------------------------------------- size (for the ETA)

    def count(self) -> Optional[int]:
        """Number of records, when cheap to know (txt tree, Parquet metadata, jsonl newlines); else None."""
        if self.kind == "txt":
            return len(self._txt_list())
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows
        if self.kind == "jsonl":
            with open(self.path, "rb") as f:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
        return None  # CSV: quoted newlines make a line count wrong

    # --------------------------------------------------------------------- iteration

    def notes(self, keep: Callable[[int], bool] = lambda i: True) -> Iterator[SourceNote]:
        """Every record in input order; records with ``keep(index)`` false are not decoded (shards)."""
        reader = {"txt": self._txt, "jsonl": self._jsonl, "csv": self._table, "parquet": self._table}[self.kind]
        for note in reader(keep):  # readers yield undecoded placeholders for other shards' records
            if keep(note.index):
                yield note

    def _txt_list(self) -> list[tuple[str, str]]:
        if self._txt_files is None:
            if os.path.isfile(self.path):
                files = [(self.path, os.path.splitext(os.path.basename(self.path))[0])]
            else:
                files = []
                for root, dirs, names in os.walk(self.path):
                    dirs.sort()
                    for name in sorted(names):
                        if name.endswith(".txt") and not name.startswith("."):
                            p = os.path.join(root, name)
                            files.append((p, os.path.relpath(p, self.path)[:-4].replace(os.sep, "/")))
            if not files:
                raise InputError(f"{self.path}: no .txt notes found")
            self._txt_files = files
        return self._txt_files

    def _txt(self, keep: Callable[[int], bool]) -> Iterator[SourceNote]:
        for index, (path, note_id) in enumerate(self._txt_list()):
            if not keep(index):
                yield SourceNote(index, note_id, "", path)
                continue
            text, issue = notes_lib.read_note_file(path, strict=self.strict, show_text=self.show_text)  # warns once per bad file
            yield SourceNote(index, note_id, text, path, replaced=issue.count if issue else 0)

    def _jsonl(self, keep: Callable[[int], bool]) -> Iterator[SourceNote]:
        decoder = notes_lib.FileReader(Path(self.path), self.strict, self.show_text)  # the input policy's decoder
        offset = 0
        with open(self.path, "rb") as f:
            for index, raw in enumerate(f):
                start, offset, lineno = offset, offset + len(raw), index + 1
                where = f"{self.path}:{lineno}"
                if not keep(index):
                    yield SourceNote(index, "", "", where)
                    continue
                if index == 0 and raw.startswith(b"\xef\xbb\xbf"):
                    raw, start = raw[3:], start + 3
                line, replaced, _ = decoder.decode(raw.rstrip(b"\r\n"), start, lineno)
                fallback_id = f"line{lineno}"
                if not line.strip():
                    yield SourceNote(index, fallback_id, "", where, NO_TEXT)
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    if self.strict:
                        raise InputError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
                    yield SourceNote(index, fallback_id, "", where, INVALID_JSON)
                    continue
                yield self._record(index, where, record if isinstance(record, dict) else {}, fallback_id, replaced)
        for issue in decoder.issues():
            log.warning("%s", issue.message())

    def _record(self, index: int, where: str, record: dict, fallback_id: str, replaced: int) -> SourceNote:
        raw_id, text = record.get(self.id_field), record.get(self.text_field)
        if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
            if self.strict:
                raise InputError(f"{where}: no {self.id_field!r} value (set --id_field)")
            return SourceNote(index, fallback_id, "", where, NO_ID)
        note_id = str(raw_id)
        if not isinstance(text, (str, bytes)):
            if self.strict:
                raise InputError(f"{where}: no string {self.text_field!r} value (set --text_field)")
            return SourceNote(index, note_id, "", where, NO_TEXT)
        if isinstance(text, bytes):
            text, replaced = self._decode_bytes(text, where)
        gold = self._gold(record, text, where, note_id) if self.gold_field else None
        return SourceNote(index, note_id, text.replace("\r\n", "\n"), where, replaced=replaced, gold=gold)

    def _gold(self, record: dict, text: str, where: str, note_id: str) -> list:
        """The record's gold PHI, offsets moved onto the text as read (``\r\n`` becomes ``\n``)."""
        from gatortron_jax.annotations.note_table import gold_spans

        if self.gold_field not in record:
            raise InputError(f"{where}: note {note_id!r}: no {self.gold_field!r} field (give [] for a note "
                             "without PHI)")
        value = record[self.gold_field]
        if isinstance(value, (str, bytes)):  # a CSV cell or a Parquet string column: JSON text
            if not value.strip():
                raise InputError(f"{where}: note {note_id!r}: {self.gold_field} is empty (give [] for a note "
                                 "without PHI)")
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: note {note_id!r}: {self.gold_field}: not JSON ({e.msg} at column "
                                 f"{e.colno}); expected a list of {{\"start\", \"end\", \"type\"}}") from None
        removed = [i for i in range(len(text) - 1) if text[i] == "\r" and text[i + 1] == "\n"] if "\r\n" in text else []
        return gold_spans(value, text.replace("\r\n", "\n"), where=where, note_id=note_id,
                          field=self.gold_field, removed=removed)

    def _decode_bytes(self, raw: bytes, where: str) -> tuple[str, int]:
        try:
            return raw.decode("utf-8"), 0
        except UnicodeDecodeError as e:
            if self.strict:
                raise InputError(f"{where}: not valid UTF-8 at byte offset {e.start} of the text ({e.reason})") from None
        text = raw.decode("utf-8", "replace")
        return text, text.count("\ufffd") - raw.decode("utf-8", "ignore").count("\ufffd")

    def _table_batches(self) -> Iterator[dict]:
        import pyarrow as pa

        wanted = [self.id_field, self.text_field] + ([self.gold_field] if self.gold_field else [])
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(self.path)
            missing = [c for c in wanted if c not in pf.schema_arrow.names]
            if missing:
                raise InputError(f"{self.path}: no column(s) {missing}; columns are {pf.schema_arrow.names} "
                                 f"(set --id_field / --text_field / --gold_field)")
            batches = pf.iter_batches(batch_size=_RECORD_BATCH_ROWS, columns=wanted)
        else:
            from pyarrow import csv

            delimiter = "\t" if self.path.lower().endswith(".tsv") else ","
            try:
                batches = csv.open_csv(
                    self.path,
                    read_options=csv.ReadOptions(block_size=1 << 22),
                    parse_options=csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                    # text as bytes: decoded here under the input policy, not rejected by pyarrow
                    convert_options=csv.ConvertOptions(include_columns=wanted, column_types={
                        self.id_field: pa.string(), self.text_field: pa.binary(),
                        **({self.gold_field: pa.string()} if self.gold_field else {})}),
                )
            except (pa.ArrowInvalid, KeyError) as e:
                raise InputError(f"{self.path}: cannot read CSV columns {wanted} ({e}); set --id_field / "
                                 f"--text_field / --gold_field") from None
        try:
            for batch in batches:
                yield batch.to_pydict()
        except pa.ArrowInvalid as e:
            raise InputError(f"{self.path}: malformed {self.kind.upper()} ({e})") from None

    def _table(self, keep: Callable[[int], bool]) -> Iterator[SourceNote]:
        index = 0
        for cols in self._table_batches():
            ids, texts = cols[self.id_field], cols[self.text_field]
            golds = cols[self.gold_field] if self.gold_field else [None] * len(ids)
            for raw_id, text, gold in zip(ids, texts, golds):
                where = f"{self.path} row {index + 1}"
                if keep(index):
                    record = {self.id_field: raw_id, self.text_field: text}
                    if self.gold_field:
                        record[self.gold_field] = gold
                    yield self._record(index, where, record, f"row{index + 1}", 0)
                else:
                    yield SourceNote(index, "", "", where)
                index += 1


def shard_of(index: int, num_shards: int) -> int:
    """The shard that owns the note at input position ``index``: ``index mod num_shards``.

    By position, not id hash: every index has exactly one shard (no overlap, no gap) whatever
    the ids look like (duplicates, blanks), and shard sizes differ by at most one note.
    """
    return index % num_shards
