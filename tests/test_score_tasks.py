"""``evaluate``'s ``official`` block equals ``score`` on the files ``predict`` writes.

Without a model: the same gold and predicted documents are scored in memory
(:func:`gatortron_jax.scoring.tasks.official_scores`, what ``evaluate`` reports) and written
with the writers ``predict`` uses, then read back and scored by ``score``; every row must agree.
"""

import math

from gatortron_jax.annotations.formats import read_brat_dir, read_conll, write_brat_dir, write_conll
from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir, write_i2b2_2014_xml
from gatortron_jax.scoring import score
from gatortron_jax.scoring.tasks import official_scores
from score_fixtures import conll_pair, i2b2_2014_pair, n2c2_2018_pair


def _same_rows(a: dict, b: dict) -> bool:
    assert set(a) <= set(b)
    for name, row in a.items():
        for k, v in row.items():
            w = b[name][k]
            if not (v == w or (isinstance(v, float) and math.isclose(v, w, abs_tol=1e-12))
                    or (isinstance(v, float) and math.isnan(v) and math.isnan(w))):
                raise AssertionError((name, k, v, w))
    return True


def test_i2b2_2014_deid(tmp_path):
    gold_dir, sys_dir = i2b2_2014_pair(str(tmp_path / "in"))
    gold, pred = read_i2b2_2014_dir(gold_dir), read_i2b2_2014_dir(sys_dir)  # TYPE labels, as the task reads
    # evaluate predicts every gold note (an empty one too), and predict writes each
    pred = [p for p in pred if p.id in {g.id for g in gold}]
    pred += [type(g)(g.id, g.text) for g in gold if g.id not in {p.id for p in pred}]
    for side, docs in (("g", gold), ("p", pred)):
        for d in docs:
            write_i2b2_2014_xml(d, str(tmp_path / side / f"{d.id}.xml"))
    written = score("i2b2_2014", str(tmp_path / "g"), str(tmp_path / "p"))
    assert _same_rows(official_scores("i2b2_2014_deid", gold, pred)["rows"], written.rows)
    assert written.rows["Strict"]["fn"] == 13  # 10 misses in the scored notes + the 3 of the empty one


def test_n2c2_2018_ner(tmp_path):
    gold_dir, sys_dir = n2c2_2018_pair(str(tmp_path / "in"))
    gold, pred = read_brat_dir(gold_dir), read_brat_dir(sys_dir)
    pred = [p for p in pred if p.id in {g.id for g in gold}]
    for p in pred:
        p.relations = []  # an NER model predicts concepts only
    official = official_scores("n2c2_2018_ner", gold, pred)
    assert not any("Drug (" in k and "-" in k for k in official["rows"])  # no relation rows for NER
    write_brat_dir(gold, str(tmp_path / "g"))
    write_brat_dir(pred + [type(g)(g.id, g.text) for g in gold if g.id not in {p.id for p in pred}],
                   str(tmp_path / "p"))
    assert _same_rows(official["rows"], score("n2c2_2018", str(tmp_path / "g"), str(tmp_path / "p")).rows)


def test_conll_ner(tmp_path):
    gold_path, sys_path = conll_pair(str(tmp_path / "in"))
    gold, pred = read_conll(gold_path, doc_id_prefix="s"), read_conll(sys_path, doc_id_prefix="s")
    official = official_scores("conll_ner", gold, pred)
    write_conll(gold, str(tmp_path / "g.conll"))
    write_conll(pred, str(tmp_path / "p.conll"))
    assert _same_rows(official["rows"], score("conll", str(tmp_path / "g.conll"), str(tmp_path / "p.conll")).rows)


def test_other_tasks_have_no_official_block():
    assert official_scores("i2b2_2010_ner", [], []) is None


def test_n2c2_2018_re_document_level(tmp_path):
    from gatortron_jax.finetuning.relations import relations_to_brat

    gold_dir, _ = n2c2_2018_pair(str(tmp_path / "in"))
    gold = read_brat_dir(gold_dir)
    # an RE model: relations between the gold concepts; one dropped, one retyped, one invented per note
    pred = []
    for d in gold:
        triples = [(r.arg1, r.arg2, r.type) for r in d.relations[1:]]
        if triples:
            a1, a2, _ = triples[0]
            triples[0] = (a1, a2, "Dosage-Drug")
        if len(d.entities) > 1:
            triples.append((d.entities[1].id, d.entities[0].id, "Reason-Drug"))
        pred.append(relations_to_brat(d, triples))
    official = official_scores("n2c2_2018_re", gold, pred)
    assert set(official["rows"]) == {k for k in score("n2c2_2018", gold_dir, gold_dir).rows if "Drug (" in k
                                     and "-" in k} | {"Relations overall (strict)", "Relations overall (lenient)"}
    write_brat_dir(gold, str(tmp_path / "g"))
    write_brat_dir(pred, str(tmp_path / "p"))
    written = score("n2c2_2018", str(tmp_path / "g"), str(tmp_path / "p"))
    assert _same_rows(official["rows"], written.rows)
    assert 0 < written.rows["Relations overall (strict)"]["f1"] < 1


def test_benchmark_table_shows_the_official_figure_beside_ours(tmp_path):
    from gatortron_jax.benchmark.table import format_markdown
    from gatortron_jax.scoring.tasks import official_headline

    gold_path, sys_path = conll_pair(str(tmp_path))
    gold, pred = read_conll(gold_path, doc_id_prefix="s"), read_conll(sys_path, doc_id_prefix="s")
    official = official_headline(official_scores("conll_ner", gold, pred))  # what the runner records
    assert official["row"] == "overall" and round(official["f1"], 4) == 0.4286  # conlleval's FB1 on this pair
    run = {"task": "conll_ner", "paper_name": "NCBI-disease", "seed": 0, "metric": "strict entity F1",
           "score": 0.25, "official": official, "wall_seconds": 1.0}
    summary = {"mixture": "m", "init_checkpoint": "i", "init_checkpoint_fingerprint": "sha256:" + "0" * 64,
               "seeds": 1, "runs": [run, {**run, "task": "biosses_sts", "paper_name": "BIOSSES", "official": None}]}
    md = format_markdown(summary)
    assert "| NCBI-disease | strict entity F1 | 0.2500 ± 0.0000 | 0: 0.2500 | 1 | 0.4286 ± 0.0000 |" in md
    assert "| BIOSSES | strict entity F1 | 0.2500 ± 0.0000 | 0: 0.2500 | 1 | — |" in md
