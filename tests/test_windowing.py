"""Windowing of long notes, BIO(ES) labels from spans, repair decoding, merge coverage."""

import numpy as np
import pytest

from gatortron_jax.finetuning import windowing
from gatortron_jax.annotations.documents import Document, Entity
from gatortron_jax.text.vocab import load_vocabulary


@pytest.fixture(scope="module")
def tokenizer(repo_root):
    return windowing.OffsetTokenizer(load_vocabulary(str(repo_root / "data/sample_vocab/spm.model")))


def _whitespace_tokens(text):
    import re

    spans = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
    return np.array([s for s, _ in spans]), np.array([e for _, e in spans])


def test_sentencepiece_offsets_are_characters(tokenizer):
    text = "Pt  denies chest pain.\nBP 120/80, µg dose — ok"
    ids, starts, ends = tokenizer(text)
    assert len(ids) == len(starts) == len(ends) > 5
    for s, e in zip(starts, ends):
        assert 0 <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
    assert (np.diff(starts) > 0).all() and (starts[1:] >= ends[:-1]).all()
    covered = np.zeros(len(text), int)
    for s, e in zip(starts, ends):
        covered[s:e] += 1
    assert all(covered[i] == 1 for i, ch in enumerate(text) if not ch.isspace())
    assert text[starts[-1]:ends[-1]] == "ok"


def test_wordpiece_tokenizer(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "chest", "pain", "##s", "no", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = windowing.OffsetTokenizer(load_vocabulary(str(tmp_path / "vocab.txt")))
    ids, starts, ends = tok("No chest pains.")
    assert [vocab[i] for i in ids] == ["no", "chest", "pain", "##s", "."]
    assert list(zip(starts, ends)) == [(0, 2), (3, 8), (9, 13), (13, 14), (14, 15)]


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_labels_roundtrip_and_conflicts(scheme):
    text = "Severe chest pain and fever with nausea today"
    starts, ends = _whitespace_tokens(text)
    ents = [
        Entity("T1", "problem", ((7, 17),)),  # chest pain
        Entity("T2", "problem", ((22, 27),)),  # fever
        Entity("T3", "test", ((13, 17),)),  # pain: overlaps T1 → conflict
        Entity("T4", "problem", ((33, 39),)),  # nausea
        Entity("T5", "problem", ((33, 34),)),  # inside a token: overlaps T4
        Entity("T6", "problem", ((39, 40),)),  # whitespace only → no tokens
    ]
    labels = windowing.label_list(["problem", "test"], scheme)
    ids, stats = windowing.encode_entity_labels(ents, starts, ends, {l: i for i, l in enumerate(labels)}, scheme)
    assert stats.entities == 6 and stats.encoded == 3 and stats.overlapping == 2 and stats.no_tokens == 1
    got = windowing.tags_to_entities([labels[i] for i in ids], starts, ends, text)
    assert [(e.type, e.spans) for e in got] == [("problem", ((7, 17),)), ("problem", ((22, 27),)), ("problem", ((33, 39),))]


def test_decode_repairs_invalid_sequences():
    tags = ["I-a", "I-a", "O", "B-a", "I-b", "E-b", "S-a", "I-a", "E-a", "B-a", "B-a"]
    assert windowing.decode_tags(tags) == [
        (0, 1, "a"), (3, 3, "a"), (4, 5, "b"), (6, 6, "a"), (7, 8, "a"), (9, 9, "a"), (10, 10, "a"),
    ]


def test_windows_prefer_sentence_boundaries_and_overlap():
    text = " ".join(f"Sentence number {i} has words ." for i in range(40))
    starts, ends = _whitespace_tokens(text)
    windows = windowing.plan_windows(text, starts, ends, max_tokens=20, overlap=5)
    assert windows[0].start == 0 and windows[-1].end == len(starts)
    for w, nxt in zip(windows, windows[1:]):
        assert 0 < w.end - w.start <= 20
        assert nxt.start < w.end and nxt.start > w.start  # overlap and progress
        assert text[ends[w.end - 1] - 1] == "."  # cut after a sentence end


def test_long_note_fully_labelled_exactly_once(tokenizer):
    """A note > 5x the window: every token owned once, every char covered once, oracle merge exact."""
    rng = np.random.default_rng(0)
    words = ["pain", "aspirin", "chest", "fever", "the", "patient", "was", "given", "mg", "daily", "CT", "scan"]
    pieces, ents, pos = [], [], 0
    for i in range(900):
        w = words[rng.integers(len(words))]
        if i % 37 == 36:
            w += "."
        if i % 11 == 0:
            ents.append(Entity(f"T{len(ents) + 1}", "drug" if i % 2 else "problem", ((pos, pos + len(w)),)))
        pieces.append(w)
        pos += len(w) + (2 if i % 53 == 52 else 1)
        pieces.append("\n " if i % 53 == 52 else " ")
    text = "".join(pieces)
    doc = Document("long", text, ents)
    max_length = 32
    labels = windowing.label_list(["drug", "problem"])
    l2i = {l: i for i, l in enumerate(labels)}
    encoded, stats = windowing.encode_documents([doc], tokenizer, max_length, 8, l2i)
    enc = encoded[0]
    assert len(enc.ids) > 5 * max_length and len(enc.windows) > 5
    assert stats.encoded == len(ents)
    owners = windowing.token_owners(enc.windows, len(enc.ids))
    covered = np.zeros(len(text), int)
    for t, (s, e) in enumerate(zip(enc.starts, enc.ends)):
        w = enc.windows[owners[t]]
        assert w.start <= t < w.end
        covered[s:e] += 1
    assert all(covered[i] == 1 for i, ch in enumerate(text) if not ch.isspace())
    # An oracle model that predicts the gold labels in every window (with garbage in the
    # non-owned part of overlapping windows) must give back exactly the gold entities.
    feats, rows = windowing.window_features(encoded, tokenizer, max_length)
    preds = feats["labels"].copy()
    for r, (_, w) in enumerate(rows):
        win = enc.windows[w]
        for t in range(win.start, win.end):
            if owners[t] != w:
                preds[r, 1 + t - win.start] = l2i["B-drug"]
    out = windowing.predictions_to_documents(encoded, rows, preds, labels)[0]
    assert sorted((e.type, e.spans) for e in out.entities) == sorted((e.type, e.spans) for e in ents)
    assert feats["input_ids"].shape == (len(rows), max_length)
    assert (feats["label_mask"].sum(1) <= max_length - 2).all()


def test_first_subword_labels_and_strict_decoding(tokenizer):
    """HF-style labelling: only each word's first piece is labelled and weighted; decoding
    reads first pieces and drops an orphan I- (seqeval strict), mapping runs to whole words."""
    text = "Mild hypercholesterolemia and cardiomyopathy, no fever."
    ids, starts, ends = tokenizer(text)
    ws = windowing.word_starts(text, starts, ends)
    words = [text[starts[i]:ends[j]] for i, j in zip(np.nonzero(ws)[0], list(np.nonzero(ws)[0][1:] - 1) + [len(ws) - 1])]
    assert words == ["Mild", "hypercholesterolemia", "and", "cardiomyopathy", ",", "no", "fever", "."]
    a = text.index("hypercholesterolemia")
    ents = [Entity("T1", "Disease", ((a, a + len("hypercholesterolemia and cardiomyopathy")),), "")]
    labels_list = windowing.label_list(["Disease"])
    l2i = {l: i for i, l in enumerate(labels_list)}
    labels, stats = windowing.encode_entity_labels(ents, starts, ends, l2i, "BIO", ws)
    assert stats.encoded == 1
    first = np.nonzero(ws)[0]
    assert [labels_list[labels[i]] for i in first] == ["O", "B-Disease", "I-Disease", "I-Disease", "O", "O", "O", "O"]
    assert (labels[~ws] == 0).all()
    doc = Document("d", text, ents, [], "")
    enc, _ = windowing.encode_documents([doc], tokenizer, 64, 8, l2i, first_subword=True)
    feats, rows = windowing.window_features(enc, tokenizer, 64)
    assert feats["label_mask"].sum() == ws.sum()  # only first pieces carry a loss weight
    # gold labels decode back to the gold span; an orphan I- (after O) is dropped
    pred = feats["labels"].copy()
    fever = first[6] + 1  # +1: [CLS]
    pred[0, fever] = l2i["I-Disease"]
    out = windowing.predictions_to_documents(enc, rows, pred, labels_list)[0]
    assert [(e.spans, e.type) for e in out.entities] == [(ents[0].spans, "Disease")]


def test_strict_decoding_matches_seqeval():
    from seqeval.scheme import IOB2, IOBES, Entities

    rng = np.random.default_rng(0)
    for scheme, tags, ref in (("BIO", ["O", "B-a", "I-a", "B-b", "I-b"], IOB2),
                              ("BIOES", ["O", "B-a", "I-a", "E-a", "S-a", "B-b", "E-b", "S-b"], IOBES)):
        for _ in range(300):
            seq = [tags[i] for i in rng.integers(0, len(tags), rng.integers(1, 12))]
            ours = sorted((t, a, b + 1) for a, b, t in windowing.decode_tags_strict(seq, scheme))
            theirs = sorted((e.tag, e.start, e.end) for e in Entities([seq], ref).entities[0])
            assert ours == theirs, (scheme, seq)
