"""Annotated notes as a ``.jsonl`` note table with a gold PHI column, and that column read back.

Why: ``deid`` streams note tables (bounded memory, resumable, sharded), but the leakage audit
needs gold PHI, which annotated corpora (MEDDOCAN, brat, i2b2 XML) keep beside the text. A
table row ``{"id": ..., "text": ..., "phi": [{"start": s, "end": e, "type": t}, ...]}`` carries
both (an item may add its annotation ``id``), with offsets into the row's text as stored (original characters); a discontinuous
entity gives one item per piece. :func:`write_note_table` writes such a table from documents
(``convert-notes``); :func:`gold_spans` checks one row's column for the streaming reader:
anything that is not a list of in-range spans is one :class:`InputError` naming the file, line
and note id (never the text): a silently dropped gold span would under-count leaks.
"""

from __future__ import annotations

import bisect
import json
import os
from typing import Any, Iterable, Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.core.errors import InputError

GOLD_FIELD = "phi"


def document_row(doc: Document, *, with_gold: bool, gold_field: str = GOLD_FIELD) -> dict[str, Any]:
    """One table row for ``doc`` (its gold spans under ``gold_field`` when ``with_gold``)."""
    row: dict[str, Any] = {"id": doc.id, "text": doc.text}
    if with_gold:
        row[gold_field] = [{"start": s, "end": e, "type": ent.type, "id": ent.id}
                           for ent in doc.entities for s, e in ent.spans]
    return row


def write_note_table(docs: Iterable[Document], path: str, *, with_gold: bool,
                     gold_field: str = GOLD_FIELD) -> dict[str, int]:
    """Write ``docs`` as a ``.jsonl`` note table (atomically); returns notes and gold spans written."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    notes = spans = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for doc in docs:
            row = document_row(doc, with_gold=with_gold, gold_field=gold_field)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            notes += 1
            spans += len(row.get(gold_field, ()))
    os.replace(tmp, path)
    return {"notes": notes, "gold_spans": spans}


def gold_spans(value: Any, text: str, *, where: str, note_id: str, field: str = GOLD_FIELD,
               removed: Sequence[int] = ()) -> list[Entity]:
    """A row's gold column as entities (``G1``, ``G2``...; ``None`` or absent: no PHI).

    ``removed``: sorted positions of characters the reader dropped from the stored text
    (``\\r`` of ``\\r\\n``), so offsets given into the stored text land on the same characters.
    """
    if value is None:
        return []
    stored_len = len(text) + len(removed)

    def bad(k: int | None, what: str) -> InputError:
        item = f"{field}[{k}]" if k is not None else field
        return InputError(f"{where}: note {note_id!r}: {item}: {what} (expected a list of "
                          '{"start": int, "end": int, "type": str} in character offsets of the text)')

    if not isinstance(value, list):
        raise bad(None, f"a {type(value).__name__}, not a list")
    out = []
    for k, item in enumerate(value):
        if not isinstance(item, dict) or not {"start", "end", "type"} <= set(item):
            raise bad(k, "not an object with start, end and type")
        s, e, t = item["start"], item["end"], item["type"]
        if type(s) is not int or type(e) is not int:
            raise bad(k, "start/end are not integers")
        if not isinstance(t, str) or not t.strip():
            raise bad(k, "type is not a non-empty string")
        if not 0 <= s < e <= stored_len:
            raise bad(k, f"span [{s}, {e}) is empty or outside the text (length {stored_len})")
        if removed:
            s, e = s - bisect.bisect_left(removed, s), e - bisect.bisect_left(removed, e)
        gid = item.get("id")
        out.append(Entity(gid if isinstance(gid, str) and gid else f"G{k + 1}", t, ((s, e),), text[s:e]))
    return out
