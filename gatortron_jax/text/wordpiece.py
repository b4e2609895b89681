"""BERT WordPiece vocabulary (GatorTron's ``vocab.txt``) as a ``seqio.Vocabulary``.

GatorTron's released checkpoint is a Megatron-BERT model that ships a plain BERT
``vocab.txt`` (one token per line, id = line index). Fine-tuning that checkpoint only works
if we split text into exactly the ids it was trained on, so both encoders here reproduce
HuggingFace's ``BertTokenizer`` (the ``tokenizers``-backed one that transformers 5 uses):

* ``_encode_tf`` runs inside ``tf.data`` (seqio preprocessing during pretraining) and is
  built on ``tensorflow_text.BertTokenizer``;
* ``_encode`` / ``encode_with_offsets`` are pure Python (NER needs character offsets, and
  tests need no TF graph).

Where ``tensorflow_text`` alone would diverge from HF, we normalise the string first and
run ``BertTokenizer`` with its own lower-casing off:

* HF lower-cases with ``str.lower``; tf_text uses ICU case *folding*, which turns the
  micro sign in "µg" into Greek mu and "ß" into "ss". We apply NFD, strip ``Mn`` marks
  and ``tf.strings.lower`` instead.
* HF deletes control/format characters (``\\x00``, soft hyphen, zero-width space) and
  treats every Unicode space (NBSP, U+3000, U+2028) as whitespace; tf_text replaces only
  Cc/Cf with spaces and its ``\\s`` split is ASCII-only, so "5\\u00a0mg" would be one word.
* HF maps words over 100 *characters* to [UNK]; tf_text's limit counts *bytes*. We give
  tf_text a 400-byte limit and turn words over 100 characters into [UNK] ourselves.

* HF lower-cases one character at a time, so a word-final capital sigma becomes "σ";
  ``str.lower`` and ICU apply the final-sigma rule ("ς"). Both our paths map "Σ" to "σ"
  before lower-casing the string (sigma is the only context-dependent mapping).

One deliberate difference from HF: literal "[MASK]"/"[CLS]" text in a note is tokenized
as ordinary text, where HF would turn it into the special id and let note text inject
control tokens.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
from typing import Any, Iterable, Sequence

import numpy as np
import seqio
import tensorflow as tf
import tensorflow_text as tf_text

from gatortron_jax.core.errors import InputError

logger = logging.getLogger(__name__)

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
REQUIRED_SPECIALS = (PAD, UNK, CLS, SEP, MASK)
SUFFIX = "##"
MAX_INPUT_CHARS_PER_WORD = 100  # HF BertTokenizer's max_input_chars_per_word
# A vocab counts as cased when at least this share of its (non-special) entries start
# with an uppercase letter. Uncased BERT vocabs have ~0%; cased ones have well over 5%.
CASED_SHARE_THRESHOLD = 0.01
_UNUSED_RE = re.compile(r"\[unused\d+\]\Z")

# CJK ideograph blocks that BERT splits into single-character words (same as HF/tf_text).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
# RE2 patterns for the TF-side normalisation (see module docstring).
_TF_DROP = r"[^\P{C}\t\n\r]|\x{FFFD}"  # every C* char except tab/newline/CR, plus U+FFFD
_TF_SPACE = r"[\t\n\r\p{Z}]"


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_dropped(ch: str) -> bool:
    """NUL, U+FFFD and control/format/private-use chars vanish (HF ``clean_text``)."""
    if ch in "\t\n\r":
        return False
    return ch == "\ufffd" or unicodedata.category(ch).startswith("C")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def _is_punctuation(ch: str) -> bool:
    """All non-alphanumeric ASCII (so "$", "+", "^" split too) plus Unicode P* categories."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


# ASCII fast path of the normaliser and word splitter. Its character classes are read off the
# per-character predicates above, so there is one definition of each: ASCII controls other than
# tab/newline/CR are dropped, tab/newline/CR become spaces, every other ASCII char is kept as is
# (NFD and accent stripping leave ASCII unchanged; no ASCII char is CJK).
_ASCII = [chr(c) for c in range(128)]
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_ASCII_DROPPED = re.compile("[" + re.escape("".join(c for c in _ASCII if _is_dropped(c))) + "]")
_ASCII_TO_SPACE = str.maketrans({c: " " for c in _ASCII if _is_whitespace(c) and not _is_dropped(c)})
_ASCII_PUNCT = re.escape("".join(c for c in _ASCII if _is_punctuation(c)))
_ASCII_WORD = re.compile(rf"[{_ASCII_PUNCT}]|[^ {_ASCII_PUNCT}]+")


def _ascii_stand_in(ch: str) -> str:
    """An ASCII char that splits words like ``ch`` does: " ", "!" (punctuation) or "a"."""
    return " " if _is_whitespace(ch) else "!" if _is_punctuation(ch) else "a"


def _normalize_ascii(text: str, begin: int, end: int, parts: list[str], starts: list[int], ends: list[int]) -> None:
    """Normalise the ASCII run ``text[begin:end]``, appending to the outputs."""
    run = text[begin:end]
    if _ASCII_DROPPED.search(run) is None:
        parts.append(run.translate(_ASCII_TO_SPACE))
        starts.extend(range(begin, end))
        ends.extend(range(begin + 1, end + 1))
        return
    keep = [i for i in range(begin, end) if _ASCII_DROPPED.match(text[i]) is None]
    if not keep:
        return  # parts hold no empty strings: the accent rule reads the last char emitted
    parts.append("".join(text[i] for i in keep).translate(_ASCII_TO_SPACE))
    starts.extend(keep)
    ends.extend(i + 1 for i in keep)


def read_vocab_file(path: str) -> list[str]:
    """Tokens of a BERT ``vocab.txt`` in id order, validated.

    Raises InputError (naming the file, and the line where there is one) for a missing or
    empty file, undecodable bytes, a blank line between tokens, a duplicate token, or a
    missing [PAD]/[UNK]/[CLS]/[SEP]/[MASK]. Blank lines at the very end are ignored.
    """
    if not tf.io.gfile.exists(path):
        raise InputError(f"{path}: vocabulary file not found")
    if tf.io.gfile.isdir(path):
        raise InputError(f"{path}: is a directory, expected a vocab.txt file")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:  # gfile so gs:// vocabularies work on TPU VMs
            data = f.read()
    except (OSError, tf.errors.OpError) as e:
        raise InputError(f"{path}: cannot read vocabulary file ({type(e).__name__})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"{path}: vocabulary file is empty")
    tokens: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(lines, 1):
        try:
            token = raw.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{path}, line {lineno}: not valid UTF-8 ({e.reason})") from None
        if not token.strip():
            raise InputError(f"{path}, line {lineno}: blank line inside the vocabulary")
        if token in first_line:
            raise InputError(
                f"{path}, line {lineno}: duplicate token {token!r} (first on line {first_line[token]})")
        first_line[token] = lineno
        tokens.append(token)
    missing = [t for t in REQUIRED_SPECIALS if t not in first_line]
    if missing:
        raise InputError(f"{path}: missing required special token(s) {', '.join(missing)}")
    return tokens


def infer_lowercase(tokens: Sequence[str]) -> tuple[bool, float]:
    """(lowercase?, share of entries starting uppercase), ignoring bracketed specials."""
    words = [t[len(SUFFIX):] if t.startswith(SUFFIX) else t for t in tokens
             if not (t.startswith("[") and t.endswith("]"))]
    upper = sum(1 for w in words if w[:1].isupper())
    share = upper / max(1, len(words))
    return share < CASED_SHARE_THRESHOLD, share


class WordPieceVocabulary(seqio.Vocabulary):
    """A BERT ``vocab.txt`` with HF-compatible Python and TF encoders.

    ``encode``/``encode_tf`` return ids WITHOUT [CLS]/[SEP]; adding them (and packing) is
    the input pipeline's job. ``eos_id`` is [SEP] because BERT has no EOS token and seqio
    needs one to truncate decodes. TF tables are built lazily (and outside any ``tf.function``
    via ``tf.init_scope``) so a vocabulary used only from Python never touches TF state and
    stays picklable.
    """

    def __init__(self, vocab_file: str, lowercase: bool | None = None):
        self._vocab_file = vocab_file
        self._tokens = tuple(read_vocab_file(vocab_file))
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        if lowercase is None:
            lowercase, share = infer_lowercase(self._tokens)
            logger.info("%s: %.2f%% of entries start uppercase -> treating vocabulary as %s",
                        vocab_file, 100 * share, "uncased (lowercase=True)" if lowercase else
                        "cased (lowercase=False)")
        self._lowercase = bool(lowercase)
        # Longest piece in characters (without "##"): bounds the greedy match window.
        self._max_piece_chars = max(len(t) - len(SUFFIX) if t.startswith(SUFFIX) else len(t)
                                    for t in self._tokens)
        self._wp_cache: dict[str, tuple[tuple[int, int, int], ...] | None] = {}
        self._lock = threading.Lock()
        self._tf_state: dict[str, Any] | None = None
        super().__init__(extra_ids=0)

    # ---- identity -------------------------------------------------------------------
    @property
    def vocab_file(self) -> str:
        return self._vocab_file

    @property
    def lowercase(self) -> bool:
        return self._lowercase

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    def token_to_id(self, token: str) -> int:
        return self._ids.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        return self._tokens[token_id] if 0 <= token_id < len(self._tokens) else UNK

    def _fingerprint(self) -> str:
        return hashlib.md5("\n".join(self._tokens).encode("utf-8")).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WordPieceVocabulary):
            return False
        return self._tokens == other._tokens and self._lowercase == other._lowercase

    def __hash__(self) -> int:
        return hash((self._fingerprint(), self._lowercase))

    def __str__(self) -> str:
        return (f"WordPieceVocabulary(vocab_file={self._vocab_file!r}, size={len(self._tokens)}, "
                f"lowercase={self._lowercase})")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tf_state"] = None
        state["_lock"] = None
        state["_wp_cache"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---- ids the MLM code uses ----------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return self._ids[PAD]

    @property
    def unk_id(self) -> int:
        return self._ids[UNK]

    @property
    def cls_id(self) -> int:
        return self._ids[CLS]

    @property
    def sep_id(self) -> int:
        return self._ids[SEP]

    @property
    def mask_id(self) -> int:
        return self._ids[MASK]

    @property
    def eos_id(self) -> int:
        return self.sep_id

    @property
    def bos_id(self) -> None:
        return None  # [CLS] is added by the packing code, not by encode()

    @property
    def _base_vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    @property
    def special_ids(self) -> frozenset[int]:
        """[PAD]/[UNK]/[CLS]/[SEP]/[MASK] and every ``[unusedN]``: never MLM targets."""
        ids = {self._ids[t] for t in REQUIRED_SPECIALS}
        ids.update(i for i, t in enumerate(self._tokens) if _UNUSED_RE.match(t))
        return frozenset(ids)

    def word_start_mask(self) -> np.ndarray:
        """bool[vocab_size]: True unless the piece continues a word ("##..."), for whole-word masking."""
        return np.array([not t.startswith(SUFFIX) for t in self._tokens], dtype=bool)

    # ---- Python encoder -------------------------------------------------------------
    def _normalize(self, text: str) -> tuple[str, list[int], list[int]]:
        """HF ``BertNormalizer`` on ``text``, keeping each output char's source span.

        Returns the normalised string plus, per normalised char, start/end offsets into
        ``text``. Dropped controls map to nothing; a stripped combining accent widens the
        span of the character it sits on, so "e\\u0301" maps back as one glyph.

        Runs of ASCII (nearly all of a clinical note) are normalised a run at a time with
        ``str.translate`` (their offsets are a ``range``); only non-ASCII characters take the
        per-character Unicode path. Same output as the per-character loop everywhere
        (tests/test_wordpiece.py compares both, and HF's tokenizer).
        """
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        for m in _NON_ASCII_RUN.finditer(text):
            if pos < m.start():
                _normalize_ascii(text, pos, m.start(), parts, starts, ends)
            self._normalize_unicode(text, m.start(), m.end(), parts, starts, ends)
            pos = m.end()
        if pos < len(text):
            _normalize_ascii(text, pos, len(text), parts, starts, ends)
        normalized = "".join(parts)
        if self._lowercase:
            lowered = normalized.replace("\u03a3", "\u03c3").lower()  # no final-sigma rule (see docstring)
            if len(lowered) == len(normalized):
                normalized = lowered
            else:  # some char lower-cases to several; lower per char to keep alignment
                per_char = [c.lower() for c in normalized]
                starts = [s for p, s in zip(per_char, starts) for _ in p]
                ends = [e for p, e in zip(per_char, ends) for _ in p]
                normalized = "".join(per_char)
        return normalized, starts, ends

    def _normalize_unicode(self, text: str, begin: int, end: int, parts: list[str], starts: list[int],
                           ends: list[int]) -> None:
        """The per-character normaliser for ``text[begin:end]``, appending to the outputs."""
        for i in range(begin, end):
            ch = text[i]
            if _is_dropped(ch):
                continue
            if _is_whitespace(ch):
                out = " "
            else:
                out = ch
                if self._lowercase:
                    out = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
                    if not out:  # a lone combining mark: it joins the glyph before it
                        if parts and parts[-1][-1] != " " and ends[-1] == i:
                            ends[-1] = i + 1
                        continue
                if _is_cjk(ord(ch)):
                    out = f" {out} "
            for c in out:
                parts.append(c)
                starts.append(i)
                ends.append(i + 1)

    def _wordpiece(self, word: str) -> tuple[tuple[int, int, int], ...] | None:
        """Greedy longest-match-first split: ((id, start, end) in ``word`` chars, ...) or None for [UNK]."""
        if word in self._wp_cache:
            return self._wp_cache[word]
        pieces: list[tuple[int, int, int]] | None = []
        if len(word) > MAX_INPUT_CHARS_PER_WORD:
            pieces = None
        else:
            start = 0
            while start < len(word):
                end = min(len(word), start + self._max_piece_chars)
                found = None
                while end > start:
                    sub = word[start:end] if start == 0 else SUFFIX + word[start:end]
                    found = self._ids.get(sub)
                    if found is not None:
                        break
                    end -= 1
                if found is None:
                    pieces = None
                    break
                pieces.append((found, start, end))
                start = end
        result = None if pieces is None else tuple(pieces)
        if len(self._wp_cache) < 200_000:
            self._wp_cache[word] = result
        return result

    def _words(self, normalized: str) -> Iterable[tuple[int, int]]:
        """[start, end) spans of BERT basic-tokenizer words in the normalised string.

        One regex pass: each non-ASCII char is first replaced by an ASCII stand-in of its class
        (space, punctuation, word char), which keeps every offset.
        """
        if not normalized.isascii():
            others = set("".join(_NON_ASCII_RUN.findall(normalized)))
            normalized = normalized.translate({ord(c): _ascii_stand_in(c) for c in others})
        return (m.span() for m in _ASCII_WORD.finditer(normalized))

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[int], list[int]]:
        """(ids, starts, ends): ``text[starts[k]:ends[k]]`` is the source of token ``k``.

        For [UNK] the span covers the whole word. Offsets are Python ``str`` indices
        (code points), not bytes.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        normalized, starts, ends = self._normalize(text)
        ids: list[int] = []
        out_starts: list[int] = []
        out_ends: list[int] = []
        for a, b in self._words(normalized):
            pieces = self._wordpiece(normalized[a:b])
            if pieces is None:
                ids.append(self.unk_id)
                out_starts.append(starts[a])
                out_ends.append(ends[b - 1])
                continue
            for token_id, s, e in pieces:
                ids.append(token_id)
                out_starts.append(starts[a + s])
                out_ends.append(ends[a + e - 1])
        return ids, out_starts, out_ends

    def _encode(self, s: str) -> list[int]:
        return self.encode_with_offsets(s)[0]

    def _decode(self, ids: Iterable[int]) -> str:
        """Pieces joined with spaces and "##" glued on; [PAD]/[CLS]/[SEP] dropped."""
        drop = {self.pad_id, self.cls_id, self.sep_id}
        pieces = [self.id_to_token(int(i)) for i in ids if int(i) not in drop]
        return " ".join(pieces).replace(" " + SUFFIX, "")

    # ---- TF encoder -----------------------------------------------------------------
    def _tf(self) -> dict[str, Any]:
        """Lazily build (once, eagerly) the lookup table, tokenizer and id tables."""
        with self._lock:
            if self._tf_state is None:
                with tf.init_scope():
                    keys = tf.constant(list(self._tokens), dtype=tf.string)
                    table = tf.lookup.StaticVocabularyTable(
                        tf.lookup.KeyValueTensorInitializer(
                            keys, tf.range(len(self._tokens), dtype=tf.int64)),
                        num_oov_buckets=1)
                    tokenizer = tf_text.BertTokenizer(
                        table, suffix_indicator=SUFFIX,
                        max_bytes_per_word=4 * MAX_INPUT_CHARS_PER_WORD,  # 100 chars of up to 4 bytes
                        token_out_type=tf.int64, unknown_token=UNK, lower_case=False,
                        keep_whitespace=False, normalization_form=None, preserve_unused_token=False)
                    piece_chars = tf.constant(
                        [len(t) - len(SUFFIX) if t.startswith(SUFFIX) else len(t) for t in self._tokens],
                        dtype=tf.int32)
                    self._tf_state = {"table": table, "tokenizer": tokenizer, "keys": keys,
                                      "piece_chars": piece_chars}
            return self._tf_state

    def _normalize_tf(self, s: tf.Tensor) -> tf.Tensor:
        s = tf.strings.regex_replace(s, _TF_DROP, "")
        s = tf.strings.regex_replace(s, _TF_SPACE, " ")
        if self._lowercase:
            s = tf_text.normalize_utf8(s, "NFD")
            s = tf.strings.regex_replace(s, r"\p{Mn}", "")
            s = tf.strings.regex_replace(s, "\u03a3", "\u03c3")
            s = tf.strings.lower(s, encoding="utf-8")
        return s

    def _encode_tf(self, s: tf.Tensor) -> tf.Tensor | tf.RaggedTensor:
        """Scalar string -> int32[num_tokens]; string[B] -> RaggedTensor int32[B, (tokens)]."""
        state = self._tf()
        s = tf.convert_to_tensor(s, dtype=tf.string)
        scalar = s.shape.rank == 0
        batch = tf.reshape(s, [-1]) if scalar else s
        if batch.shape.rank != 1:
            raise ValueError(f"_encode_tf expects a scalar or 1-D string tensor, got shape {s.shape}")
        ids = state["tokenizer"].tokenize(self._normalize_tf(batch))  # [B, (words), (pieces)]
        words = ids.values  # [total_words, (pieces)]
        # Words over MAX_INPUT_CHARS_PER_WORD characters become one [UNK] (HF semantics).
        # A word that tokenized has exactly the characters of its pieces; an [UNK] word is
        # already a single piece, so only tokenized words can need the fix.
        chars = tf.reduce_sum(words.with_values(tf.gather(state["piece_chars"], words.values)), axis=1)
        too_long = chars > MAX_INPUT_CHARS_PER_WORD
        piece_word = words.value_rowids()
        piece_long = tf.gather(too_long, piece_word)
        is_first = tf.equal(tf.range(tf.size(words.values, out_type=tf.int64)),
                            tf.gather(words.row_starts(), piece_word))
        flat = tf.where(piece_long, tf.constant(self.unk_id, tf.int64), words.values)
        keep = tf.logical_or(tf.logical_not(piece_long), is_first)
        words = tf.ragged.boolean_mask(words.with_values(flat), words.with_values(keep))
        out = tf.cast(ids.with_values(words).merge_dims(1, 2), tf.int32)
        return out[0] if scalar else out

    def _decode_tf(self, ids: tf.Tensor) -> tf.Tensor:
        """int[..., n] -> string[...]: same rules as ``_decode``."""
        keys = self._tf()["keys"]
        ids = tf.convert_to_tensor(ids)
        ids = tf.cast(ids, tf.int64)
        safe = tf.where((ids >= 0) & (ids < len(self._tokens)), ids, tf.constant(self.unk_id, tf.int64))
        pieces = tf.gather(keys, safe)
        drop = tf.constant([self.pad_id, self.cls_id, self.sep_id], tf.int64)
        keep = tf.reduce_all(tf.not_equal(tf.expand_dims(safe, -1), drop), axis=-1)
        joined = tf.strings.reduce_join(tf.ragged.boolean_mask(pieces, keep), axis=-1, separator=" ")
        return tf.strings.regex_replace(joined, " " + SUFFIX, "")
