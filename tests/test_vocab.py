"""SentencePiece training and the MLMVocabulary contract."""

import random
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from gatortron_jax.text import vocab as vocab_lib
from gatortron_jax.core.errors import InputError


def _write_corpus(path: Path, num_lines: int = 800, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 8))) for _ in range(300)]
    path.write_text(
        "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 20))) for _ in range(num_lines)),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    return _write_corpus(tmp_path_factory.mktemp("vocab_corpus") / "notes.txt")


@pytest.fixture(scope="module")
def model_path(corpus_file, tmp_path_factory) -> str:
    return vocab_lib.train_sentencepiece([str(corpus_file)], str(tmp_path_factory.mktemp("spm") / "spm"), 300)


def test_special_ids_follow_fixed_layout(model_path):
    v = vocab_lib.BertSentencePieceVocabulary(model_path)
    assert (v.pad_id, v.eos_id, v.unk_id, v.cls_id, v.sep_id, v.mask_id) == (0, 1, 2, 3, 4, 5)
    assert v.bos_id == -1
    assert v.vocab_size == 300
    assert v.special_ids == frozenset({0, 1, 2, 3, 4, 5})
    assert isinstance(v, vocab_lib.MLMVocabulary)


def test_word_start_mask(model_path):
    v = vocab_lib.BertSentencePieceVocabulary(model_path)
    mask = v.word_start_mask()
    assert mask.dtype == bool and mask.shape == (v.vocab_size,)
    assert mask[sorted(v.special_ids)].all()
    for i in range(6, v.vocab_size):
        assert mask[i] == v.tokenizer.id_to_piece(i).startswith("\u2581")
    assert not mask.all(), "a 300-piece vocab must contain word-internal pieces"


def test_training_is_deterministic(corpus_file, tmp_path):
    a = vocab_lib.train_sentencepiece([str(corpus_file)], str(tmp_path / "a" / "spm"), 300, seed=7)
    b = vocab_lib.train_sentencepiece([str(corpus_file)], str(tmp_path / "b" / "other"), 300, seed=7)
    assert Path(a).read_bytes() == Path(b).read_bytes()


def test_training_accepts_directories_and_jsonl(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    _write_corpus(d / "a.txt", 200)
    lines = _write_corpus(tmp_path / "b.txt", 200, seed=1).read_text().splitlines()
    (d / "b.jsonl").write_text("\n".join(f'{{"text": "{line}"}}' for line in lines))
    model = vocab_lib.train_sentencepiece([str(d)], str(tmp_path / "spm"), 200)
    assert vocab_lib.BertSentencePieceVocabulary(model).vocab_size == 200


def test_training_errors_name_the_input(tmp_path, corpus_file):
    with pytest.raises(InputError, match="no input paths"):
        vocab_lib.train_sentencepiece([], str(tmp_path / "x"), 100)
    missing = tmp_path / "missing.txt"
    with pytest.raises(InputError, match=str(missing)):
        vocab_lib.train_sentencepiece([str(missing)], str(tmp_path / "x"), 100)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n   \n\n")
    with pytest.raises(InputError, match="no non-blank text.*blank.txt"):
        vocab_lib.train_sentencepiece([str(blank)], str(tmp_path / "x"), 100)
    with pytest.raises(InputError, match=r"vocab_size=100000 is too large.*notes.txt"):
        vocab_lib.train_sentencepiece([str(corpus_file)], str(tmp_path / "x"), 100000)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok line\nbad \xff byte\n")
    with pytest.raises(InputError, match=r"bad.txt: not valid UTF-8 at byte offset 12"):
        vocab_lib.train_sentencepiece([str(bad)], str(tmp_path / "x"), 100, strict=True)


def test_missing_or_invalid_model_raises_input_error(tmp_path, corpus_file):
    missing = str(tmp_path / "nope.model")
    with pytest.raises(InputError, match="nope.model"):
        vocab_lib.BertSentencePieceVocabulary(missing)
    with pytest.raises(InputError, match="nope.model"):
        vocab_lib.load_vocabulary(missing)
    with pytest.raises(InputError, match="notes.txt"):
        vocab_lib.BertSentencePieceVocabulary(str(corpus_file))
    with pytest.raises(InputError, match="unrecognised vocabulary file"):
        (tmp_path / "v.bin").write_bytes(b"")
        vocab_lib.load_vocabulary(str(tmp_path / "v.bin"))


def test_model_without_bert_pieces_is_rejected(tmp_path, corpus_file):
    prefix = str(tmp_path / "plain")
    spm.SentencePieceTrainer.train(
        input=str(corpus_file), model_prefix=prefix, vocab_size=100,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )
    with pytest.raises(InputError, match=r"plain.model has no \[CLS\]"):
        vocab_lib.BertSentencePieceVocabulary(prefix + ".model")


def test_load_vocabulary_picks_sentencepiece(model_path):
    v = vocab_lib.load_vocabulary(model_path)
    assert isinstance(v, vocab_lib.BertSentencePieceVocabulary)
    ids = v.encode("abc def")
    assert ids and all(i not in v.special_ids for i in ids)
    assert np.asarray(v.encode_tf("abc def")).tolist() == list(ids)


def test_training_samples_a_bounded_shuffled_subset(tmp_path):
    """max_sentences bounds what SentencePiece holds; the sample is drawn from the whole input
    (a head-of-file cut would only ever see the first half's alphabet)."""
    rng = random.Random(1)
    first = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 6))) for _ in range(100)]
    second = ["".join(rng.choice("qrstuvwx") for _ in range(rng.randint(2, 6))) for _ in range(100)]
    lines = [" ".join(rng.choice(first) for _ in range(8)) for _ in range(1500)]
    lines += [" ".join(rng.choice(second) for _ in range(8)) for _ in range(1500)]
    (tmp_path / "notes.txt").write_text("\n".join(lines), encoding="utf-8")
    path = vocab_lib.train_sentencepiece([str(tmp_path / "notes.txt")], str(tmp_path / "spm"), 120,
                                         max_sentences=300)
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto.FromString(Path(path).read_bytes())
    assert model.trainer_spec.input_sentence_size == 300 and model.trainer_spec.shuffle_input_sentence
    pieces = [p.piece for p in model.pieces]
    assert any(set(p) & set("abcdefgh") for p in pieces) and any(set(p) & set("qrstuvwx") for p in pieces)
    again = vocab_lib.train_sentencepiece([str(tmp_path / "notes.txt")], str(tmp_path / "b" / "spm"), 120,
                                          max_sentences=300)
    assert Path(again).read_bytes() == Path(path).read_bytes()  # the sample is seeded
