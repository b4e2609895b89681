"""Extractive QA: SQuAD v1.1/v2.0 exact match and token F1, and n-best span decoding.

Normalisation is the official SQuAD script's: lower-case, drop punctuation
(``string.punctuation``), drop the articles ``a an the`` as words, collapse whitespace.
EM and F1 of one prediction are the max over its gold answers. Unanswerable questions (v2)
have no gold answers and are scored as the official v2 script does: 1 if the prediction is
empty, else 0 (for EM and F1 alike); an answerable question with an empty prediction scores 0.

:func:`n_best_spans` decodes spans from start/end logits of one or several document-stride
windows of the same question: ``offsets[w, t] = (char start, char end)`` of token ``t`` in the
context, and ``(-1, -1)`` (any negative start) for tokens that are not context (``[CLS]``, the
question, ``[SEP]``, padding). Spans are ranked by ``start_logit + end_logit``; the same
character span reached from several windows is kept once, with its best score.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import string
from typing import Any, Mapping, Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:  # v2 semantics: both empty is a match
        return float(p == g)
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def score_question(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of one prediction, max over gold answers; no golds = unanswerable."""
    golds = [g for g in golds if normalize_answer(g)]
    if not golds:
        golds = [""]
    return max(exact_match(prediction, g) for g in golds), max(token_f1(prediction, g) for g in golds)


def squad_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, Any]:
    """Scores in percent over every gold question: ``exact``, ``f1``, ``total``, and
    ``has_ans_*`` / ``no_ans_*`` splits when both kinds exist. A question without a prediction
    counts as an empty prediction and is reported in ``missing``."""
    em, f1, has_ans = {}, {}, {}
    missing = []
    for qid, golds in gold.items():
        if qid not in predictions:
            missing.append(qid)
        em[qid], f1[qid] = score_question(predictions.get(qid, ""), golds)
        has_ans[qid] = any(normalize_answer(g) for g in golds)
    n = len(gold)
    out: dict[str, Any] = {"exact": 100.0 * sum(em.values()) / n if n else 0.0,
                           "f1": 100.0 * sum(f1.values()) / n if n else 0.0, "total": n,
                           "missing": missing}
    for name, flag in (("has_ans", True), ("no_ans", False)):
        ids = [q for q in gold if has_ans[q] == flag]
        if ids:
            out[f"{name}_exact"] = 100.0 * sum(em[q] for q in ids) / len(ids)
            out[f"{name}_f1"] = 100.0 * sum(f1[q] for q in ids) / len(ids)
            out[f"{name}_total"] = len(ids)
    return out


@dataclasses.dataclass(frozen=True)
class SpanCandidate:
    start: int  # character offsets in the context, end exclusive
    end: int
    score: float
    window: int
    start_token: int
    end_token: int


def n_best_spans(start_logits, end_logits, offsets, n_best: int = 20, max_answer_len: int = 30,
                 start_mask=None) -> list[SpanCandidate]:
    """The ``n_best`` highest-scoring valid spans over all windows of one question.

    Shapes: ``start_logits``/``end_logits`` ``[W, L]`` (or ``[L]`` for one window), ``offsets``
    ``[W, L, 2]``. A span ``(i, j)`` is valid when both tokens are context tokens, ``i <= j``,
    ``j - i + 1 <= max_answer_len`` and (if given) ``start_mask[w, i]`` — e.g. the "token has
    its maximal context in this window" mask of overlapping strides."""
    s = np.asarray(start_logits, np.float64)
    e = np.asarray(end_logits, np.float64)
    off = np.asarray(offsets, np.int64)
    if s.ndim == 1:
        s, e, off = s[None], e[None], off[None]
        start_mask = None if start_mask is None else np.asarray(start_mask)[None]
    if s.shape != e.shape or off.shape != s.shape + (2,):
        raise ValueError(f"shape mismatch: start {s.shape}, end {e.shape}, offsets {off.shape}")
    best: dict[tuple[int, int], SpanCandidate] = {}
    n_win, length = s.shape
    for w in range(n_win):
        ctx = off[w, :, 0] >= 0
        ok_start = ctx if start_mask is None else ctx & np.asarray(start_mask[w], bool)
        for k in range(min(max_answer_len, length)):
            i = np.arange(length - k)
            j = i + k
            valid = ok_start[i] & ctx[j]
            if not valid.any():
                continue
            sc = s[w, i] + e[w, j]
            for ii in i[valid]:
                c0, c1 = int(off[w, ii, 0]), int(off[w, ii + k, 1])
                if c1 <= c0:
                    continue
                score = float(sc[ii])
                prev = best.get((c0, c1))
                if prev is None or score > prev.score:
                    best[(c0, c1)] = SpanCandidate(c0, c1, score, w, int(ii), int(ii + k))
    return sorted(best.values(), key=lambda c: (-c.score, c.start, c.end))[:n_best]


def null_score(start_logits, end_logits) -> float:
    """Score of "no answer": ``start[0] + end[0]`` (the [CLS] position), minimum over windows."""
    s = np.atleast_2d(np.asarray(start_logits, np.float64))
    e = np.atleast_2d(np.asarray(end_logits, np.float64))
    return float(np.min(s[:, 0] + e[:, 0]))


def select_answer(context: str, candidates: Sequence[SpanCandidate], null: float | None = None,
                  null_threshold: float = 0.0) -> str:
    """Text of the best span, or ``""`` (no answer) when there is none or, for v2 data, when
    ``null - best.score > null_threshold``."""
    if not candidates:
        return ""
    top = candidates[0]
    if null is not None and null - top.score > null_threshold:
        return ""
    return context[top.start:top.end]
