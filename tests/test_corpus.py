"""TextCorpusSource: layouts, splits, sharding, and PHI-free input errors."""

import json
from pathlib import Path

import pytest
import seqio

from gatortron_jax.pretraining.corpus import TextCorpusSource
from gatortron_jax.core.errors import InputError

SECRET = "PATIENT_SECRET_TEXT"  # must never show up in an error message


def _docs(source: TextCorpusSource, split: str, **kwargs) -> list[tuple[str, str]]:
    ds = source.get_dataset(split, **{"shuffle": False, **kwargs})
    return [(ex["id"].decode(), ex["text"].decode()) for ex in ds.as_numpy_iterator()]


def _doc_per_file_corpus(root: Path, n: int = 40) -> Path:
    for i in range(n):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"note{i:02d}.txt").write_text(f"note {i}\nsecond line of {i}\n", encoding="utf-8")
    return root


def test_missing_and_empty_dirs_raise(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path / "nope")):
        TextCorpusSource(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("not a corpus file")
    with pytest.raises(InputError, match=f"no .* documents found under {tmp_path / 'empty'}"):
        TextCorpusSource(str(tmp_path / "empty"))
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "a.txt").write_text("")
    with pytest.raises(InputError, match=str(tmp_path / "zero")):
        TextCorpusSource(str(tmp_path / "zero"))


def test_whitespace_only_corpus_fails_validation(tmp_path):
    (tmp_path / "a.txt").write_text("  \n\n\t\n")
    with pytest.raises(InputError, match="no non-empty documents"):
        TextCorpusSource(str(tmp_path), validation_fraction=0.0).validate()


def test_non_utf8_file_names_path_and_byte_offset(tmp_path):
    _doc_per_file_corpus(tmp_path, 4)
    bad = tmp_path / "b" / "bad.txt"
    bad.write_bytes(f"{SECRET} line one\nline two \xe9t\xe9\n".encode("latin-1"))
    offset = len(f"{SECRET} line one\nline two ")
    source = TextCorpusSource(str(tmp_path), validation_fraction=0.0, strict=True)
    with pytest.raises(InputError) as err:
        source.validate()
    msg = str(err.value)
    assert str(bad) in msg and f"byte offset {offset}" in msg and "line 2" in msg
    assert SECRET not in msg

    lines = TextCorpusSource(str(tmp_path), doc_per_line=True, validation_fraction=0.0, strict=True)
    with pytest.raises(InputError, match=f"bad.txt: not valid UTF-8 at byte offset {offset}") as err:
        lines.validate()
    assert SECRET not in str(err.value)
    # While tf.data iterates, TF wraps the error but keeps the message.
    with pytest.raises(Exception, match=f"byte offset {offset}"):
        _docs(lines, "train")


def test_non_utf8_is_replaced_and_counted_by_default(tmp_path, caplog):
    _doc_per_file_corpus(tmp_path, 4)
    bad = tmp_path / "b" / "bad.txt"
    bad.write_bytes(f"{SECRET} line one\nline two \xe9t\xe9\n".encode("latin-1"))
    offset = len(f"{SECRET} line one\nline two ")
    source = TextCorpusSource(str(tmp_path), validation_fraction=0.0)
    stats = source.validate()["train"]
    assert (stats.read, stats.used, stats.flagged["replaced_bytes"], stats.replaced_sequences) == (5, 5, 1, 2)
    assert dict(_docs(source, "train"))["b/bad.txt"] == f"{SECRET} line one\nline two \ufffdt\ufffd\n"
    warnings = [r.getMessage() for r in caplog.records if "replaced with U+FFFD" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per file, not once per pass
    assert str(bad) in warnings[0] and f"byte offset {offset}" in warnings[0] and "line 2" in warnings[0]
    assert SECRET not in caplog.text


def test_doc_per_file_ids_split_and_determinism(tmp_path):
    _doc_per_file_corpus(tmp_path)
    source = TextCorpusSource(str(tmp_path), validation_fraction=0.25)
    train, val = _docs(source, "train"), _docs(source, "validation")
    train_ids, val_ids = {i for i, _ in train}, {i for i, _ in val}
    assert not train_ids & val_ids
    assert train_ids | val_ids == {f"{'a' if i % 2 else 'b'}/note{i:02d}.txt" for i in range(40)}
    assert 0 < len(val_ids) < 20
    for doc_id, text in train + val:
        i = int(doc_id[-6:-4])
        assert text == f"note {i}\nsecond line of {i}\n"
    again = TextCorpusSource(str(tmp_path), validation_fraction=0.25)
    assert _docs(again, "train") == train and _docs(again, "validation") == val
    assert source.list_shards("validation") == sorted(val_ids)


def test_doc_per_line_and_jsonl_ids(tmp_path):
    (tmp_path / "notes.txt").write_text("first note\n\n   \nfourth note\n")
    (tmp_path / "more.jsonl").write_text(
        "\n".join(json.dumps({"text": t, "mrn": "x"}) for t in ["j one", "", "j three\nwith newline"])
    )
    source = TextCorpusSource(str(tmp_path), doc_per_line=True, validation_fraction=0.0)
    assert _docs(source, "train") == [
        ("more.jsonl:1", "j one"),
        ("more.jsonl:3", "j three\nwith newline"),
        ("notes.txt:1", "first note"),
        ("notes.txt:4", "fourth note"),
    ]
    assert source.skipped_empty["train"] == 3  # counted, not silently dropped
    stats = source.validate()
    assert (stats["train"].documents, stats["train"].empty_documents) == (4, 3)
    assert source.num_input_examples("train") == 4


def test_jsonl_is_per_line_even_without_flag(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    source = TextCorpusSource(str(tmp_path), validation_fraction=0.0)
    assert [i for i, _ in _docs(source, "train")] == ["a.jsonl:1", "a.jsonl:2"]


def test_bad_jsonl_names_file_and_line(tmp_path):
    (tmp_path / "a.jsonl").write_text(f'{{"text": "ok"}}\n{{"text": "{SECRET}"\n')
    with pytest.raises(InputError, match=r"a.jsonl:2: invalid JSON") as err:
        TextCorpusSource(str(tmp_path), validation_fraction=0.0, strict=True).validate()
    assert SECRET not in str(err.value)
    lenient = TextCorpusSource(str(tmp_path), validation_fraction=0.0)  # default: skip and count
    assert lenient.validate()["train"].skipped == {"invalid_json": 1}
    assert [(i.path, i.line) for i in lenient.file_issues.values()] == [(str(tmp_path / "a.jsonl"), 2)]
    (tmp_path / "a.jsonl").write_text(f'{{"body": "{SECRET}"}}\n')
    with pytest.raises(InputError, match=r'a.jsonl:1: .*"text" field') as err:
        TextCorpusSource(str(tmp_path), validation_fraction=0.0, strict=True).validate()
    assert SECRET not in str(err.value)
    with pytest.raises(InputError, match=r"no non-empty documents \(skipped: no_text 1\)") as err:
        TextCorpusSource(str(tmp_path), validation_fraction=0.0).validate()
    assert SECRET not in str(err.value)


def test_doc_per_line_hashed_split_is_disjoint_and_complete(tmp_path):
    (tmp_path / "notes.txt").write_text("\n".join(f"note number {i}" for i in range(200)))
    source = TextCorpusSource(str(tmp_path), doc_per_line=True, validation_fraction=0.2)
    train, val = dict(_docs(source, "train")), dict(_docs(source, "validation"))
    assert not set(train) & set(val)
    assert len(train) + len(val) == 200
    assert 20 <= len(val) <= 60
    assert dict(_docs(TextCorpusSource(str(tmp_path), doc_per_line=True, validation_fraction=0.2), "validation")) == val


def test_explicit_train_validation_dirs(tmp_path):
    for split, n in (("train", 3), ("validation", 2)):
        (tmp_path / split).mkdir()
        for i in range(n):
            (tmp_path / split / f"{i}.txt").write_text(f"{split} {i}")
    source = TextCorpusSource(str(tmp_path), validation_fraction=0.5)  # fraction unused
    assert [i for i, _ in _docs(source, "train")] == ["train/0.txt", "train/1.txt", "train/2.txt"]
    assert [i for i, _ in _docs(source, "validation")] == ["validation/0.txt", "validation/1.txt"]
    (tmp_path / "validation" / "0.txt").unlink()
    (tmp_path / "validation" / "1.txt").unlink()
    with pytest.raises(InputError, match=str(tmp_path / "validation")):
        TextCorpusSource(str(tmp_path))


def test_sharding_and_shuffling(tmp_path):
    _doc_per_file_corpus(tmp_path)
    source = TextCorpusSource(str(tmp_path), validation_fraction=0.0)
    shards = [
        [i for i, _ in _docs(source, "train", shard_info=seqio.ShardInfo(k, 3))] for k in range(3)
    ]
    assert sorted(sum(shards, [])) == source.list_shards("train")
    assert all(shards) and len(set(sum(shards, []))) == 40
    a = [i for i, _ in _docs(source, "train", shuffle=True, seed=3)]
    b = [i for i, _ in _docs(source, "train", shuffle=True, seed=3)]
    c = [i for i, _ in _docs(source, "train", shuffle=True, seed=4)]
    assert a == b and a != c and sorted(a) == sorted(c) == source.list_shards("train")
    # Each pass over the same dataset reshuffles; a rebuilt dataset replays pass 0, 1, ...
    ds = source.get_dataset("train", shuffle=True, seed=3).repeat(2)
    ids = [ex["id"].decode() for ex in ds.as_numpy_iterator()]
    assert ids[:40] == a and ids[40:] != a and sorted(ids[40:]) == sorted(a)


def test_unknown_split_is_config_error(tmp_path):
    _doc_per_file_corpus(tmp_path, 2)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        TextCorpusSource(str(tmp_path)).get_dataset("test")
