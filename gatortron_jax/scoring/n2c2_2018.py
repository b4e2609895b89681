"""n2c2 2018 track 2 (medications and ADEs): every figure ``track2-evaluate`` prints.

Definitions from the organisers' script (``Track2-evaluate-ver4.py``, e.g. in
``kaivamannam/clinicalnlp-ade`` ``misc/``), reimplemented here. Where it differs from our
:func:`~gatortron_jax.evaluation.ner_metrics.entity_scores` (and so from a number computed
with it):

* A concept is ``(type, start, end)`` where a discontinuous mention keeps its first start and
  its last end (an envelope). **strict**: same type and offsets; **lenient**: same type and
  at least one overlapping character.
* A relation counts only when its type matches and *both* arguments match in type and span
  (strict or lenient as above) — at document level, over every gold relation.
* "Pare down": system items are visited in file order against gold in file order; a system
  item that equals a gold item another system item already matched is dropped (neither TP nor
  FP). TP = system items left that equal some gold item, FP = the other system items left,
  FN = gold items − TP.
* Only notes in both folders are scored. Micro sums TP/FP/FN over notes; macro averages the
  per-note precision, recall *and F1* (each 0.0 when undefined).
* Per type: each of the nine concept types and eight relation types on its own (micro).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from gatortron_jax.annotations.documents import Document
from gatortron_jax.annotations.formats.brat import read_brat_dir
from gatortron_jax.scoring.common import ScoreReport, missing_warning, pair_documents, prf, with_empty_system

CONCEPT_TYPES = ("Drug", "Strength", "Duration", "Route", "Form", "ADE", "Dosage", "Reason", "Frequency")
RELATION_TYPES = ("Strength-Drug", "Dosage-Drug", "Duration-Drug", "Frequency-Drug", "Form-Drug", "Route-Drug",
                  "Reason-Drug", "ADE-Drug")
MODES = ("strict", "lenient")

Concept = tuple[str, int, int]  # (type, envelope start, envelope end)


def _concepts(doc: Document) -> dict[str, Concept]:
    return {e.id: (e.type, e.spans[0][0], e.spans[-1][1]) for e in doc.entities}


def _concept_eq(a: Concept, b: Concept, mode: str) -> bool:
    if a[0] != b[0]:
        return False
    if mode == "strict":
        return a[1] == b[1] and a[2] == b[2]
    return a[2] > b[1] and a[1] < b[2]


def _items(doc: Document, target: str, key: str | None) -> list[tuple]:
    concepts = _concepts(doc)
    if target == "tags":
        return [c for c in concepts.values() if key is None or c[0] == key]
    return [(r.type, concepts[r.arg1], concepts[r.arg2]) for r in doc.relations if key is None or r.type == key]


def _equal(target: str, mode: str) -> Callable[[tuple, tuple], bool]:
    if target == "tags":
        return lambda g, s: _concept_eq(g, s, mode)
    return lambda g, s: g[0] == s[0] and _concept_eq(g[1], s[1], mode) and _concept_eq(g[2], s[2], mode)


def pare_down_counts(gold: list[tuple], system: list[tuple],
                     eq: Callable[[tuple, tuple], bool]) -> tuple[int, int, int]:
    """TP/FP/FN of one note under the script's pare-down matching (see the module docstring)."""
    matched: set[int] = set()
    dropped: set[int] = set()
    for si, s in enumerate(system):
        for gi, g in enumerate(gold):
            if eq(g, s):
                if gi not in matched:
                    matched.add(gi)
                else:
                    dropped.add(si)
    kept = [s for si, s in enumerate(system) if si not in dropped]
    tp = sum(1 for s in kept if any(eq(g, s) for g in gold))
    return tp, len(kept) - tp, len(gold) - tp


def _evaluate(pairs: Sequence[tuple[Document, Document]], target: str, mode: str, key: str | None) -> dict[str, Any]:
    """Micro over notes; macro too for the overall rows (``key`` None), as the script prints."""
    eq = _equal(target, mode)
    per_doc = [pare_down_counts(_items(g, target, key), _items(s, target, key), eq) for g, s in pairs]
    row = prf(*(sum(c[k] for c in per_doc) for k in range(3)))
    if key is None:
        docs = [prf(*c) for c in per_doc]
        for m in ("precision", "recall", "f1"):
            row[f"macro_{m}"] = sum(d[m] for d in docs) / len(docs) if docs else 0.0
    return row


def score_pairs(pairs: Sequence[tuple[Document, Document]]) -> dict[str, dict]:
    """Every row of the script's report: per concept type, overall concepts (micro + macro),
    per relation type, overall relations; each strict and lenient."""
    rows = {}
    for t in CONCEPT_TYPES:
        for mode in MODES:
            rows[f"{t} ({mode})"] = _evaluate(pairs, "tags", mode, t)
    for mode in MODES:
        rows[f"Concepts overall ({mode})"] = _evaluate(pairs, "tags", mode, None)
    for t in RELATION_TYPES:
        for mode in MODES:
            rows[f"{t} ({mode})"] = _evaluate(pairs, "relations", mode, t)
    for mode in MODES:
        rows[f"Relations overall ({mode})"] = _evaluate(pairs, "relations", mode, None)
    return rows


def score_n2c2_2018(gold: Sequence[Document], system: Sequence[Document]) -> ScoreReport:
    """The official figures over the notes in both sets, with the missing-note warning."""
    pairing = pair_documents(gold, system)
    report = ScoreReport(format="n2c2_2018", official="n2c2 2018 track 2 track2-evaluate (ver4)",
                         documents=len(pairing.pairs), rows=score_pairs(pairing.pairs),
                         headline="Concepts overall (strict)")
    report.notes.append("relations scored at document level over every gold relation; an argument must match "
                        "in type and span")
    every = _evaluate(with_empty_system(pairing), "tags", "strict", None) if pairing.missing else None
    missing_warning(report, pairing, every)
    return report


def read_and_score(gold_dir: str, system_dir: str) -> ScoreReport:
    """Read both brat directories (``.ann`` + ``.txt``, recursively) and score them."""
    return score_n2c2_2018(read_brat_dir(gold_dir), read_brat_dir(system_dir))
