"""Readers and writers for the annotated-note formats of the clinical NER benchmarks.

Every reader returns :class:`~gatortron_jax.annotations.documents.Document` objects whose entity
offsets are character offsets into ``Document.text``; every writer converts back.

| module         | format                                                          |
|----------------|-----------------------------------------------------------------|
| ``conll``      | ``token<TAB>tag`` (BIO / IOB2 / BIOES), blank line between sentences |
| ``brat``       | brat standoff ``.txt`` + ``.ann`` (n2c2 2018, i2b2 2014 de-id)    |
| ``i2b2_2010``  | ``.txt`` + ``.con`` (line:token offsets)                          |
| ``i2b2_2012``  | XML with ``<TEXT><![CDATA[...]]></TEXT>`` and EVENT/TIMEX3 tags   |

Readers never drop an annotation silently. Each one fills a :class:`ReadSummary`
(documents, entities, relations, and every problem by reason) that is logged at INFO level
(WARNING when there were problems) and can be passed in to be inspected
(``summary=ReadSummary()``). Messages name the file and line, never the note text.
"""

from __future__ import annotations

import collections
import dataclasses
import html
import logging
import os

from gatortron_jax.core.errors import InputError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ReadSummary:
    """What a reader read, and what it had to repair, skip or drop (and why)."""

    format: str = ""
    documents: int = 0
    entities: int = 0
    relations: int = 0
    problems: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def problem(self, reason: str, where: str, *, warn: bool = True) -> None:
        """Count one problem; ``where`` is ``file:line`` (never note text)."""
        self.problems[reason] += 1
        if warn:
            logger.warning("%s: %s", where, reason)

    def describe(self) -> str:
        parts = [f"{self.format}: {self.documents} documents, {self.entities} entities, "
                 f"{self.relations} relations"]
        if self.problems:
            parts.append("problems: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.problems.items())))
        if self.skipped:
            parts.append("skipped: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.skipped.items())))
        return "; ".join(parts)

    def log(self) -> None:
        logger.log(logging.WARNING if self.problems else logging.INFO, "%s", self.describe())


def write_text(path: str, content: str) -> None:
    """Write a UTF-8 file exactly (no newline translation: offsets stay those of ``content``),
    creating its directory. Every writer of an annotated format ends here."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(content)


def xml_attr(value: str) -> str:
    """A value for an XML attribute of the i2b2 formats: one line, escaped, apostrophes kept."""
    value = value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return html.escape(value, quote=True).replace("&#x27;", "'")


def xml_files(directory: str) -> list[str]:
    """Every ``*.xml`` under ``directory`` (recursive, sorted); one error when there is none."""
    if not os.path.isdir(directory):
        raise InputError(f"{directory}: not a directory")
    paths = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        paths += [os.path.join(root, n) for n in sorted(files) if n.endswith(".xml")]
    if not paths:
        raise InputError(f"{directory}: no .xml files found")
    return paths


def redact(fragment: str, limit: int = 60) -> str:
    """A short, printable form of a structural fragment of an annotation line (types, offsets)."""
    fragment = fragment.replace("\t", "<TAB>").replace("\r", "").replace("\n", "")
    return fragment if len(fragment) <= limit else fragment[:limit] + "..."


from gatortron_jax.annotations.formats.brat import read_brat, read_brat_dir, write_brat, write_brat_dir  # noqa: E402
from gatortron_jax.annotations.formats.conll import read_conll, write_conll  # noqa: E402
from gatortron_jax.annotations.formats.i2b2_2010 import read_i2b2_2010_dir, write_i2b2_2010_con  # noqa: E402
from gatortron_jax.annotations.formats.i2b2_2012 import read_i2b2_2012_dir, write_i2b2_2012_xml  # noqa: E402

__all__ = [
    "ReadSummary", "read_brat", "read_brat_dir", "write_brat", "write_brat_dir", "read_conll",
    "write_conll", "read_i2b2_2010_dir", "write_i2b2_2010_con", "read_i2b2_2012_dir",
    "write_i2b2_2012_xml",
]
