"""Relation candidates: windows, labels, negative sampling, markers, brat round trip."""

import collections
import dataclasses

import pytest

from gatortron_jax.annotations.documents import Document, Entity, Relation
from gatortron_jax.annotations.formats.brat import read_brat, read_brat_dir, write_brat
from gatortron_jax.finetuning.relations import (CandidateConfig, build_relation_examples, marker_tokens,
                                          predictions_from_examples, relations_to_brat, split_sentences)
from gatortron_jax.core.errors import InputError

N2C2_PAIRS = tuple((t, "Drug") for t in ("Strength", "Dosage", "Route", "Frequency", "Form", "Duration",
                                        "Reason", "ADE"))


def _ent(doc_text, eid, etype, word, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = doc_text.index(word, start + 1)
    return Entity(eid, etype, ((start, start + len(word)),), word)


def _doc():
    text = ("Started aspirin 81 mg for chest pain. Dose was 2.5 mg of warfarin.\n"
            "Warfarin stopped because of bleeding! Continue metoprolol.")
    ents = [_ent(text, "T1", "Drug", "aspirin"), _ent(text, "T2", "Strength", "81 mg"),
            _ent(text, "T3", "Reason", "chest pain"), _ent(text, "T4", "Strength", "2.5 mg"),
            _ent(text, "T5", "Drug", "warfarin"), _ent(text, "T6", "Drug", "Warfarin"),
            _ent(text, "T7", "ADE", "bleeding"), _ent(text, "T8", "Drug", "metoprolol")]
    rels = [Relation("R1", "Strength-Drug", "T2", "T1"), Relation("R2", "Reason-Drug", "T3", "T1"),
            Relation("R3", "Strength-Drug", "T4", "T5"), Relation("R4", "ADE-Drug", "T7", "T6"),
            Relation("R5", "ADE-Drug", "T7", "T5")]  # R5 crosses one sentence boundary
    return Document("d1", text, ents, rels, source="d1.ann")


def test_split_sentences():
    text = "Take 2.5 mg daily. Dr. Who? Yes!\nNew line here  \n\n  last"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["Take 2.5 mg daily.", "Dr.", "Who?", "Yes!", "New line here", "last"]
    text = "a b\nc d."
    assert [text[s:e] for s, e in split_sentences(text, newline_boundary=False)] == ["a b\nc d."]


@pytest.mark.parametrize("window", [0, 1, 2])
def test_gold_relations_positive_exactly_once(window):
    doc = _doc()
    ex, stats = build_relation_examples([doc], CandidateConfig(window_sentences=window, allowed_pairs=N2C2_PAIRS))
    positives = collections.Counter((e.arg1, e.arg2, e.label) for e in ex if e.label != "none")
    expected = {(r.arg1, r.arg2, r.type) for r in doc.relations if window >= 1 or r.id != "R5"}
    assert set(positives) == expected and all(v == 1 for v in positives.values())
    assert len({(e.arg1, e.arg2) for e in ex}) == len(ex)  # no pair twice
    assert stats.positives == len(expected)
    assert sum(stats.gold_not_candidates.values()) == len(doc.relations) - len(expected)
    if window == 0:
        assert stats.gold_not_candidates["outside the sentence window"] == 1
    for e in ex:  # every candidate respects the type pairs
        assert (e.arg1_type, e.arg2_type) in N2C2_PAIRS


def test_any_pair_both_directions_and_type_filter_counted():
    doc = _doc()
    ex, stats = build_relation_examples([doc], CandidateConfig(window_sentences=0))
    pairs = {(e.arg1, e.arg2) for e in ex}
    assert ("T1", "T2") in pairs and ("T2", "T1") in pairs
    _, stats = build_relation_examples([doc], CandidateConfig(window_sentences=3, allowed_pairs=(("Strength", "Drug"),)))
    assert stats.gold_not_candidates["argument type pair not allowed"] == 3


def test_markers_map_back_to_entities():
    doc = _doc()
    for typed in (False, True):
        ex, _ = build_relation_examples([doc], CandidateConfig(window_sentences=1, typed_markers=typed))
        ents = {e.id: e for e in doc.entities}
        assert ex
        for e in ex:
            for arg, (m0, m1), open_end in ((e.arg1, e.e1_marker, e.e1_open_end), (e.arg2, e.e2_marker, e.e2_open_end)):
                ent = ents[arg]
                tag = "1" if arg == e.arg1 else "2"
                opening = f"[E{tag}={ent.type}]" if typed else f"[E{tag}]"
                closing = f"[/E{tag}={ent.type}]" if typed else f"[/E{tag}]"
                assert e.text[m0:open_end] == opening + " "
                assert e.text[m1 - len(closing):m1] == closing
                inner_start, inner_end = open_end, m1 - len(closing) - 1
                assert e.text[inner_start:inner_end] == ent.text
                assert e.to_document_offset(inner_start) == ent.start
                assert e.to_document_offset(inner_end - 1) + 1 == ent.end
            stripped = e.text
            for m in marker_tokens([x.type for x in doc.entities], typed=typed):
                stripped = stripped.replace(m + " ", "").replace(" " + m, "")
            assert stripped == doc.text[e.context_start:e.context_start + len(stripped)]
            with pytest.raises(ValueError):
                e.to_document_offset(e.e1_marker[0])


def test_negative_sampling_ratio_deterministic(repo_root):
    docs = read_brat_dir(str(repo_root / "data/ner_samples/brat_n2c2_2018/train"))
    cfg = CandidateConfig(window_sentences=1, allowed_pairs=N2C2_PAIRS)
    full, s_full = build_relation_examples(docs, cfg)
    n_pos = sum(e.label != "none" for e in full)
    n_neg = len(full) - n_pos
    assert n_pos > 20 and n_neg > 0.3 * n_pos
    for ratio in (0.0, 0.1, 0.3, 1.0):
        c = dataclasses.replace(cfg, negative_ratio=ratio, seed=3)
        a, s = build_relation_examples(docs, c)
        b, _ = build_relation_examples(docs, c)
        assert [x.id for x in a] == [x.id for x in b]
        assert sum(x.label != "none" for x in a) == n_pos
        assert sum(x.label == "none" for x in a) == min(n_neg, round(ratio * n_pos))
        assert s.negatives_dropped == n_neg - min(n_neg, round(ratio * n_pos))
        order = {x.id: i for i, x in enumerate(full)}
        assert [order[x.id] for x in a] == sorted(order[x.id] for x in a)  # order preserved
    other, _ = build_relation_examples(docs, dataclasses.replace(cfg, negative_ratio=0.1, seed=4))
    assert [x.id for x in other] != [x.id for x in build_relation_examples(
        docs, dataclasses.replace(cfg, negative_ratio=0.1, seed=3))[0]]


def test_unknown_entity_id():
    doc = _doc()
    doc.relations.append(Relation("R9", "Reason-Drug", "T3", "T99"))
    with pytest.raises(InputError, match=r"d1\.ann.*R9.*T99"):
        build_relation_examples([doc], CandidateConfig())
    ex, stats = build_relation_examples([doc], CandidateConfig(), strict=False)
    assert [r for _, r, _ in stats.skipped_relations] == ["R9"]
    with pytest.raises(InputError, match="T42"):
        relations_to_brat(doc, [("T1", "T42", "Reason-Drug")])


def test_predictions_round_trip_brat(tmp_path):
    doc = _doc()
    ex, _ = build_relation_examples([doc], CandidateConfig(window_sentences=1, allowed_pairs=N2C2_PAIRS))
    gold_labels = [e.label for e in ex]  # a perfect "model"
    preds = predictions_from_examples(ex, gold_labels)
    out = relations_to_brat(doc, preds["d1"])
    (tmp_path / "d1.txt").write_text(doc.text)
    write_brat(out, str(tmp_path / "d1.ann"))
    back = read_brat(str(tmp_path / "d1.txt"), str(tmp_path / "d1.ann"))
    assert {(r.arg1, r.arg2, r.type) for r in back.relations} == {(r.arg1, r.arg2, r.type) for r in doc.relations}
    assert all(r.id.startswith("R") for r in back.relations)
    assert doc.relations[0].id == "R1" and len(doc.relations) == 5  # input untouched
