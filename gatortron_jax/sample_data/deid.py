"""Synthetic de-identification samples in the formats the corpora ship in (i2b2 2014 and 2006 XML).

The 2014 i2b2/UTHealth and 2006 i2b2 de-id corpora are under data-use agreements, so
``data/deid_samples`` holds small stand-ins made here. Nothing is real: names come from the
invented lists of :mod:`gatortron_jax.sample_data.corpus_lexicon`, MRNs start with ``99``, phone
numbers are ``555-01xx``, dates fall in 2091-2096.

What the notes exercise (because de-identification fails on exactly these): the patient's
full name and first name repeated within a note; dates in eight clinical formats
(``03/14/2093``, ``3/14/93``, ``2093-03-14``, ``Mar 14, 2093``, ``March 14th, 2093``,
``14 Mar 2093``, ``03/2093``, ``3/14``); ages over 89 in some notes; every 2014 category
(NAME, PROFESSION, LOCATION, AGE, DATE, CONTACT, ID); and XML-special characters in text and
attributes (``&``, quotes). Notes are longitudinal like the 2014 corpus: files are named
``<patient>-<record>.xml`` with three records per patient, so patient-level surrogate
consistency can be checked (``deid --patient_id_pattern '^(\\d+)-'``).

Layout (``write_samples``)::

    i2b2_2014/{train,dev,test}/<patient>-<record>.xml   24 / 6 / 6 notes
    i2b2_2006/{train,dev,test}.xml                      8 / 3 / 3 records

Regenerate (deterministic): ``gatortron-jax make-sample-data --kind deid --output data/deid_samples``.
"""

from __future__ import annotations

import os
import random
import shutil

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats.i2b2_deid import write_i2b2_2006_xml, write_i2b2_2014_xml
from gatortron_jax.sample_data import corpus_lexicon as syn
from gatortron_jax.sample_data.ner import CITIES, MONTHS, ORGS, PROFESSIONS, STATES, STREETS, _Note, render

SPLITS_2014 = (("train", 8), ("dev", 2), ("test", 2))  # patients per split; 3 notes each
NOTES_PER_PATIENT = 3
SPLITS_2006 = (("train", 8), ("dev", 3), ("test", 3))
#: 2014 TYPE -> the 2006 type set (PATIENT, DOCTOR, HOSPITAL, ID, DATE, LOCATION, PHONE, AGE).
TO_2006 = {"PATIENT": "PATIENT", "DOCTOR": "DOCTOR", "HOSPITAL": "HOSPITAL", "DATE": "DATE", "AGE": "AGE",
           "MEDICALRECORD": "ID", "IDNUM": "ID", "HEALTHPLAN": "ID", "PHONE": "PHONE", "FAX": "PHONE",
           "CITY": "LOCATION", "STREET": "LOCATION", "STATE": "LOCATION", "ZIP": "LOCATION",
           "ORGANIZATION": "LOCATION"}


def date_formats(rng: random.Random) -> list[str]:
    """One date written in each of the eight formats (day kept <= 28 so every shift parses)."""
    y, m, d = rng.randint(2091, 2096), rng.randint(1, 12), rng.randint(1, 28)
    mon = MONTHS[m - 1]
    suffix = "th" if 10 <= d <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return [f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{y}-{m:02d}-{d:02d}", f"{mon[:3]} {d}, {y}",
            f"{mon} {d}{suffix}, {y}", f"{d} {mon[:3]} {y}", f"{m:02d}/{y}", f"{m}/{d}"]


class _Patient:
    def __init__(self, rng: random.Random, number: int):
        self.number = number
        self.first, self.last = rng.choice(syn.FIRST_NAMES), rng.choice(syn.LAST_NAMES)
        self.mrn = "99" + "".join(str(rng.randint(0, 9)) for _ in range(6))
        self.age = rng.choice((rng.randint(91, 104), rng.randint(23, 88), rng.randint(30, 85)))
        self.city, self.state = rng.choice(CITIES), rng.choice(STATES)
        self.street = f"{rng.randint(10, 999)} {rng.choice(STREETS)}"
        self.zip = f"0{rng.randint(1000, 9999)}"
        self.job = rng.choice(PROFESSIONS)
        self.phone = f"({rng.randint(200, 989)}) 555-01{rng.randint(0, 99):02d}"


def generate_note(rng: random.Random, p: _Patient, record: int) -> _Note:
    n = _Note(rng)
    doctor = f"{rng.choice(syn.FIRST_NAMES)} {rng.choice(syn.LAST_NAMES)}"
    hospital = rng.choice(syn.FACILITIES)
    formats = list(range(8))
    rng.shuffle(formats)
    dates = [date_formats(rng)[k] for k in formats]  # eight different dates, one per format
    full = f"{p.first} {p.last}"
    n.t(f"[Synthetic de-identification sample {p.number:03d}-{record:02d} - not a real patient]").end()
    n.t("Record date: ").e(dates[0], di="DATE").end()
    n.t("Patient: ").e(full, di="PATIENT").t("   MRN: ").e(p.mrn, di="MEDICALRECORD").end()
    n.t("Seen at ").e(hospital, di="HOSPITAL").t(" by Dr. ").e(doctor, di="DOCTOR").t(".").end()
    n.e(p.first, di="PATIENT").t(" is a ").e(str(p.age), di="AGE").t(" year old ").e(p.job, di="PROFESSION") \
        .t(" who was last seen on ").e(dates[1], di="DATE").t(" and again ").e(dates[2], di="DATE").t(".").end()
    n.t("Lives at ").e(p.street, di="STREET").t(", ").e(p.city, di="CITY").t(", ").e(p.state, di="STATE") \
        .t(" ").e(p.zip, di="ZIP").t("; phone ").e(p.phone, di="PHONE").t(".").end()
    n.t("Mr. ").e(p.last, di="PATIENT").t(' said the "new pills" helped & he sleeps better since ') \
        .e(dates[3], di="DATE").t(".").end()
    n.t("Home care by ").e(rng.choice(ORGS) + " & Partners", di="ORGANIZATION").t(" started ") \
        .e(dates[4], di="DATE").t(".").end()
    n.t("Labs ").e(dates[5], di="DATE").t(": creatinine 1.").t(str(rng.randint(0, 9))).t(", potassium 4.") \
        .t(str(rng.randint(0, 9))).t(".").end()
    n.t("Follow up with Dr. ").e(doctor.split()[1], di="DOCTOR").t(" on ").e(dates[6], di="DATE") \
        .t("; recheck BMP on ").e(dates[7], di="DATE").t(".").end()
    n.t("Plan discussed with ").e(full, di="PATIENT").t(", who agrees.").end()
    return n


def generate_2014(seed: int = 0) -> dict[str, list[Document]]:
    """``{split: [Document]}`` with 2014 types; ids ``<patient>-<record>`` (patients 100...)."""
    out: dict[str, list[Document]] = {}
    number = 100
    for split, patients in SPLITS_2014:
        docs = []
        for _ in range(patients):
            p = _Patient(random.Random(f"{seed}-deid-patient-{number}"), number)
            for record in range(1, NOTES_PER_PATIENT + 1):
                note = generate_note(random.Random(f"{seed}-deid-{number}-{record}"), p, record)
                doc = render(note, f"{number}-{record:02d}", "deid", tokenized=False, prefix="\n")
                docs.append(Document(doc.id, doc.text, [Entity(f"P{k}", e.type, e.spans, e.text)
                                                        for k, e in enumerate(doc.entities)]))
            number += 1
        out[split] = docs
    return out


def to_2006(doc: Document, record_id: str) -> Document:
    """The same note with 2006 types (types 2006 did not annotate are left as plain text)."""
    ents = [Entity(f"P{k}", TO_2006[e.type], e.spans, e.text)
            for k, e in enumerate(e for e in doc.entities if e.type in TO_2006)]
    return Document(record_id, doc.text, ents)


def write_samples(out_dir: str, seed: int = 0) -> dict[str, dict[str, int]]:
    """Writes ``out_dir/i2b2_2014/<split>/*.xml`` and ``out_dir/i2b2_2006/<split>.xml``."""
    counts: dict[str, dict[str, int]] = {"i2b2_2014": {}, "i2b2_2006": {}}
    for sub in counts:
        if os.path.isdir(os.path.join(out_dir, sub)):
            shutil.rmtree(os.path.join(out_dir, sub))
    splits = generate_2014(seed)
    for split, docs in splits.items():
        for d in docs:
            write_i2b2_2014_xml(d, os.path.join(out_dir, "i2b2_2014", split, d.id + ".xml"))
        counts["i2b2_2014"][split] = len(docs)
    record = 1
    pool = [d for docs in splits.values() for d in docs]
    start = 0
    for split, n in SPLITS_2006:
        records = []
        for d in pool[start:start + n]:
            records.append(to_2006(d, str(record)))
            record += 1
        start += n
        write_i2b2_2006_xml(records, os.path.join(out_dir, "i2b2_2006", f"{split}.xml"))
        counts["i2b2_2006"][split] = len(records)
    return counts
