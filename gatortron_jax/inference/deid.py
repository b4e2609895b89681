"""De-identification: replace PHI with ``[CATEGORY]`` masks or consistent surrogates, and audit what survives.

* ``mask``: each PHI span becomes ``[NAME]``, ``[DATE]``, ``[LOCATION]``... (its i2b2 2014 category).
* ``surrogate``: :mod:`gatortron_jax.inference.surrogates` (consistent per note, or per patient
  with a patient id; per-patient date shift; ages over 89 -> ``90+``); a surrogate that
  cannot be made falls back to the mask — the original PHI is never left in the output.

Outputs (``write_deid``): per note ``<id>.txt`` + ``<id>.ann`` (brat; one ``T`` line per
replaced span, typed by its PHI type, offsets into the *de-identified* text) or
``<id>.xml`` (i2b2 2014 XML, ``--format i2b2_2014``); ``replacements.jsonl`` (one line per
note: type, original offsets, output offsets, how, surrogate — never the original text);
``deid_summary.json``; and, when the input carried gold PHI (2014/2006 XML, brat),
``leakage_report.json``: every gold PHI span with characters that survive verbatim in the
output (count, types, original and output offsets; the text only with ``--show_text``).
The date shift and the seed are never written (together they re-identify dates).

Cost: linear in note length; the per-note work is a merge of sorted spans.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
from typing import Any, Iterable, Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats import ReadSummary, brat, i2b2_deid
from gatortron_jax.annotations.notes import read_note_file
from gatortron_jax.evaluation.deid_metrics import deid_scores
from gatortron_jax.annotations.formats.i2b2_deid import TYPE_TO_CATEGORY, category_of, write_i2b2_2014_xml
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.inference.surrogates import SurrogateGenerator, shift_date

log = logging.getLogger("gatortron_jax")
MODES = ("mask", "surrogate")
OUTPUT_FORMATS = ("brat", "i2b2_2014", "jsonl")
INPUT_FORMATS = ("auto", "txt", "jsonl", "brat", "i2b2_2014", "i2b2_2006")
PHI_SOURCES = ("model", "gold", "both")
__all__ = ["SurrogateGenerator", "shift_date", "deidentify", "leakage_report", "write_deid", "read_deid_input",
           "patient_ids", "evaluate_deid_model", "mask_category", "DeidResult"]

# HIPAA Safe Harbor's 18 identifiers → the i2b2 2014 types that can hold them (what a release must
# remove; DOCTOR or HOSPITAL count when they identify the patient's household or care). Scoring
# uses the 2014 challenge's stricter subset instead: evaluation/deid_metrics.py HIPAA_TYPES.
HIPAA_TO_I2B2_2014: dict[str, tuple[str, ...]] = {
    "1 names": ("PATIENT", "DOCTOR", "USERNAME"),
    "2 geographic subdivisions smaller than a state": (
        "STREET", "CITY", "ZIP", "LOCATION-OTHER", "HOSPITAL", "ORGANIZATION", "ROOM", "DEPARTMENT",
    ),
    "3 dates (except year) and ages over 89": ("DATE", "AGE"),
    "4 telephone numbers": ("PHONE",),
    "5 fax numbers": ("FAX",),
    "6 email addresses": ("EMAIL",),
    "7 social security numbers": ("SSN",),
    "8 medical record numbers": ("MEDICALRECORD",),
    "9 health plan beneficiary numbers": ("HEALTHPLAN",),
    "10 account numbers": ("ACCOUNT",),
    "11 certificate/license numbers": ("LICENSE",),
    "12 vehicle identifiers and serial numbers": ("VEHICLE",),
    "13 device identifiers and serial numbers": ("DEVICE",),
    "14 web URLs": ("URL",),
    "15 IP addresses": ("IPADDR",),
    "16 biometric identifiers": ("BIOID",),
    "17 full-face photographs": (),  # not in note text
    "18 any other unique identifying number or code": ("IDNUM",),
}
# i2b2 2014 types outside the HIPAA list (removed too, as in the challenge).
NON_HIPAA_I2B2_2014 = ("PROFESSION", "STATE", "COUNTRY")

# i2b2 2014 type → mask category (also accepts the category names themselves).
I2B2_2014_TYPES: dict[str, str] = {**TYPE_TO_CATEGORY, **{c: c for c in i2b2_deid.CATEGORY_TYPES}}


def mask_category(phi_type: str) -> str:
    """``[NAME]`` for PATIENT, ...; a type outside the 2014 (and 2006) sets masks as itself."""
    category = category_of(phi_type)
    if category != "OTHER":
        return category
    return re.sub(r"[^A-Z0-9]+", "_", phi_type.upper()).strip("_") or "PHI"


# ----------------------------------------------------------------------------- redaction


@dataclasses.dataclass(frozen=True)
class Span:
    """One merged PHI span: original ``[start, end)``, output ``[out_start, out_end)``."""

    start: int
    end: int
    type: str
    how: str  # surrogate | mask | kept
    out_start: int
    out_end: int
    surrogate: str | None  # the replacement text (None when kept)


@dataclasses.dataclass
class DeidResult:
    doc_id: str
    text: str
    removed: list[Entity]  # offsets into the redacted text; .text is the replacement
    masked_fallbacks: int
    date_shift_days: int | None  # in memory only; never written
    spans: list[Span] = dataclasses.field(default_factory=list)
    patient_id: str | None = None

    def replacements(self) -> list[dict[str, Any]]:
        """The machine-readable record of what was replaced (no original text)."""
        return [{"type": s.type, "start": s.start, "end": s.end, "out_start": s.out_start, "out_end": s.out_end,
                 "how": s.how, **({"surrogate": s.surrogate} if s.surrogate is not None else {})}
                for s in self.spans]


def _merge(phi: Sequence[Entity]) -> list[list]:
    pieces = sorted(((s, e, ent.type) for ent in phi for s, e in ent.spans if e > s), key=lambda x: (x[0], -x[1]))
    merged: list[list] = []
    for s, e, t in pieces:
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e, t])
    return merged


def deidentify(doc: Document, phi: Sequence[Entity], mode: str = "mask", seed: int = 0, *,
               patient_id: str | None = None) -> DeidResult:
    """Replaces every character covered by ``phi`` spans (overlaps merged, first type wins).

    Surrogates are consistent per ``patient_id`` (default: per note)."""
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r}: choose one of {MODES}")
    gen = SurrogateGenerator(seed, patient_id if patient_id is not None else doc.id) if mode == "surrogate" else None
    out, removed, spans, pos, fallbacks, length = [], [], [], 0, 0, 0
    merged = _merge(phi)
    note_phi = [doc.text[s:e] for s, e, _ in merged]
    for s, e, t in merged:
        out.append(doc.text[pos:s])
        length += s - pos
        how, replacement = "mask", None
        if gen is not None:
            r = gen.replace(t, doc.text[s:e], note_phi)
            how, replacement = r.how, r.text
            fallbacks += how == "mask"
        if how == "kept":
            replacement = doc.text[s:e]
        elif replacement is None:
            replacement = f"[{mask_category(t)}]"
        out.append(replacement)
        if how != "kept":
            removed.append(Entity(f"T{len(removed) + 1}", t, ((length, length + len(replacement)),), replacement))
        spans.append(Span(s, e, t, how, length, length + len(replacement), None if how == "kept" else replacement))
        length += len(replacement)
        pos = e
    out.append(doc.text[pos:])
    return DeidResult(doc.id, "".join(out), removed, fallbacks, gen.date_shift_days if gen else None, spans,
                      patient_id)


# ----------------------------------------------------------------------------- leakage


def _uncovered(gs: int, ge: int, spans: Sequence[Span]) -> list[tuple[int, int]]:
    """The runs of ``[gs, ge)`` under none of ``spans`` (sorted, disjoint)."""
    runs, pos = [], gs
    for sp in spans:
        if sp.end <= pos or sp.start >= ge:
            continue
        if sp.start > pos:
            runs.append((pos, sp.start))
        pos = max(pos, sp.end)
    if pos < ge:
        runs.append((pos, ge))
    return runs


def _out_offset(x: int, spans: Sequence[Span]) -> int:
    """Where original character ``x`` (under no replaced span) sits in the output."""
    return x + sum((sp.out_end - sp.out_start) - (sp.end - sp.start) for sp in spans if sp.end <= x)


def leakage_report(gold: Document, result: DeidResult, *, show_text: bool = False) -> dict[str, Any]:
    """Gold PHI of one note whose characters survive verbatim in the de-identified text.

    ``leaked``: gold spans with letters or digits under no replaced span (``whole`` when none
    of it was replaced); ``kept_by_policy``: gold spans kept on purpose (ages up to 89 in
    surrogate mode). Whitespace and punctuation left at a span's edge are not leaks.
    """
    replaced = [sp for sp in result.spans if sp.how != "kept"]
    leaked, kept = [], []
    for e in gold.entities:
        for gs, ge in e.spans:
            runs = [(a, b) for a, b in _uncovered(gs, ge, result.spans) if re.search(r"[A-Za-z0-9]", gold.text[a:b])]
            if runs:
                chars = sum(b - a for a, b in runs)
                item = {"id": e.id, "type": e.type, "start": gs, "end": ge, "surviving_chars": chars,
                        "whole": _uncovered(gs, ge, replaced) == [(gs, ge)],
                        "output_spans": [[_out_offset(a, result.spans), _out_offset(a, result.spans) + b - a]
                                         for a, b in runs]}
                if show_text:
                    item["text"] = gold.text[gs:ge]
                leaked.append(item)
            elif any(sp.how == "kept" and sp.start < ge and gs < sp.end for sp in result.spans):
                kept.append({"id": e.id, "type": e.type, "start": gs, "end": ge})
    return {"id": gold.id, "gold_phi": sum(len(e.spans) for e in gold.entities), "leaked": leaked,
            "kept_by_policy": kept}


def summarise_leakage(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Totals of per-note :func:`leakage_report` results, in one pass (a streamed table's rows)."""
    by_type: dict[str, int] = {}
    n = dict.fromkeys(("notes", "gold_phi", "leaked", "leaked_whole", "kept_by_policy", "notes_with_leaks"), 0)
    for r in reports:
        for item in r["leaked"]:
            by_type[item["type"]] = by_type.get(item["type"], 0) + 1
        n["notes"] += 1
        n["gold_phi"] += r["gold_phi"]
        n["leaked"] += len(r["leaked"])
        n["leaked_whole"] += sum(bool(i["whole"]) for i in r["leaked"])
        n["kept_by_policy"] += len(r["kept_by_policy"])
        n["notes_with_leaks"] += bool(r["leaked"])
    return {**{k: n[k] for k in ("notes", "gold_phi", "leaked", "leaked_whole")},
            "leaked_partly": n["leaked"] - n["leaked_whole"],
            "leaked_fraction": n["leaked"] / n["gold_phi"] if n["gold_phi"] else 0.0,
            "leaked_by_type": dict(sorted(by_type.items())),
            **{k: n[k] for k in ("kept_by_policy", "notes_with_leaks")}}


# ----------------------------------------------------------------------------- input / patients


def detect_input_format(path: str) -> str:
    """``jsonl`` (a note table file), ``txt``, ``brat`` (.ann present), ``i2b2_2014`` or
    ``i2b2_2006`` (.xml, by its root)."""
    if os.path.isfile(path) and path.endswith(".jsonl"):
        return "jsonl"
    files = [path] if os.path.isfile(path) else [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
    xml = sorted(f for f in files if f.endswith(".xml"))
    if xml:
        with open(xml[0], encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
        return "i2b2_2006" if "<RECORD" in head and "<deIdi2b2" not in head else "i2b2_2014"
    if any(f.endswith(".ann") for f in files):
        return "brat"
    return "txt"


def read_deid_input(path: str, input_format: str = "auto", *, patient_id_field: str | None = None,
                    id_field: str = "id", strict: bool = False,
                    show_text: bool = False) -> tuple[list[Document], bool, dict[str, str]]:
    """The notes to de-identify, whether they carry gold PHI, and the patient ids a note
    table gave (``patient_id_field``). ``strict`` / ``show_text``: the input policy."""

    if input_format not in INPUT_FORMATS:
        raise ConfigError(f"--input_format {input_format!r}: choose one of {INPUT_FORMATS}")
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    fmt = detect_input_format(path) if input_format == "auto" else input_format
    if fmt == "jsonl":
        return _table(path, id_field, patient_id_field, strict, show_text)
    if fmt == "i2b2_2014":
        if os.path.isfile(path):
            return [i2b2_deid.read_i2b2_2014(path, strict=strict)], True, {}
        return i2b2_deid.read_i2b2_2014_dir(path, strict=strict), True, {}
    if fmt == "i2b2_2006":
        return i2b2_deid.read_i2b2_2006_path(path, strict=strict), True, {}
    if fmt == "brat":
        summary = ReadSummary()
        docs = brat.read_brat_dir(path, strict=strict, summary=summary)
        if summary.skipped.get(".txt without .ann"):  # those notes would silently stay identified
            raise InputError(f"{path}: {summary.skipped['.txt without .ann']} .txt note(s) have no .ann; give every "
                             "note its .ann, or --input_format txt to de-identify them with the model alone")
        return docs, True, {}
    from gatortron_jax.inference.ner_predict import read_raw_notes  # loads the model stack; only for .txt

    return read_raw_notes(path, strict=strict, show_text=show_text), False, {}


def _table(path: str, id_field: str, patient_id_field: str | None, strict: bool,
           show_text: bool) -> tuple[list[Document], bool, dict[str, str]]:
    docs, patients = read_note_table(path, id_field=id_field, patient_id_field=patient_id_field, strict=strict,
                                     show_text=show_text)
    return docs, False, patients


def read_note_table(path: str, *, id_field: str = "id", text_field: str = "text",
                    patient_id_field: str | None = None, strict: bool = False,
                    show_text: bool = False) -> tuple[list[Document], dict[str, str]]:
    """A note table exported as ``.jsonl`` (one ``{"id": ..., "text": ..., "patient_id": ...}``
    per line): the notes, and note id → patient id for records that carry ``patient_id_field``.

    Input policy: a line that is not a JSON object with a string ``text_field`` is skipped
    with a ``file:line`` warning and counted (``--strict``: an error); bad bytes follow the
    raw-note policy. A record without ``id_field`` gets the id ``<line>``; a repeated id is
    an error (outputs are keyed by id). The table is read whole: memory grows with the
    table (a 1M-note export of ~4 KB notes is ~4 GB; split it into files first).
    """

    raw, _ = read_note_file(path, strict=strict, show_text=show_text)
    docs, patients, seen, skipped = [], {}, set(), 0
    for lineno, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            ok = isinstance(rec, dict) and isinstance(rec.get(text_field), str)
        except json.JSONDecodeError:
            ok = False
        if not ok:
            msg = f"{path}:{lineno}: not a JSON object with a string {text_field!r} field"
            if strict:
                raise InputError(msg)
            log.warning("%s (skipped)", msg)
            skipped += 1
            continue
        doc_id = str(rec.get(id_field, lineno))
        if doc_id in seen:
            raise InputError(f"{path}:{lineno}: repeated note id (field {id_field!r}); outputs are keyed by id")
        seen.add(doc_id)
        docs.append(Document(doc_id, rec[text_field], [], [], f"{path}:{lineno}"))
        if patient_id_field and rec.get(patient_id_field) is not None:
            patients[doc_id] = str(rec[patient_id_field])
    if not docs:
        raise InputError(f"{path}: no notes (no line with a string {text_field!r} field)")
    log.info("read %d note(s) from %s%s", len(docs), path, f"; {skipped} bad line(s) skipped" if skipped else "")
    return docs, patients


class PatientResolver:
    """Note id → patient id, from a two-column CSV/TSV (``note_id,patient_id``; a header row
    naming ``note_id`` is skipped) and/or a regex whose first group, searched in the note id,
    is the patient (``'^(\\d+)-'`` for i2b2 2014 names like ``110-02``); ``known`` (e.g. a note
    table's patient column) wins over both. Notes none of them names are their own patient.
    The map is read once (the streaming ``deid`` asks per note)."""

    def __init__(self, patient_map: str | None = None, patient_id_pattern: str | None = None,
                 known: dict[str, str] | None = None):
        ids: dict[str, str] = {}
        if patient_map:
            if not os.path.isfile(patient_map):
                raise InputError(f"--patient_map {patient_map}: file not found")
            with open(patient_map, encoding="utf-8", newline="") as f:
                sample = f.read(2048)
                f.seek(0)
                dialect = csv.excel_tab if "\t" in sample else csv.excel
                for lineno, row in enumerate(csv.reader(f, dialect), 1):
                    if not row or (lineno == 1 and row[0].strip().lower() in ("note_id", "id", "note")):
                        continue
                    if len(row) < 2 or not row[0].strip() or not row[1].strip():
                        raise InputError(f"{patient_map}:{lineno}: expected note_id,patient_id")
                    ids[row[0].strip()] = row[1].strip()
        self.regex = None
        if patient_id_pattern:
            try:
                self.regex = re.compile(patient_id_pattern)
            except re.error as e:
                raise ConfigError(f"--patient_id_pattern: {e}") from None
            if self.regex.groups < 1:
                raise ConfigError("--patient_id_pattern needs one (group) capturing the patient id")
        ids.update(known or {})
        self.ids = ids

    def __call__(self, note_id: str) -> str:
        pid = self.ids.get(note_id)
        if pid is None and self.regex is not None:
            m = self.regex.search(note_id)
            pid = m.group(1) if m else None
        return pid if pid is not None else note_id


def patient_ids(docs: Sequence[Document], patient_map: str | None = None,
                patient_id_pattern: str | None = None, known: dict[str, str] | None = None) -> dict[str, str]:
    """Note id → patient id for ``docs`` (see :class:`PatientResolver`)."""
    resolve = PatientResolver(patient_map, patient_id_pattern, known)
    return {d.id: resolve(d.id) for d in docs}


# ----------------------------------------------------------------------------- writing


def _safe_path(output_dir: str, doc_id: str) -> str:
    """``output_dir/doc_id`` (ids may hold ``/`` for subfolders), refusing ids that escape it."""
    base = os.path.normpath(os.path.join(output_dir, doc_id))
    if os.path.isabs(doc_id) or os.path.relpath(base, output_dir).startswith(".."):
        raise InputError(f"note id {doc_id!r} would be written outside {output_dir}; use --format jsonl")
    os.makedirs(os.path.dirname(base) or ".", exist_ok=True)
    return base


def write_deid_note(r: DeidResult, output_dir: str, fmt: str) -> None:
    """One redacted note's files: brat ``<id>.txt`` + ``<id>.ann`` (the replacements as
    entities of the redacted text), or i2b2 2014 ``<id>.xml``."""
    base = _safe_path(output_dir, r.doc_id)
    out_doc = Document(r.doc_id, r.text, r.removed)
    if fmt == "i2b2_2014":
        write_i2b2_2014_xml(out_doc, base + ".xml")
    else:
        with open(base + ".txt", "w", encoding="utf-8", newline="") as f:
            f.write(r.text)
        brat.write_brat(out_doc, base + ".ann")


def summarise_replacements(rows: Iterable[dict[str, Any]], mode: str) -> dict[str, Any]:
    """PHI removed by type, spans kept by policy and surrogate fallbacks, from replacement rows."""
    counts: dict[str, int] = {}
    kept = fallbacks = 0
    for row in rows:
        for rep in row["replacements"]:
            if rep["how"] == "kept":
                kept += 1
                continue
            counts[rep["type"]] = counts.get(rep["type"], 0) + 1
            fallbacks += mode == "surrogate" and rep["how"] == "mask"
    return {"removed_by_type": dict(sorted(counts.items())), "kept_by_policy": kept,
            "surrogate_fallbacks_masked": fallbacks}


def write_deid(results: Sequence[DeidResult], output_dir: str, mode: str, fmt: str = "brat",
               leakage: Sequence[dict[str, Any]] | None = None) -> dict:

    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {OUTPUT_FORMATS}")
    os.makedirs(output_dir, exist_ok=True)
    counts: dict[str, int] = {}
    fallbacks = 0
    table = open(os.path.join(output_dir, "deidentified.jsonl"), "w", encoding="utf-8") if fmt == "jsonl" else None
    with open(os.path.join(output_dir, "replacements.jsonl"), "w", encoding="utf-8") as rep:
        for r in results:
            if table is not None:
                table.write(json.dumps({"id": r.doc_id, "text": r.text}, ensure_ascii=False) + "\n")
            else:
                write_deid_note(r, output_dir, fmt)
            rep.write(json.dumps({"id": r.doc_id, "replacements": r.replacements()}, ensure_ascii=False) + "\n")
            for e in r.removed:
                counts[e.type] = counts.get(e.type, 0) + 1
            fallbacks += r.masked_fallbacks
    if table is not None:
        table.close()
    summary: dict[str, Any] = {"mode": mode, "format": fmt, "notes": len(results),
                               "removed_by_type": dict(sorted(counts.items())),
                               "kept_by_policy": sum(s.how == "kept" for r in results for s in r.spans),
                               "surrogate_fallbacks_masked": fallbacks}
    if leakage is not None:
        summary["leakage"] = summarise_leakage(leakage)
        with open(os.path.join(output_dir, "leakage_report.json"), "w", encoding="utf-8") as f:
            json.dump({"summary": summary["leakage"], "notes": list(leakage)}, f, indent=2, ensure_ascii=False)
    with open(os.path.join(output_dir, "deid_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


# ----------------------------------------------------------------------------- evaluation


def evaluate_deid_model(model_dir: str, data, split: str = "test", batch_size: int = 32, *,
                        quantize: str | None = None, dtype: str | None = None) -> dict[str, Any]:
    """``evaluate`` for a de-id task: the NER result (strict + lenient per type, with its recipe)
    plus the de-id scores of :func:`gatortron_jax.evaluation.deid_metrics.deid_scores` under ``"deid"``."""
    from gatortron_jax.inference.evaluate import evaluate_ner  # loads JAX and the model; only evaluate needs it

    return evaluate_ner(model_dir, data, split, batch_size, extra_scores={"deid": deid_scores}, quantize=quantize,
                        dtype=dtype)
