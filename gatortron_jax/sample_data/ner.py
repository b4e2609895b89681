"""Synthetic annotated clinical notes in every NER format the pipeline reads.

The clinical NER benchmarks (i2b2 2010, i2b2 2012, n2c2 2018, i2b2 2014 de-id) are under
data-use agreements, so ``data/ner_samples`` ships small stand-ins generated here, in the
same file formats, so every reader, writer, task and command runs out of the box. Nothing is
real: names come from the invented lists of :mod:`gatortron_jax.sample_data.corpus_lexicon`, MRNs start
with ``99``, phone numbers are ``555-01xx``, dates fall in 2091-2096.

A note is built once as sentences of segments, where an entity segment carries its label in
each annotation scheme (``i2b2_2010`` problem/test/treatment; ``i2b2_2012`` EVENT and TIMEX3
types; ``n2c2`` medication attributes with a group that becomes ``<Attr>-Drug`` relations;
``deid`` i2b2 2014 PHI types), then rendered per format: i2b2 2010 and CoNLL text is
whitespace-tokenized with one sentence per line (as the 2010 release is), the others keep
natural punctuation; i2b2 2012 text starts with the newline that follows ``<![CDATA[`` in the
release (offsets count it). Every split has 24/6/6 notes (train/dev/test) and the last test
note of each format is a long one (> 2,500 whitespace tokens) for long-note windowing.

Regenerate (deterministic)::

    python -m gatortron_jax.sample_data.ner --out data/ner_samples
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import shutil
from typing import Sequence

from gatortron_jax.sample_data import corpus_lexicon as syn
from gatortron_jax.annotations.documents import Document, Entity, Relation

FORMATS = ("i2b2_2010", "i2b2_2012", "brat_n2c2_2018", "brat_deid", "conll")
SPLITS = (("train", 24), ("dev", 6), ("test", 6))
LONG_MIN_TOKENS = 2700

# ------------------------------------------------------------------------------------------
# Vocabulary (invented or generic clinical terms).
# ------------------------------------------------------------------------------------------
DRUGS: tuple[syn.Drug, ...] = tuple(
    {d.name: d for groups in syn.HOME_MEDS.values() for g in groups for d in g}.values()) + syn.PRN_MEDS
PROBLEMS = tuple(sorted({n for names in syn.COMORBIDITY_NAMES.values() for n in names
                         if re.fullmatch(r"[A-Za-z0-9 /]+", n)}))
ACUTE = ("chest pain", "shortness of breath", "fever", "productive cough", "abdominal pain", "nausea",
         "vomiting", "dizziness", "syncope", "leg swelling", "headache", "dysuria", "confusion",
         "palpitations", "fatigue", "back pain", "a fall", "weakness")
DIAGNOSES = ("community-acquired pneumonia", "acute kidney injury", "cellulitis", "a urinary tract infection",
             "acute decompensated heart failure", "COPD exacerbation", "sepsis", "atrial fibrillation with RVR",
             "diabetic ketoacidosis", "a small bowel obstruction", "pyelonephritis", "a GI bleed")
TESTS = ("chest x-ray", "CT of the chest", "EKG", "urinalysis", "blood cultures", "TTE", "CBC", "BMP",
         "troponin", "lactate", "MRI of the brain", "abdominal ultrasound", "lipid panel", "hemoglobin A1c",
         "CT of the abdomen and pelvis", "lower extremity dopplers")
FINDINGS = ("a right lower lobe infiltrate", "pulmonary edema", "no acute fracture", "a small pleural effusion",
            "sinus tachycardia", "leukocytosis", "hyponatremia", "new atrial fibrillation", "an elevated troponin",
            "no acute intracranial process", "mild hydronephrosis", "a deep vein thrombosis", "pyuria")
LAB_TESTS = (("creatinine", "1.{n}"), ("potassium", "3.{n}"), ("sodium", "13{n}"), ("hemoglobin", "1{n}.2"),
             ("white count", "1{n}.4"), ("glucose", "2{n}5"), ("troponin", "0.0{n}"), ("lactate", "2.{n}"))
PROCEDURES = ("physical therapy", "a colonoscopy", "hemodialysis", "a cardiac catheterization", "IV fluids",
              "a paracentesis", "supplemental oxygen", "a blood transfusion", "incentive spirometry")
ADES = ("a diffuse rash", "hives", "angioedema", "acute kidney injury", "hypotension", "bradycardia",
        "nausea", "diarrhea", "hyperkalemia", "a prolonged QTc", "thrombocytopenia", "itching")
INHALERS = ("albuterol", "ipratropium-albuterol", "fluticasone", "tiotropium", "budesonide-formoterol")
FORMS = ("tablet", "capsule", "solution", "patch", "injection")
ROUTES = ("PO", "IV", "by mouth", "SC", "SL", "orally", "intravenously")
FREQS = ("daily", "BID", "TID", "q6h", "q8h", "every 6 hours", "twice a day", "at bedtime", "qHS", "once")
DURATIONS = ("for 5 days", "for 7 days", "for 10 days", "for 2 weeks", "x 3 days", "for one month")
TIME_DURATIONS = ("3 days", "two weeks", "48 hours", "several months", "1 week", "10 days")
DEPTS = ("cardiology", "nephrology", "the emergency department", "the ICU", "pulmonology", "infectious disease",
         "gastroenterology", "neurology")
PROFESSIONS = ("teacher", "electrician", "bus driver", "accountant", "farmer", "nurse", "chef", "librarian")
CITIES = ("Fictionville", "Sampleton", "Placeholder Falls", "Mockport", "Testburg", "Lorem Springs")
STATES = ("MA", "FL", "OH", "TX", "OR", "Vermont", "Georgia")
STREETS = ("Example Lane", "Synthetic Way", "Placeholder Road", "Imaginary Court", "Fictional Avenue")
ORGS = ("Example Home Health", "Sample Visiting Nurses", "Mock Rehab Partners", "Placeholder Hospice")
TITLES = ("DISCHARGE SUMMARY", "HISTORY AND PHYSICAL", "PROGRESS NOTE", "ADMISSION NOTE")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")

_SPLIT_PUNCT = re.compile(r"([,.;:)!?])(?=\s|$)")
_OPEN_PAREN = re.compile(r"\((?=\S)")


class _Note:
    """Sentences of segments; a segment is ``(text, labels)`` with labels
    ``{scheme: [(type, group, part), ...]}`` or None."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.sentences: list[list[tuple[str, dict | None]]] = []
        self.cur: list[tuple[str, dict | None]] = []
        self._group = itertools.count(1)
        self.tlink_types: dict[int, str] = {}

    def group(self, tlink: str | None = None) -> int:
        g = next(self._group)
        if tlink:
            self.tlink_types[g] = tlink
        return g

    def t(self, text: str) -> "_Note":
        self.cur.append((text, None))
        return self

    def e(self, text: str, **labels) -> "_Note":
        """Entity segment; labels: t10=type, t12=type|(type, group), n2=type|(type, group)|[...]
        (a third tuple element joins segments into one discontinuous entity), di=type."""
        out: dict[str, list[tuple[str, int, str | None]]] = {}
        for key, scheme in (("t10", "i2b2_2010"), ("t12", "i2b2_2012"), ("n2", "n2c2"), ("di", "deid")):
            v = labels.get(key)
            if v is None:
                continue
            items = v if isinstance(v, list) else [v]
            out[scheme] = [(i, 0, None) if isinstance(i, str) else (i[0], i[1], i[2] if len(i) > 2 else None)
                           for i in items]
        self.cur.append((text, out or None))
        return self

    def end(self) -> None:
        if self.cur:
            self.sentences.append(self.cur)
        self.cur = []

    def tokens(self) -> int:
        """Whitespace tokens of the note as rendered with natural punctuation."""
        return sum(len("".join(t for t, _ in s).split()) for s in self.sentences)

    # -- random values -------------------------------------------------------------------
    def pick(self, seq: Sequence):
        return self.rng.choice(seq)

    def name(self) -> str:
        return f"{self.pick(syn.FIRST_NAMES)} {self.pick(syn.LAST_NAMES)}"

    def date(self) -> str:
        r = self.rng
        y, m, d = r.randint(2091, 2096), r.randint(1, 12), r.randint(1, 28)
        style = r.randrange(3)
        return (f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{MONTHS[m - 1]} {d}, {y}")[style]

    def time(self) -> str:
        r = self.rng
        return self.pick((f"{r.randint(0, 23):02d}{self.pick(('00', '15', '30', '45'))}",
                          f"{r.randint(1, 12)} {self.pick(('am', 'pm'))}", f"{r.randint(0, 23)}:{r.randint(10, 59)}"))

    def phone(self) -> str:
        return f"({self.rng.randint(200, 989)}) 555-01{self.rng.randint(0, 99):02d}"

    def mrn(self) -> str:
        return "99" + "".join(str(self.rng.randint(0, 9)) for _ in range(6))


# ------------------------------------------------------------------------------------------
# Sentence templates.
# ------------------------------------------------------------------------------------------
def _header(n: _Note, note_no: int, patient: str, doctor: str, hospital: str) -> None:
    n.t(f"[Synthetic annotated note {note_no:04d} - not a real patient]").end()
    n.t(n.pick(TITLES)).end()
    n.t("Patient: ").e(patient, di="PATIENT").t(" MRN: ").e(n.mrn(), di="MEDICALRECORD").t(" DOB: ") \
        .e(n.date(), di="DATE").end()
    g = n.group("OVERLAP")
    n.e("Admission", t12=("OCCURRENCE", g)).t(" Date: ").e(n.date(), t12=("DATE", g), di="DATE").end()
    g = n.group("OVERLAP")
    n.e("Discharge", t12=("OCCURRENCE", g)).t(" Date: ").e(n.date(), t12=("DATE", g), di="DATE").end()
    n.t("Attending: Dr. ").e(doctor, di="DOCTOR").t(", ").e(n.pick(DEPTS[:2] + DEPTS[4:]), t12="CLINICAL_DEPT") \
        .t(" service, ").e(hospital, di="HOSPITAL").end()


def _hpi(n: _Note, patient: str, age: int) -> None:
    first = patient.split()[0]
    probs = n.rng.sample(PROBLEMS, 2)
    g = n.group("BEFORE")
    n.e(first, di="PATIENT").t(" is a ").e(str(age), di="AGE").t("-year-old with a history of ") \
        .e(probs[0], t10="problem", t12="PROBLEM").t(" and ").e(probs[1], t10="problem", t12="PROBLEM") \
        .t(" who ").e("presented", t12=("OCCURRENCE", g)).t(" with ").e(n.pick(ACUTE), t10="problem", t12="PROBLEM") \
        .t(" for ").e(n.pick(TIME_DURATIONS), t12=("DURATION", g)).t(".").end()
    n.t("She ").e("reports", t12="EVIDENTIAL").t(" ").e(n.pick(ACUTE), t10="problem", t12="PROBLEM") \
        .t(" but denies ").e(n.pick(ACUTE), t10="problem", t12="PROBLEM").t(".").end()


def _social(n: _Note) -> None:
    r = n.rng
    choice = r.randrange(3)
    if choice == 0:
        n.t("She works as a ").e(n.pick(PROFESSIONS), di="PROFESSION").t(" and lives at ") \
            .e(f"{r.randint(10, 999)} {n.pick(STREETS)}", di="STREET").t(", ").e(n.pick(CITIES), di="CITY") \
            .t(", ").e(n.pick(STATES), di="STATE").t(" ").e(f"0{r.randint(1000, 9999)}", di="ZIP").t(".").end()
    elif choice == 1:
        n.t("Her daughter ").e(n.name(), di="PATIENT").t(" can be reached at ").e(n.phone(), di="PHONE") \
            .t("; fax records to ").e(n.phone(), di="FAX").t(".").end()
    else:
        n.t("Portal user ").e(f"{n.pick(syn.FIRST_NAMES).lower()}{r.randint(10, 99)}", di="USERNAME") \
            .t(", email ").e(f"pt{r.randint(100, 999)}@example.org", di="EMAIL").t(", insurance ID ") \
            .e(f"HP-{r.randint(100000, 999999)}", di="HEALTHPLAN").t(".").end()


def _tests(n: _Note) -> None:
    r = n.rng
    choice = r.randrange(4)
    if choice == 0:
        g = n.group("OVERLAP")
        n.e(n.pick(TESTS), t10="test", t12=("TEST", g)).t(" on ").e(n.date(), t12=("DATE", g), di="DATE") \
            .t(" ").e("showed", t12="EVIDENTIAL").t(" ").e(n.pick(FINDINGS), t10="problem", t12="PROBLEM").t(".").end()
    elif choice == 1:
        name, val = n.pick(LAB_TESTS)
        g = n.group("OVERLAP")
        n.t("Her ").e(name, t10="test", t12=("TEST", g)).t(f" was {val.format(n=r.randint(1, 8))} at ") \
            .e(n.time(), t12=("TIME", g)).t(".").end()
    elif choice == 2:
        n.t("A ").e(n.pick(TESTS), t10="test", t12="TEST").t(" was ordered to evaluate for ") \
            .e(n.pick(DIAGNOSES), t10="problem", t12="PROBLEM").t(".").end()
    else:
        n.t("She underwent ").e(n.pick(PROCEDURES), t10="treatment", t12="TREATMENT").t(" in ") \
            .e(n.pick(DEPTS), t12="CLINICAL_DEPT").t(" with accession number ") \
            .e(f"A{r.randint(1000000, 9999999)}", di="IDNUM").t(".").end()


def _med(n: _Note, *, numbered: int | None = None) -> None:
    """A medication mention with n2c2 attributes linked to the drug."""
    r = n.rng
    d = n.pick(DRUGS)
    g = n.group()
    drug = dict(t10="treatment", t12="TREATMENT", n2=("Drug", g))
    style = r.randrange(6)
    if numbered is not None:
        n.t(f"{numbered}. ")
    if style == 0:  # list form: drug strength form route frequency
        n.e(d.name, **drug).t(" ").e(n.pick(d.doses), n2=("Strength", g)).t(" ").e(n.pick(FORMS), n2=("Form", g)) \
            .t(" ").e(d.route, n2=("Route", g)).t(" ").e(n.pick(d.freqs).split(" prn")[0], n2=("Frequency", g),
                                                      t12="FREQUENCY")
        n.t(".").end()
    elif style == 1:  # reason
        reason = n.pick(PROBLEMS + ACUTE)
        n.t("She was started on ").e(d.name, **drug).t(" ").e(n.pick(d.doses), n2=("Strength", g)).t(" ") \
            .e(n.pick(ROUTES), n2=("Route", g)).t(" ").e(n.pick(FREQS), n2=("Frequency", g), t12="FREQUENCY") \
            .t(" for ").e(reason, t10="problem", t12="PROBLEM", n2=("Reason", g)).t(".").end()
    elif style == 2:  # duration + dosage
        n.t("Continue ").e(d.name, **drug).t(" ").e(n.pick(("1 tablet", "2 tablets", "1 capsule")), n2=("Dosage", g)).t(" ") \
            .e(n.pick(("by mouth", "PO", "orally")), n2=("Route", g)).t(" ") \
            .e(n.pick(FREQS[:8]), n2=("Frequency", g), t12="FREQUENCY").t(" ") \
            .e(n.pick(DURATIONS), n2=("Duration", g), t12="DURATION").t(".").end()
    elif style == 3:  # ADE
        ade = n.pick(ADES)
        g2 = n.group("AFTER")
        n.e(d.name, t10="treatment", t12=("TREATMENT", g2), n2=("Drug", g)).t(" was stopped after she developed ") \
            .e(ade, t10="problem", t12=("PROBLEM", g2), n2=("ADE", g)).t(".").end()
    elif style == 4:  # overlapping ADE (of drug 1) and Reason (for drug 2)
        d2 = n.pick([x for x in DRUGS if x.name != d.name])
        g2 = n.group()
        ade = n.pick(ADES)
        n.t("She developed ").e(ade, t10="problem", t12="PROBLEM", n2=[("ADE", g), ("Reason", g2)]).t(" on ") \
            .e(d.name, **drug).t(" and was treated with ") \
            .e(d2.name, t10="treatment", t12="TREATMENT", n2=("Drug", g2)).t(" ") \
            .e(n.pick(d2.doses), n2=("Strength", g2)).t(".").end()
    else:  # discontinuous dosage: "2 inhaled puffs" -> Dosage "2 ... puffs", Route "inhaled"
        n.t("Give ").e(n.pick(INHALERS), **drug).t(" ").e(str(r.randint(1, 4)), n2=("Dosage", g, "d")).t(" ") \
            .e("inhaled", n2=("Route", g)).t(" ").e("puffs", n2=("Dosage", g, "d")).t(" ") \
            .e(n.pick(FREQS), n2=("Frequency", g), t12="FREQUENCY").t(".").end()


def _plan(n: _Note, doctor: str) -> None:
    r = n.rng
    choice = r.randrange(3)
    if choice == 0:
        n.t("# ").e(n.pick(DIAGNOSES), t10="problem", t12="PROBLEM").t(": continue ") \
            .e(n.pick(DRUGS).name, t10="treatment", t12="TREATMENT").t(" and recheck ") \
            .e(n.pick(TESTS), t10="test", t12="TEST").t(" in ").e(n.pick(TIME_DURATIONS), t12="DURATION").t(".").end()
    elif choice == 1:
        g = n.group("BEFORE")
        n.t("Follow up with Dr. ").e(doctor, di="DOCTOR").t(" in ").e(n.pick(DEPTS), t12="CLINICAL_DEPT") \
            .t(" clinic on ").e(n.date(), t12=("DATE", g), di="DATE").t("; call ").e(n.phone(), di="PHONE") \
            .t(" with questions.").end()
    else:
        g = n.group("BEFORE")
        n.t("She was ").e("discharged", t12=("OCCURRENCE", g)).t(" home with ").e(n.pick(ORGS), di="ORGANIZATION") \
            .t(" services on ").e(n.date(), t12=("DATE", g), di="DATE").t(".").end()


def _signature(n: _Note, doctor: str) -> None:
    n.t("Electronically signed by ").e(doctor, di="DOCTOR").t(", MD on ").e(n.date(), di="DATE").t(" ") \
        .e(n.time(), di="DATE").end()


def generate_note(rng: random.Random, note_no: int, *, long: bool = False) -> _Note:
    n = _Note(rng)
    patient, doctor = n.name(), n.name()
    hospital = n.pick(syn.FACILITIES)
    age = rng.randint(19, 88)
    _header(n, note_no, patient, doctor, hospital)
    n.t(n.pick(syn.HEADERS["hpi"])).end()
    _hpi(n, patient, age)
    _social(n)
    n.t(n.pick(syn.HEADERS["meds"])).end()
    for k in range(rng.randint(3, 6)):
        _med(n, numbered=k + 1)
    n.t(n.pick(syn.HEADERS["course"])).end()
    for _ in range(rng.randint(3, 6)):
        rng.choice((_tests, _med, _social))(n)
    day = 1
    while long and n.tokens() < LONG_MIN_TOKENS:
        g = n.group("OVERLAP")
        n.t(f"Hospital day {day}, ").e(n.date(), t12=("DATE", g), di="DATE").t(": she was ") \
            .e("seen", t12=("OCCURRENCE", g)).t(" on rounds.").end()
        for _ in range(rng.randint(3, 6)):
            rng.choice((_tests, _tests, _med, lambda x: _plan(x, doctor), _social))(n)
        day += 1
    n.t(n.pick(syn.HEADERS["ap"])).end()
    for _ in range(rng.randint(2, 4)):
        _plan(n, doctor)
    _signature(n, doctor)
    return n


# ------------------------------------------------------------------------------------------
# Rendering one note into one annotation scheme.
# ------------------------------------------------------------------------------------------
def render(note: _Note, doc_id: str, scheme: str, *, tokenized: bool, prefix: str = "") -> Document:
    """The note's text in one format's style, with that scheme's entities and relations."""
    text_parts, pos = [prefix], len(prefix)
    found: list[tuple[str, int, str | None, int, int]] = []  # type, group, part, start, end
    for sent in note.sentences:
        for seg, labels in sent:
            if labels is None and tokenized:
                seg = _OPEN_PAREN.sub("( ", _SPLIT_PUNCT.sub(r" \1", seg))
            if labels and scheme in labels:
                for typ, g, part in labels[scheme]:
                    found.append((typ, g, part, pos, pos + len(seg)))
            text_parts.append(seg)
            pos += len(seg)
        text_parts.append("\n")
        pos += 1
    text = "".join(text_parts)
    # Merge discontinuous parts into one entity.
    merged: list[tuple[str, int, tuple[tuple[int, int], ...]]] = []
    parts: dict[tuple, int] = {}
    for typ, g, part, s, e in found:
        if part is not None and (typ, g, part) in parts:
            k = parts[(typ, g, part)]
            t0, g0, spans = merged[k]
            merged[k] = (t0, g0, spans + ((s, e),))
            continue
        if part is not None:
            parts[(typ, g, part)] = len(merged)
        merged.append((typ, g, ((s, e),)))
    entities, groups = [], {}
    timex = {"DATE", "TIME", "DURATION", "FREQUENCY"}
    counters = {"E": 0, "T": 0}
    for k, (typ, g, spans) in enumerate(merged):
        if scheme == "i2b2_2012":
            letter = "T" if typ in timex else "E"
            eid = f"{letter}{counters[letter]}"
            counters[letter] += 1
        else:
            eid = f"T{k + 1}"
        ent = Entity(id=eid, type=typ, spans=spans, text=" ".join(text[s:e] for s, e in spans))
        if tokenized:
            for s, e in spans:
                assert (s == 0 or text[s - 1].isspace()) and (e == len(text) or text[e].isspace()), (doc_id, typ)
        entities.append(ent)
        if g:
            groups.setdefault(g, []).append(ent)
    relations = []
    for g, ents in groups.items():
        if scheme == "n2c2":
            drugs = [e for e in ents if e.type == "Drug"]
            for e in ents:
                if drugs and e.type != "Drug":
                    relations.append(Relation(f"R{len(relations) + 1}", f"{e.type}-Drug", e.id, drugs[0].id))
        elif scheme == "i2b2_2012" and g in note.tlink_types:
            times = [e for e in ents if e.type in timex]
            for e in ents:
                if times and e.type not in timex:
                    relations.append(Relation(f"TL{len(relations)}", note.tlink_types[g], e.id, times[0].id))
    return Document(id=doc_id, text=text, entities=entities, relations=relations)


# ------------------------------------------------------------------------------------------
# Writing the sample tree.
# ------------------------------------------------------------------------------------------
_SCHEME = {"i2b2_2010": "i2b2_2010", "conll": "i2b2_2010", "i2b2_2012": "i2b2_2012",
           "brat_n2c2_2018": "n2c2", "brat_deid": "deid"}
_FORMAT_SEED = {f: k for k, f in enumerate(FORMATS)}


def generate_documents(fmt: str, seed: int = 0) -> dict[str, list[Document]]:
    """``{split: [Document, ...]}`` for one format (the last test note is the long one)."""
    out: dict[str, list[Document]] = {}
    note_no = 0
    for split, count in SPLITS:
        docs = []
        for i in range(count):
            long = split == "test" and i == count - 1
            rng = random.Random(f"{seed}-{fmt}-{note_no}")
            note = generate_note(rng, note_no, long=long)
            doc_id = f"note_{note_no:04d}" + ("_long" if long else "")
            docs.append(render(note, doc_id, _SCHEME[fmt], tokenized=fmt in ("i2b2_2010", "conll"),
                               prefix="\n" if fmt == "i2b2_2012" else ""))
            note_no += 1
        out[split] = docs
    return out


def _sentence_docs(doc: Document) -> list[Document]:
    """CoNLL: one document per line of a note (the long note stays one block)."""
    if doc.id.endswith("_long"):
        return [doc]
    out, pos = [], 0
    for k, line in enumerate(doc.text.split("\n")):
        if line.strip():
            ents = [Entity(e.id, e.type, tuple((s - pos, t - pos) for s, t in e.spans), e.text)
                    for e in doc.entities if pos <= e.start and e.end <= pos + len(line)]
            out.append(Document(id=f"{doc.id}-{k}", text=line, entities=ents))
        pos += len(line) + 1
    return out


def write_samples(out_dir: str, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write every format under ``out_dir/<format>/``; returns ``{format: {split: notes}}``."""
    from gatortron_jax.annotations.formats import (write_brat_dir, write_conll, write_i2b2_2010_con,
                                            write_i2b2_2012_xml)

    counts: dict[str, dict[str, int]] = {}
    for fmt in FORMATS:
        root = os.path.join(out_dir, fmt)
        if os.path.isdir(root):
            shutil.rmtree(root)
        os.makedirs(root)
        splits = generate_documents(fmt, seed)
        counts[fmt] = {s: len(d) for s, d in splits.items()}
        for split, docs in splits.items():
            if fmt == "conll":
                write_conll([s for d in docs for s in _sentence_docs(d)], os.path.join(root, f"{split}.tsv"))
            elif fmt.startswith("brat"):
                write_brat_dir(docs, os.path.join(root, split))
            elif fmt == "i2b2_2010":
                for d in docs:
                    os.makedirs(os.path.join(root, split, "txt"), exist_ok=True)
                    with open(os.path.join(root, split, "txt", d.id + ".txt"), "w", encoding="utf-8",
                              newline="") as f:
                        f.write(d.text)
                    write_i2b2_2010_con(d, os.path.join(root, split, "concepts", d.id + ".con"))
            else:
                for d in docs:
                    write_i2b2_2012_xml(d, os.path.join(root, split, d.id + ".xml"))
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/ner_samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = write_samples(args.out, args.seed)
    for fmt, c in counts.items():
        print(f"{fmt}: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
