"""Text → vocabulary tokens with the character span each came from.

Every path that maps model positions back to characters (NER windows, entity markers for RE,
QA answer spans) needs offsets; WordPiece gives them directly (``encode_with_offsets``),
SentencePiece as UTF-8 byte offsets in its ``proto`` API, converted here to characters and
trimmed of the whitespace SentencePiece folds into ``▁`` pieces.
"""

from __future__ import annotations

import numpy as np


class OffsetTokenizer:
    """Text → (ids, char starts, char ends) for a WordPiece or SentencePiece vocabulary."""

    def __init__(self, vocabulary):
        self.vocab = vocabulary
        self.cls_id = int(vocabulary.cls_id)
        self.sep_id = int(vocabulary.sep_id)
        self.pad_id = int(vocabulary.pad_id)
        self._wordpiece = hasattr(vocabulary, "encode_with_offsets")
        if not self._wordpiece:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_proto=vocabulary.sp_model)

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._wordpiece:
            ids, starts, ends = self.vocab.encode_with_offsets(text)
            return (np.asarray(ids, np.int32), np.asarray(starts, np.int64), np.asarray(ends, np.int64))
        return self._sentencepiece(text)

    def _sentencepiece(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        proto = self._sp.encode(text, return_type="proto")
        # byte offset -> char offset (SentencePiece reports UTF-8 byte offsets into the input)
        byte_to_char = np.zeros(len(text.encode("utf-8")) + 1, np.int64)
        pos = 0
        for i, ch in enumerate(text):
            n = len(ch.encode("utf-8"))
            byte_to_char[pos:pos + n] = i
            pos += n
        byte_to_char[pos] = len(text)
        ids, starts, ends = [], [], []
        for piece in proto.pieces:
            s, e = int(byte_to_char[piece.begin]), int(byte_to_char[piece.end])
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if s == e:  # a bare "▁": whitespace only, carries no characters
                continue
            ids.append(piece.id)
            starts.append(s)
            ends.append(e)
        return np.asarray(ids, np.int32), np.asarray(starts, np.int64), np.asarray(ends, np.int64)
