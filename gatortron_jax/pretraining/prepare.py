"""``prepare-corpus``: raw notes -> a tokenized corpus cache (:mod:`~gatortron_jax.pretraining.corpus_cache`).

**Sharding and restarts.** Input files are grouped, in sorted order, into shards of about
``shard_mb`` of text; the grouping depends only on the file list and sizes, so
``--shard I --num_shards N`` (hosts, e.g. a SLURM array) and ``--num_workers K`` (local
processes) only decide *who* writes a shard, never its contents: 2 shards-of-hosts produce the
same files as 1. A shard is written to temporary names and committed by renaming its
``shard-XXXXX.json`` last, so a killed prepare leaves no half shard, and a rerun redoes only
shards whose marker is missing or whose sources (path, size, mtime), vocabulary fingerprint
or options changed. The manifest is written, atomically, by whichever invocation finds every
shard committed; an unchanged input with a manifest is not read at all.

Workers are spawned processes (never forked: the caller may hold JAX/TensorFlow threads);
each opens the vocabulary itself and writes whole shards, so ``K`` workers tokenize ``K``
shards at once. The time is the one full tokenisation pass: at GatorTron scale (~500 GB,
~2,000 shards of 256 MB) it divides over hosts x workers.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from gatortron_jax.annotations.input_policy import MAX_ISSUES, InputReport, format_summary
from gatortron_jax.core.errors import ConfigError, InputError
from gatortron_jax.text.vocab import load_vocabulary
from gatortron_jax.text.wordpiece import WordPieceVocabulary
from gatortron_jax.pretraining.corpus import TRAIN, VALIDATION, TextCorpusSource
from gatortron_jax.core.fingerprints import file_sha256
from gatortron_jax.pretraining.corpus_cache import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SPLITS,
    is_cache,
    token_dtype,
)

log = logging.getLogger("gatortron_jax")

DEFAULT_SHARD_MB = 256
#: Source files listed inline in manifest.json; more stay in the shard markers only.
MAX_MANIFEST_SOURCES = 100_000


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _atomic_write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
    """Everything that changes the cache's contents (part of every shard's fingerprint)."""

    seq_len: int = 512
    doc_per_line: bool = False
    validation_fraction: float = 0.05
    strict: bool = False
    # WordPiece casing; None: inferred from vocab.txt. Continued pretraining passes the decision
    # stored in the checkpoint's config.json (import-hf --cased / --lowercase).
    lowercase: Optional[bool] = None


def open_vocabulary(path: str, lowercase: Optional[bool] = None) -> Any:
    """The vocabulary to tokenize with; ``lowercase`` fixes a WordPiece vocabulary's casing."""
    if lowercase is not None and path.endswith(".txt"):
        return WordPieceVocabulary(path, lowercase=lowercase)
    return load_vocabulary(path)


def _group_files(sources: Sequence[dict[str, Any]], shard_bytes: int) -> list[list[int]]:
    """Contiguous runs of the sorted file list, each about ``shard_bytes`` of input."""
    groups: list[list[int]] = [[]]
    size = 0
    for i, src in enumerate(sources):
        if groups[-1] and size + src["size"] > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += src["size"]
    return groups


@dataclasses.dataclass(frozen=True)
class _ShardJob:
    index: int
    key: str
    input_dir: str
    output_dir: str
    vocab_path: str
    files: tuple[str, ...]  # absolute paths
    sources: tuple[dict, ...]
    options: PrepareOptions
    show_text: bool = False  # warnings may quote an escaped excerpt (not part of the cache's contents)


def _write_shard(job: _ShardJob) -> dict[str, Any]:
    """Reads, tokenizes and chunks one shard's files; commits it by writing its marker last."""
    vocab = open_vocabulary(job.vocab_path, job.options.lowercase)
    opts = job.options
    body = opts.seq_len - 2
    dtype = token_dtype(vocab.vocab_size)
    source = TextCorpusSource(job.input_dir, doc_per_line=opts.doc_per_line,
                              validation_fraction=opts.validation_fraction, strict=opts.strict,
                              show_text=job.show_text)
    tokens: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    lengths: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    reports = {s: InputReport() for s in SPLITS}
    no_tokens = {s: 0 for s in SPLITS}
    for name in job.files:
        path = Path(name)
        seen = set()
        for split, doc in source.iter_file_split_records(path):
            seen.add(split)
            reason = doc.skip_reason
            reports[split].add(reason, replaced_sequences=doc.replaced_sequences, replaced_bytes=doc.replaced_bytes)
            if reason is not None:
                continue
            ids = np.asarray(vocab.encode(doc.text), dtype=dtype)
            if ids.size == 0:  # e.g. only characters the vocabulary drops: counted, yields no chunk
                no_tokens[split] += 1
                continue
            tokens[split].append(ids)
            full, rest = divmod(ids.size, body)
            lengths[split].append(np.array([body] * full + ([rest] if rest else []), np.int64))
        for split in seen:
            reports[split].files += 1
    out = Path(job.output_dir)
    summary: dict[str, Any] = {"index": job.index, "key": job.key, "sources": list(job.sources), "splits": {}}
    for split in SPLITS:
        flat = np.concatenate(tokens[split]) if tokens[split] else np.zeros(0, dtype)
        lens = np.concatenate(lengths[split]) if lengths[split] else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        _atomic_save_npy(out / f"{split}-{job.index:05d}.tokens.npy", flat)
        _atomic_save_npy(out / f"{split}-{job.index:05d}.offsets.npy", offsets)
        reports[split].check()
        summary["splits"][split] = {"chunks": int(lens.size), "tokens": int(flat.size),
                                    "documents": reports[split].used - no_tokens[split],
                                    "no_tokens": no_tokens[split], "report": reports[split].to_dict()}
    summary["file_issues"] = [i.to_dict() for i in sorted(source.file_issues.values(), key=lambda i: (i.path, i.kind))]
    _atomic_write_json(out / f"shard-{job.index:05d}.json", summary)
    return summary


def _shard_done(output: Path, index: int, key: str) -> bool:
    marker = output / f"shard-{index:05d}.json"
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("key") == key
    except (OSError, json.JSONDecodeError):
        return False


def prepare_corpus(
    input_dir: str,
    vocab_path: str,
    output_dir: str,
    options: PrepareOptions = PrepareOptions(),
    *,
    num_workers: int = 1,
    shard: int = 0,
    num_shards: int = 1,
    shard_mb: float = DEFAULT_SHARD_MB,
    show_text: bool = False,
) -> dict[str, Any]:
    """Prepares (this host's part of) a cache; returns ``{"manifest": ... or None, "written": [...], ...}``.

    Lists and stats every input file (O(files), no reads), then tokenizes the missing shards
    assigned to ``shard`` of ``num_shards`` with ``num_workers`` processes. Bad input follows
    the input policy: replaced / skipped and counted (reported in the manifest), or an
    :class:`InputError` naming file and line when ``options.strict``.
    """
    if options.seq_len < 3:
        raise ConfigError(f"seq_len must be >= 3 for [CLS] x [SEP], got {options.seq_len}")
    if not 0 <= shard < num_shards:
        raise ConfigError(f"--shard {shard} out of range for --num_shards {num_shards}")
    vocab = open_vocabulary(vocab_path, options.lowercase)  # validates the path up front
    source = TextCorpusSource(input_dir, doc_per_line=options.doc_per_line,
                              validation_fraction=options.validation_fraction, strict=options.strict)
    root = Path(input_dir)
    files = source.files()
    sources = []
    for p in files:
        st = p.stat()
        sources.append({"path": p.relative_to(root).as_posix(), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    vocab_info = {"sha256": file_sha256(vocab_path), "size": vocab.vocab_size, "path": os.path.abspath(vocab_path),
                  "cls_id": vocab.cls_id, "sep_id": vocab.sep_id, "mask_id": vocab.mask_id}
    base = {"format": FORMAT, "version": FORMAT_VERSION, "options": dataclasses.asdict(options),
            "vocab_sha256": vocab_info["sha256"]}
    fingerprint = _digest({**base, "sources": sources})
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if is_cache(output_dir):
        try:
            existing = json.loads((output / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError):
            existing = {}
        if existing.get("fingerprint") == fingerprint:
            log.info("corpus cache %s is up to date (inputs, vocabulary and options unchanged)", output_dir)
            return {"manifest": existing, "written": [], "up_to_date": True}
        (output / MANIFEST).unlink()  # stale: rewritten below once every shard is committed
    groups = _group_files(sources, max(int(shard_mb * 2**20), 1))
    jobs = []
    for g, members in enumerate(groups):
        srcs = tuple(sources[i] for i in members)
        jobs.append(_ShardJob(g, _digest({**base, "sources": srcs}), str(root), str(output), vocab_path,
                              tuple(str(files[i]) for i in members), srcs, options, show_text))
    todo = [j for j in jobs if j.index % num_shards == shard and not _shard_done(output, j.index, j.key)]
    log.info("corpus cache %s: %d shard(s) in all, %d for this host (shard %d/%d), %d to write with %d worker(s)",
             output_dir, len(jobs), sum(1 for j in jobs if j.index % num_shards == shard), shard, num_shards,
             len(todo), max(1, num_workers))
    if num_workers > 1 and len(todo) > 1:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold JAX/TF threads
        with ctx.Pool(min(num_workers, len(todo))) as pool:
            for summary in pool.imap_unordered(_write_shard, todo):
                log.info("wrote shard %d (%d train / %d validation chunks)", summary["index"],
                         summary["splits"][TRAIN]["chunks"], summary["splits"][VALIDATION]["chunks"])
    else:
        for job in todo:
            _write_shard(job)
    manifest = _assemble_manifest(output, jobs, fingerprint, base, vocab_info, sources, source, options)
    return {"manifest": manifest, "written": [j.index for j in todo], "up_to_date": False, "shards": len(jobs)}


def _assemble_manifest(output: Path, jobs, fingerprint, base, vocab_info, sources, source, options):
    """Writes manifest.json if every shard is committed (else None: other hosts are still at it)."""
    if not all(_shard_done(output, j.index, j.key) for j in jobs):
        return None
    summaries = [json.loads((output / f"shard-{j.index:05d}.json").read_text()) for j in jobs]
    splits: dict[str, Any] = {}
    for split in SPLITS:
        report = InputReport()
        for s in summaries:
            r = s["splits"][split]["report"]
            report.merge(InputReport(files=r["files"], read=r["read"], used=r["used"],
                                     skipped=collections.Counter(r["skipped"]),
                                     flagged=collections.Counter(r["flagged"]),
                                     replaced_sequences=r["replaced_sequences"], replaced_bytes=r["replaced_bytes"]))
        splits[split] = {
            "chunks": sum(s["splits"][split]["chunks"] for s in summaries),
            "tokens": sum(s["splits"][split]["tokens"] for s in summaries),
            "documents": sum(s["splits"][split]["documents"] for s in summaries),
            "no_tokens": sum(s["splits"][split]["no_tokens"] for s in summaries),
            "shards": [s["splits"][split]["chunks"] for s in summaries],
            "report": report,
        }
    if splits[TRAIN]["chunks"] == 0:
        raise InputError(f"corpus {source.corpus_dir}: split 'train' has no non-empty documents "
                         f"({splits[TRAIN]['report'].summary()})")
    issues = [i for s in summaries for i in s["file_issues"]]
    input_report = {
        "corpus_dir": source.corpus_dir, "strict": options.strict, "validated": True,
        "splits": {k: v["report"].to_dict() for k, v in splits.items()},
        "file_issues": issues[:MAX_ISSUES], "file_issues_omitted": max(0, len(issues) - MAX_ISSUES),
        "summary": format_summary({k: v["report"] for k, v in splits.items()}),
    }
    for v in splits.values():
        v.pop("report")
    manifest = {
        **base, "fingerprint": fingerprint, "input_dir": source.corpus_dir, "vocab": vocab_info,
        "token_dtype": str(token_dtype(vocab_info["size"])), "num_shards": len(jobs), "splits": splits,
        "num_sources": len(sources), "sources": sources if len(sources) <= MAX_MANIFEST_SOURCES else None,
        "input_report": input_report,
    }
    _atomic_write_json(output / MANIFEST, manifest)
    log.info("corpus cache %s: %s", output, {k: v["chunks"] for k, v in splits.items()})
    return manifest


