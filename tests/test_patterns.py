"""Pattern recognizers, allow/deny lists, the recipe's round trip and the merge policy, on
hand-made strings (and the near misses each recognizer must not fire on)."""

from __future__ import annotations

import json

import pytest

from gatortron_jax.annotations import patterns as P
from gatortron_jax.core.errors import ConfigError, InputError


def _found(text: str, names=None, **recipe) -> list[tuple[str, str]]:
    m = P.PatternMatcher(P.PatternRecipe(recognizers=tuple(names or P.RECOGNIZERS), **recipe))
    return [(sp.type, text[sp.start:sp.end]) for sp in m.find(text)]


@pytest.mark.parametrize("text,expected", [
    ("Correo: ana.ruiz+1@hosp-norte.es.", [("EMAIL", "ana.ruiz+1@hosp-norte.es")]),
    ("see https://example.org/a?b=1), then", [("URL", "https://example.org/a?b=1")]),
    ("at www.hospital.es.", [("URL", "www.hospital.es")]),
    ("host 192.168.0.17 replied", [("IPADDR", "192.168.0.17")]),
    ("Tel: 91 555 12 34 or call", [("PHONE", "91 555 12 34")]),
    ("Teléfono 612345678.", [("PHONE", "612345678")]),
    ("Fax: 91 555 12 35", [("FAX", "91 555 12 35")]),
    ("call +34 915 551 234 now", [("PHONE", "+34 915 551 234")]),
    ("reach (352) 555-0199 today", [("PHONE", "(352) 555-0199")]),
    ("NHC: 368503.", [("ID", "368503")]),
    ("NASS: 26 63514095.", [("ID", "26 63514095")]),
    ("NºCol: 28 28 70973.", [("ID", "28 28 70973")]),
    ("MRN 00451234 on file", [("ID", "00451234")]),
    ("DNI 12345678Z presentado", [("ID", "12345678Z")]),
    ("nacido el 03/03/1946.", [("DATE", "03/03/1946")]),
    ("on 2016-12-31 and 12.11.16", [("DATE", "2016-12-31"), ("DATE", "12.11.16")]),
    ("en 03/2016 ingresó", [("DATE", "03/2016")]),
    ("el 5 de marzo de 2014 y en mayo de 2015", [("DATE", "5 de marzo de 2014"), ("DATE", "mayo de 2015")]),
    ("seen March 3, 2016 and 4th of July 2019", [("DATE", "March 3, 2016"), ("DATE", "4th of July 2019")]),
    ("CP: 28016.", [("ZIP", "28016")]),
    ("Edad: 70 años Sexo: H", [("AGE", "70 años")]),
    ("Paciente de 70 años de edad", [("AGE", "70 años")]),
    ("varón de 45 años con", [("AGE", "45 años")]),
    ("a 54-year-old man, aged 61", [("AGE", "54"), ("AGE", "61")]),
])
def test_recognizer_fires(text, expected):
    assert _found(text) == expected


@pytest.mark.parametrize("text", [
    "dosis @ 5 mg; user@localhost",  # not an address
    "i.v. and e.g. are not URLs",
    "version 1.2.3 and 300.1.1.1 and 10.0.0.1.5",  # not IPv4
    "TA 120/80 mmHg, ratio 3/4, 1.5-2.0 cm, 45/90/2016",  # not dates (no year, day > 31, month > 12)
    "on 31/31/2016 or 2016-13-01",
    "plaquetas 150000 y leucocitos 12.500",  # numbers without an ID label
    "no presentaba 15000 lesiones",  # Spanish 'no' is not 'nº'
    "hace 3 años, durante 2 años",  # durations, not ages
    "tamaño de 28016 micras",  # five digits without a postal label
    "OCT 3000, Heidelberg",  # a device, not a date
    "telephone follow-up in 2 weeks",  # a phone label without a number
    "ID badge 12",  # too few digits for an identifier
    "a 150-year-old tree",  # ages over 125 are not ages
])
def test_recognizer_near_misses(text):
    assert _found(text) == []


def test_context_is_on_the_same_line_and_within_the_window():
    assert _found("NHC:\n368503") == []
    assert _found("NHC " + "x" * 50 + " 368503") == []
    assert _found("NHC " + "x" * 50 + " 368503", context_window=80) == [("ID", "368503")]


def test_type_map_and_recipe_for_labels():
    meddocan = P.recipe_for_labels(["O", "B-FECHAS", "I-FECHAS", "B-CORREO_ELECTRONICO", "B-NOMBRE_SUJETO_ASISTENCIA"])
    assert meddocan.type_map == {"DATE": "FECHAS", "EMAIL": "CORREO_ELECTRONICO"}
    assert {P.RECOGNIZERS[n].kind for n in meddocan.recognizers} == {"DATE", "EMAIL"}  # no label: not run
    m = P.PatternMatcher(meddocan)
    assert [(s.type, s.source) for s in m.find("a@b.es el 3 de mayo de 2014")] == [
        ("CORREO_ELECTRONICO", "pattern:email"), ("FECHAS", "pattern:date_text_es")]
    i2b2 = P.recipe_for_labels(["O", "B-DATE", "B-PHONE", "B-PATIENT"])
    assert i2b2.type_map == {"DATE": "DATE", "PHONE": "PHONE"}
    with pytest.raises(ConfigError, match="unknown recognizer"):
        P.PatternRecipe(recognizers=("email", "ssn_us"))
    with pytest.raises(ConfigError, match="unknown kind"):
        P.PatternRecipe(type_map={"NAME": "PATIENT"})


def test_recipe_round_trips_through_json():
    r = P.PatternRecipe(recognizers=("email", "id_context"), type_map={"ID": "IDNUM"}, authoritative=("EMAIL",),
                        deny=(P.ListEntry("Dr. Zamora", "DOCTOR"), P.ListEntry(r"HC-\d+", "IDNUM", True)),
                        allow=(P.ListEntry("Parkinson"),), context_window=30)
    back = P.PatternRecipe.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    with pytest.raises(InputError, match="config.json: not a pattern recipe"):
        P.PatternRecipe.from_dict({"type_map": {}}, "config.json")


def test_deny_and_allow_lists(tmp_path):
    deny = tmp_path / "deny.tsv"
    deny.write_text("# staff\nDOCTOR\tZamora\nIDNUM\tre:HC-\\d{3,}\n\n", encoding="utf-8")
    allow = tmp_path / "allow.txt"
    allow.write_text("Parkinson\nre:\\d{5}\n", encoding="utf-8")
    r = P.PatternRecipe(recognizers=("postal_code",), deny=P.read_list_file(str(deny), deny=True),
                        allow=P.read_list_file(str(allow), deny=False))
    m = P.PatternMatcher(r)
    text = "Dra. zamora vio HC-4471; CP 28016; Zamorano no; Parkinson"
    got = [(s.type, s.source, text[s.start:s.end]) for s in m.find(text)]
    # deny: case-insensitive whole words, and regexes; the allow list removed the postal code
    assert got == [("DOCTOR", "deny_list", "zamora"), ("IDNUM", "deny_list", "HC-4471")]
    # the allow list drops model spans whose text it matches in full; deny wins over allow
    model = [P.Span(text.index("Parkinson"), len(text), "PATIENT", "model", 0.9)]
    assert [s.source for s in m.merge(text, model)] == ["deny_list", "deny_list"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("DOCTOR\tZamora\nre:(unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.tsv:2: a deny-list line needs a type"):
        P.read_list_file(str(bad), deny=True)
    with pytest.raises(InputError, match=r"bad\.tsv:2: bad regex"):
        P.read_list_file(str(bad), deny=False)
    with pytest.raises(InputError, match="list file not found"):
        P.read_list_file(str(tmp_path / "none.txt"), deny=False)


def test_merge_policy():
    S = P.Span
    model = [S(0, 5, "NAME", "model", 0.8), S(10, 20, "ID", "model", 0.6), S(30, 34, "DATE", "model", 0.9),
             S(50, 60, "LOC", "model", 0.7)]
    found = [S(12, 16, "PHONE", "pattern:phone_context"),  # inside a longer model span: the model's span and type
             S(28, 40, "DATE_X", "pattern:date_numeric"),  # longer than the model's: its extent, model's type
             S(55, 65, "EMAIL", "pattern:email"),  # partial overlap, authoritative: union, the pattern's type
             S(70, 75, "AGE", "pattern:age_es")]  # alone: kept as found
    merged = P.merge_spans(model, found, lambda s: s.type == "EMAIL")
    assert [(s.start, s.end, s.type, s.source, s.score) for s in merged] == [
        (0, 5, "NAME", "model", 0.8),
        (10, 20, "ID", "model+pattern:phone_context", 0.6),
        (28, 40, "DATE", "model+pattern:date_numeric", 0.9),
        (50, 65, "EMAIL", "model+pattern:email", 0.7),
        (70, 75, "AGE", "pattern:age_es", None)]
    # a chain of overlaps is one span; the longest model span names it
    chain = P.merge_spans([S(0, 4, "A", "model"), S(6, 20, "B", "model")], [S(3, 7, "C", "pattern:x")])
    assert [(s.start, s.end, s.type) for s in chain] == [(0, 20, "B")]
    assert P.merge_spans([], []) == []
