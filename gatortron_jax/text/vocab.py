"""Vocabularies for masked-LM pretraining.

MLM masking needs more from a vocabulary than seqio's interface gives: the ids of the
BERT specials ([CLS], [SEP], [MASK]), the set of ids that must never be masked or drawn as
random replacements, and which pieces start a word (for whole-word masking). This module
defines that contract (:class:`MLMVocabulary`), a SentencePiece implementation of it, the
trainer that produces such SentencePiece models, and a loader that picks SentencePiece
(``*.model``) or WordPiece (``vocab.txt``) by file name.

SentencePiece id layout (fixed so that checkpoints and converters can rely on it):
``0 pad, 1 eos, 2 unk, 3 [CLS], 4 [SEP], 5 [MASK]`` and no BOS.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Sequence, runtime_checkable

from absl import logging
from google.protobuf.message import DecodeError
import numpy as np
import seqio
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

from gatortron_jax.annotations.notes import NoteRecord, iter_file_records, list_corpus_files
from gatortron_jax.annotations.input_policy import FileIssue, InputReport
from gatortron_jax.core.errors import InputError
from gatortron_jax.text.wordpiece import WordPieceVocabulary

CLS_PIECE = "[CLS]"
SEP_PIECE = "[SEP]"
MASK_PIECE = "[MASK]"
_WORD_START = "\u2581"  # SentencePiece's "▁" whitespace marker
# Lines longer than this many bytes are skipped by SentencePiece; the default (4192) would
# silently drop long one-note-per-line documents.
_MAX_SENTENCE_BYTES = 1 << 16
#: Sentences SentencePiece keeps (a seeded, uniform reservoir sample of every input sentence):
#: memory is bounded by this, not by the corpus. 5M sentences of ~100 bytes are ~0.5 GB of text
#: (SentencePiece's training structures are a few times that); a GatorTron-scale corpus has
#: ~10^9 lines, so the vocabulary is learned from a ~0.5% sample, as BERT-style tokenizers are.
DEFAULT_MAX_SENTENCES = 5_000_000
_PieceType = sentencepiece_model_pb2.ModelProto.SentencePiece.Type
_SPECIAL_PIECE_TYPES = (_PieceType.CONTROL, _PieceType.UNKNOWN, _PieceType.USER_DEFINED)


@runtime_checkable
class MLMVocabulary(Protocol):
    """A ``seqio.Vocabulary`` that also exposes what MLM masking needs."""

    @property
    def pad_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...

    @property
    def cls_id(self) -> int: ...

    @property
    def sep_id(self) -> int: ...

    @property
    def mask_id(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids that are never masked and never drawn as random replacements."""
        ...

    def word_start_mask(self) -> np.ndarray:
        """Bool ``[vocab_size]``: the piece begins a new word (whole-word masking)."""
        ...


# ----------------------------------------------------------------------------- training


def _expand_inputs(input_paths: Sequence[str]) -> list[Path]:
    """Files to train on: given files as-is, directories expanded to their corpus files."""
    if not input_paths:
        raise InputError("train_sentencepiece: no input paths given")
    files: list[Path] = []
    for raw in input_paths:
        path = Path(raw)
        if path.is_dir():
            found = list_corpus_files(path)
            if not found:
                raise InputError(f"no *.txt or *.jsonl files found under {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"vocabulary training input does not exist: {path}")
    return files


def _iter_records(
    files: Sequence[Path], strict: bool, on_issue: Optional[Callable[[FileIssue], None]] = None,
    show_text: bool = False,
) -> Iterator[NoteRecord]:
    for path in files:
        yield from iter_file_records(path, str(path), doc_per_line=True, strict=strict, show_text=show_text,
                                     on_issue=on_issue)


def _sentences(doc: NoteRecord) -> Iterator[str]:
    """Non-blank lines of a used document (none for a skipped one)."""
    if doc.skip is None:
        for line in doc.text.splitlines():
            line = line.strip()
            if line:
                yield line


def _iter_sentences(files: Sequence[Path], strict: bool) -> Iterator[str]:
    """Non-blank lines of every document, in file order, under the corpus input policy."""
    for doc in _iter_records(files, strict):
        yield from _sentences(doc)


def _warn(issue: FileIssue) -> None:
    logging.warning("vocabulary input %s", issue.message())


def _scan(files: Sequence[Path], strict: bool, report: InputReport, show_text: bool = False) -> bool:
    """The validation pass: reads everything, counts every document, warns once per problem.

    Reads to the end (not just to the first sentence) so that strict-mode errors surface
    here as ``InputError`` rather than from inside SentencePiece. True if any text exists.
    """
    report.files += len(files)
    found = False
    for doc in _iter_records(files, strict, on_issue=_warn, show_text=show_text):
        reason = doc.skip_reason
        report.add(reason, replaced_sequences=doc.replaced_sequences, replaced_bytes=doc.replaced_bytes)
        found = found or (reason is None and any(True for _ in _sentences(doc)))
    report.check()
    return found


def train_sentencepiece(
    input_paths: Sequence[str],
    output_prefix: str,
    vocab_size: int,
    *,
    model_type: str = "unigram",
    character_coverage: float = 0.9999,
    seed: int = 0,
    strict: bool = False,
    show_text: bool = False,
    report: Optional[InputReport] = None,
    max_sentences: int = DEFAULT_MAX_SENTENCES,
) -> str:
    """Trains a BERT-style SentencePiece model and returns the ``.model`` path.

    At most ``max_sentences`` sentences are kept (SentencePiece's reservoir sampling over the
    whole input, shuffled, seeded): memory does not grow with the corpus
    (:data:`DEFAULT_MAX_SENTENCES`).

    ``input_paths`` are ``.txt`` / ``.jsonl`` files or directories of them (one document
    per file or per line; each document is fed line by line, blank lines skipped).

    Output is byte-identical for identical input: files are read in the given/sorted order
    and SentencePiece's random generator (the sample and its shuffle) is seeded with ``seed``. The input is read twice:
    once to validate (UTF-8, non-empty) so errors surface as ``InputError`` rather than
    from inside SentencePiece, and once to train.

    Bad bytes and malformed ``.jsonl`` lines follow the corpus policy
    (:mod:`gatortron_jax.annotations.input_policy`): replaced / skipped with one warning per file,
    or ``InputError`` when ``strict``; ``show_text`` lets a warning quote an escaped excerpt. ``report``, if
    given, receives the counts of the validation pass.
    """
    if max_sentences < 1:
        raise InputError(f"max_sentences must be >= 1, got {max_sentences}")
    files = _expand_inputs(input_paths)
    names = ", ".join(str(p) for p in files)
    if not _scan(files, strict, InputReport() if report is None else report, show_text):
        raise InputError(f"no non-blank text to train a vocabulary on in: {names}")
    Path(output_prefix).parent.mkdir(parents=True, exist_ok=True)
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_iter_sentences(files, strict),
            model_prefix=output_prefix,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            user_defined_symbols=[CLS_PIECE, SEP_PIECE, MASK_PIECE],
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            max_sentence_length=_MAX_SENTENCE_BYTES,
            minloglevel=2,
        )
    except RuntimeError as e:
        too_high = re.search(r"Vocabulary size (?:is )?too high \((\d+)\).*?<= (\d+)", str(e))
        if too_high:
            raise InputError(
                f"vocab_size={vocab_size} is too large for the text in {names}: "
                f"at most {too_high.group(2)} pieces can be learned from it"
            ) from None
        raise InputError(f"SentencePiece training on {names} failed: {e}") from None
    model_path = output_prefix + ".model"
    _strip_model_prefix(model_path)
    return model_path


def _strip_model_prefix(model_path: str) -> None:
    """Removes the output path SentencePiece records in the model.

    Without this the bytes depend on where the model was written, so two trainings on
    the same text would differ.
    """
    model = sentencepiece_model_pb2.ModelProto.FromString(Path(model_path).read_bytes())
    model.trainer_spec.ClearField("model_prefix")
    Path(model_path).write_bytes(model.SerializeToString(deterministic=True))


# ----------------------------------------------------------------------------- vocabulary


class BertSentencePieceVocabulary(seqio.SentencePieceVocabulary):
    """A SentencePiece model trained by :func:`train_sentencepiece`, as an MLMVocabulary.

    Loads eagerly so a missing or malformed model fails at construction with the path in
    the message. Note seqio caches parsed models by path for the life of the process.
    """

    def __init__(self, model_path: str):
        if not os.path.isfile(model_path):
            raise InputError(f"SentencePiece model not found: {model_path}")
        super().__init__(model_path)
        try:
            tokenizer = self.tokenizer
        except (DecodeError, RuntimeError, OSError) as e:
            raise InputError(f"not a valid SentencePiece model: {model_path} ({type(e).__name__})") from None
        if tokenizer.pad_id() != 0:
            raise InputError(
                f"SentencePiece model {model_path} has pad_id={tokenizer.pad_id()}; "
                "seqio requires padding id 0"
            )
        pieces = sentencepiece_model_pb2.ModelProto.FromString(self.sp_model).pieces
        self._special_ids = frozenset(
            i for i, p in enumerate(pieces) if p.type in _SPECIAL_PIECE_TYPES
        ) | {self.pad_id}
        self._cls_id = self._piece_id(CLS_PIECE)
        self._sep_id = self._piece_id(SEP_PIECE)
        self._mask_id = self._piece_id(MASK_PIECE)

    def _piece_id(self, piece: str) -> int:
        i = self.tokenizer.piece_to_id(piece)
        if self.tokenizer.id_to_piece(i) != piece:
            raise InputError(
                f"SentencePiece model {self.sentencepiece_model_file} has no {piece} piece "
                "(train it with gatortron_jax.text.vocab.train_sentencepiece)"
            )
        return i

    @property
    def cls_id(self) -> int:
        return self._cls_id

    @property
    def sep_id(self) -> int:
        return self._sep_id

    @property
    def mask_id(self) -> int:
        return self._mask_id

    @property
    def special_ids(self) -> frozenset[int]:
        """Pad/eos/unk and every control or user-defined piece ([CLS], [SEP], [MASK], ...)."""
        return self._special_ids

    def word_start_mask(self) -> np.ndarray:
        """Pieces starting with "▁" begin a word; special ids are treated as word starts."""
        tok = self.tokenizer
        mask = np.array(
            [tok.id_to_piece(i).startswith(_WORD_START) for i in range(tok.get_piece_size())],
            dtype=bool,
        )
        mask[sorted(self.special_ids)] = True
        return mask


def load_vocabulary(path: str) -> MLMVocabulary:
    """Opens a vocabulary by file type.

    ``*.model`` → :class:`BertSentencePieceVocabulary`; ``*.txt`` (e.g. ``vocab.txt``) or a
    directory containing ``vocab.txt`` → WordPiece.
    """
    p = Path(path)
    if p.is_dir() and (p / "vocab.txt").is_file():
        p = p / "vocab.txt"
    if not p.is_file():
        raise InputError(f"vocabulary file not found: {path}")
    if p.suffix == ".model":
        return BertSentencePieceVocabulary(str(p))
    if p.suffix == ".txt":
        return WordPieceVocabulary(str(p))
    raise InputError(
        f"unrecognised vocabulary file {path}: expected a SentencePiece .model or a WordPiece vocab.txt"
    )
