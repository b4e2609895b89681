"""Input hardening: odd bytes and odd files in, every document accounted for, no text out."""

import json
import logging
from pathlib import Path

import pytest

from gatortron_jax.cli import main as cli
from gatortron_jax.annotations import input_policy as input_report
from gatortron_jax.text import vocab as vocab_lib
from gatortron_jax.pretraining.corpus import TextCorpusSource
from gatortron_jax.annotations.input_policy import InputReport
from gatortron_jax.core.errors import InputError

SECRET = "PATIENT_SECRET_TEXT"  # must never show up in a log, an error or a report
BOM = b"\xef\xbb\xbf"


def _docs(source: TextCorpusSource, split: str = "train") -> list[tuple[str, str]]:
    ds = source.get_dataset(split, shuffle=False)
    return [(ex["id"].decode(), ex["text"].decode()) for ex in ds.as_numpy_iterator()]


def _source(root: Path, **kwargs) -> TextCorpusSource:
    return TextCorpusSource(str(root), validation_fraction=0.0, **kwargs)


# ----------------------------------------------------------------------------- bytes and lines


def test_bom_is_stripped_and_offsets_still_count_it(tmp_path):
    (tmp_path / "a.txt").write_bytes(BOM + b"line one\nbad \xff here\n")
    per_line = _source(tmp_path, doc_per_line=True)
    assert _docs(per_line)[0] == ("a.txt:1", "line one")
    per_file = _source(tmp_path)
    assert _docs(per_file)[0][1].startswith("line one\nbad \ufffd")
    offset = len(BOM) + len(b"line one\nbad ")  # absolute offset in the file, BOM included
    for doc_per_line in (True, False):
        with pytest.raises(InputError, match=rf"a.txt: not valid UTF-8 at byte offset {offset} \(line 2"):
            _source(tmp_path, doc_per_line=doc_per_line, strict=True).validate()
    (tmp_path / "a.txt").unlink()
    (tmp_path / "b.jsonl").write_bytes(BOM + b'{"text": "first"}\n')
    assert _docs(_source(tmp_path)) == [("b.jsonl:1", "first")]


def test_crlf_line_endings_leave_no_carriage_return(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"one\r\ntwo\r\n")
    (tmp_path / "b.jsonl").write_bytes(b'{"text": "j1"}\r\n{"text": "j2"}\r\n')
    assert _docs(_source(tmp_path, doc_per_line=True)) == [
        ("a.txt:1", "one"), ("a.txt:2", "two"), ("b.jsonl:1", "j1"), ("b.jsonl:2", "j2")]
    (tmp_path / "b.jsonl").unlink()
    assert _docs(_source(tmp_path)) == [("a.txt", "one\ntwo\n")]


def test_empty_files(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "note.txt").write_text("a note")
    per_file = _source(tmp_path).validate()["train"]
    assert (per_file.read, per_file.used, dict(per_file.skipped)) == (2, 1, {"empty": 1})  # counted, not lost
    per_line = _source(tmp_path, doc_per_line=True).validate()["train"]
    assert (per_line.read, per_line.used) == (1, 1)  # a file with no lines holds no documents
    (tmp_path / "note.txt").write_bytes(b"")
    with pytest.raises(InputError, match="every document file .* is empty"):
        _source(tmp_path)


@pytest.mark.parametrize("doc_per_line", [True, False])
def test_ten_megabyte_single_line_is_read_whole(tmp_path, doc_per_line):
    line = ("0123456789" * (1 << 20)) + "END"  # ~10 MB, one line, no newline
    (tmp_path / "big.txt").write_text(line)
    [(doc_id, text)] = _docs(_source(tmp_path, doc_per_line=doc_per_line))
    assert doc_id == ("big.txt:1" if doc_per_line else "big.txt")
    assert len(text) == len(line) and text.endswith("END")


def test_many_bad_bytes_decode_in_linear_time(tmp_path):
    chunk = b"x" * 99 + b"\xff"
    (tmp_path / "junk.txt").write_bytes(chunk * 20000)  # 2 MB, 20k undecodable bytes
    stats = _source(tmp_path).validate()["train"]
    assert (stats.used, stats.replaced_sequences, stats.replaced_bytes) == (1, 20000, 20000)


# ----------------------------------------------------------------------------- decoding policy


def _bad_note(root: Path) -> tuple[Path, int]:
    path = root / "bad.txt"
    path.write_bytes(f"{SECRET} ok\n".encode() + b"more \xff\xfe text \xc3\n")
    return path, len(f"{SECRET} ok\nmore ".encode())


def test_invalid_utf8_default_is_replaced_counted_and_reported_without_text(tmp_path, caplog):
    path, offset = _bad_note(tmp_path)
    source = _source(tmp_path, doc_per_line=True)
    stats = source.validate()["train"]
    assert (stats.read, stats.used, stats.flagged["replaced_bytes"]) == (2, 2, 1)
    assert (stats.replaced_sequences, stats.replaced_bytes) == (3, 3)  # \xff, \xfe, truncated \xc3
    assert _docs(source)[1] == ("bad.txt:2", "more \ufffd\ufffd text \ufffd")
    [warning] = [r.getMessage() for r in caplog.records if "U+FFFD" in r.getMessage()]
    assert str(path) in warning and f"byte offset {offset}" in warning and "line 2" in warning
    assert "3 undecodable" in warning and "excerpt" not in warning
    assert SECRET not in caplog.text and "more" not in caplog.text
    assert SECRET not in json.dumps(source.input_report())


def test_invalid_utf8_strict_names_file_and_byte_offset(tmp_path):
    path, offset = _bad_note(tmp_path)
    with pytest.raises(InputError) as err:
        _source(tmp_path, strict=True).validate()
    assert str(err.value).startswith(f"{path}: not valid UTF-8 at byte offset {offset} (line 2")
    assert SECRET not in str(err.value)
    assert _source(tmp_path).validate()  # the default policy replaces and counts (no process-wide state)


def test_show_text_adds_a_short_escaped_excerpt_to_the_warning_only(tmp_path, caplog):
    _bad_note(tmp_path)
    source = _source(tmp_path, doc_per_line=True, show_text=True)
    source.validate()
    [warning] = [r.getMessage() for r in caplog.records if "U+FFFD" in r.getMessage()]
    excerpt = warning.split("excerpt (--show_text): ", 1)[1]
    assert len(excerpt) <= 80 and "more \\xff\\xfe text \\xc3" in excerpt
    assert "excerpt" not in json.dumps(source.input_report())  # never persisted
    assert input_report.escaped_excerpt(b"a\nb\\" * 100, 150).isprintable()
    assert len(input_report.escaped_excerpt(b"\x00" * 500, 250)) <= 80


def test_unpaired_surrogate_escape_in_jsonl(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "bad \\ud800 escape"}\n{"text": "pair \\ud83d\\ude00 ok"}\n')
    source = _source(tmp_path)
    assert _docs(source) == [("a.jsonl:1", "bad \ufffd escape"), ("a.jsonl:2", "pair \U0001F600 ok")]
    assert source.pass_stats["train"].replaced_sequences == 1
    with pytest.raises(InputError, match="a.jsonl:1: unpaired surrogate"):
        _source(tmp_path, strict=True).validate()


# ----------------------------------------------------------------------------- ids and accounting


def test_jsonl_record_ids_are_ignored_so_document_ids_stay_unique(tmp_path):
    records = [{"id": "same", "text": "first"}, {"id": "same", "text": "second"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    assert _docs(_source(tmp_path)) == [("a.jsonl:1", "first"), ("a.jsonl:2", "second")]


def _messy_corpus(root: Path) -> int:
    """A corpus with every kind of document; returns the number of documents in it."""
    (root / "notes.jsonl").write_bytes(b"\n".join([
        b'{"text": "good one"}', b"", b'{"text": "   "}', b'{"text": "cut off', b'["not", "an object"]',
        b'{"body": "no text field"}', b'{"text": "bad \xff byte"}', b'{"text": "good two"}',
    ]))
    (root / "lines.txt").write_bytes(b"alpha\n\n  \nbeta \xfe\ngamma")
    return 8 + 5


@pytest.mark.parametrize("fraction", [0.0, 0.4])
def test_every_document_is_used_or_skipped_with_a_reason(tmp_path, fraction, caplog):
    total = _messy_corpus(tmp_path)
    source = TextCorpusSource(str(tmp_path), doc_per_line=True, validation_fraction=fraction)
    stats = source.validate()
    for s in stats.values():
        assert s.read == s.used + sum(s.skipped.values())
    assert sum(s.read for s in stats.values()) == total
    merged = InputReport()
    for s in stats.values():
        merged.merge(s)
    assert dict(merged.skipped) == {"empty": 4, "invalid_json": 1, "no_text": 2}
    assert (merged.used, merged.flagged["replaced_bytes"]) == (6, 2)
    # A full streamed pass counts the same documents as validation did.
    for split in ("train", "validation"):
        assert len(_docs(source, split)) == stats[split].used
        assert source.pass_stats[split].to_dict() == stats[split].to_dict()
    kinds = sorted((Path(i.path).name, i.kind, i.count, i.line) for i in source.file_issues.values())
    assert kinds == [("lines.txt", "replaced_bytes", 1, 4), ("notes.jsonl", "invalid_json", 1, 4),
                     ("notes.jsonl", "no_text", 2, 5), ("notes.jsonl", "replaced_bytes", 1, 7)]
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "notes.jsonl" in r.getMessage()]
    assert len(warned) == 3  # once per file and kind, however many passes read it
    report = source.input_report()
    assert report["validated"] and report["splits"]["train"]["read"] == stats["train"].read


def test_report_formatting_and_imbalance_check():
    r = InputReport(files=2)
    for skip in (None, None, "empty", "invalid_json"):
        r.add(skip)
    r.add(None, replaced_sequences=2, replaced_bytes=3)
    assert r.summary() == (
        "read 5, used 3, skipped 2 (empty 1, invalid_json 1); flagged 1 (replaced_bytes: 2 sequences, 3 bytes)")
    table = input_report.format_table({"train": r}).splitlines()
    assert table[0].split() == ["files", "read", "used", "skip:empty", "skip:invalid_json", "flagged", "replaced"]
    assert table[1].split() == ["train", "2", "5", "3", "1", "1", "1", "2"]
    r.used += 1
    with pytest.raises(RuntimeError, match="accounting"):
        r.check()


# ----------------------------------------------------------------------------- vocabulary and CLI


def test_train_vocab_follows_the_same_policy(tmp_path):
    words = [f"w{i}x{i * 7 % 13}" for i in range(60)]
    (tmp_path / "a.txt").write_text("\n".join(" ".join(words[i:i + 8]) for i in range(50)))
    (tmp_path / "b.jsonl").write_bytes(b'{"text": "w1x7 \xff w2x1"}\n{"text": oops}\n')
    report = InputReport()
    model = vocab_lib.train_sentencepiece([str(tmp_path)], str(tmp_path / "spm"), 20, report=report)
    assert Path(model).is_file()
    assert (report.files, report.read, report.used, dict(report.skipped)) == (2, 52, 51, {"invalid_json": 1})
    assert report.replaced_sequences == 1
    with pytest.raises(InputError, match=r"b.jsonl: not valid UTF-8 at byte offset 15"):
        vocab_lib.train_sentencepiece([str(tmp_path)], str(tmp_path / "spm2"), 20, strict=True)


@pytest.fixture
def bad_corpus(repo_root, tmp_path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for src in sorted((repo_root / "data/sample_corpus/train").glob("*.txt"))[:12]:
        (corpus / src.name).write_bytes(src.read_bytes())
    (corpus / "zz_bad.txt").write_bytes(f"{SECRET} BP 120/80 ".encode() + b"\xff\xfe then more text\n")
    return corpus


BAD_OFFSET = len(f"{SECRET} BP 120/80 ")


def _pretrain(tmp_path: Path, corpus: Path, *extra: str) -> list[str]:
    return ["pretrain", f"--model_dir={tmp_path / 'run'}", "--gin_file=gin/pretrain/sample_tiny.gin",
            f"--gin.MLMDataConfig.corpus_dir='{corpus}'", "--gin.MLMDataConfig.validation_fraction=0.0",
            "--gin.TrainConfig.num_steps=1", "--gin.TrainConfig.batch_size=8", "--gin.TrainConfig.seq_len=32",
            "--gin.TrainConfig.log_every=1", "--gin.TrainConfig.eval_every=0", "--gin.EncoderConfig.num_layers=1",
            "--gin.EncoderConfig.hidden_size=32", "--gin.EncoderConfig.num_heads=2", "--gin.EncoderConfig.mlp_dim=64",
            *extra]


def test_cli_pretrain_default_replaces_counts_and_writes_report(bad_corpus, tmp_path, monkeypatch, repo_root,
                                                                 capsys, caplog):
    monkeypatch.chdir(repo_root)
    caplog.set_level(logging.INFO)
    assert cli.main(_pretrain(tmp_path, bad_corpus)) == 0
    out = capsys.readouterr()
    logs = caplog.text + out.out + out.err
    assert "input summary" in logs and "replaced_bytes: 2 sequences, 2 bytes" in logs
    assert SECRET not in logs and "then more text" not in logs
    report = json.loads((tmp_path / "run" / "input_report.json").read_text())
    assert report["validated"] and not report["strict"]
    train = report["splits"]["train"]
    assert train["read"] == train["used"] == 13 and train["flagged"] == {"replaced_bytes": 1}
    assert [(Path(i["path"]).name, i["offset"]) for i in report["file_issues"]] == [("zz_bad.txt", BAD_OFFSET)]
    assert SECRET not in json.dumps(report)


def test_cli_strict_fails_with_one_error_line(bad_corpus, tmp_path, monkeypatch, repo_root, capsys, caplog):
    monkeypatch.chdir(repo_root)
    caplog.set_level(logging.INFO)
    assert cli.main(_pretrain(tmp_path, bad_corpus, "--strict")) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "zz_bad.txt" in err[0] and f"byte offset {BAD_OFFSET}" in err[0], err
    assert SECRET not in err[0]
    assert not (tmp_path / "run" / "input_report.json").exists()
    assert cli.main(["train-vocab", "--input", str(bad_corpus), "--vocab_size", "100",
                     "--output", str(tmp_path / "v" / "spm"), "--strict"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "zz_bad.txt" in err[0], err
    vocab_args = ["train-vocab", "--input", str(bad_corpus), "--vocab_size", "100", "--output", str(tmp_path / "v" / "spm")]
    assert cli.main(vocab_args) == 0  # the default policy: replaced, counted, summarised
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("input summary: read"))
    assert "flagged 1 (replaced_bytes: 2 sequences, 2 bytes)" in summary  # vocab input is read line by line
    assert SECRET not in caplog.text + capsys.readouterr().err


# ----------------------------------------------------------------------------- annotated notes


def test_ner_task_readers_follow_the_strict_policy(tmp_path, caplog):
    """finetune/evaluate read annotations through the task registry: by default a span that
    does not match its note is dropped with a file:line warning and counted; --strict fails."""
    from gatortron_jax.finetuning.ner_tasks import NERTask, read_brat_path

    d = tmp_path / "train"
    d.mkdir()
    (d / "a.txt").write_text(SECRET + " took aspirin\n", encoding="utf-8")
    (d / "a.ann").write_text("T1\tDrug 25 32\taspirin\nT2\tDrug 0 5\tWrong\n", encoding="utf-8")
    task = NERTask("n2c2_style", read_brat_path, str(tmp_path))  # the built-in n2c2 2018 reader, unregistered
    with caplog.at_level(logging.WARNING):
        (doc,) = task.documents("train")
    assert [e.id for e in doc.entities] == ["T1"]
    assert f"{d / 'a.ann'}:2" in caplog.text and "dropped" in caplog.text and SECRET not in caplog.text
    with pytest.raises(InputError, match=r"a\.ann:2: T2") as ei:
        task.documents("train", strict=True)
    assert SECRET not in str(ei.value)
