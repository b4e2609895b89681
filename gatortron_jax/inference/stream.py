"""Streaming NER over a note table: bounded chunks, scored entities, resumable, sharded.

A shard's notes (``index mod num_shards == shard``, :func:`note_sources.shard_of`) are cut
into chunks of ``chunk_notes`` consecutive notes. Each chunk is tokenized and windowed
(``windowing.encode_documents``; inline, or one chunk ahead of the model in a thread or in
worker processes), its windows — from all its notes together — are sorted by length, batched with windows of
the same padded length (at most 8 lengths x 4 batch sizes compiled) and run through the
tagger, which returns label ids *and* the probability of each predicted label
(``token_classification.predict_labels_and_scores``). Window predictions are merged per
token (``windowing.predictions_to_documents``) and every entity gets the mean probability of
its tokens as its score. Memory is bounded by one chunk (plus the one being tokenized):
peak RSS does not grow with the number of notes.

Outputs under ``output_dir`` (writes are atomic: tmp + ``os.replace``):

* per-note files through a :class:`ChunkWriter` (default: brat ``.txt``/``.ann`` or i2b2, as
  ``ner_predict.write_predictions`` writes them);
* ``entities.jsonl`` (and ``entities.parquet``): one row per entity — note id, note index,
  entity id, type, start, end, score, source (``model`` or the pattern / list that found it;
  a pattern-only span has no score) (and text only with ``show_text``: it is PHI);
* ``summary.json``: notes read / predicted / failed (with id and reason; the first 1000, all of
  them in ``failed.jsonl``), entities by type, tokens, windows, seconds; with ``num_shards > 1`` these are ``*.shard-IIIII-of-NNNNN.*``.

Resuming: the state directory ``_stream/shard-IIIII-of-NNNNN/`` holds a ledger file per
finished chunk (note indices + ids, the sha256 of every file the chunk wrote, and its
entity table); :mod:`gatortron_jax.inference.stream_ledger` owns it. A rerun re-reads the input,
and skips a chunk only when its ledger exists, lists exactly the notes the input now gives for
that chunk, and every recorded file still has its recorded hash; otherwise the chunk is redone.
The combined tables are rebuilt from the per-chunk tables, so a killed-and-resumed run ends
byte-identical to an uninterrupted one (``summary.json`` carries timings and resume counts, so
it alone differs). This module is the driver: the tagger, tokenizing, scoring, chunk writers
and the loop.

Costs at GatorTron scale: a resumed run re-reads the input and re-hashes the outputs of
every finished chunk (I/O of about the output size, ~2x the note text with brat files; no
model work); one ledger (~100 bytes per note) and one entity table per chunk:
100M notes at 1024 notes per chunk are ~100k small files and ~10 GB of ledger; the
duplicate-id check keeps every id of the shard in a set (~80 bytes per note: 8 GB for 100M
notes in one shard, 125 MB per shard over 64 shards).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol, Sequence

import jax.numpy as jnp
import numpy as np

from gatortron_jax.annotations.documents import Document
from gatortron_jax.core.batching import predict_rows, real_lengths
from gatortron_jax.core.errors import ConfigError
from gatortron_jax.finetuning import windowing
from gatortron_jax.inference import note_sources, stream_ledger
from gatortron_jax.inference.note_sources import NoteSource, SourceNote
from gatortron_jax.inference.ner_predict import NERModelDir
from gatortron_jax.models.model_dir import require_vocab

log = logging.getLogger("gatortron_jax")

NOTE_FORMATS = ("brat", "i2b2", "none")
TABLE_FORMATS = ("jsonl", "parquet")
SCORE_DECIMALS = 4  # scores are written rounded: stable across batch composition (shards, resumes)
_MIN_BUCKET = 16


# ----------------------------------------------------------------------------- the model


class ScoringTagger(NERModelDir):
    """A fine-tuned NER model dir loaded once: windows in, (label ids, label probabilities) out.

    ``operating_point`` (``inference/operating_point.py``): per-type thresholds that add PHI
    where argmax said ``O`` (decoded with the repairing decoder); ``candidates``: also compute
    what choosing one needs (:meth:`predict_channels`' channels 2-3). ``patterns``: recognizer
    spans merged with the model's (``annotations/patterns.py``); each entity then has a source.
    Both default to what the model dir stores (``config.json`` sections ``operating_point`` and
    ``patterns``; none stored: argmax, model alone); None turns them off.
    """

    def __init__(self, model_dir: str, batch_size: int = 32, dtype: Optional[str] = None, *,
                 operating_point: Any = "stored", patterns: Any = "stored", candidates: bool = False,
                 quantize: Optional[str] = None):
        from gatortron_jax.annotations.patterns import PatternMatcher
        from gatortron_jax.finetuning.supervised import load_for_inference
        from gatortron_jax.inference import operating_point as op_lib
        from gatortron_jax.models.token_classification import predict_labels_scores_marginals

        super().__init__(model_dir, dtype, quantize)
        if isinstance(operating_point, str) and operating_point == "stored":
            operating_point = op_lib.load_operating_point(model_dir, self.config)
        if isinstance(patterns, str) and patterns == "stored":
            patterns = op_lib.load_patterns(model_dir, self.config)
        self.operating_point = operating_point
        self.patterns = PatternMatcher(patterns) if patterns is not None else None
        tables = op_lib.LabelTables.of(self.labels) if operating_point is not None or candidates else None
        self._channels = 2 if tables is None else 4
        if operating_point is not None:
            self._thresholds = (tables.label_thresholds(operating_point.thresholds, len(self.labels)), tables.o_id)

        def stacked(model, params, batch):  # one array for predict_rows: [..., (label, prob[, best I-, mass])]
            labels, scores, marginals = predict_labels_scores_marginals(model, params, batch)
            out = [labels.astype(jnp.float32), scores]
            if tables is not None:
                best, mass = op_lib.phi_candidates(jnp, marginals, tables)
                out += [best.astype(jnp.float32), mass]
            return jnp.stack(out, axis=-1)

        self.partitioner, self.batch_size, self.params, self._predict = load_for_inference(
            self.model, model_dir, batch_size, stacked)
        self._dp = self.partitioner.data_parallel_size

    def fingerprint(self) -> str:
        """sha256 of the model's config.json: a resumed run must use the same model."""
        with open(os.path.join(self.model_dir, "config.json"), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def length_of(self, tokens: int) -> int:
        """Padded window length: ``tokens`` rounded up to a multiple of ``max_length / 8`` (>= 16).

        At most 8 lengths, so at most 8 x 4 compiled shapes (see :meth:`batches`).
        """
        step = max(_MIN_BUCKET, -(-self.max_length // 8))
        return min(-(-tokens // step) * step, self.max_length)

    def batches(self, n_rows: int, length: int) -> list[int]:
        """Batch sizes covering ``n_rows`` windows of one padded length.

        A full batch holds about ``batch_size * max_length`` positions whatever the length;
        the remainder takes the smallest of full/4, full/16, ... (multiples of the data-parallel
        size) that fits it, so a length with few windows is not padded to a full batch.
        """
        full = self.batch_size * max(1, self.max_length // length)
        full = max(self._dp, full // self._dp * self._dp)
        sizes = [full] * (n_rows // full)
        rest = n_rows - len(sizes) * full
        if rest:
            size = full
            while size // 4 >= rest and size // 4 >= self._dp and (size // 4) % self._dp == 0:
                size //= 4
            sizes.append(size)
        return sizes

    def predict_windows(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(label ids ``[R, L]``, probabilities ``[R, L]``) for stacked window features, at the
        operating point when the tagger has one."""
        out = self.predict_channels(features)
        labels, probs = out[..., 0].astype(np.int64), out[..., 1]
        if self.operating_point is None:
            return labels, probs
        from gatortron_jax.inference.operating_point import apply_thresholds

        return apply_thresholds(np, labels, probs, out[..., 2].astype(np.int64), out[..., 3], *self._thresholds)

    def predict_channels(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """``[R, L, C]``: label id, its probability (and with candidates: the best PHI type's
        ``I-`` label and mass) per token.

        Windows (from all notes of a chunk) are sorted by length and batched with others of
        the same padded length, so padding stays small however note lengths are mixed.
        """
        n, length = features["input_ids"].shape
        chans = np.zeros((n, length, self._channels), np.float32)
        if n == 0:
            return chans
        lengths = real_lengths(features)  # [CLS] ... [SEP]: every real token, not the label mask
        padded = np.array([self.length_of(int(x)) for x in lengths])
        inputs = {k: features[k] for k in ("input_ids", "segment_ids", "label_mask")}
        with self.partitioner.activate():
            for b in sorted(set(padded.tolist())):
                idx = np.nonzero(padded == b)[0]
                start = 0
                for size in self.batches(len(idx), b):
                    rows = idx[start:start + size]
                    sub = {k: v[rows, :b] for k, v in inputs.items()}
                    out = predict_rows(self._predict, self.params, sub, size, self.partitioner.data_sharding)
                    chans[rows, :b] = out
                    start += size
        return chans


# ----------------------------------------------------------------------------- encoding (workers)

_WORKER: dict[str, Any] = {}


def _init_worker(model_dir: str) -> None:
    _WORKER["tokenizer"] = windowing.OffsetTokenizer(require_vocab(model_dir))


def _encode_texts(texts: Sequence[str], max_length: int, overlap: int, first_subword: bool,
                  tokenizer: Optional[windowing.OffsetTokenizer] = None) -> list[tuple]:
    """(ids, starts, ends, windows, word starts or None) per text — picklable, so worker
    processes can return it. ``first_subword``: the model was labelled on first pieces only,
    so decoding needs each token's word start."""
    tok = tokenizer or _WORKER["tokenizer"]
    out: list[tuple] = []
    for i, text in enumerate(texts):
        try:
            (e,), _ = windowing.encode_documents([Document(str(i), text)], tok, max_length, overlap,
                                                 first_subword=first_subword)
            out.append((e.ids, e.starts, e.ends, e.windows, e.word_start))
        except Exception as exc:  # noqa: BLE001 - one bad note is listed as failed, not fatal to the run
            out.append((None, f"tokenizer failed ({type(exc).__name__})"))  # no message: it may quote text
    return out


TOKENIZE_MODES = ("inline", "thread", "process")


class Encoder:
    """Tokenize + window texts inline, in one background thread, or in spawned worker processes.

    * ``inline``: in the main thread, between forwards.
    * ``thread``: one thread encodes the next chunk while the main thread waits in the jitted
      forward (which releases the GIL); the tokenizer itself holds the GIL (SentencePiece with
      character offsets spends ~90% of its time in Python), so one thread is all that helps.
    * ``process``: ``workers`` spawned processes (each loads the vocabulary; start-up costs a
      few seconds of imports), for hosts with cores to spare next to an accelerator.
    Which one wins on a given host is measured by ``benchmarks/bench_predict.py --tokenize``.
    """

    def __init__(self, tagger: ScoringTagger, mode: str = "inline", workers: int = 1):
        if mode not in TOKENIZE_MODES:
            raise ConfigError(f"--tokenize {mode!r}: choose one of {TOKENIZE_MODES}")
        self.tagger, self.mode, self.workers = tagger, mode, max(1, workers)
        self._pool: Optional[concurrent.futures.Executor] = None
        if mode == "thread":
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tokenize")
        elif mode == "process":
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                initargs=(tagger.model_dir,))

    @property
    def ahead(self) -> int:
        """Chunks submitted before the oldest is collected (1: encode the next during this forward)."""
        return 0 if self.mode == "inline" else 1

    def submit(self, texts: Sequence[str]) -> Callable[[], list[tuple]]:
        """Starts encoding; returns a function that waits for the result."""
        t = self.tagger
        if self.mode == "inline":
            return lambda: _encode_texts(texts, t.max_length, t.overlap, t.first_subword, t.tokenizer)
        if self.mode == "thread":
            future = self._pool.submit(_encode_texts, texts, t.max_length, t.overlap, t.first_subword, t.tokenizer)
            return future.result
        per = max(1, -(-len(texts) // (self.workers * 4)))
        futures = [self._pool.submit(_encode_texts, texts[i:i + per], t.max_length, t.overlap, t.first_subword)
                   for i in range(0, len(texts), per)]
        return lambda: [x for f in futures for x in f.result()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


# ----------------------------------------------------------------------------- scoring


def scored_documents(tagger: ScoringTagger, encoded: Sequence[windowing.EncodedDocument],
                     min_score: float = 0.0) -> list[tuple[Document, list[float]]]:
    """Documents with predicted entities (score >= ``min_score``) and each entity's score.

    Score = mean over the entity's tokens of the predicted label's probability, each token's
    value taken from the window that owns it (the same owner rule that merges the labels).
    """
    features, rows = windowing.window_features(encoded, tagger.tokenizer, tagger.max_length)
    labels, probs = tagger.predict_windows(features)
    docs = windowing.predictions_to_documents(encoded, rows, labels, tagger.labels,
                                              repair=getattr(tagger, "operating_point", None) is not None)
    out, first_row = [], 0
    for enc, doc in zip(encoded, docs):
        n = len(enc.ids)
        token_prob = np.zeros(n, np.float32)
        if n:
            owner = windowing.token_owners(enc.windows, n)
            for w, win in enumerate(enc.windows):
                mine = owner[win.start:win.end] == w
                token_prob[win.start:win.end][mine] = probs[first_row + w, 1:1 + win.end - win.start][mine]
        first_row += len(enc.windows)
        kept, scores = [], []
        for e in doc.entities:
            a = int(np.searchsorted(enc.starts, e.start, "left"))
            z = int(np.searchsorted(enc.ends, e.end, "right"))
            score = round(float(token_prob[a:z].mean()) if z > a else 0.0, SCORE_DECIMALS)
            if score >= min_score:
                kept.append(e)
                scores.append(score)
        result = (Document(doc.id, doc.text, kept, [], doc.source), scores)
        matcher = getattr(tagger, "patterns", None)
        out.append(ScoredDocument(*matcher.merge_entities(*result)) if matcher is not None else result)
    return out


class ScoredDocument(tuple):
    """``(document, scores)`` as before (it unpacks the same) plus ``sources``: who found each
    entity (``annotations.patterns.merge_spans``); a pattern-only entity's score is None."""

    def __new__(cls, doc: Document, scores: list, sources: list[str]):
        self = super().__new__(cls, (doc, scores))
        self.sources = sources
        return self


# ----------------------------------------------------------------------------- writers


class ChunkWriter(Protocol):
    """Writes one chunk's per-note outputs under ``staging_dir`` (relative paths = final paths).

    Files are per note only (``<note id>.<ext>``, or ``<note id>.<part>.<ext>``). Rows for a
    run-wide table are *returned* (table name → rows, in note order): the driver stores them
    with the chunk, hashes them into its ledger and combines every chunk's rows into
    ``OUT/<name>.jsonl`` at the end, as it does for ``entities.jsonl``. ``notes``: the input
    records of ``results``, in the same order (e.g. their gold PHI for a leakage audit).
    """

    def write(self, results: Sequence[tuple[Document, list[float]]], staging_dir: str,
              notes: Sequence[SourceNote] = ()) -> Optional[dict[str, list[dict]]]: ...


class NERFileWriter:
    """Per-note brat / i2b2 files exactly as ``predict`` has always written them."""

    def __init__(self, note_format: str, i2b2_flavour: str = "i2b2_2010"):
        if note_format not in NOTE_FORMATS:
            raise ConfigError(f"--format {note_format!r}: choose one of {NOTE_FORMATS + ('jsonl',)}")
        self.note_format, self.i2b2_flavour = note_format, i2b2_flavour

    def write(self, results: Sequence[tuple[Document, list[float]]], staging_dir: str,
              notes: Sequence[SourceNote] = ()) -> None:
        from gatortron_jax.inference.ner_predict import write_predictions

        if self.note_format != "none":
            write_predictions([d for d, _ in results], staging_dir, self.note_format, self.i2b2_flavour)
        return None


def _entity_rows(note: SourceNote, doc: Document, scores: Sequence[float], show_text: bool,
                 sources: Optional[Sequence[str]] = None) -> list[dict]:
    rows = []
    for k, (e, score) in enumerate(zip(doc.entities, scores)):
        row = {"note_id": note.id, "note_index": note.index, "entity_id": e.id, "type": e.type,
               "start": e.start, "end": e.end, "score": score, "source": sources[k] if sources else "model"}
        if show_text:
            row["text"] = doc.text[e.start:e.end]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- the driver


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    output_dir: str
    chunk_notes: int = 512
    min_score: float = 0.0
    show_text: bool = False  # put entity text (PHI) in the entity table
    table_formats: tuple[str, ...] = ("jsonl",)
    shard: int = 0
    num_shards: int = 1
    tokenize: str = "inline"  # inline | thread | process (see Encoder)
    workers: int = 1  # processes when tokenize == "process"
    progress_every_s: float = 10.0

    def validate(self) -> None:
        if self.chunk_notes < 1:
            raise ConfigError(f"--chunk_notes {self.chunk_notes}: must be >= 1")
        if not 0 <= self.shard < self.num_shards:
            raise ConfigError(f"--shard {self.shard} --num_shards {self.num_shards}: need 0 <= shard < num_shards")
        bad = [f for f in self.table_formats if f not in TABLE_FORMATS]
        if bad:
            raise ConfigError(f"--table {bad[0]!r}: choose from {TABLE_FORMATS}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"--min_score {self.min_score}: must be in [0, 1]")

    @property
    def shard_tag(self) -> str:
        return f"shard-{self.shard:05d}-of-{self.num_shards:05d}"

    def output_name(self, stem: str, ext: str) -> str:
        """``summary.json`` for one shard, ``summary.shard-00001-of-00004.json`` for several."""
        middle = "" if self.num_shards == 1 else f".{self.shard_tag}"
        return os.path.join(self.output_dir, f"{stem}{middle}.{ext}")


class _Progress:
    def __init__(self, total: Optional[int], every_s: float):
        self.total, self.every_s = total, every_s
        self.t0 = self.last = time.perf_counter()
        self.done = self.work_notes = self.work_tokens = 0

    def update(self, done: int, worked_notes: int, tokens: int, force: bool = False) -> None:
        self.done, self.work_notes, self.work_tokens = done, self.work_notes + worked_notes, self.work_tokens + tokens
        now = time.perf_counter()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        rate = self.work_notes / max(now - self.t0, 1e-9)
        head = f"{done:,}" + (f"/{self.total:,} notes ({done / max(self.total, 1):.1%})" if self.total else " notes")
        eta = ""
        if self.total and rate > 0:
            eta = f", ETA {time.strftime('%H:%M:%S', time.gmtime(max(self.total - done, 0) / rate))}"
        log.info("predict: %s, %.1f notes/s, %.0f tokens/s%s", head, rate,
                 self.work_tokens / max(now - self.t0, 1e-9), eta)


def _chunks(notes: Iterable[SourceNote], size: int) -> Iterator[list[SourceNote]]:
    chunk: list[SourceNote] = []
    for n in notes:
        chunk.append(n)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def shard_size(total: Optional[int], shard: int, num_shards: int) -> Optional[int]:
    return None if total is None else len(range(shard, total, num_shards))


def run_stream(tagger: ScoringTagger, source: NoteSource, options: StreamOptions,
               writer: Optional[ChunkWriter] = None, *, per_note_files: bool = True,
               run_settings: Optional[dict] = None) -> dict:
    """Predicts every note of this shard of ``source``; returns (and writes) the summary.

    The streaming entry point for ``predict`` and for ``deid``: ``writer`` receives each
    chunk's scored documents and writes its per-note files into a staging directory; the
    driver moves them into place atomically, hashes them into the chunk ledger, and keeps the
    entity tables, resume checks, progress line and summary. ``per_note_files`` false (no
    writer output) lets ids that are not safe file names through.
    """
    options.validate()
    writer = writer or NERFileWriter("brat")
    out = options.output_dir
    state = stream_ledger.state_dir(out, options.shard_tag)
    os.makedirs(state, exist_ok=True)
    settings = {"model": tagger.fingerprint(), "input": os.path.abspath(source.path), "kind": source.kind,
                "id_field": source.id_field, "text_field": source.text_field, "chunk_notes": options.chunk_notes,
                "min_score": options.min_score, "show_text": options.show_text, "num_shards": options.num_shards,
                "shard": options.shard,  # an int8 run does not resume an fp32 one (absent = None: older runs resume)
                "matmul_quantization": getattr(tagger, "matmul_quantization", None), **(run_settings or {})}
    stream_ledger.check_run_settings(state, out, settings)

    t_start = time.perf_counter()
    total = shard_size(source.count(), options.shard, options.num_shards)
    progress = _Progress(total, options.progress_every_s)
    encoder = Encoder(tagger, options.tokenize, options.workers)
    totals = collections.Counter()
    by_type: collections.Counter[str] = collections.Counter()
    by_reason: collections.Counter[str] = collections.Counter()
    failed_examples: list[dict] = []
    seen_ids: set[str] = set()
    pending: collections.deque = collections.deque()
    keep = lambda i: note_sources.shard_of(i, options.num_shards) == options.shard  # noqa: E731

    def finish(chunk_no: int, notes: list[SourceNote], usable: list[SourceNote], failed: list[dict],
               wait: Callable[[], list[tuple]]) -> None:
        parts = wait()
        for n, p in zip(usable, parts):
            if p[0] is None:
                failed.append({"index": n.index, "id": n.id, "where": n.where, "reason": p[1]})
        failed.sort(key=lambda f: f["index"])
        ok = [(n, p) for n, p in zip(usable, parts) if p[0] is not None]
        usable = [n for n, _ in ok]
        encoded = [windowing.EncodedDocument(Document(n.id, n.text, [], [], n.where), *p[:4], word_start=p[4])
                   for n, p in ok]
        results = scored_documents(tagger, encoded, options.min_score)
        sizes = (sum(len(e.ids) for e in encoded), sum(len(e.windows) for e in encoded))
        ledger = _write_chunk(state, out, chunk_no, notes, usable, failed, results, writer, options, sizes)
        _account(ledger)
        progress.update(progress.done + len(notes), len(notes), ledger["tokens"])

    def _account(ledger: dict) -> None:
        totals["notes_read"] += len(ledger["notes"])
        totals["notes_predicted"] += ledger["predicted"]
        totals["notes_failed"] += len(ledger["failed"])
        totals["tokens"] += ledger["tokens"]
        totals["windows"] += ledger["windows"]
        totals["entities"] += sum(ledger["entities_by_type"].values())
        totals["notes_with_replaced_bytes"] += ledger["notes_with_replaced_bytes"]
        by_type.update(ledger["entities_by_type"])
        for f in ledger["failed"]:
            by_reason[f["reason"]] += 1
            if len(failed_examples) < 1000:
                failed_examples.append(f)

    chunk_no = -1
    try:
        for chunk_no, notes in enumerate(_chunks(source.notes(keep), options.chunk_notes)):
            usable, failed = [], []
            for n in notes:
                reason = n.reason
                if reason is None and per_note_files and not note_sources.safe_relative_id(n.id):
                    reason = note_sources.UNSAFE_ID
                if reason is None and n.id in seen_ids:
                    reason = note_sources.DUPLICATE_ID
                seen_ids.add(n.id)
                if reason is None:
                    usable.append(n)
                else:
                    failed.append({"index": n.index, "id": n.id, "where": n.where, "reason": reason})
            done = stream_ledger.verified_ledger(state, out, chunk_no, notes)
            if done is not None:
                totals["chunks_resumed"] += 1
                _account(done)
                progress.update(progress.done + len(notes), 0, 0)
                continue
            totals["chunks_predicted"] += 1
            pending.append((chunk_no, notes, usable, failed, encoder.submit([n.text for n in usable])))
            if len(pending) > encoder.ahead:  # keep the next chunk tokenizing during this forward
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
    finally:
        encoder.close()
    progress.update(progress.done, 0, 0, force=True)
    n_chunks = chunk_no + 1
    stream_ledger.remove_stale(state, n_chunks)
    tables = _combine_tables(state, n_chunks, options) + [
        stream_ledger.concatenate(state, n_chunks, name, options.output_name(name, "jsonl"))
        for name in stream_ledger.writer_table_names(state, n_chunks)]  # tables a chunk writer returned rows for
    failed_path = options.output_name("failed", "jsonl")  # every failed note (the summary lists the first 1000)
    stream_ledger.combine_failed(state, n_chunks, failed_path)
    seconds = time.perf_counter() - t_start
    summary = {
        "input": source.path, "input_format": source.kind, "shard": options.shard, "num_shards": options.num_shards,
        "shard_assignment": "note index mod num_shards",
        **{k: totals[k] for k in ("notes_read", "notes_predicted", "notes_failed", "entities", "tokens", "windows",
                                  "notes_with_replaced_bytes", "chunks_predicted", "chunks_resumed")},
        "chunks": n_chunks, "failed_by_reason": dict(sorted(by_reason.items())),
        "failed": failed_examples, "failed_listed": len(failed_examples),
        "failed_table": os.path.relpath(failed_path, out),
        "entities_by_type": dict(sorted(by_type.items())), "min_score": options.min_score,
        "tables": [os.path.relpath(t, out) for t in tables], "seconds": round(seconds, 3),
        "notes_per_s": round(totals["notes_read"] / max(seconds, 1e-9), 2), "dtype": tagger.dtype,
        "matmul_quantization": tagger.matmul_quantization,
        "tokenize": options.tokenize, "workers": options.workers,
    }
    stream_ledger.atomic_write(options.output_name("summary", "json"), json.dumps(summary, indent=1).encode())
    return summary


def _write_chunk(state: str, out: str, chunk_no: int, notes: Sequence[SourceNote], usable: Sequence[SourceNote],
                 failed: list[dict], results: Sequence[tuple[Document, list[float]]], writer: ChunkWriter,
                 options: StreamOptions, sizes: tuple[int, int]) -> dict:
    """Have ``writer`` stage the chunk's per-note files, then commit them, its tables and its ledger."""
    staging = stream_ledger.fresh_staging(state, chunk_no)
    extra_tables = writer.write(results, staging, notes=usable) or {}
    rows = [r for n, res in zip(usable, results)
            for r in _entity_rows(n, res[0], res[1], options.show_text, getattr(res, "sources", None))]
    files = stream_ledger.commit_files(state, out, chunk_no, staging, (doc.id for doc, _ in results),
                                       {"entities": rows, **extra_tables}, type(writer).__name__)
    by_type = collections.Counter(e.type for doc, _ in results for e in doc.entities)
    ledger = {
        "chunk": chunk_no, "notes": [[n.index, n.id] for n in notes], "predicted": len(usable), "failed": failed,
        "files": files, "tokens": sizes[0], "windows": sizes[1], "entities_by_type": dict(sorted(by_type.items())),
        "notes_with_replaced_bytes": sum(1 for n in notes if n.replaced),
    }
    stream_ledger.write_ledger(state, chunk_no, ledger)
    return ledger


def _combine_tables(state: str, n_chunks: int, options: StreamOptions) -> list[str]:
    """Per-chunk entity tables → ``entities.jsonl`` (and ``entities.parquet``), atomically."""
    written = []
    if "jsonl" in options.table_formats:
        written.append(stream_ledger.concatenate(state, n_chunks, "entities", options.output_name("entities", "jsonl")))
    if "parquet" in options.table_formats:
        import pyarrow as pa
        import pyarrow.parquet as pq

        fields = [("note_id", pa.string()), ("note_index", pa.int64()), ("entity_id", pa.string()),
                  ("type", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64()),
                  ("source", pa.string())]
        if options.show_text:
            fields.append(("text", pa.string()))
        schema = pa.schema(fields)
        path = options.output_name("entities", "parquet")
        tmp = f"{path}.tmp.{os.getpid()}"
        with pq.ParquetWriter(tmp, schema) as w:
            for k in range(n_chunks):
                rows = list(stream_ledger.table_rows(state, k))
                if rows:
                    w.write_table(pa.Table.from_pylist(rows, schema=schema))
        os.replace(tmp, path)
        written.append(path)
    return written
