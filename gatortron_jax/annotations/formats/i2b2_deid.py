"""The de-identification corpora as shipped: i2b2/UTHealth 2014 stand-off XML and i2b2 2006 inline XML.

**2014** (one note per file; tag = PHI *category*, ``TYPE`` = the finer type)::

    <?xml version="1.0" encoding="UTF-8" ?>
    <deIdi2b2>
    <TEXT><![CDATA[
    Record date: 2067-05-03 ...]]></TEXT>
    <TAGS>
    <DATE id="P0" start="14" end="24" text="2067-05-03" TYPE="DATE" comment="" />
    <NAME id="P1" start="40" end="48" text="Jane Doe" TYPE="PATIENT" comment="" />
    </TAGS>
    </deIdi2b2>

Offsets are 0-based, end-exclusive characters into the CDATA content *including* its
leading newline, so ``Document.text`` is the CDATA content exactly. Categories and types are
:data:`CATEGORY_TYPES` (NAME, PROFESSION, LOCATION, AGE, DATE, CONTACT, ID).

Corpora built on the same layout keep it but not its vocabulary: MEDDOCAN (Spanish, IberLEF
2019) has the root ``<MEDDOCAN>``, an OTHER category and 22 Spanish TYPEs
(:data:`MEDDOCAN_CATEGORY_TYPES`). So the reader takes any root element, any tag under
``<TAGS>`` as the category and any TYPE as the label: labels come from the data. Only a
*known* i2b2 2014 TYPE under a tag that is not its category is reported (kept, counted).

**2006** (many records per file; PHI marked inline)::

    <ROOT>
    <RECORD ID="1">
    <TEXT>
    Seen by Dr. <PHI TYPE="DOCTOR">Smith</PHI> on <PHI TYPE="DATE">01/02</PHI> ...
    </TEXT>
    </RECORD>
    </ROOT>

``Document.text`` is the TEXT content with the PHI tags taken out and the five XML entities
(``&amp;`` ...) decoded; types are PATIENT, DOCTOR, HOSPITAL, ID, DATE, LOCATION, PHONE, AGE.

Both readers are line-tolerant, as the 2012 reader is, because the releases are not always
well-formed XML (bare ``&``, quotes inside ``text="..."``): nothing here needs an XML
parser. Input policy (``strict`` = ``--strict``; default: the process-wide policy): a 2014
span whose offsets do not match its ``text=`` attribute is *repaired* when that text occurs
within :data:`REPAIR_WINDOW` characters (the nearest occurrence; counted, not warned), else
it is dropped with a ``file:line`` warning and counted, or, strict, an
:class:`InputError` naming ``file:line``. Unclosed or stray 2006 ``<PHI>`` tags are
treated the same way. Messages never quote note text.

Round trip: ``format_*`` writes the layout above exactly, so read → write gives back a file
this module (or the release, which uses the same layout) wrote byte for byte.
"""

from __future__ import annotations

import html
import os
import re
from typing import Iterable

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats import ReadSummary, redact, write_text, xml_attr as _attr, xml_files
from gatortron_jax.annotations.formats.brat import _renumber
from gatortron_jax.annotations.notes import read_note_file  # bad bytes: the raw-note input policy
from gatortron_jax.core.errors import InputError

#: i2b2 2014 PHI categories (the XML tag) and their TYPEs (Stubbs & Uzuner 2015, Table 1;
#: the official evaluation scripts, kotfic/i2b2_evaluation_scripts tags.py).
CATEGORY_TYPES: dict[str, tuple[str, ...]] = {
    "NAME": ("PATIENT", "DOCTOR", "USERNAME"),
    "PROFESSION": ("PROFESSION",),
    "LOCATION": ("ROOM", "DEPARTMENT", "HOSPITAL", "ORGANIZATION", "STREET", "CITY", "STATE", "COUNTRY", "ZIP",
                 "LOCATION-OTHER"),
    "AGE": ("AGE",),
    "DATE": ("DATE",),
    "CONTACT": ("PHONE", "FAX", "EMAIL", "URL", "IPADDR"),
    "ID": ("SSN", "MEDICALRECORD", "HEALTHPLAN", "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "BIOID", "IDNUM"),
}
#: MEDDOCAN's categories and TYPEs (the guidelines' 29 types; 22 occur in train+dev). Not an
#: allow-list: the reader keeps any TYPE; this only gives :func:`category_of` (masks, writers,
#: per-category scores) the category of a type it meets without its XML tag (brat, predictions).
MEDDOCAN_CATEGORY_TYPES: dict[str, tuple[str, ...]] = {
    "NAME": ("NOMBRE_SUJETO_ASISTENCIA", "NOMBRE_PERSONAL_SANITARIO"),
    "PROFESSION": ("PROFESION",),
    "LOCATION": ("CALLE", "TERRITORIO", "PAIS", "CENTRO_SALUD", "HOSPITAL", "INSTITUCION"),
    "AGE": ("EDAD_SUJETO_ASISTENCIA",),
    "DATE": ("FECHAS",),
    "CONTACT": ("NUMERO_TELEFONO", "NUMERO_FAX", "CORREO_ELECTRONICO", "URL_WEB", "DIRECCION_IP"),
    "ID": ("ID_SUJETO_ASISTENCIA", "ID_CONTACTO_ASISTENCIAL", "ID_ASEGURAMIENTO", "ID_TITULACION_PERSONAL_SANITARIO",
           "ID_EMPLEO_PERSONAL_SANITARIO", "NUMERO_BENEF_PLAN_SALUD", "IDENTIF_VEHICULOS_NRSERIE",
           "IDENTIF_DISPOSITIVOS_NRSERIE", "IDENTIF_BIOMETRICOS", "OTRO_NUMERO_IDENTIF"),
    "OTHER": ("SEXO_SUJETO_ASISTENCIA", "FAMILIARES_SUJETO_ASISTENCIA", "OTROS_SUJETO_ASISTENCIA"),
}
#: 2006 types that are not 2014 types, mapped to a 2014 category.
_I2B2_2006_CATEGORY = {"ID": "ID", "LOCATION": "LOCATION", "PHONE": "CONTACT"}
TYPE_TO_CATEGORY: dict[str, str] = {t: c for c, ts in CATEGORY_TYPES.items() for t in ts}
_MEDDOCAN_TYPE_TO_CATEGORY: dict[str, str] = {t: c for c, ts in MEDDOCAN_CATEGORY_TYPES.items() for t in ts}
I2B2_2006_TYPES = ("PATIENT", "DOCTOR", "HOSPITAL", "ID", "DATE", "LOCATION", "PHONE", "AGE")
LABELS = ("type", "category", "tag/type")
#: How far (characters, either side) a 2014 span may have drifted and still be repaired.
REPAIR_WINDOW = 64

_TEXT_RE = re.compile(r"<TEXT>\s*<!\[CDATA\[(.*?)\]\]>\s*</TEXT>", re.S)
_TAG_RE = re.compile(r"<([A-Z][A-Z_-]*)\s(.*?)/>")
_ATTR_RE = re.compile(r'(\w+)="(.*?)"(?=\s+\w+="|\s*/?$)', re.S)
_HEADER_2014 = '<?xml version="1.0" encoding="UTF-8" ?>\n<deIdi2b2>\n'
_RECORD_RE = re.compile(r'<RECORD\s+ID="([^"]*)"\s*>\s*?<TEXT>(.*?)</TEXT>\s*</RECORD>', re.S)
_INLINE_RE = re.compile(r'<PHI\s+TYPE="([^"]*)"\s*>|</PHI>|&(amp|lt|gt|quot|apos);')
_XML_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def category_of(phi_type: str) -> str:
    """The category of a TYPE: i2b2 2014, 2006 or MEDDOCAN (a category name maps to itself;
    unknown types to OTHER)."""
    t = phi_type.upper()
    if t in CATEGORY_TYPES:
        return t
    return (TYPE_TO_CATEGORY.get(t) or _I2B2_2006_CATEGORY.get(t) or _MEDDOCAN_TYPE_TO_CATEGORY.get(t)
            or "OTHER")


def _norm(s: str) -> str:
    return " ".join(s.split())


def _read(path: str, strict: bool) -> str:
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found")
    return read_note_file(path, strict=strict)[0]


def _line_at(raw: str, pos: int) -> int:
    return raw.count("\n", 0, pos) + 1


def locate_span(text: str, start: int, end: int, want: str, window: int = REPAIR_WINDOW) -> tuple[int, int] | None:
    """``(start, end)`` if ``text[start:end]`` is ``want`` (whitespace-normalised), else the
    nearest occurrence of ``want`` (any whitespace between its words) starting within
    ``window`` characters of ``start``, else None."""
    if 0 <= start <= end <= len(text) and _norm(text[start:end]) == _norm(want):
        return start, end
    words = want.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    lo = max(0, start - window)
    best = None
    for m in pattern.finditer(text, lo, min(len(text), max(end, start) + window + len(want))):
        if abs(m.start() - start) <= window and (best is None or abs(m.start() - start) < abs(best[0] - start)):
            best = (m.start(), m.end())
    return best


# ----------------------------------------------------------------------------- 2014


def read_i2b2_2014(xml_path: str, *, strict: bool = True, summary: ReadSummary | None = None,
                   doc_id: str | None = None, label: str = "type") -> Document:
    """One i2b2-2014-layout de-id XML file (any root element: ``<deIdi2b2>``, ``<MEDDOCAN>``).
    ``label``: ``type`` (Entity.type = TYPE, e.g. PATIENT), ``category`` (Entity.type = the tag,
    e.g. NAME) or ``tag/type`` (``NAME/PATIENT``: both as written, for the official scorer, which
    keys on the tag and the TYPE). Every tag under ``<TAGS>`` with offsets or a TYPE is a PHI
    mention whose tag is its category (one missing ``id``/``start``/``end``/``TYPE`` is bad:
    dropped and counted, or an error when strict); a tag with none of them is skipped and counted."""
    if label not in LABELS:
        raise InputError(f"i2b2 2014 reader: label={label!r}; use one of {LABELS}")
    own_summary = summary is None
    summary = summary if summary is not None else ReadSummary()
    summary.format = "i2b2_2014"
    raw = _read(xml_path, strict)
    m = _TEXT_RE.search(raw)
    if not m:
        raise InputError(f"{xml_path}: no <TEXT><![CDATA[...]]></TEXT> element")
    text = m.group(1)
    name = os.path.basename(xml_path)
    doc = Document(id=doc_id or (name[:-4] if name.endswith(".xml") else name), text=text, source=xml_path)
    tags_at = raw.find("<TAGS>", m.end())
    if tags_at < 0:
        raise InputError(f"{xml_path}: no <TAGS> element after <TEXT>")
    first_line = _line_at(raw, tags_at)
    ids: set[str] = set()

    def bad(where: str, what: str) -> None:
        if strict:
            raise InputError(f"{where}: {what} (without --strict such tags are dropped and counted)")
        summary.problem(what.split(":")[0] + " (dropped)", where)

    for offset, line in enumerate(raw[tags_at:].split("\n")):
        where = f"{xml_path}:{first_line + offset}"
        if line.strip().startswith("</TAGS>"):
            break
        for tm in _TAG_RE.finditer(line):
            tag = tm.group(1)
            attrs = {k: html.unescape(v) for k, v in _ATTR_RE.findall(tm.group(2).strip())}
            if not {"start", "end", "TYPE"} & attrs.keys():  # not a PHI mention at all
                summary.skipped[f"<{redact(tag, 20)}> tag"] += 1
                continue
            missing = [k for k in ("id", "start", "end", "TYPE") if k not in attrs]
            if missing:
                bad(where, f"<{tag}> without attribute(s) {missing}")
                continue
            eid, phi_type = attrs["id"], attrs["TYPE"]
            try:
                start, end = int(attrs["start"]), int(attrs["end"])
            except ValueError:
                bad(where, f"non-integer offsets: <{tag} id={redact(eid, 20)!r} start={redact(attrs['start'], 12)!r} "
                           f"end={redact(attrs['end'], 12)!r}>")
                continue
            if eid in ids:
                bad(where, f"duplicate id: <{tag} id={redact(eid, 20)!r}>")
                continue
            if "text" in attrs:
                found = locate_span(text, start, end, attrs["text"])
                if found is None:
                    bad(where, f"text attribute does not match the note at or near its offsets: "
                               f"<{tag} id={redact(eid, 20)!r} start={start} end={end}>")
                    continue
                if found != (start, end):
                    summary.problem(f"offsets shifted (repaired; within {REPAIR_WINDOW} characters)", where,
                                    warn=False)
                    start, end = found
            elif not 0 <= start < end <= len(text):
                bad(where, f"offsets outside the text: <{tag} id={redact(eid, 20)!r} start={start} end={end}>")
                continue
            else:
                summary.problem("no text attribute (offsets used unchecked)", where, warn=False)
            if TYPE_TO_CATEGORY.get(phi_type, tag) != tag:  # a corpus's own TYPEs: labels from the data
                summary.problem(f"TYPE not a {tag} type (kept)", where)
            ids.add(eid)
            etype = {"type": phi_type, "category": tag}.get(label, f"{tag}/{phi_type}")
            doc.entities.append(Entity(id=eid, type=etype, spans=((start, end),), text=text[start:end]))
    summary.documents += 1
    summary.entities += len(doc.entities)
    if own_summary:
        summary.log()
    return doc


def read_i2b2_2014_dir(directory: str, *, strict: bool = True, summary: ReadSummary | None = None,
                       label: str = "type") -> list[Document]:
    """Every ``*.xml`` under ``directory`` (recursively); ids are paths relative to it without ``.xml``."""
    summary = summary if summary is not None else ReadSummary()
    docs = [read_i2b2_2014(p, strict=strict, summary=summary, label=label,
                           doc_id=os.path.relpath(p[:-4], directory).replace(os.sep, "/"))
            for p in xml_files(directory)]
    summary.log()
    return docs


def format_i2b2_2014_xml(doc: Document, *, root: str = "deIdi2b2") -> str:
    """The 2014 XML for ``doc``. An entity typed by TYPE is written under its category
    (:func:`category_of`); one typed by a category (a category-labelled model) is written with
    ``TYPE`` = the category. ``root``: the root element (``MEDDOCAN`` for that corpus's layout)."""
    if not re.fullmatch(r"[A-Za-z_][\w.-]*", root):
        raise InputError(f"i2b2 2014 writer: {root!r} is not an XML element name")
    if "]]>" in doc.text:
        raise InputError(f"document {doc.id}: text contains ']]>' and cannot be put in CDATA")
    idmap = _renumber([e.id for e in doc.entities], re.compile(r"^P\d+$"), "P")
    if len(idmap) != len(doc.entities):
        raise InputError(f"document {doc.id}: duplicate entity ids")
    out = [_HEADER_2014.replace("deIdi2b2", root), f"<TEXT><![CDATA[{doc.text}]]></TEXT>\n<TAGS>\n"]
    for e in doc.entities:
        s, t = e.start, e.end
        if not 0 <= s <= t <= len(doc.text):
            raise InputError(f"document {doc.id}: entity {e.id} has offsets outside the text")
        out.append(f'<{category_of(e.type)} id="{idmap[e.id]}" start="{s}" end="{t}" '
                   f'text="{_attr(doc.text[s:t])}" TYPE="{_attr(e.type)}" comment="" />\n')
    out.append(f"</TAGS>\n</{root}>\n")
    return "".join(out)


def write_i2b2_2014_xml(doc: Document, xml_path: str) -> None:
    content = format_i2b2_2014_xml(doc)
    write_text(xml_path, content)


# ----------------------------------------------------------------------------- 2006


def read_i2b2_2006(xml_path: str, *, strict: bool = True, summary: ReadSummary | None = None) -> list[Document]:
    """Every ``<RECORD>`` of one 2006 file; document ids are the record IDs."""
    own_summary = summary is None
    summary = summary if summary is not None else ReadSummary()
    summary.format = "i2b2_2006"
    raw = _read(xml_path, strict)
    docs, seen = [], set()
    for rm in _RECORD_RE.finditer(raw):
        rid = rm.group(1)
        where_rec = f"{xml_path}:{_line_at(raw, rm.start())}"
        if rid in seen:
            raise InputError(f"{where_rec}: duplicate RECORD ID {redact(rid, 20)!r}")
        seen.add(rid)
        body, base = rm.group(2), rm.start(2)
        parts: list[str] = []
        length = 0
        open_tag: tuple[str, int, int] | None = None  # type, start in text, raw position
        entities: list[Entity] = []
        pos = 0
        for tm in _INLINE_RE.finditer(body):
            parts.append(body[pos:tm.start()])
            length += tm.start() - pos
            pos = tm.end()
            where = f"{xml_path}:{_line_at(raw, base + tm.start())}"
            if tm.group(2):  # an XML entity
                parts.append(_XML_ENTITIES[tm.group(2)])
                length += 1
            elif tm.group(1) is not None:  # <PHI TYPE=...>
                if open_tag is not None:
                    msg = f"<PHI> inside another <PHI> (record {redact(rid, 20)!r})"
                    if strict:
                        raise InputError(f"{where}: {msg}")
                    summary.problem("nested <PHI> (outer dropped)", where)
                open_tag = (tm.group(1), length, base + tm.start())
            else:  # </PHI>
                if open_tag is None:
                    if strict:
                        raise InputError(f"{where}: </PHI> without an opening <PHI> (record {redact(rid, 20)!r})")
                    summary.problem("stray </PHI> (ignored)", where)
                    continue
                phi_type, start, _ = open_tag
                open_tag = None
                if length > start:
                    entities.append(Entity(f"P{len(entities)}", phi_type, ((start, length),)))
                else:
                    summary.problem("empty <PHI> (dropped)", where)
        parts.append(body[pos:])
        if open_tag is not None:
            where = f"{xml_path}:{_line_at(raw, open_tag[2])}"
            if strict:
                raise InputError(f"{where}: <PHI> never closed (record {redact(rid, 20)!r})")
            summary.problem("unclosed <PHI> (dropped)", where)
        text = "".join(parts)
        doc = Document(id=rid, text=text, source=xml_path,
                       entities=[Entity(e.id, e.type, e.spans, text[e.start:e.end]) for e in entities])
        docs.append(doc)
        summary.documents += 1
        summary.entities += len(doc.entities)
    if not docs:
        raise InputError(f"{xml_path}: no <RECORD ID=...><TEXT>...</TEXT></RECORD> found")
    if own_summary:
        summary.log()
    return docs


def read_i2b2_2006_path(path: str, *, strict: bool = True) -> list[Document]:
    """A 2006 file, or every ``*.xml`` under a directory (ids prefixed by the file stem when
    record IDs repeat across files)."""
    summary = ReadSummary()
    files = [path] if os.path.isfile(path) else xml_files(path)
    per_file = [(f, read_i2b2_2006(f, strict=strict, summary=summary)) for f in files]
    ids = [d.id for _, ds in per_file for d in ds]
    if len(set(ids)) != len(ids):
        for f, ds in per_file:
            stem = os.path.splitext(os.path.basename(f))[0]
            for d in ds:
                d.id = f"{stem}/{d.id}"
    summary.log()
    return [d for _, ds in per_file for d in ds]


def _escape_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_i2b2_2006_xml(docs: Iterable[Document]) -> str:
    """One 2006 file for ``docs`` (overlapping entities: the earlier-starting one wins)."""
    out = ["<ROOT>\n"]
    for doc in docs:
        pieces, pos = [], 0
        for e in sorted(doc.entities, key=lambda e: (e.start, -e.end)):
            if e.start < pos:
                raise InputError(f"document {doc.id}: overlapping PHI cannot be written inline (entity {e.id})")
            pieces += [_escape_text(doc.text[pos:e.start]), f'<PHI TYPE="{_attr(e.type)}">',
                       _escape_text(doc.text[e.start:e.end]), "</PHI>"]
            pos = e.end
        pieces.append(_escape_text(doc.text[pos:]))
        out.append(f'<RECORD ID="{_attr(doc.id)}">\n<TEXT>{"".join(pieces)}</TEXT>\n</RECORD>\n')
    out.append("</ROOT>\n")
    return "".join(out)


def write_i2b2_2006_xml(docs: Iterable[Document], xml_path: str) -> None:
    content = format_i2b2_2006_xml(docs)
    write_text(xml_path, content)
