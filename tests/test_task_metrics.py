"""Task metrics against independent references (scipy, sklearn, a SQuAD case table)."""

import math

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from gatortron_jax.annotations.documents import Document, Entity, Relation
from gatortron_jax.evaluation.classification_metrics import accuracy, document_relation_prf, pearson, relation_prf
from gatortron_jax.evaluation.qa_metrics import (n_best_spans, normalize_answer, null_score, score_question,
                                                 select_answer, squad_scores)

LABELS = ["CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9", "false"]
POS = LABELS[:-1]


@pytest.mark.parametrize("seed", range(5))
def test_relation_prf_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    p = np.array([0.1, 0.15, 0.05, 0.05, 0.1, 0.55])
    gold = list(rng.choice(LABELS, 300, p=p))
    pred = [g if rng.random() < 0.6 else str(rng.choice(LABELS, p=p)) for g in gold]
    ours = relation_prf(gold, pred, negative_labels=("false",))
    P, R, F, _ = precision_recall_fscore_support(gold, pred, average="micro", labels=POS, zero_division=0)
    assert ours["micro"]["precision"] == pytest.approx(P, abs=1e-12)
    assert ours["micro"]["recall"] == pytest.approx(R, abs=1e-12)
    assert ours["micro"]["f1"] == pytest.approx(F, abs=1e-12)
    Ps, Rs, Fs, Ss = precision_recall_fscore_support(gold, pred, average=None, labels=POS, zero_division=0)
    for i, t in enumerate(POS):
        assert ours["per_type"][t]["precision"] == pytest.approx(Ps[i])
        assert ours["per_type"][t]["recall"] == pytest.approx(Rs[i])
        assert ours["per_type"][t]["f1"] == pytest.approx(Fs[i])
        assert ours["per_type"][t]["support"] == Ss[i]
    assert accuracy(gold, pred) == pytest.approx(accuracy_score(gold, pred))


def test_relation_prf_hand_case():
    gold = ["A", "A", "none", "B", "none"]
    pred = ["A", "B", "A", "none", "none"]
    m = relation_prf(gold, pred)["micro"]
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 2)  # A->B is both a FN (A) and a FP (B)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(1 / 3)
    assert relation_prf(["none"], ["none"])["micro"]["f1"] == 0.0


def test_document_relation_prf_matches_by_spans():
    e = [Entity("T1", "Drug", ((0, 3),)), Entity("T2", "Reason", ((5, 9),)), Entity("T3", "ADE", ((11, 14),))]
    gold = Document("d", "x" * 20, e, [Relation("R1", "Reason-Drug", "T2", "T1"), Relation("R2", "ADE-Drug", "T3", "T1")])
    e2 = [Entity("X1", "Drug", ((0, 3),)), Entity("X2", "Reason", ((5, 9),)), Entity("X3", "ADE", ((11, 14),))]
    pred = Document("d", "x" * 20, e2, [Relation("R1", "Reason-Drug", "X2", "X1"), Relation("R2", "Reason-Drug", "X3", "X1")])
    s = document_relation_prf([gold], [pred])
    assert (s["micro"]["tp"], s["micro"]["fp"], s["micro"]["fn"]) == (1, 1, 1)
    assert s["per_type"]["ADE-Drug"]["recall"] == 0.0 and s["per_type"]["Reason-Drug"]["precision"] == 0.5


@pytest.mark.parametrize("seed", range(4))
def test_pearson_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 5, 50)
    y = 0.7 * x + rng.normal(0, 1 + seed, 50)
    assert pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y)[0], abs=1e-12)
    big = x + 1e8  # centred computation stays accurate far from zero
    assert pearson(big, y) == pytest.approx(scipy.stats.pearsonr(big, y)[0], abs=1e-7)
    assert pearson(x, -2 * x + 1) == pytest.approx(-1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


# prediction, golds, EM, F1  (golds [] = unanswerable)
SQUAD_CASES = [
    ("the aspirin", ["Aspirin"], 1.0, 1.0),  # article + case
    ("aspirin.", ["aspirin"], 1.0, 1.0),  # punctuation
    ("  aspirin   81 mg ", ["aspirin 81 mg"], 1.0, 1.0),  # whitespace
    ("aspirin", ["aspirin 81 mg"], 0.0, 0.5),  # p=1 r=1/3
    ("81 mg daily", ["aspirin 81 mg"], 0.0, 2 * (2 / 3) * (2 / 3) / (4 / 3)),
    ("warfarin", ["aspirin", "warfarin"], 1.0, 1.0),  # max over golds
    ("aspirin 81", ["aspirin", "aspirin 81 mg"], 0.0, 0.8),  # best F1 from a different gold
    ("", ["aspirin"], 0.0, 0.0),  # empty prediction
    ("", [], 1.0, 1.0),  # no-answer predicted correctly
    ("aspirin", [], 0.0, 0.0),  # answered an unanswerable question
    ("a", ["the"], 1.0, 1.0),  # both normalise to empty
    ("an apple", ["apple an"], 1.0, 1.0),
    ("lisinopril-hctz", ["lisinopril hctz"], 0.0, 0.0),  # punctuation removed, not replaced by space
    ("theophylline", ["the phylline"], 0.0, 0.0),  # "the" only as a word
]


@pytest.mark.parametrize("pred,golds,em,f1", SQUAD_CASES)
def test_squad_case_table(pred, golds, em, f1):
    got_em, got_f1 = score_question(pred, golds)
    assert got_em == em and got_f1 == pytest.approx(f1)


def test_normalize_answer():
    assert normalize_answer("The  Patient's BP, (high)!") == "patients bp high"


def test_squad_scores_aggregate():
    gold = {"q1": ["aspirin"], "q2": ["81 mg"], "q3": [], "q4": ["daily"]}
    pred = {"q1": "the aspirin", "q2": "mg", "q3": ""}
    s = squad_scores(gold, pred)
    assert s["total"] == 4 and s["missing"] == ["q4"]
    assert s["exact"] == pytest.approx(50.0)
    assert s["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert s["has_ans_total"] == 3 and s["no_ans_total"] == 1 and s["no_ans_exact"] == 100.0


def test_n_best_spans_across_windows():
    context = "take aspirin 81 mg daily for pain"
    words = [(0, 4), (5, 12), (13, 15), (16, 18), (19, 24), (25, 28), (29, 33)]
    none = (-1, -1)
    # window 0: [CLS] q [SEP] w0 w1 w2 w3 [SEP]; window 1: [CLS] q [SEP] w3 w4 w5 w6 [SEP]
    off = np.array([[none, none, none, *words[0:4], none], [none, none, none, *words[3:7], none]])
    s = np.full((2, 8), -5.0)
    e = np.full((2, 8), -5.0)
    s[0, 4], e[0, 6] = 3.0, 2.0  # "aspirin 81 mg" = 5.0
    s[1, 3], e[1, 3] = 1.0, 1.0  # "mg" in window 1 = 2.0
    s[0, 6], e[0, 6] = 0.5, 2.0  # "mg" in window 0 = 2.5 -> kept once, best score
    s[1, 4], e[1, 6] = 4.0, 2.5  # "daily for pain" = 6.5 but 3 tokens
    s[0, 0], e[0, 0] = 1.0, 1.0  # [CLS]: never a span; null score
    s[1, 0], e[1, 0] = 0.0, 1.0
    c = n_best_spans(s, e, off, n_best=3, max_answer_len=3)
    assert [context[x.start:x.end] for x in c] == ["daily for pain", "aspirin 81 mg", "mg"]
    assert c[0].window == 1 and c[0].score == pytest.approx(6.5)
    short = n_best_spans(s, e, off, n_best=20, max_answer_len=2)
    texts = [context[x.start:x.end] for x in short]
    assert "daily for pain" not in texts and "aspirin 81 mg" not in texts
    assert texts.count("mg") == 1 and next(x for x in short if context[x.start:x.end] == "mg").score == pytest.approx(2.5)
    for x in n_best_spans(s, e, off, n_best=100, max_answer_len=30):
        assert x.start_token <= x.end_token and off[x.window, x.start_token, 0] >= 0
    assert null_score(s, e) == pytest.approx(1.0)
    assert select_answer(context, c) == "daily for pain"
    assert select_answer(context, c, null=10.0) == ""
    assert select_answer(context, c, null=7.0, null_threshold=1.0) == "daily for pain"
    one = n_best_spans(s[0], e[0], off[0], n_best=1, max_answer_len=30)
    assert context[one[0].start:one[0].end] == "aspirin 81 mg"
