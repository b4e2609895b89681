"""MEDDOCAN through the de-id readers: a sample of the corpus's shape written here (no corpus
text in the repo), and the shared corpus's published counts when it is present."""

from __future__ import annotations

import pytest

from gatortron_jax.annotations.formats import ReadSummary
from gatortron_jax.annotations.formats import i2b2_deid as x
from gatortron_jax.annotations.formats.brat import read_brat_dir
from gatortron_jax.core.errors import InputError

# Our own Spanish note in MEDDOCAN's layout: root <MEDDOCAN>, two-space indents, no space before
# "/>", an OTHER category, Spanish TYPEs.
TEXT = "Nombre:  Lucía Pardo.\nNHC: 4471203.\nEdad: 54 años Sexo: M.\nCorreo: lpardo@ejemplo.es\n"
MENTIONS = [("NAME", 9, 20, "NOMBRE_SUJETO_ASISTENCIA"), ("ID", 27, 34, "ID_SUJETO_ASISTENCIA"),
            ("AGE", 42, 49, "EDAD_SUJETO_ASISTENCIA"), ("OTHER", 56, 57, "SEXO_SUJETO_ASISTENCIA"),
            ("CONTACT", 67, 84, "CORREO_ELECTRONICO")]


def _sample_xml(mentions=MENTIONS, text=TEXT) -> str:
    tags = "".join(f'    <{cat} id="T{i}" start="{s}" end="{e}" text="{text[s:e]}" TYPE="{t}" comment=""/>\n'
                   for i, (cat, s, e, t) in enumerate(mentions, 1))
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n<MEDDOCAN>\n  <TEXT><![CDATA[{text}]]></TEXT>\n"
            f"  <TAGS>\n{tags}  </TAGS>\n</MEDDOCAN>\n")


def test_meddocan_shaped_xml_any_root_any_type_set(tmp_path):
    p = tmp_path / "xml" / "caso-1.xml"
    p.parent.mkdir()
    p.write_text(_sample_xml(), encoding="utf-8")
    summary = ReadSummary()
    doc = x.read_i2b2_2014(str(p), strict=True, summary=summary)
    assert doc.text == TEXT and not summary.problems and not summary.skipped
    assert [(e.type, e.spans[0]) for e in doc.entities] == [(t, (s, e)) for _, s, e, t in MENTIONS]
    assert [e.text for e in doc.entities] == ["Lucía Pardo", "4471203", "54 años", "M", "lpardo@ejemplo.es"]
    cats = x.read_i2b2_2014(str(p), strict=True, label="category")
    assert [e.type for e in cats.entities] == ["NAME", "ID", "AGE", "OTHER", "CONTACT"]  # from the element names
    # The category of each TYPE without its tag (brat, predictions), and the writer puts it back.
    assert [x.category_of(t) for _, _, _, t in MENTIONS] == [c for c, _, _, _ in MENTIONS]
    out = tmp_path / "o.xml"
    out.write_text(x.format_i2b2_2014_xml(doc, root="MEDDOCAN"), encoding="utf-8")
    assert out.read_text().splitlines()[1] == "<MEDDOCAN>"
    back = x.read_i2b2_2014(str(out), strict=True, label="category")
    assert [(e.type, e.spans) for e in back.entities] == [(e.type, e.spans) for e in cats.entities]
    with pytest.raises(InputError, match="not an XML element name"):
        x.format_i2b2_2014_xml(doc, root="<bad>")


def test_meddocan_shaped_xml_bad_tags_are_named(tmp_path):
    p = tmp_path / "c.xml"
    raw = _sample_xml().replace('<ID id="T2" start="27" end="34"', '<ID id="T2" end="34"')
    p.write_text(raw, encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.xml:10: <ID> without attribute\(s\) \['start'\]"):
        x.read_i2b2_2014(str(p), strict=True)
    summary = ReadSummary()
    doc = x.read_i2b2_2014(str(p), strict=False, summary=summary)
    assert len(doc.entities) == 4 and sum(summary.problems.values()) == 1
    # A known i2b2 2014 TYPE under the wrong category is still reported (and kept).
    p.write_text(_sample_xml([("LOCATION", 9, 20, "PATIENT")]), encoding="utf-8")
    summary = ReadSummary()
    assert len(x.read_i2b2_2014(str(p), strict=True, summary=summary).entities) == 1
    assert summary.problems == {"TYPE not a LOCATION type (kept)": 1}


@pytest.mark.parametrize("split,docs,phi", [("train", 500, 11333), ("dev", 250, 5801)])
def test_shared_meddocan_counts_xml_equals_brat(shared_data, split, docs, phi):
    base = shared_data / "MEDDOCAN" / split
    if not base.is_dir():
        pytest.skip(f"{base} is not present")
    summary = ReadSummary()
    xml = x.read_i2b2_2014_dir(str(base / "xml"), strict=True, summary=summary)
    assert (len(xml), sum(len(d.entities) for d in xml)) == (docs, phi)
    assert not summary.problems and not summary.skipped
    types = {e.type for d in xml for e in d.entities}
    assert types <= {t for ts in x.MEDDOCAN_CATEGORY_TYPES.values() for t in ts} and len(types) >= 20
    assert {x.category_of(t) for t in types} == set(x.MEDDOCAN_CATEGORY_TYPES)
    brat = {d.id: d for d in read_brat_dir(str(base / "brat"), strict=True)}
    for d in xml:
        assert d.text == brat[d.id].text
        assert sorted((e.spans, e.type) for e in d.entities) == sorted((e.spans, e.type) for e in brat[d.id].entities)


def test_meddocan_task_gin_and_benchmark_registration(tmp_path):
    from gatortron_jax.benchmark import suite
    from gatortron_jax.cli import gin_config
    from gatortron_jax.core.errors import ConfigError
    from gatortron_jax.finetuning import ner_tasks
    from gatortron_jax.finetuning.config import NERDataConfig

    with pytest.raises(ConfigError, match="bind NERDataConfig.data_dir"):
        ner_tasks.get_ner_task("meddocan_deid").split_path("train")
    (tmp_path / "train" / "xml").mkdir(parents=True)
    (tmp_path / "train" / "xml" / "caso-1.xml").write_text(_sample_xml(), encoding="utf-8")
    gin_config.parse(["gin/finetune/meddocan.gin"], [f"NERDataConfig.data_dir='{tmp_path}'"])
    data = gin_config.build(NERDataConfig)
    gin_config.build_finetune_config()
    task = ner_tasks.get_ner_task(data.task, data.data_dir, data.splits())
    assert task.deid and task.output_format == "i2b2_2014"
    docs = task.documents(data.train_split)
    assert [len(d.entities) for d in docs] == [len(MENTIONS)]
    bt = suite.benchmark_task("meddocan_deid")
    assert [t.name for t in suite.mixture_tasks("public_deid")] == ["meddocan_deid"]
    assert bt.missing_files(str(tmp_path.parent)) and bt.data_dir("/d") == "/d/MEDDOCAN"


def test_bench_finetune_meddocan_to_conll(tmp_path):
    """The same CoNLL sentences for both sides of bench_finetune --corpus meddocan: every gold
    span becomes one B- (+ I-) run over its words."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_finetune", "benchmarks/bench_finetune.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for split in ("train", "dev"):
        (tmp_path / split / "xml").mkdir(parents=True)
        (tmp_path / split / "xml" / "caso-1.xml").write_text(_sample_xml(), encoding="utf-8")
    bench.meddocan_to_conll(str(tmp_path), str(tmp_path / "conll"))
    sents = bench.read_sentences(str(tmp_path / "conll" / "train.tsv"))
    assert sents[0] == (["Nombre", ":", "Lucía", "Pardo", "."],
                        ["O", "O", "B-NOMBRE_SUJETO_ASISTENCIA", "I-NOMBRE_SUJETO_ASISTENCIA", "O"])
    tags = [t for _, ts in sents for t in ts]
    assert sum(t.startswith("B-") for t in tags) == len(MENTIONS)
    assert "B-CORREO_ELECTRONICO" in tags and tags.count("I-CORREO_ELECTRONICO") == 4  # lpardo @ ejemplo . es
    assert (tmp_path / "conll" / "test.tsv").read_text() == (tmp_path / "conll" / "devel.tsv").read_text()


# A small MEDDOCAN-shaped corpus of our own (invented names and numbers), for the model paths.
_FIELDS = [("Nombre: ", "NAME", "NOMBRE_SUJETO_ASISTENCIA", ["Lucía Pardo", "Andrés Villar", "Marta Gil", "José Ruiz"]),
           (".\nNHC: ", "ID", "ID_SUJETO_ASISTENCIA", ["4471203", "1180922", "3390517", "2205481"]),
           (".\nEdad: ", "AGE", "EDAD_SUJETO_ASISTENCIA", ["54 años", "71 años", "38 años", "66 años"]),
           (" Sexo: ", "OTHER", "SEXO_SUJETO_ASISTENCIA", ["M", "H", "M", "H"]),
           (".\nFecha de ingreso: ", "DATE", "FECHAS", ["03/04/2019", "12/11/2018", "21/06/2017", "09/01/2020"]),
           (".\nMédico: Dr. ", "NAME", "NOMBRE_PERSONAL_SANITARIO", ["Pedro Saez", "Irene Toledo", "Luis Mora", "Ana Prieto"]),
           (". Hospital ", "LOCATION", "HOSPITAL", ["Virgen del Mar", "San Telmo", "Santa Ana", "Los Olmos"]),
           (".\nCorreo: ", "CONTACT", "CORREO_ELECTRONICO", ["lpardo@ejemplo.es", "avillar@correo.es", "mgil@ejemplo.es",
                                                             "jruiz@correo.es"])]
_TAIL = ".\nRefiere dolor abdominal de tres días de evolución, sin fiebre.\n"


def meddocan_note(k: int) -> tuple[str, list[tuple[str, int, int, str]]]:
    """Note ``k``: its text and (category, start, end, TYPE) mentions."""
    text, mentions = "", []
    for prefix, cat, typ, values in _FIELDS:
        text += prefix
        value = values[k % len(values)]
        mentions.append((cat, len(text), len(text) + len(value), typ))
        text += value
    return text + _TAIL, mentions


def write_meddocan_corpus(root, notes_per_split: int = 4) -> dict[str, list[str]]:
    """``root/{train,dev,test}/xml/caso-K.xml`` and ``root/<split>/sentence_splitted/caso-K.ann``
    (one line per sentence, as the organisers' files count); returns the ids per split."""
    ids = {}
    for n, split in enumerate(("train", "dev", "test")):
        (root / split / "xml").mkdir(parents=True, exist_ok=True)
        (root / split / "sentence_splitted").mkdir(parents=True, exist_ok=True)
        ids[split] = []
        for j in range(notes_per_split):
            k = n * notes_per_split + j
            text, mentions = meddocan_note(k)
            (root / split / "xml" / f"caso-{k}.xml").write_text(_sample_xml(mentions, text), encoding="utf-8")
            lines = [line for line in text.split("\n") if line]
            (root / split / "sentence_splitted" / f"caso-{k}.ann").write_text(
                "".join(f"T{i}\tFp 0 1\t.\n" for i in range(len(lines))), encoding="utf-8")
            ids[split].append(f"caso-{k}")
    return ids


def test_meddocan_corpus_helper_reads_back(tmp_path):
    write_meddocan_corpus(tmp_path, 2)
    docs = x.read_i2b2_2014_dir(str(tmp_path / "dev" / "xml"), strict=True)
    assert [len(d.entities) for d in docs] == [len(_FIELDS)] * 2
    assert [docs[0].text[e.start:e.end] for e in docs[0].entities][:2] == ["Marta Gil", "3390517"]
