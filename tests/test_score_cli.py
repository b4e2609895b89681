"""``gatortron-jax score`` through its CLI module: every format, the table, ``--json``, bad inputs.

The handler is driven through a parser built here with :func:`gatortron_jax.cli.scoring.register`
(the family module the top-level CLI wires in); one test runs the real ``python -m
gatortron_jax.cli score`` and is skipped until the lead adds ``score`` to the CLI.
The expected official figures are those of the per-format tests (from the official scripts).
"""

import argparse
import json
import os
import subprocess
import sys

import pytest

from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.annotations.formats import write_i2b2_2010_con, write_i2b2_2012_xml
from gatortron_jax.annotations.formats.brat import write_text
from gatortron_jax.cli import scoring as cli_scoring
from gatortron_jax.core.errors import InputError
from score_fixtures import conll_pair, i2b2_2014_pair, meddocan_pair, n2c2_2018_pair


def _run(argv, capsys):
    parser = argparse.ArgumentParser(prog="gatortron-jax")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_scoring.register(sub)
    args = parser.parse_args(argv)
    rc = args.handler(args, [])
    return rc, capsys.readouterr()


def test_i2b2_2014_table_json_and_one_warning(tmp_path, capsys, caplog):
    gold, system = i2b2_2014_pair(str(tmp_path / "d"))
    out = tmp_path / "score.json"
    rc, cap = _run(["score", "--format", "i2b2_2014", "--gold", gold, "--system", system, "--json", str(out)], capsys)
    assert rc == 0
    strict = next(line for line in cap.out.splitlines() if line.startswith("Strict "))
    assert strict.split()[1:4] == ["0.4211", "0.4444", "0.4324"]  # the official script's micro Strict
    assert "IDNUM" in cap.out  # says which HIPAA definition is in effect
    missing = [r.getMessage() for r in caplog.records if "no system note" in r.getMessage()]
    assert len(missing) == 1 and "0.4324" in missing[0] and "0.4000" in missing[0]
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data["rows"]["CONTACT Strict"]["macro_f1"] is None  # the script's NaN (macro P = R = 0)
    assert data["format"] == "i2b2_2014" and round(data["rows"]["HIPAA Strict"]["f1"], 4) == 0.4615
    assert data["extra"]["unknown_system_notes"] == ["200-01"]
    rc, cap = _run(["score", "--format", "i2b2_2014", "--gold", gold, "--system", system, "--corrected_hipaa"], capsys)
    hipaa = next(line for line in cap.out.splitlines() if line.startswith("HIPAA Strict "))
    assert hipaa.split()[2:5] == ["0.3889", "0.5385", "0.4516"]


def test_n2c2_2018_and_brat(tmp_path, capsys):
    gold, system = n2c2_2018_pair(str(tmp_path))
    rc, cap = _run(["score", "--format", "n2c2_2018", "--gold", gold, "--system", system], capsys)
    rows = {line.rsplit(")", 1)[0] + ")": line for line in cap.out.splitlines() if "overall (" in line}
    assert rows["Relations overall (strict)"].split()[3:6] == ["0.5385", "0.5385", "0.5385"]
    assert rows["Concepts overall (lenient)"].split()[3:6] == ["0.8333", "0.8333", "0.8333"]
    rc, cap = _run(["score", "--format", "brat", "--gold", gold, "--system", system], capsys)
    assert rc == 0 and "micro (strict)" in cap.out and "no official scorer" in cap.out


def test_meddocan_with_sentences(tmp_path, capsys):
    gold, system, sentences = meddocan_pair(str(tmp_path))
    rc, cap = _run(["score", "--format", "meddocan", "--gold", gold, "--system", system, "--sentences", sentences],
                   capsys)
    line = next(x for x in cap.out.splitlines() if x.startswith("Subtrack 1"))
    assert "0.2727 0.3750 0.3158" in line and "leak=0.7143" in line


def test_conll_and_misaligned_tokens(tmp_path, capsys):
    gold, system = conll_pair(str(tmp_path))
    rc, cap = _run(["score", "--format", "conll", "--gold", gold, "--system", system], capsys)
    assert "0.3750 0.5000 0.4286" in cap.out and "accuracy=0.6818" in cap.out
    lines = open(system, encoding="utf-8").read().split("\n")
    lines[2] = "typo\t" + lines[2].split("\t")[1]
    open(system, "w", encoding="utf-8").write("\n".join(lines))
    with pytest.raises(InputError, match=r"system.conll:3: .*gold.conll:3"):
        _run(["score", "--format", "conll", "--gold", gold, "--system", system], capsys)


def test_bad_inputs_name_file_and_line(tmp_path, capsys):
    gold, system = n2c2_2018_pair(str(tmp_path / "n2c2"))
    with open(os.path.join(system, "102.ann"), "a", encoding="utf-8") as f:
        f.write("T9\tDrug 5 x\tnope\n")
    with pytest.raises(InputError, match=r"102.ann:\d+: malformed offsets"):
        _run(["score", "--format", "n2c2_2018", "--gold", gold, "--system", system], capsys)
    gold, system = conll_pair(str(tmp_path / "conll"))
    with open(system, "a", encoding="utf-8") as f:
        f.write("word\tBAD\n")
    with pytest.raises(InputError, match=r"system.conll:\d+: invalid tag"):
        _run(["score", "--format", "conll", "--gold", gold, "--system", system], capsys)
    with pytest.raises(InputError, match="no such file"):
        _run(["score", "--format", "brat", "--gold", str(tmp_path / "absent"), "--system", system], capsys)


def _clinical_docs(drop: bool) -> list[Document]:
    text = "Patient denies chest pain .\nStarted aspirin on admission .\n"
    ents = [Entity("e1", "problem", ((15, 25),)), Entity("e2", "treatment", ((36, 43),))]
    return [Document("note1", text, ents[:1] if drop else ents)]


@pytest.mark.parametrize("fmt", ["i2b2_2010", "i2b2_2012"])
def test_i2b2_2010_and_2012(tmp_path, capsys, fmt):
    for side, drop in (("gold", False), ("system", True)):
        for doc in _clinical_docs(drop):
            base = tmp_path / side / doc.id
            if fmt == "i2b2_2010":
                write_text(str(base) + ".txt", doc.text)
                write_i2b2_2010_con(doc, str(base) + ".con")
            else:
                doc.entities = [Entity(e.id, e.type.upper(), e.spans) for e in doc.entities]
                write_i2b2_2012_xml(doc, str(base) + ".xml")
    rc, cap = _run(["score", "--format", fmt, "--gold", str(tmp_path / "gold"), "--system",
                    str(tmp_path / "system")], capsys)
    micro = next(line for line in cap.out.splitlines() if line.startswith("micro (strict)"))
    assert micro.split()[2:5] == ["1.0000", "0.5000", "0.6667"]


def _cli_commands() -> set[str]:
    try:
        from gatortron_jax.cli.main import build_parser
    except ImportError:
        return set()
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


@pytest.mark.skipif("score" not in _cli_commands(), reason="score is not wired into the top-level CLI yet")
def test_end_to_end_through_the_cli(tmp_path, repo_root):
    gold, system = i2b2_2014_pair(str(tmp_path / "d"))
    out = tmp_path / "s.json"
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.run([sys.executable, "-m", "gatortron_jax.cli", "score", "--format", "i2b2_2014", "--gold", gold,
                           "--system", system, "--json", str(out)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert round(json.loads(out.read_text())["rows"]["Strict"]["f1"], 4) == 0.4324
    assert proc.stderr.count("no system note") == 1
