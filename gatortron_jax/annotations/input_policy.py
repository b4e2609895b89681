"""What the corpus readers did with every document, counted without showing any of it.

Clinical notes are PHI, so the readers (:mod:`gatortron_jax.pretraining.corpus`, and
:mod:`gatortron_jax.text.vocab` through it) never log text. They still must not lose
documents silently, so every document read lands in exactly one bucket of an
:class:`InputReport`: *used*, or *skipped* with a reason. The invariant
``read == used + sum(skipped)`` is checked (:meth:`InputReport.check`) and tested.

Input policy (one place, applied by every corpus reader):

* **Undecodable bytes.** Default: each invalid UTF-8 sequence becomes U+FFFD (as
  ``bytes.decode(errors="replace")`` does); the document is *used* but *flagged*
  ``replaced_bytes``, and one warning per file gives the first bad byte's line and
  offset and the file's count. ``strict``: :class:`~gatortron_jax.core.errors.InputError`
  naming file, byte offset and line. An unpaired ``\\uD800``-``\\uDFFF`` escape in a
  ``.jsonl`` string (valid JSON, but not encodable text) follows the same rule.
* **Malformed ``.jsonl`` lines.** Default: skipped with reason ``invalid_json`` (not JSON)
  or ``no_text`` (not an object with a string ``"text"``), their ``file:line`` kept in the
  report and one warning per file. ``strict``: ``InputError`` naming ``file:line``.
  Skipping (rather than failing) is the default because one truncated line in a
  multi-gigabyte export should not stop a pretraining run, while still being visible.
* **Empty / whitespace-only documents** are skipped with reason ``empty`` in both modes.
* **Document ids** are path based (``relative/path.txt`` or ``relative/path.jsonl:LINE``);
  an ``"id"`` field inside a ``.jsonl`` record is ignored, so ids are unique by
  construction even when records repeat an id.

Nothing here holds document text. The one exception is opt-in: with ``show_text``
(``--show_text`` on the CLI) the *warning* for replaced bytes carries a short escaped
excerpt around the first bad byte, for local debugging; reports and JSON never do.

The policy is an argument, never a global: every reader takes ``strict`` (and, where it
decodes raw bytes, ``show_text``), and the CLI passes its ``--strict`` / ``--show_text`` down
(through the data configs for pretraining and fine-tuning, so the choice is recorded with the
run). What a call does is visible at its call site.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Mapping, Optional

# Skip reasons (document read but not used).
EMPTY = "empty"
INVALID_JSON = "invalid_json"
NO_TEXT = "no_text"
# Flags (document used, but altered) and per-file issue kinds.
REPLACED_BYTES = "replaced_bytes"
UNPAIRED_SURROGATE = "unpaired_surrogate"

EXCERPT_CHARS = 80
#: Per-file issues kept in a report; a corpus where every file is bad stays a small report.
MAX_ISSUES = 100


# ----------------------------------------------------------------------------- issues


def escaped_excerpt(raw: bytes, offset: int, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``raw`` around ``offset``, printable ASCII only.

    Every byte outside printable ASCII (and the backslash) is written as ``\\xNN``, so the
    excerpt cannot smuggle control characters or invalid text into a log.
    """
    lo = hi = min(max(offset, 0), len(raw))
    size = 0
    while lo > 0 or hi < len(raw):
        grown = False
        for side in ("right", "left"):
            if side == "right" and hi < len(raw) and size + len(_escape_byte(raw[hi])) <= limit:
                size, hi, grown = size + len(_escape_byte(raw[hi])), hi + 1, True
            elif side == "left" and lo > 0 and size + len(_escape_byte(raw[lo - 1])) <= limit:
                size, lo, grown = size + len(_escape_byte(raw[lo - 1])), lo - 1, True
        if not grown:
            break
    return "".join(_escape_byte(b) for b in raw[lo:hi])


def _escape_byte(b: int) -> str:
    return chr(b) if 32 <= b < 127 and b != 92 else f"\\x{b:02x}"


@dataclasses.dataclass(frozen=True)
class FileIssue:
    """One kind of problem in one file: how often, and where it first happened.

    Aggregated per file so a corrupt export gives one warning per file, not one per line.
    ``excerpt`` is set only under ``show_text`` and is never written to JSON.
    """

    path: str
    kind: str  # REPLACED_BYTES, UNPAIRED_SURROGATE, INVALID_JSON or NO_TEXT
    count: int
    line: int  # 1-based line of the first occurrence
    offset: Optional[int] = None  # absolute byte offset of the first bad byte, when known
    detail: str = ""  # PHI-free reason, e.g. "invalid start byte" or "Expecting value at column 1"
    excerpt: Optional[str] = None

    def message(self) -> str:
        """One PHI-free warning line (plus the excerpt only when one was captured)."""
        where = f"line {self.line}" + (f", byte offset {self.offset}" if self.offset is not None else "")
        what = {
            REPLACED_BYTES: "undecodable UTF-8 byte sequence(s) replaced with U+FFFD",
            UNPAIRED_SURROGATE: "unpaired surrogate escape(s) in JSON text replaced with U+FFFD",
            INVALID_JSON: "line(s) of invalid JSON skipped",
            NO_TEXT: 'line(s) without a string "text" field skipped',
        }.get(self.kind, self.kind)
        msg = f"{self.path}: {self.count} {what}; first at {where}"
        msg += f" ({self.detail})" if self.detail else ""
        if self.excerpt is not None:
            msg += f"; excerpt (--show_text): {self.excerpt}"
        return msg

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("excerpt")
        return d


# ----------------------------------------------------------------------------- report


@dataclasses.dataclass
class InputReport:
    """Counts from one pass over some input (one corpus split, or a vocabulary's files).

    ``flagged`` counts *used* documents that were altered (e.g. ``replaced_bytes``);
    they are not skips. ``replaced_sequences`` / ``replaced_bytes`` total the U+FFFD
    substitutions in those documents.
    """

    files: int = 0
    read: int = 0
    used: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    flagged: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    replaced_sequences: int = 0
    replaced_bytes: int = 0

    def add(self, skip: Optional[str] = None, *, replaced_sequences: int = 0, replaced_bytes: int = 0) -> None:
        """Counts one document read: used when ``skip`` is None, else skipped for ``skip``."""
        self.read += 1
        if skip is not None:
            self.skipped[skip] += 1
            return
        self.used += 1
        if replaced_sequences:
            self.flagged[REPLACED_BYTES] += 1
            self.replaced_sequences += replaced_sequences
            self.replaced_bytes += replaced_bytes

    def merge(self, other: "InputReport") -> None:
        self.files += other.files
        self.read += other.read
        self.used += other.used
        self.skipped.update(other.skipped)
        self.flagged.update(other.flagged)
        self.replaced_sequences += other.replaced_sequences
        self.replaced_bytes += other.replaced_bytes

    @property
    def balanced(self) -> bool:
        return self.read == self.used + sum(self.skipped.values())

    def check(self) -> None:
        """Raises if a document was neither used nor skipped with a reason (a reader bug)."""
        if not self.balanced:
            raise RuntimeError(
                f"input accounting is off: read {self.read} != used {self.used} + skipped "
                f"{sum(self.skipped.values())} ({dict(self.skipped)})"
            )

    @property
    def has_problems(self) -> bool:
        return bool(sum(self.skipped.values()) or sum(self.flagged.values()))

    def summary(self) -> str:
        """``read 5, used 4, skipped 1 (empty 1); flagged 1 (replaced_bytes: 2 sequences, 3 bytes)``."""
        parts = [f"read {self.read}", f"used {self.used}", f"skipped {sum(self.skipped.values())}"]
        if self.skipped:
            parts[-1] += " (" + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) + ")"
        text = ", ".join(parts)
        if self.flagged:
            text += (
                f"; flagged {sum(self.flagged.values())} ({REPLACED_BYTES}: "
                f"{self.replaced_sequences} sequences, {self.replaced_bytes} bytes)"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "read": self.read,
            "used": self.used,
            "skipped": dict(sorted(self.skipped.items())),
            "flagged": dict(sorted(self.flagged.items())),
            "replaced_sequences": self.replaced_sequences,
            "replaced_bytes": self.replaced_bytes,
        }


def format_summary(reports: Mapping[str, InputReport]) -> str:
    """One line over named reports, e.g. ``train: read 5, used 4, ...; validation: ...``."""
    return "; ".join(f"{name}: {r.summary()}" for name, r in reports.items())


def format_table(reports: Mapping[str, InputReport]) -> str:
    """A small fixed-width table (one row per report) for terminals and READMEs."""
    reasons = sorted({k for r in reports.values() for k in r.skipped})
    header = ["", "files", "read", "used", *(f"skip:{k}" for k in reasons), "flagged", "replaced"]
    rows = [
        [name, r.files, r.read, r.used, *(r.skipped[k] for k in reasons), sum(r.flagged.values()),
         r.replaced_sequences]
        for name, r in reports.items()
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        for row in [header, *rows]
    )


def write_json(path: str, payload: Mapping[str, Any]) -> str:
    """Writes a report payload atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path
