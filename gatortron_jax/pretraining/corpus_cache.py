"""A tokenized corpus cache: notes are read and tokenized once, training reads token ids.

``gatortron-jax prepare-corpus`` (:mod:`~gatortron_jax.pretraining.prepare`) turns a directory
of raw notes (``.txt`` trees, ``.jsonl``; read through :mod:`gatortron_jax.annotations.notes`,
so the input policy applies) into::

    CACHE/manifest.json                       what was read, with what, and what came out
    CACHE/shard-00000.json                    one shard's commit marker: its sources, counts, input report
    CACHE/train-00000.tokens.npy              uint16/uint32 token ids of the shard's documents, concatenated
    CACHE/train-00000.offsets.npy             int64 chunk boundaries into .tokens (n_chunks + 1)
    CACHE/validation-00000.{tokens,offsets}.npy

**Format: Megatron-style flat token arrays + an offsets index, as ``.npy`` files opened with
``np.load(mmap_mode="r")``**, rather than ArrayRecord. Why: a chunk is a contiguous slice of
one memory map (zero copies, no per-record decode), an epoch's random access touches only the
pages it reads, the offsets give every chunk length without reading tokens (the packer plans
with lengths only), and the files need nothing but numpy, so data-loader worker processes
start without TensorFlow. ArrayRecord would add a serialised record per chunk and its reader
per worker for no gain here.

**Chunks.** Each document is cut exactly as the raw-text path cut it
(:func:`~gatortron_jax.pretraining.preprocessors.split_into_chunks`): consecutive
``seq_len - 2`` token pieces, the last shorter, never spanning two documents; ``[CLS]`` and
``[SEP]`` are added when a row is built. Word starts are a property of the piece id
(``vocab.word_start_mask()``), so whole-word masking needs nothing else stored.

**Size at GatorTron scale** (~500 GB of text, ~120 B tokens): tokenisation is the one full
pass, ~2 bytes per token on disk (~240 GB, uint16 ids for a 50k vocabulary) plus 8 bytes per
chunk of index (~235 M chunks at 512 → ~1.9 GB); ~2,000 shards of 256 MB per split are the
unit of parallel work. The manifest lists every source file (~100 B each) only up to
``prepare.MAX_MANIFEST_SOURCES`` (100,000) files; beyond that they stay in the shard markers. Start-up
reads only the manifest (KBs) and memory-maps index files on first touch.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from gatortron_jax.core.fingerprints import file_sha256
from gatortron_jax.core.errors import ConfigError, InputError

# Split names (the same strings as gatortron_jax.pretraining.corpus, which this light module
# must not import: training data workers load only numpy and this file).
TRAIN = "train"
VALIDATION = "validation"

MANIFEST = "manifest.json"
FORMAT = "gatortron-jax-corpus-cache"
FORMAT_VERSION = 1
SPLITS = (TRAIN, VALIDATION)


def is_cache(path: str) -> bool:
    """A prepared cache is recognised by its manifest."""
    return os.path.isfile(os.path.join(path, MANIFEST))


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 ids for vocabularies up to 65,536 entries (GatorTron's 50,176), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


# ----------------------------------------------------------------------------- read


class CacheSplit:
    """Random access to one split's chunks across shards (memory maps opened on first touch)."""

    def __init__(self, directory: str, split: str, shard_chunks: Sequence[int]):
        self.directory = directory
        self.split = split
        self.cumulative = np.concatenate([[0], np.cumsum(np.asarray(shard_chunks, np.int64))])
        self.num_chunks = int(self.cumulative[-1])
        self._tokens: dict[int, np.ndarray] = {}
        self._offsets: dict[int, np.ndarray] = {}

    def _open(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        if shard not in self._offsets:
            stem = os.path.join(self.directory, f"{self.split}-{shard:05d}")
            try:
                self._offsets[shard] = np.load(stem + ".offsets.npy", mmap_mode="r")
                self._tokens[shard] = np.load(stem + ".tokens.npy", mmap_mode="r")
            except (OSError, ValueError) as e:
                raise InputError(f"corpus cache {self.directory}: cannot read shard {stem}: {e}") from None
            if self._offsets[shard].size != self.cumulative[shard + 1] - self.cumulative[shard] + 1:
                raise InputError(f"corpus cache {self.directory}: {stem}.offsets.npy does not match manifest.json")
        return self._tokens[shard], self._offsets[shard]

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_chunks):
            raise IndexError(f"chunk index out of range [0, {self.num_chunks})")
        shard = np.searchsorted(self.cumulative, ids, side="right") - 1
        return shard, ids - self.cumulative[shard]

    def lengths(self, ids: np.ndarray) -> np.ndarray:
        """Body lengths (no [CLS]/[SEP]) of chunks ``ids``, from the index only."""
        shard, local = self._locate(ids)
        out = np.empty(local.shape, np.int64)
        for s in np.unique(shard):
            _, offsets = self._open(int(s))
            sel = shard == s
            out[sel] = offsets[local[sel] + 1] - offsets[local[sel]]
        return out

    def chunk(self, i: int) -> np.ndarray:
        shard, local = self._locate(np.array([i]))
        tokens, offsets = self._open(int(shard[0]))
        return tokens[offsets[local[0]] : offsets[local[0] + 1]]

    def chunks(self, ids: Sequence[int]) -> Iterator[np.ndarray]:
        shard, local = self._locate(np.asarray(ids))
        for s, l in zip(shard.tolist(), local.tolist()):
            tokens, offsets = self._open(s)
            yield tokens[offsets[l] : offsets[l + 1]]


class CorpusCache:
    """A prepared cache: the manifest (read at start-up) and lazy access to each split."""

    def __init__(self, directory: str):
        self.directory = os.path.abspath(directory)
        path = os.path.join(self.directory, MANIFEST)
        try:
            with open(path) as f:
                self.manifest: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            raise InputError(f"{directory}: not a prepared corpus cache (no {MANIFEST}; run prepare-corpus)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{path}: unreadable manifest ({e})") from None
        if self.manifest.get("format") != FORMAT or self.manifest.get("version") != FORMAT_VERSION:
            raise InputError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} manifest "
                             f"(format {self.manifest.get('format')!r} v{self.manifest.get('version')!r})")
        self._splits: dict[str, CacheSplit] = {}

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def seq_len(self) -> int:
        return int(self.manifest["options"]["seq_len"])

    @property
    def vocab_sha256(self) -> str:
        return self.manifest["vocab"]["sha256"]

    def num_chunks(self, split: str) -> int:
        return int(self.manifest["splits"][split]["chunks"])

    def split(self, split: str) -> CacheSplit:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r} (expected one of {SPLITS})")
        if split not in self._splits:
            self._splits[split] = CacheSplit(self.directory, split, self.manifest["splits"][split]["shards"])
        return self._splits[split]

    def input_report(self) -> Mapping[str, Any]:
        return self.manifest["input_report"]

    def check_compatible(self, *, vocab_path: Optional[str], seq_len: int) -> None:
        """One error line if this cache cannot feed a run with this vocabulary / sequence length."""
        if vocab_path is not None and file_sha256(vocab_path) != self.vocab_sha256:
            raise ConfigError(f"corpus cache {self.directory} was tokenized with another vocabulary "
                              f"({self.manifest['vocab']['path']}), not {vocab_path}; prepare it again with this one")
        if seq_len != self.seq_len:
            raise ConfigError(f"corpus cache {self.directory} holds chunks for seq_len {self.seq_len}, "
                              f"TrainConfig.seq_len is {seq_len}; run prepare-corpus with --seq_len {seq_len}")
