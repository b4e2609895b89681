"""``gatortron-jax embed``: text lines → last hidden states (one float32 array per line).

An encoder returns one contextual vector per token, not text. For each input line the output
``.npz`` holds key ``str(line_index)`` → float32 ``[n_tokens + 2, hidden]``: row 0 is [CLS],
rows 1..n are the line's WordPiece tokens in order, the last row is [SEP].

Long lines are never truncated. With ``P`` positions (``--max_length``, default the model's
``max_position_embeddings``) a window holds ``C = P - 2`` text tokens between its own [CLS] and
[SEP]. Windows start every ``C - overlap`` tokens (the last one is aligned to the line's end),
and each token takes its vector from the window where it has the most context on its *nearer*
side (``min(tokens left, tokens right)`` inside the window; ties → earlier window) — the BERT
SQuAD "max context" rule. [CLS] comes from the first window, [SEP] from the last. Default
overlap is ``C // 2``, so every stitched token (away from the line's ends) sees at least
``C // 4`` tokens of context on each side.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gatortron_jax.core.compiler_options import inference_compiler_options
from gatortron_jax.core.errors import InputError
from gatortron_jax.text.windows import max_context_owners, plan_windows  # the one planner and owner rule

log = logging.getLogger(__name__)


def _bucket(length: int, cap: int) -> int:
    b = 16
    while b < length:
        b *= 2
    return min(b, cap)


class Embedder:
    """Runs the encoder over (windowed) lines with fixed batch shapes (few compilations)."""

    def __init__(self, config: Any, encoder_params: Any, vocab: Any, *, max_length: int | None = None,
                 overlap: int | None = None, batch_size: int = 8):
        from gatortron_jax.models.encoder import Encoder

        self.config, self.vocab, self.batch_size = config, vocab, batch_size
        self.max_length = max_length or config.max_position_embeddings
        if not 3 <= self.max_length <= config.max_position_embeddings:
            raise InputError(f"--max_length={self.max_length}: must be in 3..{config.max_position_embeddings} "
                             "(max_position_embeddings)")
        self.capacity = self.max_length - 2
        self.overlap = self.capacity // 2 if overlap is None else overlap
        if not 0 <= self.overlap < self.capacity:
            raise InputError(f"--overlap={self.overlap}: must be in 0..{self.capacity - 1} (window holds "
                             f"{self.capacity} text tokens)")
        model = Encoder(config.replace(use_pooler=False, dropout_rate=0.0, attention_dropout_rate=0.0))
        params = {k: v for k, v in encoder_params.items() if k != "pooler"}
        self._forward = jax.jit(lambda p, ids, seg: model.apply({"params": p}, ids, None, None, seg)[0],
                                compiler_options=inference_compiler_options(model.config))
        self._params = params

    def _run(self, rows: list[list[int]]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for i in range(0, len(rows), self.batch_size):
            chunk = rows[i:i + self.batch_size]
            length = _bucket(max(len(r) for r in chunk), self.max_length)
            ids = np.full((self.batch_size, length), self.vocab.pad_id, np.int32)
            seg = np.zeros((self.batch_size, length), np.int32)
            for j, r in enumerate(chunk):
                ids[j, :len(r)] = r
                seg[j, :len(r)] = 1
            hidden = np.asarray(self._forward(self._params, jnp.asarray(ids), jnp.asarray(seg)), np.float32)
            out += [hidden[j, :len(r)] for j, r in enumerate(chunk)]
        return out

    def embed(self, texts: Sequence[str]) -> tuple[list[np.ndarray], list[int]]:
        """(arrays [n_i + 2, hidden], number of windows per text)."""
        cls, sep = self.vocab.cls_id, self.vocab.sep_id
        plans, rows = [], []
        for text in texts:
            ids = list(self.vocab.encode(text))
            windows = plan_windows(len(ids), self.capacity, self.overlap)
            plans.append((len(ids), windows, len(rows)))
            rows += [[cls] + ids[s:e] + [sep] for s, e in windows]
        # Sort by length so a batch pads to its own bucket, then restore order.
        order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
        hidden_sorted = self._run([rows[r] for r in order])
        hidden: list[np.ndarray] = [None] * len(rows)  # type: ignore[list-item]
        for pos, r in enumerate(order):
            hidden[r] = hidden_sorted[pos]
        results, counts = [], []
        for n, windows, first in plans:
            hs = hidden[first:first + len(windows)]
            out = np.empty((n + 2, self.config.hidden_size), np.float32)
            out[0], out[-1] = hs[0][0], hs[-1][-1]
            owner = max_context_owners(n, windows)
            for w, (s, e) in enumerate(windows):
                t = np.nonzero(owner[s:e] == w)[0] + s
                out[1 + t] = hs[w][1 + t - s]
            results.append(out)
            counts.append(len(windows))
        return results, counts


def read_lines(path: str, *, strict: bool = False, show_text: bool = False) -> list[str]:
    """Lines split on "\\n" only (a trailing newline ends the last line; "\\r" is stripped).

    Decoded under the input policy (annotations/input_policy.py): undecodable bytes become U+FFFD
    with one warning naming the file, line and byte offset (``--strict``: an error), so every
    input line still gets its array.
    """
    from gatortron_jax.annotations.notes import read_note_file

    if not os.path.isfile(path):
        raise InputError(f"{path}: input file not found")
    text, _ = read_note_file(path, strict=strict, show_text=show_text)  # warns once if bytes were replaced
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def iter_lines(path: str, *, strict: bool = False, show_text: bool = False) -> Iterator[str]:
    """:func:`read_lines` one line at a time (bounded memory), same decoding and warnings."""
    from gatortron_jax.annotations.notes import iter_file_records

    if not os.path.isfile(path):
        raise InputError(f"{path}: input file not found")
    # doc_per_line: one record per line, bad bytes replaced + one warning per file (or an error when strict)
    for record in iter_file_records(Path(path), "line", doc_per_line=True, strict=strict, show_text=show_text,
                                    on_issue=lambda issue: log.warning("%s", issue.message())):
        yield record.text


class NpzStreamWriter:
    """Writes arrays one by one into an ``.npz`` (a zip of ``.npy`` members), atomically on close.

    ``np.savez`` needs every array in memory at once; this keeps one chunk. The file appears
    under its name only when complete (tmp + ``os.replace``).
    """

    def __init__(self, path: str):
        self.path = path if path.endswith(".npz") else path + ".npz"
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._tmp = f"{self.path}.tmp.{os.getpid()}"
        self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED, allowZip64=True)

    def add(self, key: str, array: np.ndarray) -> None:
        with self._zip.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

    def close(self) -> str:
        self._zip.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._zip.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)


def embed_file(model_dir: str, input_path: str, output_path: str, *, max_length: int | None = None,
               overlap: int | None = None, batch_size: int = 8, chunk_lines: int = 256, strict: bool = False,
               show_text: bool = False, quantize: str | None = None) -> dict[str, Any]:
    """Embeds every line of ``input_path`` into ``output_path`` (.npz), ``chunk_lines`` lines at a time.

    Memory holds one chunk of lines and their arrays (hidden x tokens x 4 bytes each: a
    1,024-hidden GatorTron-base line of 512 tokens is 2 MiB), never the whole file; windows of a
    chunk's lines share batches, sorted by length.
    """
    from gatortron_jax.models.model_dir import load_model_dir

    if not os.path.isfile(input_path):
        raise InputError(f"{input_path}: input file not found")
    if chunk_lines < 1:
        raise InputError(f"--chunk_lines {chunk_lines}: must be >= 1")
    loaded: dict[str, Any] = {}

    def model() -> Embedder:  # loaded at the first full chunk, so bad input lines fail fast
        if not loaded:
            config, params, vocab = load_model_dir(model_dir, encoder_only=True)
            config = config.for_inference(quantize=quantize)  # int8 dense matmuls for this run only
            if vocab is None:
                raise InputError(f"{os.path.join(model_dir, 'config.json')}: no vocab recorded (key vocab.path)")
            loaded["embedder"] = Embedder(config, params["encoder"], vocab, max_length=max_length, overlap=overlap,
                                          batch_size=batch_size)
        return loaded["embedder"]

    writer = NpzStreamWriter(output_path)
    stats = {"lines": 0, "tokens_min": None, "tokens_max": None, "windowed_lines": 0}  # O(1), not per line
    chunk: list[str] = []
    try:
        def flush() -> None:
            arrays, counts = model().embed(chunk)
            for a, n_windows in zip(arrays, counts):
                writer.add(str(stats["lines"]), a)
                stats["lines"] += 1
                n = a.shape[0]
                stats["tokens_min"] = n if stats["tokens_min"] is None else min(stats["tokens_min"], n)
                stats["tokens_max"] = n if stats["tokens_max"] is None else max(stats["tokens_max"], n)
                stats["windowed_lines"] += n_windows > 1
            chunk.clear()

        for line in iter_lines(input_path, strict=strict, show_text=show_text):
            chunk.append(line)
            if len(chunk) == chunk_lines:
                flush()
        if chunk:
            flush()
    except BaseException:
        writer.abort()
        raise
    embedder = model()  # an empty input still validates the model dir
    out = writer.close()
    return {"output": out, "hidden": embedder.config.hidden_size, "max_length": embedder.max_length,
            "overlap": embedder.overlap, **stats}
