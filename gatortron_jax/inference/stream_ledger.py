"""The streaming driver's ledger: what makes a chunk count as done, and how a run resumes.

A shard's state directory ``OUT/_stream/shard-IIIII-of-NNNNN/`` holds ``run.json`` (the
settings a resume must match), one ledger ``chunk-CCCCCC.json`` per finished chunk (note
indices + ids, the sha256 of every file the chunk wrote, its counts and failed notes) and one
``<table>-CCCCCC.jsonl`` per chunk and table (``entities`` and any table a chunk writer returns
rows for). A chunk's per-note files are staged, then moved into ``OUT`` one ``os.replace`` at a
time; its ledger is written last, atomically, so a chunk counts only once all its outputs are in
place. :func:`verified_ledger` accepts a ledger only when it lists exactly the notes the input
now gives for that chunk and every recorded file still has its recorded hash. At the end the
per-chunk tables are concatenated into ``OUT`` (:func:`concatenate`, :func:`combine_failed`), so
a killed-and-resumed run ends byte-identical to an uninterrupted one.

Only this module knows the state directory's layout and file names; the driver
(``inference/stream.py``) and ``deid_stream`` ask it (e.g. :func:`has_started_run`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from typing import Iterable, Iterator, Optional, Sequence

from gatortron_jax.core.errors import ConfigError
from gatortron_jax.core.fingerprints import file_sha256
from gatortron_jax.inference.note_sources import SourceNote

log = logging.getLogger("gatortron_jax")

STATE_ROOT = "_stream"  # under the output directory; one subdirectory per shard
_STATE_FILE = re.compile(r"^([a-z_]+)-(\d{6})\.jsonl?$")  # chunk ledgers and per-chunk tables
_STATE_KEY = "state:"  # ledger keys of files in the state dir (the rest are relative to the output dir)
_LEDGER = "chunk"  # ledger files are chunk-CCCCCC.json, so no table may be called "chunk"


def state_dir(output_dir: str, shard_tag: str) -> str:
    """The state directory of one shard (``shard_tag`` as ``StreamOptions.shard_tag``)."""
    return os.path.join(output_dir, STATE_ROOT, shard_tag)


def has_started_run(output_dir: str, shard_tag: str) -> bool:
    """True when this shard of ``output_dir`` already holds at least one finished chunk."""
    state = state_dir(output_dir, shard_tag)
    return os.path.isdir(state) and any(n.startswith(f"{_LEDGER}-") for n in os.listdir(state))


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (never half a file)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def check_run_settings(state: str, output_dir: str, settings: dict) -> None:
    """Record ``settings`` for a new run; for a started one, one error naming every setting that changed."""
    settings_path = os.path.join(state, "run.json")
    if os.path.isfile(settings_path):
        with open(settings_path, encoding="utf-8") as f:
            previous = json.load(f)
        changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
        if changed:
            raise ConfigError(f"{output_dir}: holds a run with different settings ({', '.join(changed)}); resume "
                              f"with the same command or use a new --output")
    else:
        atomic_write(settings_path, json.dumps(settings, indent=1, sort_keys=True).encode())


def _ledger_path(state: str, chunk_no: int) -> str:
    return os.path.join(state, f"{_LEDGER}-{chunk_no:06d}.json")


def _table_path(state: str, chunk_no: int, name: str = "entities") -> str:
    return os.path.join(state, f"{name}-{chunk_no:06d}.jsonl")


def read_ledger(state: str, chunk_no: int) -> dict:
    """One finished chunk's ledger."""
    with open(_ledger_path(state, chunk_no), encoding="utf-8") as f:
        return json.load(f)


def verified_ledger(state: str, out: str, chunk_no: int, notes: Sequence[SourceNote]) -> Optional[dict]:
    """The chunk's ledger if it is complete and every output it lists is intact, else None."""
    path = _ledger_path(state, chunk_no)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            ledger = json.load(f)
    except (OSError, ValueError):
        return None
    if ledger.get("notes") != [[n.index, n.id] for n in notes]:
        log.info("chunk %d: input changed since it was written; predicting it again", chunk_no)
        return None
    for rel, digest in ledger["files"].items():
        full = os.path.join(state, rel[len(_STATE_KEY):]) if rel.startswith(_STATE_KEY) else os.path.join(out, rel)
        if not os.path.isfile(full) or file_sha256(full) != digest:
            log.info("chunk %d: %s missing or changed; predicting the chunk again", chunk_no, rel)
            return None
    return ledger


def fresh_staging(state: str, chunk_no: int) -> str:
    """An empty staging directory for one chunk's per-note files (paths relative to it = final paths)."""
    staging = os.path.join(state, f"staging-{chunk_no:06d}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    return staging


def commit_files(state: str, out: str, chunk_no: int, staging: str, note_ids: Iterable[str],
                 tables: dict[str, list[dict]], writer_name: str) -> dict[str, str]:
    """Move the staged per-note files into ``out`` and write the chunk's tables; returns {file: sha256}.

    ``writer_name`` names the chunk writer in the error when it wrote a file that is not per
    note (``<note id>.<ext>`` or ``<note id>.<part>.<ext>``: anything else would be overwritten
    by the next chunk) or returned a table whose name is not lower-case letters/_.
    """
    files: dict[str, str] = {}
    ids = set(note_ids)
    for root, dirs, names in os.walk(staging):
        dirs.sort()
        for name in sorted(names):
            src = os.path.join(root, name)
            rel = os.path.relpath(src, staging).replace(os.sep, "/")
            if rel.rsplit(".", 1)[0] not in ids and rel.rsplit(".", 2)[0] not in ids:  # else overwritten next chunk
                raise ConfigError(f"{writer_name} wrote {rel!r}, which is not a per-note file "
                                  "(<note id>.<ext>); chunk writers may write only per-note files")
            files[rel] = file_sha256(src)
            dest = os.path.join(out, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(src, dest)  # atomic per file; the ledger (written last) makes the chunk count
    shutil.rmtree(staging, ignore_errors=True)
    for name, table_rows in tables.items():
        if not _STATE_FILE.match(f"{name}-{chunk_no:06d}.jsonl") or name == _LEDGER:
            raise ConfigError(f"{writer_name}: table name {name!r} must be lower-case letters/_")
        table = _table_path(state, chunk_no, name)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table_rows).encode("utf-8")
        atomic_write(table, data)
        files[_STATE_KEY + os.path.basename(table)] = hashlib.sha256(data).hexdigest()
    return files


def write_ledger(state: str, chunk_no: int, ledger: dict) -> None:
    """Write the chunk's ledger (last, atomically: from now on the chunk counts as done)."""
    atomic_write(_ledger_path(state, chunk_no), json.dumps(ledger).encode())


def remove_stale(state: str, n_chunks: int) -> None:
    """Ledgers and tables past the last chunk (the input shrank) are removed so tables are not mixed."""
    for name in os.listdir(state):
        m = _STATE_FILE.match(name)
        if m and int(m.group(2)) >= n_chunks:
            os.remove(os.path.join(state, name))


def concatenate(state: str, n_chunks: int, name: str, path: str) -> str:
    """Every chunk's ``name`` table, in chunk order, → ``path`` (atomically); returns ``path``."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        for k in range(n_chunks):
            with open(_table_path(state, k, name), "rb") as part:
                shutil.copyfileobj(part, f)
    os.replace(tmp, path)
    return path


def table_rows(state: str, chunk_no: int, name: str = "entities") -> Iterator[dict]:
    """The rows of one chunk's ``name`` table."""
    with open(_table_path(state, chunk_no, name), encoding="utf-8") as part:
        for line in part:
            yield json.loads(line)


def writer_table_names(state: str, n_chunks: int) -> list[str]:
    """Names of the tables a chunk writer returned rows for (every chunk has them), besides ``entities``."""
    if n_chunks == 0:
        return []
    return sorted(m.group(1) for m in map(_STATE_FILE.match, os.listdir(state))
                  if m and m.group(2) == "000000" and m.group(1) not in (_LEDGER, "entities"))


def combine_failed(state: str, n_chunks: int, path: str) -> None:
    """Every chunk's failed notes, in chunk order, → ``path`` as JSON lines (atomically)."""
    with open(f"{path}.tmp.{os.getpid()}", "w", encoding="utf-8") as f:
        for k in range(n_chunks):
            for row in read_ledger(state, k)["failed"]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(f"{path}.tmp.{os.getpid()}", path)
