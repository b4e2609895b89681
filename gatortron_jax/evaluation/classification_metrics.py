"""Metrics for the sentence/pair-level benchmarks: relation extraction, NLI and STS.

* :func:`relation_prf` — micro precision/recall/F1 over the *positive* relation classes (every
  label except ``negative_labels``, e.g. ChemProt's ``false`` or our ``none``), plus per type.
  A positive gold predicted as another positive type counts as one false negative (for the
  gold type) and one false positive (for the predicted type); this equals
  ``sklearn.metrics.precision_recall_fscore_support(average="micro", labels=positive_labels)``.
* :func:`document_relation_prf` — the same over brat documents: a predicted relation is
  correct when its type and both argument spans match a gold relation (n2c2 2018 style).
* :func:`accuracy` (MedNLI), :func:`pearson` (STS; float64, checked against scipy).
"""

from __future__ import annotations

import collections
import math
from typing import Any, Iterable, Sequence

import numpy as np

from gatortron_jax.annotations.documents import Document


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn, "support": tp + fn}


def relation_prf(gold: Sequence[str], pred: Sequence[str], *, negative_labels: Iterable[str] = ("false", "none"),
                 labels: Iterable[str] | None = None) -> dict[str, Any]:
    """``{"micro": {...}, "per_type": {type: {...}}, "positive_labels": [...]}``.

    ``labels`` fixes the positive classes (default: every label seen in gold or predictions
    that is not negative)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    neg = set(negative_labels)
    positives = sorted(set(labels) if labels is not None else {x for x in (*gold, *pred) if x not in neg})
    pos = set(positives)
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    for g, p in zip(gold, pred):
        if g == p:
            if g in pos:
                tp[g] += 1
            continue
        if p in pos:
            fp[p] += 1
        if g in pos:
            fn[g] += 1
    per_type = {t: _prf(tp[t], fp[t], fn[t]) for t in positives}
    micro = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {"micro": micro, "per_type": per_type, "positive_labels": positives}


def _rel_key(doc: Document, rel) -> tuple | None:
    ents = {e.id: e for e in doc.entities}
    if rel.arg1 not in ents or rel.arg2 not in ents:
        return None
    return (doc.id, rel.type, ents[rel.arg1].spans, ents[rel.arg2].spans)


def document_relation_prf(gold_docs: Sequence[Document], pred_docs: Sequence[Document]) -> dict[str, Any]:
    """Micro and per-type P/R/F1 of predicted brat relations against gold, matching relations
    by document, type and the character spans of both arguments (so entity ids may differ)."""
    gold = {k for d in gold_docs for r in d.relations if (k := _rel_key(d, r)) is not None}
    pred = {k for d in pred_docs for r in d.relations if (k := _rel_key(d, r)) is not None}
    types = sorted({k[1] for k in gold | pred})
    per_type = {t: _prf(len({k for k in gold & pred if k[1] == t}), len({k for k in pred - gold if k[1] == t}),
                        len({k for k in gold - pred if k[1] == t})) for t in types}
    return {"micro": _prf(len(gold & pred), len(pred - gold), len(gold - pred)), "per_type": per_type}


def accuracy(gold: Sequence, pred: Sequence) -> float:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        return 0.0
    return sum(g == p for g, p in zip(gold, pred)) / len(gold)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r in float64 (centred sums, two-pass); NaN when either side is constant."""
    a = np.asarray(x, np.float64)
    b = np.asarray(y, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"pearson needs two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError("pearson needs at least 2 points")
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.dot(da, da))) * math.sqrt(float(np.dot(db, db)))
    if denom == 0.0:
        return float("nan")
    return float(max(-1.0, min(1.0, float(np.dot(da, db)) / denom)))
