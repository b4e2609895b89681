"""Shared plumbing for the example-level task readers (ChemProt, MedNLI, STS, SQuAD-style QA).

Every reader returns frozen example dataclasses that carry an ``id`` (from the file where it
has one, else ``<file>:<line>``) and a ``source`` (``file:line`` or ``file``) so a later
error can name its origin. Bad input is an :class:`~gatortron_jax.core.errors.InputError` naming
the file, the line and the example id — never the example's text — unless the reader is
called with ``strict=False``; then the example is skipped, counted by reason and listed in
the :class:`ExampleReadSummary` (``summary.skipped_examples``), and a warning is logged.
"""

from __future__ import annotations

import collections
import dataclasses
import logging

from gatortron_jax.annotations.formats import ReadSummary
from gatortron_jax.core.errors import InputError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ExampleReadSummary(ReadSummary):
    """A :class:`ReadSummary` for example-level formats: examples read, labels seen and
    every skipped example as ``(where, example id, reason)``."""

    examples: int = 0
    labels: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped_examples: list = dataclasses.field(default_factory=list)

    def skip(self, reason: str, where: str, example_id: str) -> None:
        self.problems[reason] += 1
        self.skipped_examples.append((where, example_id, reason))
        logger.warning("%s: example %r skipped: %s", where, example_id, reason)

    def describe(self) -> str:
        parts = [f"{self.format}: {self.examples} examples"]
        if self.labels:
            parts.append("labels: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.labels.items())))
        if self.problems:
            parts.append("problems: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.problems.items())))
        if self.skipped_examples:
            listed = ", ".join(f"{w} ({i})" for w, i, _ in self.skipped_examples[:20])
            more = len(self.skipped_examples) - 20
            parts.append(f"skipped {len(self.skipped_examples)}: {listed}" + (f" and {more} more" if more > 0 else ""))
        return "; ".join(parts)


def reject(strict: bool, summary: ExampleReadSummary, where: str, example_id: str, reason: str) -> None:
    """Raise (strict) or skip-and-count one bad example."""
    if strict:
        raise InputError(f"{where}: example {example_id!r}: {reason} (without --strict / with strict=False such examples are skipped and counted)")
    summary.skip(reason, where, example_id)


def read_text_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 (byte {e.start})") from None


def split_lines(text: str) -> list[str]:
    """Lines without their terminators (``\\n`` or ``\\r\\n``); a trailing newline adds no line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
