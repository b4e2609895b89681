"""Entity-level metrics: strict agrees with seqeval; lenient semantics on hand-made overlaps."""

import random

import pytest

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.core.errors import InputError
from gatortron_jax.evaluation import bio_to_spans, entity_scores, format_table

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.scheme import IOB2, Entities  # noqa: E402

TAGS = ["O", "O", "B-A", "I-A", "B-B", "I-B", "B-C", "I-C"]


def _docs(seqs):
    out = []
    for k, tags in enumerate(seqs):
        starts = [2 * i for i in range(len(tags))]  # tokens "x" joined by spaces
        ents = [Entity(f"T{i}", t, ((starts[s], starts[e - 1] + 1),)) for i, (t, s, e) in enumerate(bio_to_spans(tags))]
        out.append(Document(f"s{k}", " ".join("x" * len(tags)), ents))
    return out


def _random_corpus(rng, n_sent=30):
    gold = [[rng.choice(TAGS) for _ in range(rng.randint(0, 15))] for _ in range(n_sent)]
    pred = [[t if rng.random() < 0.7 else rng.choice(TAGS) for t in s] for s in gold]
    return gold, pred


def test_bio_to_spans_matches_seqeval_entities():
    rng = random.Random(1)
    for _ in range(300):
        tags = [rng.choice(TAGS + ["I-A", "I-B"]) for _ in range(rng.randint(0, 12))]
        ref = [(e.tag, e.start, e.end) for e in Entities([tags], IOB2).entities[0]]
        assert bio_to_spans(tags) == ref, tags
    assert bio_to_spans(["I-A", "I-A", "B-A", "I-B", "B-B", "I-B", "O"]) == [("A", 2, 3), ("B", 4, 6)]


def test_strict_f1_agrees_with_seqeval_on_random_sequences():
    rng = random.Random(0)
    for trial in range(150):
        gold, pred = _random_corpus(rng, rng.randint(1, 20))
        s = entity_scores(_docs(gold), _docs(pred))["strict"]["micro"]
        kw = dict(mode="strict", scheme=IOB2, zero_division=0)
        assert abs(s["f1"] - seqeval_metrics.f1_score(gold, pred, **kw)) < 1e-9
        assert abs(s["precision"] - seqeval_metrics.precision_score(gold, pred, **kw)) < 1e-9
        assert abs(s["recall"] - seqeval_metrics.recall_score(gold, pred, **kw)) < 1e-9


def test_per_type_agrees_with_seqeval_report():
    gold, pred = _random_corpus(random.Random(3), 60)
    rep = seqeval_metrics.classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True,
                                                 zero_division=0)
    per = entity_scores(_docs(gold), _docs(pred))["strict"]["per_type"]
    for t in ("A", "B", "C"):
        assert abs(per[t]["f1"] - rep[t]["f1-score"]) < 1e-9
        assert per[t]["tp"] + per[t]["fn"] == rep[t]["support"]


def test_strict_f1_agrees_with_seqeval_on_ncbi_devel(shared_data):
    path = shared_data / "NCBI-disease-IOB" / "devel.tsv"
    if not path.is_file():
        pytest.skip("NCBI-disease-IOB not present")
    gold, sent = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            sent.append(line.split("\t")[-1])
        elif sent:
            gold.append(sent)
            sent = []
    rng = random.Random(0)
    swap = {"O": ["B-Disease", "I-Disease"], "B-Disease": ["O", "I-Disease"], "I-Disease": ["O", "B-Disease"]}
    pred = [[rng.choice(swap[t]) if rng.random() < 0.05 else t for t in s] for s in gold]
    ours = entity_scores(_docs(gold), _docs(pred))["strict"]["micro"]["f1"]
    ref = seqeval_metrics.f1_score(gold, pred, mode="strict", scheme=IOB2)
    assert 0.3 < ref < 1.0 and abs(ours - ref) < 1e-9


def _doc(ents, doc_id="d"):
    return Document(doc_id, "x" * 100, [Entity(f"T{i}", t, tuple(sp)) for i, (t, sp) in enumerate(ents)])


def test_strict_and_lenient_on_hand_made_overlaps():
    gold = _doc([("prob", [(0, 10)]), ("prob", [(20, 30)]), ("test", [(40, 50)]), ("prob", [(70, 75), (80, 85)])])
    pred = _doc([("prob", [(0, 10)]),           # exact: strict + lenient TP
                 ("prob", [(22, 35)]),          # overlap only: lenient TP, strict FP + FN
                 ("prob", [(40, 50)]),          # right span, wrong type: FP, and gold test is FN
                 ("prob", [(60, 65)]),          # spurious
                 ("prob", [(70, 75)])])         # one fragment of a discontinuous gold: lenient only
    s = entity_scores([gold], [pred])
    assert {k: s["strict"]["micro"][k] for k in ("tp", "fp", "fn")} == {"tp": 1, "fp": 4, "fn": 3}
    assert {k: s["lenient"]["micro"][k] for k in ("tp", "fp", "fn")} == {"tp": 3, "fp": 2, "fn": 1}
    assert s["strict"]["per_type"]["test"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 1}
    assert s["lenient"]["per_type"]["prob"]["tp"] == 3
    assert s["lenient"]["micro"]["precision"] == pytest.approx(3 / 5)
    assert s["lenient"]["micro"]["recall"] == pytest.approx(3 / 4)


def test_lenient_is_one_to_one_and_greedy_by_overlap():
    # two predictions overlap one gold: the bigger overlap is credited, the other is an FP
    s = entity_scores([_doc([("p", [(0, 10)])])], [_doc([("p", [(0, 4)]), ("p", [(3, 10)])])])["lenient"]["micro"]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 0)
    # one prediction overlaps two golds: matched to the larger overlap, the other gold is an FN
    s = entity_scores([_doc([("p", [(0, 10)]), ("p", [(12, 20)])])], [_doc([("p", [(5, 14)])])])["lenient"]["micro"]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 1)
    # greedy by overlap: P1 overlaps G1 by 6 and G2 by 1; P2 overlaps G2 only
    gold = _doc([("p", [(0, 10)]), ("p", [(10, 20)])])
    pred = _doc([("p", [(4, 11)]), ("p", [(12, 14)])])
    s = entity_scores([gold], [pred])["lenient"]["micro"]
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 0)
    # overlapping gold entities of different types (Reason over ADE) are scored independently
    gold = _doc([("ADE", [(0, 10)]), ("Reason", [(0, 10)])])
    s = entity_scores([gold], [_doc([("ADE", [(0, 10)])])])
    assert s["strict"]["per_type"]["ADE"]["f1"] == 1.0 and s["strict"]["per_type"]["Reason"]["fn"] == 1


def test_document_matching_types_filter_and_errors():
    g1, g2 = _doc([("a", [(0, 3)])], "g1"), _doc([("a", [(5, 8)]), ("b", [(9, 12)])], "g2")
    s = entity_scores([g1, g2], [_doc([("a", [(0, 3)])], "g1")])  # g2 missing: all FN
    assert (s["strict"]["micro"]["tp"], s["strict"]["micro"]["fn"]) == (1, 2)
    s = entity_scores([g1, g2], [], types=["a", "zzz"])
    assert set(s["strict"]["per_type"]) == {"a", "zzz"} and s["strict"]["micro"]["fn"] == 2
    with pytest.raises(InputError, match="not in the gold set: 'nope'"):
        entity_scores([g1], [_doc([], "nope")])
    with pytest.raises(InputError, match="duplicate document id 'g1'"):
        entity_scores([g1, g1], [])
    with pytest.raises(InputError, match="text differs"):
        entity_scores([g1], [Document("g1", "other")])


def test_format_table():
    s = entity_scores([_doc([("prob", [(0, 10)]), ("test", [(20, 30)])])], [_doc([("prob", [(0, 10)])])])
    table = format_table(s)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["type", "strict"]
    assert lines[2].split() == ["prob", "100.00", "100.00", "100.00", "100.00", "100.00", "100.00", "1", "0", "0"]
    assert lines[-1].split() == ["micro", "100.00", "50.00", "66.67", "100.00", "50.00", "66.67", "1", "0", "1"]
