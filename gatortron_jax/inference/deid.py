"""De-identification: replace predicted PHI with ``[CATEGORY]`` masks or realistic surrogates.

* ``mask``: each PHI span becomes ``[NAME]``, ``[DATE]``, ``[LOCATION]``... (see ``I2B2_2014_TYPES``).
* ``surrogate``: names, places and identifiers get fake values (format-preserving for
  numbers); dates are shifted by one random offset per note so intervals stay true; the same
  original string gets the same surrogate within a note. Any surrogate that cannot be made
  (an unparseable date, an unknown type, a generator that only reproduced the original) falls
  back to the mask — the original PHI is never left in the output.

Outputs per note: ``<id>.txt`` (redacted) and ``<id>.ann`` (brat: one ``T`` line per removed
span, typed by its i2b2 2014 PHI type, offsets into the *redacted* text, covering the
replacement). The original PHI text is never written anywhere.

HIPAA Safe Harbor lists 18 identifier categories; i2b2 2014 annotates them with finer types
(and adds PROFESSION and some location types that HIPAA allows, e.g. STATE).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from typing import Sequence

import numpy as np

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.core.errors import ConfigError

# HIPAA Safe Harbor category → i2b2 2014 PHI types.
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

# i2b2 2014 type → mask category (also accepts the coarse category names themselves).
I2B2_2014_TYPES: dict[str, str] = {
    "PATIENT": "NAME", "DOCTOR": "NAME", "USERNAME": "NAME",
    "PROFESSION": "PROFESSION",
    "ROOM": "LOCATION", "DEPARTMENT": "LOCATION", "HOSPITAL": "LOCATION", "ORGANIZATION": "LOCATION",
    "STREET": "LOCATION", "CITY": "LOCATION", "STATE": "LOCATION", "COUNTRY": "LOCATION", "ZIP": "LOCATION",
    "LOCATION-OTHER": "LOCATION", "LOCATION": "LOCATION",
    "AGE": "AGE", "DATE": "DATE",
    "PHONE": "CONTACT", "FAX": "CONTACT", "EMAIL": "CONTACT", "URL": "CONTACT", "IPADDR": "CONTACT",
    "CONTACT": "CONTACT",
    "SSN": "ID", "MEDICALRECORD": "ID", "HEALTHPLAN": "ID", "ACCOUNT": "ID", "LICENSE": "ID",
    "VEHICLE": "ID", "DEVICE": "ID", "BIOID": "ID", "IDNUM": "ID", "ID": "ID",
    "NAME": "NAME",
}

_FIRST = ("Alex", "Jordan", "Morgan", "Casey", "Riley", "Taylor", "Jamie", "Avery", "Quinn", "Drew")
_LAST = ("Smith", "Garcia", "Nguyen", "Patel", "Johnson", "Kowalski", "Okafor", "Rossi", "Larsen", "Kim")
_CITIES = ("Springfield", "Riverton", "Fairview", "Lakeside", "Georgetown", "Milton", "Ashland")
_STREETS = ("Oak Street", "Maple Avenue", "Cedar Lane", "Elm Road", "Pine Court", "Hill Drive")
_HOSPITALS = ("Riverside General Hospital", "St. Mary Medical Center", "Lakeview Clinic", "Northside Hospital")
_STATES = ("Ohio", "Texas", "Oregon", "Maine", "Iowa", "Utah")
_COUNTRIES = ("Canada", "Portugal", "Kenya", "Norway", "Chile")
_PROFESSIONS = ("teacher", "engineer", "carpenter", "accountant", "chef", "nurse")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")


def mask_category(phi_type: str) -> str:
    return I2B2_2014_TYPES.get(phi_type.upper(), re.sub(r"[^A-Z0-9]+", "_", phi_type.upper()).strip("_") or "PHI")


# ----------------------------------------------------------------------------- dates


def _year(s: str) -> int:
    y = int(s)
    return y + (2000 if y < 50 else 1900) if len(s) == 2 else y


def shift_date(text: str, days: int) -> str | None:
    """``text`` with the date shifted by ``days`` in the same format, or None if not understood."""
    t = text.strip()
    delta = dt.timedelta(days=days)
    try:
        m = re.fullmatch(r"(\d{1,2})([/-])(\d{1,2})\2(\d{2}|\d{4})", t)
        if m:
            d = dt.date(_year(m.group(4)), int(m.group(1)), int(m.group(3))) + delta
            year = f"{d.year % 100:02d}" if len(m.group(4)) == 2 else str(d.year)
            return f"{d.month:0{len(m.group(1))}d}{m.group(2)}{d.day:0{len(m.group(3))}d}{m.group(2)}{year}"
        m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", t)
        if m:
            return (dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + delta).isoformat()
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})", t)
        if m:
            d = dt.date(2001, int(m.group(1)), int(m.group(2))) + delta  # non-leap reference year
            return f"{d.month}/{d.day}"
        m = re.fullmatch(r"([A-Za-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})", t)
        if m and m.group(1).lower()[:3] in [x[:3] for x in _MONTHS]:
            month = [x[:3] for x in _MONTHS].index(m.group(1).lower()[:3]) + 1
            d = dt.date(int(m.group(3)), month, int(m.group(2))) + delta
            return f"{_MONTHS[d.month - 1].capitalize()} {d.day}, {d.year}"
        m = re.fullmatch(r"(\d{1,2}) ([A-Za-z]+) (\d{4})", t)
        if m and m.group(2).lower()[:3] in [x[:3] for x in _MONTHS]:
            month = [x[:3] for x in _MONTHS].index(m.group(2).lower()[:3]) + 1
            d = dt.date(int(m.group(3)), month, int(m.group(1))) + delta
            return f"{d.day} {_MONTHS[d.month - 1].capitalize()} {d.year}"
        m = re.fullmatch(r"([A-Za-z]+) (\d{4})", t)
        if m and m.group(1).lower()[:3] in [x[:3] for x in _MONTHS]:
            month = [x[:3] for x in _MONTHS].index(m.group(1).lower()[:3]) + 1
            d = dt.date(int(m.group(2)), month, 15) + delta
            return f"{_MONTHS[d.month - 1].capitalize()} {d.year}"
        m = re.fullmatch(r"(\d{4})", t)
        if m:
            return str((dt.date(int(t), 7, 1) + delta).year)
    except ValueError:  # e.g. 02/30/2019
        return None
    return None


# ----------------------------------------------------------------------------- surrogates


class SurrogateGenerator:
    """Per-note surrogates: seeded by (seed, note id); same original → same surrogate."""

    def __init__(self, doc_id: str, seed: int = 0, max_shift_days: int = 365):
        digest = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
        self.rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        shift = 0
        while shift == 0:
            shift = int(self.rng.integers(-max_shift_days, max_shift_days + 1))
        self.date_shift_days = shift
        self._cache: dict[tuple[str, str], str] = {}

    def _pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def _scramble(self, s: str) -> str:
        out = []
        for ch in s:
            if ch.isdigit():
                out.append(str(int(self.rng.integers(10))))
            elif ch.isalpha():
                c = chr(ord("A") + int(self.rng.integers(26)))
                out.append(c if ch.isupper() else c.lower())
            else:
                out.append(ch)
        return "".join(out)

    def _make(self, phi_type: str, original: str) -> str | None:
        t = phi_type.upper()
        if t == "DATE":
            return shift_date(original, self.date_shift_days)
        if t == "AGE":
            m = re.fullmatch(r"\s*(\d+)\s*", original)
            if not m:
                return None
            # Safe Harbor: ages over 89 are aggregated; younger ages may stay.
            return "90+" if int(m.group(1)) > 89 else original
        if t in ("PATIENT", "DOCTOR", "NAME"):
            words = original.split()
            if len(words) == 1:
                return self._pick(_LAST)
            return f"{self._pick(_FIRST)} {self._pick(_LAST)}"
        if t == "USERNAME":
            return f"user{int(self.rng.integers(100, 999))}"
        if t == "CITY" or t == "LOCATION-OTHER" or t == "LOCATION":
            return self._pick(_CITIES)
        if t == "STREET":
            return f"{int(self.rng.integers(10, 999))} {self._pick(_STREETS)}"
        if t in ("HOSPITAL", "ORGANIZATION", "DEPARTMENT"):
            return self._pick(_HOSPITALS)
        if t == "STATE":
            return self._pick(_STATES)
        if t == "COUNTRY":
            return self._pick(_COUNTRIES)
        if t == "PROFESSION":
            return self._pick(_PROFESSIONS)
        if t == "EMAIL":
            return f"user{int(self.rng.integers(100, 999))}@example.com"
        if t == "URL":
            return f"https://example.org/{int(self.rng.integers(1000, 9999))}"
        if t == "IPADDR":
            return "10." + ".".join(str(int(self.rng.integers(0, 256))) for _ in range(3))
        if t in ("PHONE", "FAX", "ZIP", "SSN", "MEDICALRECORD", "HEALTHPLAN", "ACCOUNT", "LICENSE", "VEHICLE",
                 "DEVICE", "BIOID", "IDNUM", "ID", "ROOM", "CONTACT"):
            if not any(ch.isalnum() for ch in original):
                return None
            return self._scramble(original)
        return None

    def surrogate(self, phi_type: str, original: str) -> str | None:
        """A surrogate, or None when none can be made (caller masks)."""
        key = (phi_type.upper(), " ".join(original.lower().split()))
        if key not in self._cache:
            value = None
            for _ in range(5):  # retry if the generator happened to reproduce the original
                value = self._make(phi_type, original)
                if value is None or value.strip().lower() != original.strip().lower() or phi_type.upper() == "AGE":
                    break
                value = None
            self._cache[key] = value
        return self._cache[key]


# ----------------------------------------------------------------------------- redaction


@dataclasses.dataclass
class DeidResult:
    doc_id: str
    text: str
    removed: list[Entity]  # offsets into the redacted text; .text is the replacement
    masked_fallbacks: int
    date_shift_days: int | None


def deidentify(doc: Document, phi: Sequence[Entity], mode: str = "mask", seed: int = 0) -> DeidResult:
    """Replaces every character covered by ``phi`` spans (overlaps merged, first type wins)."""
    if mode not in ("mask", "surrogate"):
        raise ConfigError(f"--mode {mode!r}: choose mask or surrogate")
    pieces = sorted(((s, e, ent.type) for ent in phi for s, e in ent.spans if e > s), key=lambda x: (x[0], -x[1]))
    merged: list[list] = []
    for s, e, t in pieces:
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e, t])
    gen = SurrogateGenerator(doc.id, seed) if mode == "surrogate" else None
    out, removed, pos, fallbacks = [], [], 0, 0
    length = 0
    for k, (s, e, t) in enumerate(merged, start=1):
        out.append(doc.text[pos:s])
        length += s - pos
        replacement = None
        if gen is not None:
            replacement = gen.surrogate(t, doc.text[s:e])
            if replacement is None:
                fallbacks += 1
        if replacement is None:
            replacement = f"[{mask_category(t)}]"
        out.append(replacement)
        removed.append(Entity(f"T{k}", t, ((length, length + len(replacement)),), replacement))
        length += len(replacement)
        pos = e
    out.append(doc.text[pos:])
    return DeidResult(doc.id, "".join(out), removed, fallbacks, gen.date_shift_days if gen else None)


def write_deid(results: Sequence[DeidResult], output_dir: str, mode: str) -> dict:
    from gatortron_jax.annotations.formats.brat import write_brat

    os.makedirs(output_dir, exist_ok=True)
    counts: dict[str, int] = {}
    fallbacks = 0
    for r in results:
        base = os.path.join(output_dir, r.doc_id)
        os.makedirs(os.path.dirname(base) or ".", exist_ok=True)
        with open(base + ".txt", "w", encoding="utf-8", newline="") as f:
            f.write(r.text)
        write_brat(Document(r.doc_id, r.text, r.removed), base + ".ann")
        for e in r.removed:
            counts[e.type] = counts.get(e.type, 0) + 1
        fallbacks += r.masked_fallbacks
    summary = {"mode": mode, "notes": len(results), "removed_by_type": dict(sorted(counts.items())),
               "surrogate_fallbacks_masked": fallbacks}
    with open(os.path.join(output_dir, "deid_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
