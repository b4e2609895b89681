"""Hand-made gold/system pairs for ``score``, one per official scorer's convention.

Each builder writes a gold and a system folder (or file) under ``root`` with deliberate
perturbations: dropped, shifted, relabelled (within and across categories), split,
duplicated and invented mentions, a discontinuous span, relations with a wrong argument type,
a missing system file and a system note absent from gold. The official scripts were run
once on exactly these files to get the figures the tests expect (see each test module).
"""

from __future__ import annotations

import os

# ----------------------------------------------------------------------------- i2b2 2014

_NOTE_A = ("\nRecord date: 2067-05-03\nPatient John Smith, 64 years old, seen by Dr. Ann Lee at "
           "Mercy Hospital, Boston MA 02115.\nMRN 123456. ID 98-76. Phone (617) 555-0100.\n"
           "Works as a teacher. Follow up 2067-06-01 -- call.\n")
_NOTE_B = "\nRecord date: 2070-01-02\nMr. Brown (IDNUM 55-1) and Dr. Kay. Seen 2070-01-03.\n"
_NOTE_C = "\nRecord date: 2071-02-03\nJane Roe, age 40.\n"


def _find(text: str, s: str, nth: int = 0) -> tuple[int, int]:
    i = -1
    for _ in range(nth + 1):
        i = text.index(s, i + 1)
    return i, i + len(s)


def _xml(text: str, tags: list[tuple[str, str, int, int]]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8" ?>\n<deIdi2b2>\n', f"<TEXT><![CDATA[{text}]]></TEXT>\n<TAGS>\n"]
    for i, (tag, phi_type, s, e) in enumerate(tags):
        body = text[s:e].replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        out.append(f'<{tag} id="P{i}" start="{s}" end="{e}" text="{body}" TYPE="{phi_type}" comment="" />\n')
    out.append("</TAGS>\n</deIdi2b2>\n")
    return "".join(out)


def _write(path: str, content: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(content)


def i2b2_2014_pair(root: str) -> tuple[str, str]:
    """``root/gold`` (3 notes) and ``root/system`` (2 of them, plus one not in gold)."""
    a, b, c = _NOTE_A, _NOTE_B, _NOTE_C
    gold_a = [("DATE", "DATE", *_find(a, "2067-05-03")), ("NAME", "PATIENT", *_find(a, "John Smith")),
              ("AGE", "AGE", *_find(a, "64")), ("NAME", "DOCTOR", *_find(a, "Ann Lee")),
              ("LOCATION", "HOSPITAL", *_find(a, "Mercy Hospital")), ("LOCATION", "CITY", *_find(a, "Boston")),
              ("LOCATION", "STATE", *_find(a, "MA")), ("LOCATION", "ZIP", *_find(a, "02115")),
              ("ID", "MEDICALRECORD", *_find(a, "123456")), ("ID", "IDNUM", *_find(a, "98-76")),
              ("CONTACT", "PHONE", *_find(a, "(617) 555-0100")), ("PROFESSION", "PROFESSION", *_find(a, "teacher")),
              ("DATE", "DATE", *_find(a, "2067-06-01"))]
    js, je = _find(a, "John Smith")
    ps, pe = _find(a, "(617) 555-0100")
    sys_a = [("DATE", "DATE", *_find(a, "2067-05-03")),  # exact
             ("NAME", "PATIENT", js, js + 4), ("NAME", "PATIENT", js + 5, je),  # split
             ("AGE", "AGE", *_find(a, "64")),
             ("NAME", "PATIENT", *_find(a, "Ann Lee")),  # relabelled within NAME (DOCTOR -> PATIENT)
             ("LOCATION", "ORGANIZATION", *_find(a, "Mercy Hospital")),  # within LOCATION
             ("LOCATION", "CITY", *_find(a, "Boston")), ("LOCATION", "CITY", *_find(a, "Boston")),  # duplicated
             ("LOCATION", "STATE", *_find(a, "MA")),
             # ZIP dropped
             ("ID", "MEDICALRECORD", *_find(a, "123456")), ("ID", "IDNUM", *_find(a, "98-76")),
             ("CONTACT", "PHONE", ps + 1, pe),  # start shifted
             ("NAME", "PATIENT", *_find(a, "teacher")),  # across categories (PROFESSION -> NAME)
             ("DATE", "DATE", *_find(a, "2067-06-01 -")),  # end +2: Relaxed only
             ("LOCATION", "CITY", *_find(a, "Record")),  # invented
             ("DATE", "DATE", *_find(a, "--"))]  # invented, no alphanumeric token
    gold_b = [("DATE", "DATE", *_find(b, "2070-01-02")), ("NAME", "PATIENT", *_find(b, "Brown")),
              ("ID", "IDNUM", *_find(b, "55-1")), ("NAME", "DOCTOR", *_find(b, "Kay")),
              ("DATE", "DATE", *_find(b, "2070-01-03"))]
    sys_b = [("DATE", "DATE", *_find(b, "2070-01-02")), ("NAME", "PATIENT", *_find(b, "Brown")),
             ("ID", "IDNUM", *_find(b, "IDNUM 55-1")),  # IDNUM with a wrong start
             ("ID", "IDNUM", *_find(b, "2070-01-03"))]  # across categories (DATE -> ID/IDNUM); Kay dropped
    gold_c = [("DATE", "DATE", *_find(c, "2071-02-03")), ("NAME", "PATIENT", *_find(c, "Jane Roe")),
              ("AGE", "AGE", *_find(c, "40"))]
    gold, system = os.path.join(root, "gold"), os.path.join(root, "system")
    _write(os.path.join(gold, "100-01.xml"), _xml(a, gold_a))
    _write(os.path.join(gold, "100-02.xml"), _xml(b, gold_b))
    _write(os.path.join(gold, "100-03.xml"), _xml(c, gold_c))  # no system file
    _write(os.path.join(system, "100-01.xml"), _xml(a, sys_a))
    _write(os.path.join(system, "100-02.xml"), _xml(b, sys_b))
    _write(os.path.join(system, "200-01.xml"), _xml(c, gold_c))  # not in gold
    return gold + os.sep, system + os.sep


# ----------------------------------------------------------------------------- n2c2 2018

_MED_1 = ("Start aspirin 81 mg PO daily for chest pain. Warfarin 5 mg caused a rash and itching. "
          "Lisinopril tablet 10 mg by mouth twice daily.\n")
_MED_2 = "Metformin 500 mg for diabetes. Heparin drip.\n"
_MED_3 = "Ibuprofen 200 mg PRN pain.\n"


def _ann(text: str, ents: list, rels: list) -> str:
    out = []
    for tid, typ, spans in ents:
        frag = ";".join(f"{s} {e}" for s, e in spans)
        out.append(f"{tid}\t{typ} {frag}\t{' '.join(text[s:e] for s, e in spans)}\n")
    for rid, typ, a1, a2 in rels:
        out.append(f"{rid}\t{typ} Arg1:{a1} Arg2:{a2}\n")
    return "".join(out)


def n2c2_2018_pair(root: str) -> tuple[str, str]:
    """``root/gold`` (3 notes) and ``root/system`` (2 of them, plus one not in gold)."""
    t = _MED_1
    f = lambda s, n=0: _find(t, s, n)  # noqa: E731
    gold1 = [("T1", "Drug", [f("aspirin")]), ("T2", "Strength", [f("81 mg")]), ("T3", "Route", [f("PO")]),
             ("T4", "Frequency", [f("daily")]), ("T5", "Reason", [f("chest pain")]), ("T6", "Drug", [f("Warfarin")]),
             ("T7", "Strength", [f("5 mg")]), ("T8", "ADE", [f("rash"), f("itching")]),  # discontinuous
             ("T9", "Drug", [f("Lisinopril")]), ("T10", "Form", [f("tablet")]), ("T11", "Strength", [f("10 mg")]),
             ("T12", "Route", [f("by mouth")]), ("T13", "Frequency", [f("twice daily")])]
    rels1 = [("R1", "Strength-Drug", "T2", "T1"), ("R2", "Route-Drug", "T3", "T1"),
             ("R3", "Frequency-Drug", "T4", "T1"), ("R4", "Reason-Drug", "T5", "T1"),
             ("R5", "Strength-Drug", "T7", "T6"), ("R6", "ADE-Drug", "T8", "T6"), ("R7", "Form-Drug", "T10", "T9"),
             ("R8", "Strength-Drug", "T11", "T9"), ("R9", "Route-Drug", "T12", "T9"),
             ("R10", "Frequency-Drug", "T13", "T9")]
    rs, re_ = f("rash")
    is_, ie = f("itching")
    cs, ce = f("chest pain")
    sys1 = [("T1", "Drug", [f("aspirin")]), ("T2", "Strength", [f("81 mg")]), ("T3", "Route", [f("PO")]),
            ("T4", "Frequency", [f("daily")]),
            ("T5", "Reason", [(cs, cs + 5)]), ("T14", "Reason", [(cs + 6, ce)]),  # split: lenient pares one down
            ("T6", "Drug", [f("Warfarin")]), ("T15", "Drug", [f("Warfarin")]),  # duplicated
            ("T7", "Strength", [(f("5 mg")[0], f("5 mg")[1] - 3)]),  # end shifted
            ("T8", "ADE", [(rs, ie)]),  # the envelope of the discontinuous gold: strict match
            ("T9", "Drug", [f("Lisinopril")]),
            ("T10", "Route", [f("tablet")]),  # relabelled Form -> Route
            ("T11", "Strength", [f("10 mg")]),
            # "by mouth" dropped
            ("T13", "Frequency", [f("twice daily")]),
            ("T16", "Drug", [f("chest")]),  # invented (type of an overlapping gold differs)
            ("T17", "Dosage", [f("Start")])]  # invented
    rels1s = [("R1", "Strength-Drug", "T2", "T1"), ("R2", "Route-Drug", "T3", "T1"),
              ("R3", "Frequency-Drug", "T4", "T1"), ("R4", "Reason-Drug", "T5", "T1"),
              ("R11", "Reason-Drug", "T14", "T1"),
              ("R5", "Strength-Drug", "T7", "T6"), ("R6", "ADE-Drug", "T8", "T6"), ("R12", "ADE-Drug", "T8", "T15"),
              ("R7", "Form-Drug", "T10", "T9"),  # argument has the wrong type (Route)
              ("R8", "Strength-Drug", "T11", "T9"),
              ("R10", "Frequency-Drug", "T13", "T9"),
              ("R13", "Reason-Drug", "T16", "T1")]  # invented
    t2 = _MED_2
    g2 = [("T1", "Drug", [_find(t2, "Metformin")]), ("T2", "Strength", [_find(t2, "500 mg")]),
          ("T3", "Reason", [_find(t2, "diabetes")]), ("T4", "Drug", [_find(t2, "Heparin")]),
          ("T5", "Route", [_find(t2, "drip")])]
    r2 = [("R1", "Strength-Drug", "T2", "T1"), ("R2", "Reason-Drug", "T3", "T1"), ("R3", "Route-Drug", "T5", "T4")]
    s2 = [("T1", "Drug", [_find(t2, "Metformin")]), ("T2", "Strength", [_find(t2, "500 mg")]),
          ("T3", "Reason", [_find(t2, "diabetes")]), ("T4", "Drug", [_find(t2, "Heparin drip")])]
    rs2 = [("R1", "Strength-Drug", "T2", "T1"), ("R2", "Reason-Drug", "T1", "T3")]  # arguments swapped
    t3 = _MED_3
    g3 = [("T1", "Drug", [_find(t3, "Ibuprofen")]), ("T2", "Strength", [_find(t3, "200 mg")])]
    r3 = [("R1", "Strength-Drug", "T2", "T1")]
    gold, system = os.path.join(root, "gold"), os.path.join(root, "system")
    for d, name, text, ents, rels in ((gold, "101", t, gold1, rels1), (gold, "102", t2, g2, r2),
                                      (gold, "103", t3, g3, r3),  # no system file
                                      (system, "101", t, sys1, rels1s), (system, "102", t2, s2, rs2),
                                      (system, "999", t3, g3, r3)):  # not in gold
        _write(os.path.join(d, name + ".txt"), text)
        _write(os.path.join(d, name + ".ann"), _ann(text, ents, rels))
    return gold, system


# ----------------------------------------------------------------------------- MEDDOCAN

_ES_1 = "Nombre: Pedro. Apellidos: De Miguel Rivera.\nNHC: 2569870.\nCalle Carmen Romero, 23, 1D.\nEdad: 53 años.\n"
_ES_2 = "Médico: Estefanía Romero Selas. NºCol: 28 28 20943.\nCorreo: ero@yahoo.es\n"


def meddocan_pair(root: str) -> tuple[str, str, str]:
    """``root/gold``, ``root/system`` (brat) and ``root/sentences`` (one ``.ann`` line per sentence)."""
    t1, t2 = _ES_1, _ES_2
    f1 = lambda s: _find(t1, s)  # noqa: E731
    f2 = lambda s: _find(t2, s)  # noqa: E731
    g1 = [("T1", "NOMBRE_SUJETO_ASISTENCIA", [f1("Pedro")]),
          ("T2", "NOMBRE_SUJETO_ASISTENCIA", [f1("De Miguel Rivera")]),
          ("T3", "ID_SUJETO_ASISTENCIA", [f1("2569870")]), ("T4", "CALLE", [f1("Calle Carmen Romero, 23, 1D")]),
          ("T5", "EDAD_SUJETO_ASISTENCIA", [f1("53 años")])]
    ds, de = f1("De Miguel Rivera")
    cs, ce = f1("Calle Carmen Romero, 23, 1D")
    s1 = [("T1", "NOMBRE_SUJETO_ASISTENCIA", [f1("Pedro")]),
          ("T2", "NOMBRE_SUJETO_ASISTENCIA", [(ds, ds + 9)]), ("T3", "NOMBRE_SUJETO_ASISTENCIA", [(ds + 10, de)]),
          ("T4", "NUMERO_TELEFONO", [f1("2569870")]),  # relabelled
          ("T5", "CALLE", [(cs, cs + 19)]), ("T6", "CALLE", [(cs + 21, cs + 23)]), ("T7", "CALLE", [(cs + 25, ce)]),
          ("T8", "EDAD_SUJETO_ASISTENCIA", [f1("53 años")]), ("T9", "EDAD_SUJETO_ASISTENCIA", [f1("53 años")]),
          ("T10", "PAIS", [f1("Edad")])]  # invented
    g2 = [("T1", "NOMBRE_PERSONAL_SANITARIO", [f2("Estefanía Romero Selas")]),
          ("T2", "ID_TITULACION_PERSONAL_SANITARIO", [f2("28 28 20943")]), ("T3", "CORREO_ELECTRONICO", [f2("ero@yahoo.es")])]
    ns, ne = f2("Estefanía Romero Selas")
    s2 = [("T1", "NOMBRE_PERSONAL_SANITARIO", [(ns + 1, ne)]),  # shifted
          ("T2", "ID_TITULACION_PERSONAL_SANITARIO", [f2("28 28 20943")])]  # e-mail dropped
    gold, system, sentences = (os.path.join(root, x) for x in ("gold", "system", "sentences"))
    for d, name, text, ents in ((gold, "S1", t1, g1), (gold, "S2", t2, g2), (gold, "S3", t2, g2),  # S3: no system
                                (system, "S1", t1, s1), (system, "S2", t2, s2)):
        _write(os.path.join(d, name + ".txt"), text)
        _write(os.path.join(d, name + ".ann"), _ann(text, ents, []))
    for name, n in (("S1", 4), ("S2", 3), ("S3", 3)):
        _write(os.path.join(sentences, name + ".ann"), "".join(f"T{i}\tSentence 0 1\tx\n" for i in range(n)))
    return gold, system, sentences


# ----------------------------------------------------------------------------- CoNLL

CONLL_SENTENCES = [
    ("Patient has type 2 diabetes and chronic kidney disease .".split(),
     "O O B-problem I-problem I-problem O B-problem I-problem I-problem O".split(),
     "O O B-problem I-problem O O I-problem I-problem I-problem O".split()),  # end dropped; orphan I- start
    ("Started metformin 500 mg daily".split(),
     "O B-treatment I-treatment I-treatment O".split(),
     "O B-treatment B-treatment I-treatment B-test".split()),  # split; invented
    ("CT scan showed no mass".split(),
     "B-test I-test O O B-problem".split(),
     "B-problem I-problem O O B-problem".split()),  # relabelled
    ("Aspirin given".split(), "B-treatment O".split(), "I-treatment O".split()),  # orphan I- (conlleval: a chunk)
]


def conll_pair(root: str) -> tuple[str, str]:
    """``root/gold.conll`` and ``root/system.conll`` (token<TAB>tag, one blank line per sentence)."""
    os.makedirs(root, exist_ok=True)
    gold, system = os.path.join(root, "gold.conll"), os.path.join(root, "system.conll")
    _write(gold, "".join("".join(f"{w}\t{t}\n" for w, t in zip(ws, gt)) + "\n" for ws, gt, _ in CONLL_SENTENCES))
    _write(system, "".join("".join(f"{w}\t{t}\n" for w, t in zip(ws, st)) + "\n" for ws, _, st in CONLL_SENTENCES))
    return gold, system


def perturb_brat(gold_dir: str, out_dir: str) -> None:
    """A deterministic system output from a real brat gold folder: of every 8 mentions in a note,
    one dropped, one start-shifted, one relabelled, one duplicated, one split at its first space,
    the rest kept; plus one invented mention (the note's first word) per note."""
    from gatortron_jax.annotations.formats.brat import read_brat_dir, write_brat_dir
    from gatortron_jax.annotations.documents import Entity

    docs = read_brat_dir(gold_dir)
    types = sorted({e.type for d in docs for e in d.entities})
    for d in docs:
        out = []
        for i, e in enumerate(sorted(d.entities, key=lambda e: (e.start, e.end, e.type))):
            (s, t), k = e.spans[0], i % 8
            if k == 0:
                continue
            if k == 1 and t - s > 1:
                out.append(Entity(e.id, e.type, ((s + 1, t),)))
            elif k == 2:
                out.append(Entity(e.id, types[(types.index(e.type) + 1) % len(types)], e.spans))
            elif k == 3:
                out += [e, Entity(e.id + "d", e.type, e.spans)]
            elif k == 4 and " " in d.text[s:t]:
                cut = s + d.text[s:t].index(" ")
                out += [Entity(e.id, e.type, ((s, cut),)), Entity(e.id + "s", e.type, ((cut + 1, t),))]
            else:
                out.append(e)
        word = d.text.split()[0] if d.text.split() else ""
        if word:
            s = d.text.index(word)
            out.append(Entity("inv", types[0], ((s, s + len(word)),)))
        d.entities, d.relations = out, []
    write_brat_dir(docs, out_dir)


def perturb_i2b2_2014(gold_dir: str, out_dir: str) -> None:
    """A deterministic system output from i2b2 2014 XML notes: of every 9 tags in a note, one
    dropped, one start-shifted, one relabelled within its category (PATIENT<->DOCTOR, else the
    tag's TYPE kept and ORGANIZATION used for LOCATION), one moved across categories (to
    ID/IDNUM), one duplicated, one split at its first space, one with its end 1 later (Relaxed),
    the rest kept; plus one invented DATE (the note's first word) per note."""
    from gatortron_jax.annotations.formats.i2b2_deid import read_i2b2_2014_dir

    docs = read_i2b2_2014_dir(gold_dir, label="tag/type")
    for d in docs:
        out: list[tuple[str, str, int, int]] = []
        for i, e in enumerate(d.entities):
            tag, phi_type = e.type.split("/", 1)
            (s, t), k = e.spans[0], i % 9
            if k == 0:
                continue
            if k == 1 and t - s > 1:
                out.append((tag, phi_type, s + 1, t))
            elif k == 2:
                within = {"PATIENT": "DOCTOR", "DOCTOR": "PATIENT"}.get(phi_type)
                out.append((tag, within or ("ORGANIZATION" if tag == "LOCATION" else phi_type), s, t))
            elif k == 3:
                out.append(("ID", "IDNUM", s, t))
            elif k == 4:
                out += [(tag, phi_type, s, t), (tag, phi_type, s, t)]
            elif k == 5 and " " in d.text[s:t]:
                cut = s + d.text[s:t].index(" ")
                out += [(tag, phi_type, s, cut), (tag, phi_type, cut + 1, t)]
            elif k == 6 and t < len(d.text):
                out.append((tag, phi_type, s, t + 1))
            else:
                out.append((tag, phi_type, s, t))
        words = d.text.split()
        if words:
            s = d.text.index(words[0])
            out.append(("DATE", "DATE", s, s + len(words[0])))
        _write(os.path.join(out_dir, d.id + ".xml"), _xml(d.text, out))


def perturb_conll(gold_path: str, out_path: str) -> None:
    """A deterministic system CoNLL file from a gold one: of every 6 tagged tokens, a B- made
    I- (orphan), an I- made O (truncated), a tag relabelled to ``X``, an O made B-X (invented)."""
    lines = open(gold_path, encoding="utf-8").read().split("\n")
    out, n = [], 0
    for line in lines:
        if not line.strip() or "\t" not in line:
            out.append(line)
            continue
        tok, tag = line.rsplit("\t", 1)
        n += 1
        k = n % 6
        if k == 0 and tag.startswith("B-"):
            tag = "I-" + tag[2:]
        elif k == 1 and tag.startswith("I-"):
            tag = "O"
        elif k == 2 and tag != "O":
            tag = tag[:2] + "X"
        elif k == 3 and tag == "O" and n % 12 == 3:
            tag = "B-X"
        out.append(f"{tok}\t{tag}")
    _write(out_path, "\n".join(out))
