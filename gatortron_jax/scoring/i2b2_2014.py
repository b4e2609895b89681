"""i2b2/UTHealth 2014 de-identification: every figure the official ``evaluate.py phi`` prints.

Definitions from the challenge's script (``kotfic/i2b2_evaluation_scripts``, ``classes.py``
``PHITrackEvaluation``; Stubbs, Kotfila & Uzuner 2015), reimplemented here. Why a module of
its own and not :mod:`gatortron_jax.evaluation.deid_metrics`: published 2014 numbers come
from this script, whose definitions differ from ours in ways that move the figures:

* A PHI tag is the key ``(tag, start, end, TYPE)`` (tag = the XML element, e.g. ``NAME``;
  upper-cased). Scores are set operations per note: TP = gold ∩ system, FP = system − gold,
  FN = gold − system, so a duplicated tag counts once.
* **Token**: each tag's text ``[A-Za-z0-9]+`` runs, keyed ``(tag, TYPE, start, end)`` (as
  written); a tag with no such run gives one empty token at its end. **Binary** rows key on
  offsets only. **Relaxed**: same key but ends may differ by up to 2 characters (the
  script's fuzzy set equality, reproduced with the same set semantics).
* **HIPAA** rows keep tags whose (tag, TYPE) pass the script's regex prefix-match list. That
  list spells IDNUM ``"IDNUM "`` with a trailing space, so IDNUM never counts as HIPAA: the
  official figure. ``corrected_hipaa=True`` (``score --corrected_hipaa``) includes IDNUM, as
  the challenge README defines the subset.
* **Per category** ("NAME Strict", ...): filtered on the tag but still keyed on TYPE, so
  PATIENT→DOCTOR is a miss under NAME. "<C> Binary HIPAA Strict" is, despite its name,
  label-aware (the script restores the full key before computing it).
* Only notes present in both folders are scored (micro sums counts over them; macro
  averages per-note precision and recall, F1 from those averages; SD is the population SD).

Row names are the script's labels, typos included ("HIPPA Token"), so a row can be compared
line by line with its output. Known differences: our reader keeps only the seven category
tags (the script also reads ``PHI``/``OTHER`` elements), moves a tag whose ``text=`` is a
few characters off its offsets to that text (the script ignores ``text=``; a warning gives the
count), and pairs notes by file stem
(the script by the ``NNN-NN`` prefix); the Relaxed de-duplication follows file order where the
script follows Python 2 hash order (it differs only for three or more same-start tags whose
ends are more than 2 apart).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable, Iterable, Sequence

from gatortron_jax.annotations.documents import Document
from gatortron_jax.annotations.formats import ReadSummary
from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014, read_i2b2_2014_dir
from gatortron_jax.scoring.common import ScoreReport, missing_warning, pair_documents, prf, with_empty_system

#: (tag, TYPE) regexes of the script's HIPAA list (``re.match``: a prefix match), IDNUM as it spells it.
_HIPAA_PAIRS = [("NAME", "PATIENT"), ("LOCATION", "CITY"), ("LOCATION", "STREET"), ("LOCATION", "ZIP"),
                ("LOCATION", "ORGANIZATION"), ("DATE", ".*"), ("CONTACT", "PHONE"), ("CONTACT", "FAX"),
                ("CONTACT", "EMAIL"), ("ID", "SSN"), ("ID", "MEDICALRECORD"), ("ID", "HEALTHPLAN"), ("ID", "ACCOUNT"),
                ("ID", "LICENSE"), ("ID", "VEHICLE"), ("ID", "DEVICE"), ("ID", "BIOID"), ("ID", "IDNUM "),
                ("AGE", ".*")]
#: The per-category evaluations the script adds (every tag type but ``PHI``).
CATEGORIES = ("NAME", "PROFESSION", "LOCATION", "AGE", "DATE", "CONTACT", "ID", "OTHER")
_TOKEN_RE = re.compile(r"[a-zA-Z0-9]+")

Tag = tuple[str, str, int, int]  # (tag as written, TYPE as written, start, end)


def hipaa_filter(corrected: bool) -> Callable[[Tag], bool]:
    """The script's HIPAA predicate; ``corrected`` spells IDNUM without the trailing space."""
    pairs = [(re.compile(n), re.compile("IDNUM" if corrected and t == "IDNUM " else t)) for n, t in _HIPAA_PAIRS]
    return lambda tag: any(n.match(tag[0]) and t.match(tag[1]) for n, t in pairs)


def tags_of(doc: Document) -> list[Tag]:
    """The PHI tags of a note read with ``label="tag/type"``."""
    out = []
    for e in doc.entities:
        name, _, phi_type = e.type.partition("/")
        out.append((name, phi_type, e.spans[0][0], e.spans[0][1]))
    return out


def _tokens(text: str, tag: Tag, binary: bool) -> list[tuple]:
    name, phi_type, start, end = tag
    piece = text[start:end]
    spans = [(start + m.start(), start + m.end()) for m in _TOKEN_RE.finditer(piece)]
    if not spans:  # the script's tokenizer yields one empty token after the text
        spans = [(start + len(piece), start + len(piece))]
    return [s if binary else (name, phi_type, *s) for s in spans]


def _strict_key(tag: Tag, binary: bool) -> tuple:
    name, phi_type, start, end = tag
    return (start, end) if binary else (name.upper(), start, end, phi_type.upper())


def _fuzzy_counts(gold: Iterable[Tag], system: Iterable[Tag]) -> tuple[int, int, int]:
    """TP/FP/FN under the script's Relaxed equality: same (tag, start, TYPE), ends within 2.

    The script builds Python sets under that (non-transitive) equality: an element joins a set
    unless an equal one is already in it; TP counts the smaller set's elements with an equal
    in the larger (the intersection iterates the smaller one), FP/FN the elements with none.
    """
    def as_set(tags: Iterable[Tag]) -> list[tuple]:
        kept: list[tuple] = []
        for t in tags:
            k = (t[0].upper(), t[2], t[1].upper(), t[3])
            if not any(eq(k, o) for o in kept):
                kept.append(k)
        return kept

    def eq(a: tuple, b: tuple) -> bool:
        return a[:3] == b[:3] and abs(a[3] - b[3]) <= 2

    g, s = as_set(gold), as_set(system)
    small, large = (g, s) if len(s) > len(g) else (s, g)
    tp = sum(1 for x in small if any(eq(x, y) for y in large))
    fp = sum(1 for x in s if not any(eq(x, y) for y in g))
    fn = sum(1 for x in g if not any(eq(x, y) for y in s))
    return tp, fp, fn


def _counts(text: str, gold: list[Tag], system: list[Tag], kind: str, binary: bool) -> tuple[int, int, int]:
    if kind == "relaxed":
        return _fuzzy_counts(gold, system)
    if kind == "token":
        gs = {k for t in gold for k in _tokens(text, t, binary)}
        ss = {k for t in system for k in _tokens(text, t, binary)}
    else:
        gs = {_strict_key(t, binary) for t in gold}
        ss = {_strict_key(t, binary) for t in system}
    return len(gs & ss), len(ss - gs), len(gs - ss)


def _evaluate(pairs: Sequence[tuple[Document, Document]], kind: str, binary: bool,
              keep: Callable[[Tag], bool]) -> dict[str, Any]:
    per_doc = []
    for g, s in pairs:
        gt = [t for t in tags_of(g) if keep(t)]
        st = [t for t in tags_of(s) if keep(t)]
        per_doc.append(_counts(g.text, gt, st, kind, binary))
    row = prf(*(sum(c[k] for c in per_doc) for k in range(3)))
    docs = [prf(*c) for c in per_doc]
    n = len(docs)
    for m in ("precision", "recall"):
        vals = [d[m] for d in docs]
        mean = sum(vals) / n if n else float("nan")  # numpy's mean of an empty array
        row[f"macro_{m}"] = mean
        row[f"macro_{m}_sd"] = math.sqrt(sum((v - mean) ** 2 for v in vals) / n) if n else float("nan")
    mp, mr = row["macro_precision"], row["macro_recall"]
    # numpy floats: 0/0 is NaN (the script's ZeroDivisionError guard never fires), as it prints
    row["macro_f1"] = 2 * mp * mr / (mp + mr) if mp + mr else float("nan")
    return row


def score_pairs(pairs: Sequence[tuple[Document, Document]], *, corrected_hipaa: bool = False) -> dict[str, dict]:
    """Every row of the script's report for paired notes (read with ``label="tag/type"``)."""
    hipaa = hipaa_filter(corrected_hipaa)
    every: Callable[[Tag], bool] = lambda t: True  # noqa: E731
    rows = {
        "Token": _evaluate(pairs, "token", False, every),
        "Strict": _evaluate(pairs, "strict", False, every),
        "Relaxed": _evaluate(pairs, "relaxed", False, every),
        "HIPPA Token": _evaluate(pairs, "token", False, hipaa),
        "HIPAA Strict": _evaluate(pairs, "strict", False, hipaa),
        "HIPAA Relaxed": _evaluate(pairs, "relaxed", False, hipaa),
        "Binary Token": _evaluate(pairs, "token", True, every),
        "Binary Strict": _evaluate(pairs, "strict", True, every),
        "Binary HIPPA Token": _evaluate(pairs, "token", True, hipaa),
        "Binary HIPAA Strict": _evaluate(pairs, "strict", True, hipaa),
    }
    for c in CATEGORIES:
        in_c: Callable[[Tag], bool] = lambda t, c=c: t[0] == c  # noqa: E731
        in_c_hipaa: Callable[[Tag], bool] = lambda t, c=c: t[0] == c and hipaa(t)  # noqa: E731
        rows[f"{c} Token"] = _evaluate(pairs, "token", False, in_c)
        rows[f"{c} Strict"] = _evaluate(pairs, "strict", False, in_c)
        rows[f"{c} HIPPA Token"] = _evaluate(pairs, "token", False, in_c_hipaa)
        rows[f"{c} Binary HIPAA Strict"] = _evaluate(pairs, "strict", False, in_c_hipaa)
    return rows


def score_i2b2_2014(gold: Sequence[Document], system: Sequence[Document], *,
                    corrected_hipaa: bool = False) -> ScoreReport:
    """The official figures over the notes in both sets, with the missing-note warning."""
    pairing = pair_documents(gold, system)
    report = ScoreReport(
        format="i2b2_2014", official="i2b2 2014 de-id evaluate.py phi (kotfic/i2b2_evaluation_scripts)",
        documents=len(pairing.pairs), rows=score_pairs(pairing.pairs, corrected_hipaa=corrected_hipaa),
        headline="Strict")
    report.notes.append("HIPAA rows include IDNUM (--corrected_hipaa; not comparable with published figures)"
                        if corrected_hipaa else
                        "HIPAA rows as the official script computes them: IDNUM never matches its 'IDNUM ' "
                        "pattern (--corrected_hipaa includes it)")
    every = None
    if pairing.missing:
        every = _evaluate(with_empty_system(pairing), "strict", False, lambda t: True)
    missing_warning(report, pairing, every)
    return report


def read_and_score(gold_dir: str, system_dir: str, *, corrected_hipaa: bool = False) -> ScoreReport:
    """Read both directories of 2014 XML (recursively; ids = relative paths), or two files, and
    score them."""
    summaries = {"gold": ReadSummary(), "system": ReadSummary()}
    if os.path.isfile(gold_dir) and os.path.isfile(system_dir):  # one note each, as the script allows
        gold = [read_i2b2_2014(gold_dir, label="tag/type", summary=summaries["gold"], doc_id="note")]
        system = [read_i2b2_2014(system_dir, label="tag/type", summary=summaries["system"], doc_id="note")]
    else:
        gold = read_i2b2_2014_dir(gold_dir, label="tag/type", summary=summaries["gold"])
        system = read_i2b2_2014_dir(system_dir, label="tag/type", summary=summaries["system"])
    report = score_i2b2_2014(gold, system, corrected_hipaa=corrected_hipaa)
    for side, summary in summaries.items():
        moved = sum(n for reason, n in summary.problems.items() if reason.startswith("offsets shifted"))
        if moved:  # the script uses start/end as written and ignores text=
            report.warnings.append(f"{moved} {side} tag(s) had offsets that did not match their text= attribute and "
                                   f"were moved to it (the official script would use the offsets as written)")
    return report
