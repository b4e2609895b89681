"""WordPieceVocabulary vs HuggingFace's BertTokenizer, offsets, casing inference, errors.

The reference is ``transformers.BertTokenizer`` (tokenizers-backed in transformers 5), built
on the same vocab.txt. The vocab is derived from synthetic notes so most clinical words
tokenize into real multi-piece splits, while "z" has no "##z" continuation so some words
fall back to [UNK].
"""

from __future__ import annotations

import collections
import logging
import pickle
import re
import unicodedata

import numpy as np
import pytest
import seqio
import tensorflow as tf
import transformers

from gatortron_jax.sample_data import corpus as synthetic
from gatortron_jax.text.wordpiece import WordPieceVocabulary, infer_lowercase
from gatortron_jax.core.errors import InputError

# Deliberately not BERT's usual order, so no code can get away with hard-coded ids.
SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused2]"]
SUBWORDS = ["##s", "##ed", "##ing", "##ly", "##mg", "##kg", "##h", "##ine", "##ol", "##ide", "##itis",
            "##emia", "##ation", "##ic", "##al", "##ase", "##er", "##ion", "##ent", "##ate", "##on", "##in"]
EXTRA_CHARS = ["σας", "σασ", "µ", "μ", "°", "≥", "≤", "é", "→", "中", "文", "σ", "ς", "½", "²", "ß", "“", "”", "—"]

EDGE_CASES = [
    "Pt c/o SOB x3 days, s/p CABG (2085); HTN, DM2, CHF.",
    "metoprolol tartrate 25 mg PO BID; vancomycin 15mg/kg IV q12h; heparin 80 units/kg",
    "Temp 38.2°C, SpO2 ≥ 92%, levothyroxine 88 µg daily, K ≤ 3.5 → replete",
    "Café au lait spots; naïve patient; résumé; CAFÉ; Zoë",
    "decomposed accents: cafe\u0301 and re\u0301sume\u0301",
    "CJK: 患者主诉头痛 (headache) 中文 mixed中文text",
    "Hangul 환자 and kana かんじゃ and Arabic مريض",
    "Greek: ΣΑΣ σας Σ μg vs µg (micro sign)",
    "Turkish İstanbul and German Straße STRASSE",
    "ligature ﬁbrosis, fullwidth ＨＴＮ５ｍｇ, superscript x² ½",
    "controls:\x00null\u00adsoft\u200bzw\ufeffbom\ufffdrepl\x07bell end",
    "spaces:\u00a05\u00a0mg\u2009q6h\u3000done\u2028line\u2029para\tTab\r\nCRLF\x0bVT\x0cFF\x85NEL",
    "emoji 💊💉 and symbols ™ © ± § ¶ • … — – “quotes” ‘single’ «guillemets»",
    "long word " + "a" * 100 + " and longer " + "a" * 101 + " end",
    "long unicode " + "é" * 60 + " " + "中" * 3,  # > 100 bytes but < 100 characters
    "long mixed " + "ab" * 50 + " " + "ab" * 51,
    "punctuation!!! (a)[b]{c}<d> e@f.g #h $i %j ^k &l *m _n +o =p |q ~r `s 'u\" v\\w",
    "numbers 1,234.56 3/4 10e-3 -5 +7 0.5mg 5mg/kg/day 100mL/h",
    "   leading and trailing spaces   ",
    "",
    "\n\n",
    "zzz quizzical jazz pizza",
]


def _write(path, tokens) -> str:
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def notes() -> list[str]:
    return [t for _, t in synthetic.generate_corpus(40, seed=11)]


@pytest.fixture(scope="module")
def sentences(notes) -> list[str]:
    lines = [line for note in notes for line in note.split("\n") if line.strip()]
    return lines[::3][:300] + EDGE_CASES + notes[:3]  # short lines plus a few whole notes


@pytest.fixture(scope="module")
def vocab_files(tmp_path_factory, notes) -> dict[str, str]:
    text = "\n".join(notes)
    counts = collections.Counter(re.findall(r"[A-Za-z]+", text))
    lower_counts = collections.Counter()
    for w, n in counts.items():
        lower_counts[w.lower()] += n
    base = [w for w, _ in lower_counts.most_common(300)]
    chars = [c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + [chr(c) for c in range(33, 127)
                                                                  if not chr(c).isalnum()]
    cont = ["##" + c for c in "abcdefghijklmnopqrstuvwxy0123456789"] + ["##é", "##ß"]  # no "##z"
    uncased = SPECIALS + list(dict.fromkeys(base + chars + EXTRA_CHARS + cont + SUBWORDS + ["cafe", "istanbul"]))
    upper = [w for w, _ in counts.most_common(400) if w[:1].isupper()]
    cased_extra = upper + [c.upper() for c in "abcdefghijklmnopqrstuvwxyz"] + ["##" + c.upper() for c in "abcdefgh"]
    cased = uncased + [w for w in dict.fromkeys(cased_extra + ["Café", "café", "CAF", "##É"]) if w not in uncased]
    d = tmp_path_factory.mktemp("vocab")
    return {"uncased": _write(d / "uncased.txt", uncased), "cased": _write(d / "cased.txt", cased)}


@pytest.fixture(scope="module", params=[("uncased", True), ("cased", False)], ids=["uncased", "cased"])
def pair(request, vocab_files):
    name, lower = request.param
    ours = WordPieceVocabulary(vocab_files[name], lowercase=lower)
    hf = transformers.BertTokenizer(vocab_files[name], do_lower_case=lower)
    return ours, hf


def _hf_ids(hf, texts: list[str]) -> list[list[int]]:
    return hf(texts, add_special_tokens=False)["input_ids"]


def test_python_encode_matches_hf(pair, sentences) -> None:
    ours, hf = pair
    expected = _hf_ids(hf, sentences)
    mismatches = [i for i, (s, e) in enumerate(zip(sentences, expected)) if ours.encode(s) != e]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {sentences[mismatches[0]]!r}"
    # The comparison must be meaningful: real splits, real [UNK]s, and cased != uncased.
    flat = [i for e in expected for i in e]
    assert flat.count(ours.unk_id) > 10 and len(flat) > 5000
    assert sum(ours.id_to_token(i).startswith("##") for i in flat) > 500


def test_tf_encode_matches_hf(pair, sentences) -> None:
    ours, hf = pair
    expected = _hf_ids(hf, sentences)
    batch = ours.encode_tf(tf.constant(sentences))
    assert isinstance(batch, tf.RaggedTensor) and batch.dtype == tf.int32
    got = batch.to_list()
    mismatches = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {sentences[mismatches[0]]!r}"
    for s, e in zip(EDGE_CASES[:6], _hf_ids(hf, EDGE_CASES[:6])):  # scalar path too
        out = ours.encode_tf(tf.constant(s))
        assert out.shape.rank == 1 and out.dtype == tf.int32 and out.numpy().tolist() == e


def test_cased_and_uncased_differ(vocab_files) -> None:
    text = "Café HTN The Patient"
    lower = WordPieceVocabulary(vocab_files["cased"], lowercase=True).encode(text)
    cased = WordPieceVocabulary(vocab_files["cased"], lowercase=False).encode(text)
    assert lower != cased


def _norm(text: str, lowercase: bool) -> str:
    text = "".join(c for c in text if c in "\t\n\r" or not (unicodedata.category(c).startswith("C") or c == "\ufffd"))
    if lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        text = text.replace("Σ", "σ").lower()
    return text


def test_offsets_map_back_to_text(pair, sentences) -> None:
    ours, hf = pair
    checked = 0
    for text in sentences:
        ids, starts, ends = ours.encode_with_offsets(text)
        assert ids == ours.encode(text)
        assert len(ids) == len(starts) == len(ends)
        assert starts == sorted(starts)
        for i, s, e in zip(ids, starts, ends):
            assert 0 <= s < e <= len(text)
            if i == ours.unk_id:
                assert text[s:e].strip() == text[s:e]
                continue
            piece = ours.id_to_token(i).removeprefix("##")
            assert _norm(text[s:e], ours.lowercase) == piece, (text[s:e], piece)
            checked += 1
    assert checked > 5000


def test_offsets_match_hf(pair, sentences) -> None:
    """Same spans as HF's offset_mapping, except that we keep a stripped combining accent
    inside the span of the letter it decorates (HF cuts it off) so NER spans cover whole glyphs."""
    ours, hf = pair
    for text in sentences:
        expected = [tuple(x) for x in hf(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]
        _, starts, ends = ours.encode_with_offsets(text)
        for s, e, (hs, he) in zip(starts, ends, expected):
            if (s, e) != (hs, he):
                assert ours.lowercase and s == hs and e > he, (text, s, e, hs, he)
                assert all(unicodedata.category(c) == "Mn" for c in text[he:e])


def test_random_mixes_of_ascii_and_unicode_match_hf(pair) -> None:
    """The normaliser takes ASCII a run at a time and other chars one at a time, and words are
    found by one regex over ASCII stand-ins: random strings that cross those boundaries at every
    position (controls inside ASCII runs, accents after ASCII letters, Unicode spaces and
    punctuation between words) must still give HF's ids and offsets."""
    import random

    ours, hf = pair
    alphabet = list("aAbBcCeEzZ09 .,;(-/\t\n\r") + [
        "\x00", "\x07", "\x0b", "\x1f", "\x7f", "\u00ad", "\u200b", "\ufffd", "é", "É", "\u0301", "中", "Σ",
        "ß", "İ", "µ", "°", "\u00a0", "\u3000", "\u2028", "ﬁ", "💊", "«", "—", "½"]
    rng = random.Random(0)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(400)]
    assert [ours.encode(t) for t in texts] == _hf_ids(hf, texts)
    for text in texts:
        expected = hf(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        _, starts, ends = ours.encode_with_offsets(text)
        assert len(starts) == len(expected)
        for s, e, (hs, he) in zip(starts, ends, expected):  # as test_offsets_match_hf: accents stay inside
            assert (s, e) == (hs, he) or (ours.lowercase and s == hs and e > he), (text, s, e, hs, he)


def test_offsets_examples(vocab_files) -> None:
    v = WordPieceVocabulary(vocab_files["uncased"], lowercase=True)
    text = "Pt café cafe\u0301 zzz."
    ids, starts, ends = v.encode_with_offsets(text)
    spans = [text[s:e] for s, e in zip(starts, ends)]
    assert spans[0] == "Pt" and "café" in spans and "cafe\u0301" in spans  # accent included in the span
    assert ids[spans.index("zzz")] == v.unk_id and spans[-1] == "."


def test_literal_special_text_is_not_a_control_token(vocab_files) -> None:
    v = WordPieceVocabulary(vocab_files["uncased"], lowercase=True)
    ids = v.encode("[MASK] [CLS]")
    assert v.mask_id not in ids and v.cls_id not in ids
    assert ids == v.encode_tf(tf.constant("[MASK] [CLS]")).numpy().tolist()


def test_casing_inference(vocab_files, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="gatortron_jax.text.wordpiece"):
        assert WordPieceVocabulary(vocab_files["cased"]).lowercase is False
        assert WordPieceVocabulary(vocab_files["uncased"]).lowercase is True
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("cased (lowercase=False)" in m for m in msgs) == 1
    assert sum("uncased (lowercase=True)" in m for m in msgs) == 1
    assert WordPieceVocabulary(vocab_files["cased"], lowercase=True).lowercase is True
    assert infer_lowercase(["[PAD]", "[UNK]", "the", "##s"]) == (True, 0.0)
    lower, share = infer_lowercase(["[CLS]", "The", "the", "##Ing", "a"])
    assert lower is False and share == pytest.approx(0.5)


def test_ids_and_mlm_interface(vocab_files) -> None:
    v = WordPieceVocabulary(vocab_files["uncased"], lowercase=True)
    assert isinstance(v, seqio.Vocabulary)
    assert (v.pad_id, v.unk_id, v.cls_id, v.sep_id, v.mask_id) == (0, 3, 4, 5, 6)
    assert v.eos_id == v.sep_id and v.vocab_size == len(v.tokens) == v._base_vocab_size
    assert v.special_ids == frozenset({0, 1, 2, 3, 4, 5, 6, 7})
    mask = v.word_start_mask()
    assert mask.dtype == np.bool_ and mask.shape == (v.vocab_size,)
    assert all(mask[i] == (not t.startswith("##")) for i, t in enumerate(v.tokens))
    assert mask[list(v.special_ids)].all()
    assert v.token_to_id("no-such-token") == v.unk_id and v.id_to_token(v.mask_id) == "[MASK]"


def test_decode_python_and_tf(vocab_files) -> None:
    v = WordPieceVocabulary(vocab_files["uncased"], lowercase=True)
    ids = v.encode("Patient denies chest pain")
    assert any(v.id_to_token(i).startswith("##") for i in v.encode("pruritus hyperlipidemia"))
    text = v.decode([v.cls_id] + ids + [v.sep_id] + ids + [v.pad_id])  # stops at the first [SEP]
    assert text == "patient denies chest pain"
    tf_text = v.decode_tf(tf.constant([v.cls_id] + ids + [v.sep_id, v.pad_id], tf.int32)).numpy().decode()
    assert tf_text == text
    pieces = v.encode("pruritus")
    assert v.decode(pieces) == "pruritus" == v.decode_tf(tf.constant(pieces)).numpy().decode()
    width = max(len(pieces), len(ids)) + 1
    rows = [r + [v.pad_id] * (width - len(r)) for r in (pieces, ids)]
    batch = v.decode_tf(tf.constant(rows)).numpy()
    assert [b.decode() for b in batch] == ["pruritus", "patient denies chest pain"]


def test_encode_tf_in_tf_data_graph(vocab_files) -> None:
    """seqio maps encode_tf inside tf.data (graph mode) on a fresh vocab: tables must lift out."""
    v = WordPieceVocabulary(vocab_files["cased"], lowercase=False)
    texts = ["Pt c/o SOB.", "", "café 5mg/kg q6h " + "a" * 101]
    ds = tf.data.Dataset.from_tensor_slices(texts).map(v.encode_tf)
    assert [x.numpy().tolist() for x in ds] == [v.encode(t) for t in texts]


def test_pickle_and_equality(vocab_files) -> None:
    v = WordPieceVocabulary(vocab_files["uncased"], lowercase=True)
    v.encode_tf(tf.constant("x"))  # materialise TF state; pickling must still work
    w = pickle.loads(pickle.dumps(v))
    assert w == v and hash(w) == hash(v)
    assert w.encode_tf(tf.constant("Pt c/o SOB")).numpy().tolist() == v.encode("Pt c/o SOB")
    assert v != WordPieceVocabulary(vocab_files["uncased"], lowercase=False)
    assert v != WordPieceVocabulary(vocab_files["cased"], lowercase=True)


# ---- error cases ------------------------------------------------------------------------


def test_missing_file(tmp_path) -> None:
    path = str(tmp_path / "nope.txt")
    with pytest.raises(InputError, match=re.escape(path) + ".*not found"):
        WordPieceVocabulary(path)
    with pytest.raises(InputError, match="is a directory"):
        WordPieceVocabulary(str(tmp_path))


@pytest.mark.parametrize("content", [b"", b"\n\n", b"  \n"])
def test_empty_file(tmp_path, content) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(str(path)) + ".*empty"):
        WordPieceVocabulary(str(path))


def test_duplicate_token_names_line(tmp_path) -> None:
    path = _write(tmp_path / "vocab.txt", SPECIALS + ["the", "pt", "the"])
    with pytest.raises(InputError, match=re.escape(path) + r", line 11: duplicate token 'the' \(first on line 9\)"):
        WordPieceVocabulary(path)


def test_missing_specials(tmp_path) -> None:
    path = _write(tmp_path / "vocab.txt", ["[PAD]", "[UNK]", "[SEP]", "the"])
    with pytest.raises(InputError, match=re.escape(path) + r".*\[CLS\], \[MASK\]"):
        WordPieceVocabulary(path)


def test_bad_lines(tmp_path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes("\n".join(SPECIALS).encode() + b"\nok\n\xff\xfe\n")
    with pytest.raises(InputError, match=re.escape(str(path)) + ", line 10: not valid UTF-8"):
        WordPieceVocabulary(str(path))
    path.write_bytes("\n".join(SPECIALS).encode() + b"\n\nthe\n")
    with pytest.raises(InputError, match=re.escape(str(path)) + ", line 9: blank line"):
        WordPieceVocabulary(str(path))
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(SPECIALS + ["the"]).encode() + b"\r\n\r\n\n")  # BOM, CRLF
    v = WordPieceVocabulary(str(path), lowercase=True)
    assert v.vocab_size == len(SPECIALS) + 1 and v.pad_id == 0 and v.encode("The") == [8]
