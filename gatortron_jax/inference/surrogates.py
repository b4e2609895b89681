"""Surrogate PHI that keeps a de-identified note readable and internally consistent.

Why not masks everywhere: a note full of ``[NAME]`` loses who-did-what and every interval
between dates; realistic surrogates keep both, and hide the few PHI a model misses among
fakes ("hiding in plain sight"). The rules:

* **Consistent.** A surrogate is a pure function of ``(seed, patient, TYPE, original)``
  (sha256), so the same string gets the same surrogate everywhere in a note and, when a
  patient id is given, in every note of that patient, whatever order notes come in. Names
  are replaced word by word, so "John Smith" and a later "Smith" stay the same person (a lone
  "John" is read as a first name when the note also has "John ...").
* **Dates** shift by one offset per patient (never 0 days), in the original format
  (``01/02/2003``, ``1/2/03``, ``2003-01-02``, ``Jan 2, 2003``, ``January 2nd, 2003``,
  ``2 Jan 2003``, ``Jan 2003``, ``01/2003``, ``1/2``, ``2003``; case and zero-padding kept),
  so intervals stay true. A date the shift leaves looking the same (a bare year, a month
  and year near mid-month) is masked rather than left as it was.
* **Ages** over 89 become ``90+`` (HIPAA Safe Harbor's single category); ages up to 89 are not
  Safe-Harbor PHI and are kept (``how = "kept"``).
* **Never the original.** A surrogate equal to the original is redrawn; when none can be
  made (an unparseable date, an unknown type, a value with nothing to scramble) the result is
  None and the caller masks the span.

The offset and the seed together re-identify dates, so neither is written anywhere.

Cost: a few sha256 per PHI; 12,336 PHI in 514 notes take 1.1 s on one CPU core (~11k PHI/s),
so a 10M-note hospital table (~250M PHI) spends ~6 core-hours here — small next to the model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from typing import Iterable, Sequence

FIRST = ("Alex", "Jordan", "Morgan", "Casey", "Riley", "Taylor", "Jamie", "Avery", "Quinn", "Drew", "Rowan",
         "Skyler", "Emery", "Harper", "Logan", "Reese")
LAST = ("Smith", "Garcia", "Nguyen", "Patel", "Johnson", "Kowalski", "Okafor", "Rossi", "Larsen", "Kim", "Moreau",
        "Haddad", "Novak", "Silva", "Tanaka", "Brennan")
CITIES = ("Springfield", "Riverton", "Fairview", "Lakeside", "Georgetown", "Milton", "Ashland", "Clayton")
STREETS = ("Oak Street", "Maple Avenue", "Cedar Lane", "Elm Road", "Pine Court", "Hill Drive")
HOSPITALS = ("Riverside General Hospital", "St. Mary Medical Center", "Lakeview Clinic", "Northside Hospital")
ORGANIZATIONS = ("Acme Logistics", "Harbor Services", "Summit Group", "Bluewater Co")
DEPARTMENTS = ("Internal Medicine", "Cardiology", "Radiology", "Oncology")
STATES = ("Ohio", "Texas", "Oregon", "Maine", "Iowa", "Utah")
COUNTRIES = ("Canada", "Portugal", "Kenya", "Norway", "Chile")
PROFESSIONS = ("teacher", "engineer", "carpenter", "accountant", "chef", "plumber")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_MON3 = [m[:3].lower() for m in MONTHS]
_NAME_TYPES = ("PATIENT", "DOCTOR", "NAME")
_SCRAMBLE_TYPES = ("PHONE", "FAX", "ZIP", "SSN", "MEDICALRECORD", "HEALTHPLAN", "ACCOUNT", "LICENSE", "VEHICLE",
                   "DEVICE", "BIOID", "IDNUM", "ID", "ROOM", "CONTACT")
_PICK_TYPES = {"CITY": CITIES, "LOCATION-OTHER": CITIES, "LOCATION": CITIES, "HOSPITAL": HOSPITALS,
               "ORGANIZATION": ORGANIZATIONS, "DEPARTMENT": DEPARTMENTS, "STATE": STATES, "COUNTRY": COUNTRIES,
               "PROFESSION": PROFESSIONS}


# ----------------------------------------------------------------------------- dates


def _year(s: str) -> int:
    y = int(s)
    return y + (2000 if y < 50 else 1900) if len(s) == 2 else y


def _month_name(month: int, like: str) -> str:
    """Month ``month`` spelled like ``like``: full or abbreviated, its case, its trailing '.'."""
    word, full = like.rstrip("."), MONTHS[month - 1]
    out = full if len(word) > 3 and word.lower() != "sept" else full[:3]
    out = out.upper() if word.isupper() else out.lower() if word.islower() else out
    return out + ("." if like.endswith(".") and len(out) == 3 else "")


def _month_of(word: str) -> int | None:
    w = word.rstrip(".").lower()
    if len(w) >= 3 and w[:3] in _MON3 and MONTHS[_MON3.index(w[:3])].lower().startswith(w):
        return _MON3.index(w[:3]) + 1
    if w == "sept":
        return 9
    return None


def _yr(d: dt.date, like: str) -> str:
    return f"{d.year % 100:02d}" if len(like) == 2 else str(d.year)


def _num(n: int, padded: bool) -> str:
    return f"{n:02d}" if padded else str(n)


def _padded(*fields: str) -> bool:
    """Zero-padded style: every month/day field has two digits (``01/02``, ``12/31``)."""
    return all(len(f) == 2 for f in fields)


def shift_date(text: str, days: int) -> str | None:
    """``text`` (one date) shifted by ``days`` in the same format, or None if not understood."""
    t = text.strip()
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()):]
    delta = dt.timedelta(days=days)
    try:
        m = re.fullmatch(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})", t)  # M/D/Y
        if m:
            d = dt.date(_year(m.group(4)), int(m.group(1)), int(m.group(3))) + delta
            pad = _padded(m.group(1), m.group(3))
            out = f"{_num(d.month, pad)}{m.group(2)}{_num(d.day, pad)}{m.group(2)}{_yr(d, m.group(4))}"
        elif m := re.fullmatch(r"(\d{4})([/-])(\d{1,2})\2(\d{1,2})", t):  # Y-M-D
            d = dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4))) + delta
            pad = _padded(m.group(3), m.group(4))
            out = f"{d.year}{m.group(2)}{_num(d.month, pad)}{m.group(2)}{_num(d.day, pad)}"
        elif m := re.fullmatch(r"(\d{1,2})/(\d{4})", t):  # M/YYYY
            d = dt.date(int(m.group(2)), int(m.group(1)), 15) + delta
            out = f"{_num(d.month, _padded(m.group(1)))}/{d.year}"
        elif m := re.fullmatch(r"(\d{1,2})/(\d{1,2})", t):  # M/D
            d = dt.date(2001, int(m.group(1)), int(m.group(2))) + delta  # non-leap reference year
            pad = _padded(m.group(1), m.group(2))
            out = f"{_num(d.month, pad)}/{_num(d.day, pad)}"
        elif (m := re.fullmatch(r"([A-Za-z]+\.?)\s+(\d{1,2})(st|nd|rd|th)?(,?)\s+(\d{4})", t)) and _month_of(m.group(1)):
            d = dt.date(int(m.group(5)), _month_of(m.group(1)), int(m.group(2))) + delta
            suffix = _ordinal(d.day) if m.group(3) else ""
            out = f"{_month_name(d.month, m.group(1))} {d.day}{suffix}{m.group(4)} {d.year}"
        elif (m := re.fullmatch(r"(\d{1,2})\s+([A-Za-z]+\.?),?\s+(\d{4})", t)) and _month_of(m.group(2)):
            d = dt.date(int(m.group(3)), _month_of(m.group(2)), int(m.group(1))) + delta
            out = f"{d.day} {_month_name(d.month, m.group(2))} {d.year}"
        elif (m := re.fullmatch(r"([A-Za-z]+\.?),?\s+(\d{4})", t)) and _month_of(m.group(1)):
            d = dt.date(int(m.group(2)), _month_of(m.group(1)), 15) + delta
            out = f"{_month_name(d.month, m.group(1))} {d.year}"
        elif (m := re.fullmatch(r"([A-Za-z]+\.?)\s+(\d{1,2})(st|nd|rd|th)?", t)) and _month_of(m.group(1)):
            d = dt.date(2001, _month_of(m.group(1)), int(m.group(2))) + delta
            out = f"{_month_name(d.month, m.group(1))} {d.day}{_ordinal(d.day) if m.group(3) else ''}"
        elif re.fullmatch(r"(19|20)\d{2}", t):
            out = str((dt.date(int(t), 7, 1) + delta).year)
        else:
            return None
    except ValueError:  # e.g. 02/30/2019
        return None
    return lead + out + trail


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


# ----------------------------------------------------------------------------- surrogates


@dataclasses.dataclass(frozen=True)
class Replacement:
    """``how``: ``surrogate`` (``text`` is the fake), ``kept`` (allowed by Safe Harbor, e.g. an
    age under 90; ``text`` is None so the original is never copied into a record), or
    ``mask`` (``text`` is None: the caller writes its mask)."""

    how: str
    text: str | None


_GENERIC_WORDS = frozenset("hospital medical center clinic general health regional university county street "
                           "avenue lane road court drive way co group services partners the of and".split())


def _distinctive_words(s: str) -> set[str]:
    """Lower-cased words of ``s`` that could identify (not "Hospital", "Street", ...)."""
    return {w.lower() for w in re.findall(r"[A-Za-z0-9]{2,}", s)} - _GENERIC_WORDS


def _case_like(value: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return value.upper()
    if like.islower():
        return value.lower()
    return value


class SurrogateGenerator:
    """Deterministic surrogates for one patient (or one note when no patient id is known)."""

    def __init__(self, seed: int, patient_id: str, max_shift_days: int = 365):
        self.seed, self.patient_id = int(seed), str(patient_id)
        h = self._hash("date-shift")
        shift = h % (2 * max_shift_days + 1) - max_shift_days
        self.date_shift_days = shift if shift else max_shift_days
        self._note_words: set[str] = set()
        self._first_names: set[str] = set()

    def _hash(self, *key: str) -> int:
        digest = hashlib.sha256("\0".join((str(self.seed), self.patient_id, *key)).encode()).digest()
        return int.from_bytes(digest[:8], "little")

    def _pick(self, options: Sequence[str], *key: str, avoid: str = "") -> str | None:
        """The first option, in a key-dependent order, that does not contain ``avoid`` and shares
        no word with the note's PHI (``self._note_words``, set by :meth:`replace`)."""
        start = self._hash(*key)
        for k in range(len(options)):
            value = options[(start + k) % len(options)]
            if avoid and avoid.lower() in value.lower():  # "OR" must not become "Oregon"
                continue
            if self._note_words & _distinctive_words(value):
                continue  # a fake that is some other PHI of this note would re-expose it
            return value
        return None

    def _scramble(self, original: str, *key: str) -> str | None:
        if not any(ch.isalnum() for ch in original):
            return None
        for attempt in range(5):
            out = []
            for i, ch in enumerate(original):
                r = self._hash(*key, str(attempt), str(i))
                if ch.isdigit():
                    out.append(str(r % 10))
                elif ch.isalpha():
                    c = chr(ord("A") + r % 26)
                    out.append(c if ch.isupper() else c.lower())
                else:
                    out.append(ch)
            value = "".join(out)
            if value != original:
                return value
        return None

    def _name(self, original: str) -> str | None:
        words = list(re.finditer(r"[A-Za-z][A-Za-z'\-]*", original))
        if not words:
            return None
        out, pos = [], 0
        for k, m in enumerate(words):
            out.append(original[pos:m.start()])
            w = m.group()
            if len(w) == 1:  # an initial
                value = chr(ord("A") + self._hash("initial", w.lower()) % 26)
                value = value if value.lower() != w.lower() else chr((ord(value) - ord("A") + 1) % 26 + ord("A"))
            else:
                comma = "," in original  # "Last, First"
                if len(words) == 1:  # "Rafferty" alone: a first name if the note has "Rafferty Oakhurst"
                    role = "first" if w.lower() in self._first_names else "last"
                else:
                    role = "first" if (k > 0 if comma else k == 0) else "last"
                value = self._pick(FIRST if role == "first" else LAST, "name", role, w.lower(), avoid=w)
                if value is None:
                    return None
            out.append(_case_like(value, w))
            pos = m.end()
        out.append(original[pos:])
        return "".join(out)

    def replace(self, phi_type: str, original: str, note_phi: Iterable[str] = ()) -> Replacement:
        """The replacement for ``original``; ``note_phi`` (every PHI string of the note) keeps
        picked fakes from coinciding with another PHI of the same note (a doctor faked as the
        patient's real surname), at the price of a rare per-note difference in the pick."""
        self._note_words = {w for s in note_phi for w in _distinctive_words(s)}
        self._first_names = set()
        for s in note_phi:
            ws = re.findall(r"[A-Za-z][A-Za-z'\-]*", s)
            if len(ws) > 1:
                self._first_names.update(w.lower() for w in (ws[1:] if "," in s else ws[:1]))
        t = phi_type.upper()
        key = " ".join(original.lower().split())
        if t == "DATE":
            value = shift_date(original, self.date_shift_days)
        elif t == "AGE":
            m = re.fullmatch(r"\s*(\d{1,3})\s*", original)
            if m and int(m.group(1)) <= 89:
                return Replacement("kept", None)
            value = "90+" if m else None
        elif t in _NAME_TYPES:
            value = self._name(original)
        elif t == "USERNAME":
            value = f"user{100 + self._hash('user', key) % 900}"
        elif t in _PICK_TYPES:
            value = _case_like(self._pick(_PICK_TYPES[t], t, key, avoid=original.strip()) or "", original.strip())
            value = value or None
        elif t == "STREET":
            street = self._pick(STREETS, "street", key)
            value = f"{10 + self._hash('street-no', key) % 990} {street}" if street else None
        elif t == "EMAIL":
            value = f"user{100 + self._hash('email', key) % 900}@example.com"
        elif t == "URL":
            value = f"https://example.org/{1000 + self._hash('url', key) % 9000}"
        elif t == "IPADDR":
            h = self._hash("ip", key)
            value = "10." + ".".join(str((h >> (8 * i)) % 256) for i in range(3))
        elif t in _SCRAMBLE_TYPES:
            value = self._scramble(original, t, key)
        else:
            value = None
        if value is None or value.strip().lower() == original.strip().lower():
            return Replacement("mask", None)
        return Replacement("surrogate", value)
