"""brat standoff: ``NAME.txt`` (the note) + ``NAME.ann`` (annotations), as used by n2c2 2018
(medications and ADEs) and i2b2 2014-style de-identification releases.

``.ann`` lines (tab-separated):

- ``T1<TAB>Drug 10 17<TAB>aspirin`` - text-bound annotation; offsets are 0-based, end
  exclusive, into the ``.txt`` file as stored (``\\r\\n`` counts two characters);
  discontinuous mentions list fragments ``10 17;20 25`` and their text is the fragments joined
  by one space (newlines inside a fragment are written as spaces);
- ``R1<TAB>Reason-Drug Arg1:T5 Arg2:T1`` - binary relation;
- ``E``, ``A``, ``M``, ``N``, ``*`` and ``#`` lines (events, attributes, normalisations,
  equivalences, notes) are skipped and counted.

Each T line's text is compared with the ``.txt`` characters at its offsets (exactly, then
with whitespace normalised). A mismatch is an :class:`InputError` when ``strict`` (the
default), otherwise the annotation is dropped with a warning and counted in the summary.
Overlapping entities (e.g. a Reason overlapping an ADE) are kept.
"""

from __future__ import annotations

import os
import re

from gatortron_jax.annotations.documents import Document, Entity, Relation
from gatortron_jax.annotations.formats import ReadSummary, redact, write_text
from gatortron_jax.core.errors import InputError

_SPAN_RE = re.compile(r"^(\d+) (\d+)$")
_ARG_RE = re.compile(r"^(\w+):(\S+)$")
_T_ID_RE = re.compile(r"^T(\d+)$")
_R_ID_RE = re.compile(r"^R(\d+)$")
_WS_RE = re.compile(r"\s+")


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 (byte {e.start})") from None


def span_text(text: str, spans) -> str:
    """The brat surface text of ``spans``: fragments joined by a space, each newline character
    written as a space (so the text keeps the span's length)."""
    return " ".join(text[s:e] for s, e in spans).replace("\n", " ").replace("\r", " ")


def text_matches(expected: str, found: str) -> bool:
    if expected == found:
        return True
    return _WS_RE.sub(" ", expected).strip() == _WS_RE.sub(" ", found).strip()


def read_brat(txt_path: str, ann_path: str, *, strict: bool = True,
              summary: ReadSummary | None = None, doc_id: str | None = None) -> Document:
    """Read one note and its annotations."""
    own_summary = summary is None
    summary = summary if summary is not None else ReadSummary()
    summary.format = "brat"
    text = _read_text(txt_path)
    ann = _read_text(ann_path)
    doc = Document(id=doc_id or os.path.splitext(os.path.basename(txt_path))[0], text=text,
                   source=txt_path)
    ids: set[str] = set()
    dropped: set[str] = set()
    pending_rel: list[tuple[int, Relation]] = []
    for lineno, raw in enumerate(ann.split("\n"), 1):
        line = raw.rstrip("\r")
        where = f"{ann_path}:{lineno}"
        if not line.strip():
            continue
        kind = line[0]
        if kind in "EAMN*#":
            summary.skipped[f"{kind} line"] += 1
            continue
        parts = line.split("\t")
        if kind == "T":
            if len(parts) < 3:
                raise InputError(f"{where}: malformed T line: expected 'ID<TAB>TYPE START END"
                                 f"<TAB>TEXT', found {len(parts)} tab-separated field(s) "
                                 f"starting {redact(parts[0], 20)!r}")
            eid, middle, ann_text = parts[0], parts[1], "\t".join(parts[2:])
            head = middle.split(" ", 1)
            if len(head) != 2 or not head[0]:
                raise InputError(f"{where}: malformed T line {eid!r}: expected 'TYPE START END', "
                                 f"found {redact(middle)!r}")
            etype, offsets = head
            spans = []
            for frag in offsets.split(";"):
                m = _SPAN_RE.match(frag.strip())
                if not m:
                    raise InputError(f"{where}: malformed offsets in {eid!r}: {redact(offsets)!r} "
                                     f"(expected 'START END' or 'START END;START END')")
                spans.append((int(m.group(1)), int(m.group(2))))
            if eid in ids:
                raise InputError(f"{where}: duplicate annotation id {eid!r}")
            ids.add(eid)
            bad = None
            if any(s > e or e > len(text) for s, e in spans):
                bad = "offsets outside the text"
            elif not text_matches(ann_text, span_text(text, spans)):
                bad = "annotation text does not match the note text at its offsets"
            if bad:
                msg = f"{where}: {eid} ({etype} {redact(offsets)}): {bad}"
                if strict:
                    raise InputError(msg + " (without --strict / with strict=False such annotations are dropped and counted)")
                summary.problem(bad + " (dropped)", f"{where}: {eid}")
                dropped.add(eid)
                continue
            doc.entities.append(Entity(id=eid, type=etype, spans=tuple(spans), text=ann_text))
        elif kind == "R":
            fields = parts[1].split() if len(parts) >= 2 else []
            args = [_ARG_RE.match(f) for f in fields[1:]]
            if len(fields) != 3 or not all(args):
                raise InputError(f"{where}: malformed R line: expected 'ID<TAB>TYPE Arg1:T1 "
                                 f"Arg2:T2', found {redact(line)!r}")
            rid = parts[0]
            if rid in ids:
                raise InputError(f"{where}: duplicate annotation id {rid!r}")
            ids.add(rid)
            pending_rel.append((lineno, Relation(id=rid, type=fields[0], arg1=args[0].group(2),
                                                 arg2=args[1].group(2))))
        else:
            raise InputError(f"{where}: unknown annotation line type {redact(parts[0], 20)!r} "
                             f"(expected T, R, E, A, M, N, * or #)")
    entity_ids = {e.id for e in doc.entities}
    for lineno, rel in pending_rel:
        missing = [a for a in (rel.arg1, rel.arg2) if a not in entity_ids]
        if missing:
            where = f"{ann_path}:{lineno}"
            if all(a in dropped for a in missing):
                summary.problem("relation to a dropped entity (dropped)", f"{where}: {rel.id}")
                continue
            raise InputError(f"{where}: relation {rel.id} refers to unknown id(s) {missing}")
        doc.relations.append(rel)
    summary.entities += len(doc.entities)
    summary.relations += len(doc.relations)
    summary.documents += 1
    if own_summary:
        summary.log()
    return doc


def read_brat_dir(directory: str, *, strict: bool = True,
                  summary: ReadSummary | None = None) -> list[Document]:
    """Read every ``*.ann`` under ``directory`` (recursively) with its ``*.txt``.

    Document ids are paths relative to ``directory`` without the extension (the file stem
    for a flat directory). A ``.txt`` without ``.ann`` is skipped and counted.
    """
    summary = summary if summary is not None else ReadSummary()
    summary.format = "brat"
    if not os.path.isdir(directory):
        raise InputError(f"{directory}: not a directory")
    anns, txts = [], set()
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(".ann"):
                anns.append(path)
            elif name.endswith(".txt"):
                txts.add(path)
    docs = []
    for ann_path in anns:
        txt_path = ann_path[:-4] + ".txt"
        if txt_path not in txts:
            raise InputError(f"{ann_path}: no matching .txt file")
        txts.discard(txt_path)
        doc_id = os.path.relpath(ann_path[:-4], directory).replace(os.sep, "/")
        docs.append(read_brat(txt_path, ann_path, strict=strict, summary=summary, doc_id=doc_id))
    if txts:
        summary.skipped[".txt without .ann"] += len(txts)
    if not docs:
        raise InputError(f"{directory}: no .ann files found")
    summary.log()
    return docs


def _renumber(ids: list[str], pattern: re.Pattern, letter: str) -> dict[str, str]:
    """Keep ids that are already valid and unique; give the others fresh numbers."""
    mapping: dict[str, str] = {}
    used = set()
    for i in ids:
        if pattern.match(i) and i not in used:
            mapping[i] = i
            used.add(i)
    n = 1
    for i in ids:
        if i in mapping:
            continue
        while f"{letter}{n}" in used:
            n += 1
        mapping[i] = f"{letter}{n}"
        used.add(mapping[i])
    return mapping


def format_ann(doc: Document) -> str:
    """The ``.ann`` content for ``doc`` (entity text is taken from ``doc.text``)."""
    out = []
    tmap = _renumber([e.id for e in doc.entities], _T_ID_RE, "T")
    if len(tmap) != len(doc.entities):
        raise InputError(f"document {doc.id}: duplicate entity ids")
    for e in doc.entities:
        if any(s < 0 or s > t or t > len(doc.text) for s, t in e.spans):
            raise InputError(f"document {doc.id}: entity {e.id} has offsets outside the text")
        offsets = ";".join(f"{s} {t}" for s, t in e.spans)
        out.append(f"{tmap[e.id]}\t{e.type} {offsets}\t{span_text(doc.text, e.spans)}\n")
    rmap = _renumber([r.id for r in doc.relations], _R_ID_RE, "R")
    for r in doc.relations:
        if r.arg1 not in tmap or r.arg2 not in tmap:
            raise InputError(f"document {doc.id}: relation {r.id} refers to an unknown entity")
        out.append(f"{rmap[r.id]}\t{r.type} Arg1:{tmap[r.arg1]} Arg2:{tmap[r.arg2]}\n")
    return "".join(out)


def write_brat(doc: Document, ann_path: str) -> None:
    """Write ``doc``'s annotations as a ``.ann`` file (ids that are not ``T<n>``/``R<n>`` are
    renumbered consistently)."""
    content = format_ann(doc)
    write_text(ann_path, content)


def write_brat_dir(docs: list[Document], directory: str) -> None:
    """Write ``<id>.txt`` and ``<id>.ann`` for every document under ``directory``."""
    for doc in docs:
        base = os.path.join(directory, *doc.id.split("/"))
        write_text(base + ".txt", doc.text)
        write_brat(doc, base + ".ann")
