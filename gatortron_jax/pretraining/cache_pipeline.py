"""The pretraining input stream, read from a prepared corpus cache (the one training input path).

From a cache (:mod:`~gatortron_jax.pretraining.corpus_cache`) to the model's batches
(``input_ids, token_type_ids, segment_ids, position_ids, mlm_targets, mlm_weights``, each
``[rows, seq_len]``), with every property pretraining at scale needs decided by plain integers:

* **Global shuffle.** Epoch ``e`` visits the split's chunks in the order of a seeded bijection
  of ``[0, N)`` (a 4-round Feistel network with cycle walking, keyed by ``(seed, e)``): any
  position maps to its chunk in O(1) time and memory, so nothing of size N is ever built —
  at GatorTron scale (~235 M chunks) a materialised permutation would be 1.9 GB per host per
  epoch. A batch mixes chunks from the whole corpus, not from a few files.
* **Disjoint per-process shards.** Process ``p`` of ``P`` reads permuted positions
  ``p, p + P, p + 2P, ...``: the shards partition every epoch, and their union is the
  1-process stream's set of chunks.
* **Masks from (seed, epoch, chunk index, position)** through a counter-based hash
  (splitmix64), not from a stream of random state: they differ across hosts (different
  chunks) and epochs, a rerun is identical, and a chunk's mask does not depend on which row
  or worker it landed in. BERT masking as :func:`~gatortron_jax.pretraining.preprocessors.mlm_mask`
  (Bernoulli ``mask_rate`` per token, or per word with ``whole_word``; 80/10/10).
* **Packing** as before: chunks fill a row greedily in stream order (a chunk that does not
  fit starts the next row), each with its own ``segment_ids`` value and positions from 0, so
  the model's attention mask confines attention to each chunk.
* **O(1) resume.** The whole state of a process's stream is one :class:`Position`
  ``(epoch, index)``; the trainer saves every process's position in the checkpoint and a
  resumed stream starts there directly (no replay: cost independent of the step).
* **Fast enough in-process; parallel when asked.** Reading, masking and packing are a few
  vectorised numpy passes per batch (no Python per token): measured ~19 M tokens per CPU-second
  at seq 512 with whole-word masking (``benchmarks/RESULTS.md``), 13x what one 8xH100 host
  training GatorTron-base consumes (~1.45 M tokens/s), so the training process's GIL is not
  the ceiling and ``num_workers = 0`` (in-process) is the default. ``num_workers > 0`` moves
  that work into spawned worker processes (numpy and this module only; the planner, which needs
  chunk lengths only, stays in the training process; results in order, so the output does not
  depend on the worker count) for heavier custom row building; at these costs the transfer of
  each batch back costs more than it saves (measured 3x fewer tokens per CPU-second).
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
from typing import Any, Iterator, Optional

import numpy as np

from gatortron_jax.core.errors import ConfigError
from gatortron_jax.pretraining.corpus_cache import CacheSplit, CorpusCache

_M64 = (1 << 64) - 1
_K_CHUNK = np.uint64(0x9E3779B97F4A7C15)
_K_POS = np.uint64(0xC2B2AE3D27D4EB4F)
_K_STREAM = np.uint64(0x165667B19E3779F9)
_SELECT, _ACTION, _REPLACEMENT = 0, 1, 2  # hash streams


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _mix_int(*values: int) -> int:
    """A 64-bit key from small integers (seed, epoch, round), in Python ints."""
    h = 0x243F6A8885A308D3
    for v in values:
        h = int(_mix64(np.array([(h + (v & _M64) * 0x9E3779B97F4A7C15) & _M64], np.uint64))[0])
    return h


def _uniform(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


# ----------------------------------------------------------------------------- order


class FeistelPermutation:
    """A seeded bijection of ``[0, n)``: ``perm(positions) -> chunk indices``, O(1) per index."""

    ROUNDS = 4

    def __init__(self, n: int, seed: int, epoch: int):
        self.n = n
        bits = max(2, int(n - 1).bit_length() if n > 1 else 2)
        bits += bits % 2
        self.half = np.uint64(bits // 2)
        self.mask = np.uint64((1 << (bits // 2)) - 1)
        self.keys = [np.uint64(_mix_int(seed, epoch, r)) for r in range(self.ROUNDS)]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self.half, x & self.mask
        for k in self.keys:
            left, right = right, left ^ (_mix64(right + k) & self.mask)
        return (left << self.half) | right

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        x = self._encrypt(np.asarray(positions, np.uint64))
        out = x >= np.uint64(self.n)
        while out.any():  # cycle walking: the domain is < 4n, so a few rounds at most on average
            x[out] = self._encrypt(x[out])
            out = x >= np.uint64(self.n)
        return x.astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a process's stream stands: the next unconsumed shard position of ``epoch``."""

    epoch: int = 0
    index: int = 0

    def to_list(self) -> list[int]:
        return [self.epoch, self.index]


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """One process's stream over one split of a cache."""

    cache_dir: str
    split: str
    seq_len: int
    rows: int  # rows per batch from this process
    seed: int
    shuffle: bool = True
    process_index: int = 0
    process_count: int = 1
    num_epochs: Optional[int] = None  # None: repeat forever


def shard_size(num_chunks: int, process_index: int, process_count: int) -> int:
    """Positions ``process_index, +process_count, ...`` below ``num_chunks``."""
    return max(0, (num_chunks - process_index + process_count - 1) // process_count)


@dataclasses.dataclass
class Plan:
    """One batch: which chunk (and epoch) goes to which row and offset; ``end`` = position after it."""

    chunk_ids: np.ndarray
    epochs: np.ndarray
    rows: np.ndarray
    offsets: np.ndarray
    segments: np.ndarray
    end: Position


class BatchPlanner:
    """Greedy packing of a process's chunk stream into batches, from chunk lengths alone."""

    def __init__(self, split: CacheSplit, spec: StreamSpec, start: Position = Position()):
        if spec.seq_len < 3 or spec.rows < 1:
            raise ConfigError(f"need seq_len >= 3 and rows >= 1, got {spec.seq_len} and {spec.rows}")
        self.split, self.spec = split, spec
        self.size = shard_size(split.num_chunks, spec.process_index, spec.process_count)
        if self.size == 0:
            raise ConfigError(
                f"corpus cache {split.directory}: split {split.split!r} has {split.num_chunks} chunk(s), "
                f"none for process {spec.process_index} of {spec.process_count}")
        if not 0 <= start.index < self.size:
            raise ConfigError(f"stream position {start} is outside this process's shard of {self.size} chunks")
        self.position = start
        self._perms: dict[int, FeistelPermutation] = {}
        self._ahead: collections.deque = collections.deque()  # (epoch, index, chunk id, body length)
        self._next = start  # position after the last look-ahead entry

    def _perm(self, epoch: int) -> FeistelPermutation:
        if epoch not in self._perms:
            self._perms = {epoch: FeistelPermutation(self.split.num_chunks, self.spec.seed, epoch)}
        return self._perms[epoch]

    def _exhausted(self, pos: Position) -> bool:
        return self.spec.num_epochs is not None and pos.epoch >= self.spec.num_epochs

    def _fill(self, want: int) -> None:
        """Looks ahead ``want`` positions (their chunk ids and lengths), crossing epochs."""
        spec = self.spec
        while len(self._ahead) < want and not self._exhausted(self._next):
            epoch, index = self._next.epoch, self._next.index
            count = min(want - len(self._ahead), self.size - index)
            idx = np.arange(index, index + count, dtype=np.int64)
            positions = spec.process_index + idx * spec.process_count
            ids = self._perm(epoch)(positions) if spec.shuffle else positions
            lengths = self.split.lengths(ids)
            self._ahead.extend(zip([epoch] * count, idx.tolist(), ids.tolist(), lengths.tolist()))
            index += count
            self._next = Position(epoch + 1, 0) if index == self.size else Position(epoch, index)

    def next_plan(self) -> Optional[Plan]:
        """The next batch's plan, or None once ``num_epochs`` are consumed."""
        seq_len, rows = self.spec.seq_len, self.spec.rows
        out: list[tuple[int, int, int, int, int]] = []
        row, fill, segment = 0, 0, 0
        while True:
            if not self._ahead:
                self._fill(max(64, 4 * rows))
                if not self._ahead:
                    break
            epoch, index, chunk, length = self._ahead[0]
            size = length + 2
            if fill + size > seq_len:
                row, fill, segment = row + 1, 0, 0
                if row == rows:
                    break
            self._ahead.popleft()
            segment += 1
            out.append((chunk, epoch, row, fill, segment))
            fill += size
            nxt = index + 1
            self.position = Position(epoch + 1, 0) if nxt == self.size else Position(epoch, nxt)
        if not out:
            return None
        a = np.array(out, np.int64)
        return Plan(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], self.position)


# ----------------------------------------------------------------------------- masking + rows


@dataclasses.dataclass(frozen=True)
class MaskingTables:
    """What masking needs from the vocabulary, as arrays (picklable to worker processes)."""

    special: np.ndarray  # bool[vocab]
    word_start: np.ndarray  # bool[vocab]
    replacements: np.ndarray  # int32: non-special ids a random replacement is drawn from
    cls_id: int
    sep_id: int
    mask_id: int
    mask_rate: float = 0.15
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    whole_word: bool = False

    @classmethod
    def from_vocabulary(cls, vocab: Any, *, mask_rate: float = 0.15, whole_word: bool = False) -> "MaskingTables":
        if not 0.0 < mask_rate < 1.0:
            raise ConfigError(f"mask_rate must be in (0, 1), got {mask_rate}")
        special = np.zeros(vocab.vocab_size, dtype=bool)
        special[sorted(vocab.special_ids)] = True
        return cls(special, np.asarray(vocab.word_start_mask(), bool), np.flatnonzero(~special).astype(np.int32),
                   vocab.cls_id, vocab.sep_id, vocab.mask_id, mask_rate=mask_rate, whole_word=whole_word)


def _chunk_keys(chunk_ids: np.ndarray, epochs: np.ndarray, seed: int) -> np.ndarray:
    epoch_keys = {int(e): _mix_int(seed, int(e)) for e in np.unique(epochs)}
    base = np.array([epoch_keys[int(e)] for e in epochs], np.uint64)
    return _mix64(chunk_ids.astype(np.uint64) * _K_CHUNK + base)


def _draw(keys: np.ndarray, index: np.ndarray, stream: int) -> np.ndarray:
    return _mix64(keys + (index.astype(np.uint64) + np.uint64(1)) * _K_POS + np.uint64(stream) * _K_STREAM)


def build_batch(split: CacheSplit, plan: Plan, tables: MaskingTables, seq_len: int, rows: int, seed: int
                ) -> dict[str, np.ndarray]:
    """Reads the plan's chunks, adds [CLS]/[SEP], masks and packs them into ``[rows, seq_len]``."""
    bodies = list(split.chunks(plan.chunk_ids))
    lengths = np.array([b.size + 2 for b in bodies], np.int64)
    total = int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    chunk_of = np.repeat(np.arange(lengths.size), lengths)
    q = np.arange(total, dtype=np.int64) - starts[chunk_of]  # position within the chunk
    ids = np.empty(total, np.int32)
    is_cls = q == 0
    is_sep = q == lengths[chunk_of] - 1
    ids[is_cls] = tables.cls_id
    ids[is_sep] = tables.sep_id
    ids[~(is_cls | is_sep)] = np.concatenate(bodies) if bodies else np.zeros(0, np.int32)

    keys = _chunk_keys(plan.chunk_ids, plan.epochs, seed)[chunk_of]
    special = tables.special[ids]
    if tables.whole_word:
        follows_special = np.concatenate([[True], special[:-1]]) | is_cls
        starts_word = tables.word_start[ids] | special | follows_special
        cs = np.cumsum(starts_word)
        word = cs - cs[starts][chunk_of]  # word index within the chunk
        select = _uniform(_draw(keys, word, _SELECT))
    else:
        select = _uniform(_draw(keys, q, _SELECT))
    selected = ~special & (select < tables.mask_rate)
    action = _uniform(_draw(keys, q, _ACTION))
    to_mask = selected & (action < tables.mask_token_rate)
    to_random = selected & ~to_mask & (action < tables.mask_token_rate + tables.random_token_rate)
    replacement = tables.replacements[
        (_draw(keys, q, _REPLACEMENT) % np.uint64(tables.replacements.size)).astype(np.int64)]
    inputs = np.where(to_mask, np.int32(tables.mask_id), ids)
    inputs = np.where(to_random, replacement, inputs).astype(np.int32)

    dest = np.repeat(plan.rows * seq_len + plan.offsets, lengths) + q
    out = {k: np.zeros(rows * seq_len, np.int32)
           for k in ("input_ids", "token_type_ids", "segment_ids", "position_ids", "mlm_targets")}
    out["input_ids"][dest] = inputs
    out["segment_ids"][dest] = np.repeat(plan.segments, lengths)
    out["position_ids"][dest] = q
    out["mlm_targets"][dest] = ids
    weights = np.zeros(rows * seq_len, np.float32)
    weights[dest] = selected
    out["mlm_weights"] = weights
    return {k: v.reshape(rows, seq_len) for k, v in out.items()}


# ----------------------------------------------------------------------------- workers

_worker: dict[str, Any] = {}


def _init_worker(cache_dir: str, split: str, tables: MaskingTables, seq_len: int, rows: int, seed: int) -> None:
    _worker.update(split=CorpusCache(cache_dir).split(split), tables=tables, seq_len=seq_len, rows=rows, seed=seed)


def _build_in_worker(plan: Plan) -> dict[str, np.ndarray]:
    w = _worker
    return build_batch(w["split"], plan, w["tables"], w["seq_len"], w["rows"], w["seed"])


class CacheBatches:
    """Iterator of batches for one process; :attr:`position` is where the stream resumes.

    ``num_workers = 0`` builds batches in this process; ``> 0`` in that many spawned worker
    processes, ``prefetch`` batches in flight per worker, returned in order (so the output is
    the same for any worker count).
    """

    def __init__(self, cache: CorpusCache, spec: StreamSpec, tables: MaskingTables,
                 start: Position = Position(), *, num_workers: int = 0, prefetch: int = 2):
        self.spec, self.tables = spec, tables
        self._split = cache.split(spec.split)
        self._planner = BatchPlanner(self._split, spec, start)
        self.position = start
        self._pending: collections.deque = collections.deque()
        self._pool = None
        self._depth = max(1, num_workers * prefetch)
        if num_workers > 0:
            ctx = multiprocessing.get_context("spawn")  # never fork a process holding JAX threads
            self._pool = ctx.Pool(num_workers, initializer=_init_worker,
                                  initargs=(cache.directory, spec.split, tables, spec.seq_len, spec.rows, spec.seed))

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self

    def _submit(self) -> bool:
        plan = self._planner.next_plan()
        if plan is None:
            return False
        if self._pool is None:
            self._pending.append((plan.end, plan))
        else:
            self._pending.append((plan.end, self._pool.apply_async(_build_in_worker, (plan,))))
        return True

    def __next__(self) -> dict[str, np.ndarray]:
        while len(self._pending) < self._depth and self._submit():
            pass
        if not self._pending:
            raise StopIteration
        end, job = self._pending.popleft()
        if self._pool is None:
            batch = build_batch(self._split, job, self.tables, self.spec.seq_len, self.spec.rows, self.spec.seed)
        else:
            batch = job.get()
        self.position = end
        return batch

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> "CacheBatches":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
