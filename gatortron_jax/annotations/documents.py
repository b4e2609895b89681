"""The in-memory form of an annotated clinical note, shared by every reader and writer.

Offsets are character offsets into ``Document.text`` (0-based, end exclusive), whatever the
source format counts in (i2b2 2010 counts lines and whitespace tokens; brat and i2b2 2012
count characters). Readers convert on the way in, writers on the way out, so models,
windowing and metrics only ever see characters.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Entity:
    id: str  # source id ("T3", "E12") or a generated one ("e0")
    type: str  # "problem", "Drug", "DATE", ...
    spans: tuple[tuple[int, int], ...]  # one span, or several for discontinuous mentions
    text: str = ""  # surface text as the source file gives it (for checks; never logged)

    @property
    def start(self) -> int:
        return min(s for s, _ in self.spans)

    @property
    def end(self) -> int:
        return max(e for _, e in self.spans)


@dataclasses.dataclass(frozen=True)
class Relation:
    id: str
    type: str
    arg1: str  # entity id
    arg2: str


@dataclasses.dataclass
class Document:
    id: str  # e.g. file stem; stable across read → predict → write
    text: str
    entities: list[Entity] = dataclasses.field(default_factory=list)
    relations: list[Relation] = dataclasses.field(default_factory=list)
    source: str = ""  # path the document came from (for error messages)
