"""i2b2 2012 temporal relations XML (EVENT and TIMEX3 concepts, TLINK relations)::

    <?xml version="1.0" encoding="UTF-8" ?>
    <ClinicalNarrativeTemporalAnnotation>
    <TEXT><![CDATA[
    Admission Date :
    ...]]></TEXT>
    <TAGS>
    <EVENT id="E0" start="1" end="10" text="Admission" modality="FACTUAL" polarity="POS" type="OCCURRENCE" />
    <TIMEX3 id="T0" start="18" end="28" text="2013-12-19" type="DATE" val="2013-12-19" mod="NA" />
    <TLINK id="TL0" fromID="E0" fromText="Admission" toID="T0" toText="2013-12-19" type="SIMULTANEOUS" />
    <SECTIME id="S0" start="18" end="28" text="2013-12-19" type="ADMISSION" dvalue="2013-12-19" />
    </TAGS>
    </ClinicalNarrativeTemporalAnnotation>

Offset convention: ``start``/``end`` are 0-based, end-exclusive character offsets into the
CDATA content *including* its leading newline (equivalently 1-based into the text with that
newline stripped, which is why some converters subtract one). ``Document.text`` is the CDATA
content exactly, so offsets are used as they are.

Known problems of the release, handled here: several files are not well-formed XML (bare
``&``, quotes inside ``text="..."``), so tags are parsed line by line with a tolerant
attribute pattern rather than an XML parser; and some offsets are shifted by one character,
so every span is checked against its ``text`` attribute (whitespace-normalised) and a span that
matches one character to the left or right is repaired and counted. Spans that still do not
match raise :class:`InputError` with ``strict`` (the default), otherwise they are dropped and
counted. ``Entity.type`` is the tag's ``type`` attribute (``PROBLEM``, ``TEST``,
``TREATMENT``, ``CLINICAL_DEPT``, ``EVIDENTIAL``, ``OCCURRENCE``; ``DATE``, ``TIME``,
``DURATION``, ``FREQUENCY``); TLINKs become relations; SECTIME tags (which repeat a TIMEX3) and
other attributes (modality, polarity, val, mod) are not kept. The writer emits EVENT for event
types and TIMEX3 for the four time types, with default attributes.
"""

from __future__ import annotations

import html
import os
import re

from gatortron_jax.annotations.documents import Document, Entity, Relation
from gatortron_jax.annotations.formats import ReadSummary, redact, write_text, xml_attr as _attr, xml_files
from gatortron_jax.core.errors import InputError

EVENT_TYPES = ("PROBLEM", "TEST", "TREATMENT", "CLINICAL_DEPT", "EVIDENTIAL", "OCCURRENCE")
TIMEX3_TYPES = ("DATE", "TIME", "DURATION", "FREQUENCY")

_TEXT_RE = re.compile(r"<TEXT>\s*<!\[CDATA\[(.*?)\]\]>\s*</TEXT>", re.S)
_TAG_RE = re.compile(r"<(EVENT|TIMEX3|TLINK|SECTIME)\s(.*?)/>")
_ATTR_RE = re.compile(r'(\w+)="(.*?)"(?=\s+\w+="|\s*/?$)', re.S)
_WS_RE = re.compile(r"\s+")
_HEADER = '<?xml version="1.0" encoding="UTF-8" ?>\n<ClinicalNarrativeTemporalAnnotation>\n'


def _norm(s: str) -> str:
    return _WS_RE.sub(" ", s).strip()


def read_i2b2_2012(xml_path: str, *, strict: bool = True, summary: ReadSummary | None = None,
                   doc_id: str | None = None) -> Document:
    """Read one i2b2 2012 XML file."""
    from gatortron_jax.annotations.formats.brat import _read_text

    own_summary = summary is None
    summary = summary if summary is not None else ReadSummary()
    summary.format = "i2b2_2012"
    raw = _read_text(xml_path)
    m = _TEXT_RE.search(raw)
    if not m:
        raise InputError(f"{xml_path}: no <TEXT><![CDATA[...]]></TEXT> element")
    text = m.group(1)
    name = os.path.basename(xml_path)
    doc = Document(id=doc_id or (name[:-4] if name.endswith(".xml") else name), text=text,
                   source=xml_path)
    tags_at = raw.find("<TAGS>", m.end())
    if tags_at < 0:
        raise InputError(f"{xml_path}: no <TAGS> element after <TEXT>")
    first_line = raw.count("\n", 0, tags_at) + 1
    ids: set[str] = set()
    links: list[tuple[str, dict[str, str]]] = []
    for offset, line in enumerate(raw[tags_at:].split("\n")):
        where = f"{xml_path}:{first_line + offset}"
        stripped = line.strip()
        if stripped.startswith("</TAGS>"):
            break
        for tm in _TAG_RE.finditer(line):
            tag = tm.group(1)
            attrs = {k: html.unescape(v) for k, v in _ATTR_RE.findall(tm.group(2).strip())}
            if tag == "SECTIME":
                summary.skipped["SECTIME tag"] += 1
                continue
            if tag == "TLINK":
                links.append((where, attrs))
                continue
            missing = [k for k in ("id", "start", "end", "type") if k not in attrs]
            if missing:
                raise InputError(f"{where}: <{tag}> without attribute(s) {missing}")
            eid, etype = attrs["id"], attrs["type"]
            try:
                start, end = int(attrs["start"]), int(attrs["end"])
            except ValueError:
                raise InputError(f"{where}: <{tag} id={redact(eid, 20)!r}> has non-integer offsets "
                                 f"start={redact(attrs['start'], 12)!r} end={redact(attrs['end'], 12)!r}") from None
            if eid in ids:
                raise InputError(f"{where}: duplicate id {redact(eid, 20)!r}")
            ids.add(eid)
            want = _norm(attrs.get("text", ""))
            bad = None
            if not (0 <= start <= end <= len(text)):
                bad = "offsets outside the text"
            elif "text" in attrs and _norm(text[start:end]) != want:
                for delta in (-1, 1):
                    s, e = start + delta, end + delta
                    if 0 <= s and e <= len(text) and _norm(text[s:e]) == want:
                        summary.problem(f"offsets shifted by {delta:+d} (repaired)", where, warn=False)
                        start, end = s, e
                        break
                else:
                    bad = "text attribute does not match the note text at its offsets"
            if bad:
                msg = f"{where}: <{tag} id={redact(eid, 20)!r} start={start} end={end}>: {bad}"
                if strict:
                    raise InputError(msg + " (without --strict / with strict=False such tags are dropped and counted)")
                summary.problem(bad + " (dropped)", where)
                continue
            doc.entities.append(Entity(id=eid, type=etype, spans=((start, end),),
                                       text=attrs.get("text", text[start:end])))
        if stripped and not _TAG_RE.search(line) and stripped.startswith("<") \
                and not stripped.startswith("<TAGS>") and not stripped.startswith("</"):
            summary.skipped["unrecognised tag line"] += 1
    ent_ids = {e.id for e in doc.entities}
    for where, attrs in links:
        if not all(k in attrs for k in ("id", "fromID", "toID", "type")):
            raise InputError(f"{where}: <TLINK> without id/fromID/toID/type")
        if attrs["fromID"] not in ent_ids or attrs["toID"] not in ent_ids:
            summary.skipped["TLINK to a SECTIME or dropped tag"] += 1
            continue
        doc.relations.append(Relation(id=attrs["id"], type=attrs["type"],
                                      arg1=attrs["fromID"], arg2=attrs["toID"]))
    summary.documents += 1
    summary.entities += len(doc.entities)
    summary.relations += len(doc.relations)
    if own_summary:
        summary.log()
    return doc


def read_i2b2_2012_dir(directory: str, *, strict: bool = True,
                       summary: ReadSummary | None = None) -> list[Document]:
    """Read every ``*.xml`` under ``directory`` (recursively); ids are the names without
    ``.xml``."""
    summary = summary if summary is not None else ReadSummary()
    summary.format = "i2b2_2012"
    paths = xml_files(directory)
    docs, ids = [], set()
    for p in paths:
        doc_id = os.path.basename(p)[:-4]
        if doc_id in ids:
            doc_id = os.path.relpath(p[:-4], directory).replace(os.sep, "/")
        ids.add(doc_id)
        docs.append(read_i2b2_2012(p, strict=strict, summary=summary, doc_id=doc_id))
    summary.log()
    return docs


def format_i2b2_2012_xml(doc: Document) -> str:
    """The XML content for ``doc``: its text in CDATA, EVENT/TIMEX3 tags, TLINKs."""
    if "]]>" in doc.text:
        raise InputError(f"document {doc.id}: text contains ']]>' and cannot be put in CDATA")
    from gatortron_jax.annotations.formats.brat import _renumber

    events = [e for e in doc.entities if e.type not in TIMEX3_TYPES]
    timexes = [e for e in doc.entities if e.type in TIMEX3_TYPES]
    emap = _renumber([e.id for e in events], re.compile(r"^E\d+$"), "E")
    tmap = _renumber([e.id for e in timexes], re.compile(r"^T\d+$"), "T")
    if len(emap) + len(tmap) != len(doc.entities):
        raise InputError(f"document {doc.id}: duplicate entity ids")
    idmap = {**emap, **tmap}
    out = [_HEADER, f"<TEXT><![CDATA[{doc.text}]]></TEXT>\n<TAGS>\n"]
    for e in doc.entities:
        s, t = e.start, e.end
        if not 0 <= s <= t <= len(doc.text):
            raise InputError(f"document {doc.id}: entity {e.id} has offsets outside the text")
        common = f'id="{idmap[e.id]}" start="{s}" end="{t}" text="{_attr(doc.text[s:t])}"'
        if e.type in TIMEX3_TYPES:
            out.append(f'<TIMEX3 {common} type="{_attr(e.type)}" val="" mod="NA" />\n')
        else:
            out.append(f'<EVENT {common} modality="FACTUAL" polarity="POS" type="{_attr(e.type)}" />\n')
    lmap = _renumber([r.id for r in doc.relations], re.compile(r"^TL\d+$"), "TL")
    ent_by_id = {e.id: e for e in doc.entities}
    for r in doc.relations:
        if r.arg1 not in ent_by_id or r.arg2 not in ent_by_id:
            raise InputError(f"document {doc.id}: relation {r.id} refers to an unknown entity")
        a, b = ent_by_id[r.arg1], ent_by_id[r.arg2]
        out.append(f'<TLINK id="{lmap[r.id]}" fromID="{idmap[a.id]}" '
                   f'fromText="{_attr(doc.text[a.start:a.end])}" toID="{idmap[b.id]}" '
                   f'toText="{_attr(doc.text[b.start:b.end])}" type="{_attr(r.type)}" />\n')
    out.append("</TAGS>\n</ClinicalNarrativeTemporalAnnotation>\n")
    return "".join(out)


def write_i2b2_2012_xml(doc: Document, xml_path: str) -> None:
    """Write ``doc`` as an i2b2 2012 XML file."""
    content = format_i2b2_2012_xml(doc)
    write_text(xml_path, content)
