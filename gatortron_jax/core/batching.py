"""The one batched predict loop: fixed-size row batches onto the mesh, predictions back.

Every row-wise inference path (NER windows, sequence-task rows, QA windows, dev evaluation
during fine-tuning) pads the last batch with empty rows so one compiled shape serves all
batches, puts each batch on the data sharding, and keeps only the real rows' outputs.

Length buckets (:func:`bucket_lengths`, :func:`trim_to_bucket`): rows are left-aligned with
``segment_ids`` 0 on padding, so a batch can be cut to the smallest of a few fixed lengths that
holds its longest row; compute then follows real tokens while the number of compiled shapes
stays bounded (7 buckets for 128 positions, 14 for 512). Outputs with a length axis are padded
back with zeros, so callers see full-length rows either way. ``predict_rows`` also visits rows
shortest-first (outputs come back in row order), so a batch's rows are of similar length.

Packing (:func:`pack_batch`, token-level tasks): the rows of one training batch are placed
first-fit-decreasing into as few ``max_length`` rows as hold them, each with its own segment id
(attention stays inside it) and positions restarting at 0. The batch's sentences, labels and
loss are the same; the compute is that of its real tokens (NCBI-disease: 16 sentences of ~34
tokens fill ~5 rows of 128 instead of 16 rows of the longest, ~80).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import jax
import numpy as np

Rows = Mapping[str, np.ndarray]


def pad_rows(features: Rows, start: int, size: int) -> dict[str, np.ndarray]:
    """Rows ``start:start+size`` padded with all-zero rows (weight/mask 0) to exactly ``size``."""
    out = {}
    for k, v in features.items():
        chunk = v[start:start + size]
        if len(chunk) < size:
            pad = np.zeros((size - len(chunk),) + v.shape[1:], v.dtype)
            chunk = np.concatenate([chunk, pad])
        out[k] = chunk
    return out


def row_batches(features: Rows, batch_size: int) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
    """``(number of real rows, padded batch)`` over all rows, in order."""
    n = len(next(iter(features.values())))
    for start in range(0, n, batch_size):
        yield min(batch_size, n - start), pad_rows(features, start, batch_size)


def real_lengths(features: Rows | np.ndarray) -> np.ndarray:
    """Tokens each row really holds: the position after its last non-padding token.

    The one definition of a row's (window's) length wherever rows are batched, trimmed, bucketed
    or packed. It reads ``segment_ids`` (0 only on padding; a packed row's segments are 1, 2, ...),
    never a loss or label mask: first-subword labelling leaves ``label_mask`` 0 on continuation
    pieces and on [CLS]/[SEP], so a mask undercounts and cuts real tokens off (issue 23).
    Accepts the features mapping or the ``segment_ids`` array itself.
    """
    seg = np.asarray(features["segment_ids"] if isinstance(features, Mapping) else features)
    if seg.ndim != 2:
        raise ValueError(f"real_lengths: segment_ids must be [rows, length], got shape {seg.shape}")
    real = seg != 0
    last = seg.shape[1] - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last, 0).astype(np.int64)


def bucket_lengths(max_length: int, smallest: int = 16, growth: float = 1.25, multiple: int = 16) -> tuple[int, ...]:
    """Fixed batch lengths: ~``growth``x apart, multiples of ``multiple``, ending at ``max_length``.

    At most ~25% padding per batch beyond its longest row; log_growth(max_length / smallest) + 1
    shapes (128 → 16, 32, 48, 64, 80, 96, 128).
    """
    sizes, x = set(), float(smallest)
    while x < max_length:
        sizes.add(min(max_length, int(-(-x // multiple) * multiple)))
        x *= growth
    sizes.add(max_length)
    return tuple(sorted(sizes))


def trim_to_bucket(batch: Rows, buckets: tuple[int, ...] | None) -> dict[str, np.ndarray]:
    """``batch`` cut along the length axis to the smallest bucket holding its longest row."""
    if not buckets:
        return dict(batch)
    seg = batch["segment_ids"]
    full = seg.shape[1]
    longest = int(real_lengths(seg).max()) if len(seg) else 0
    length = next((b for b in buckets if b >= longest), full)
    if length >= full:
        return dict(batch)
    return {k: (v[:, :length] if v.ndim >= 2 and v.shape[1] == full else v) for k, v in batch.items()}


def pack_batch(batch: Rows, max_length: int, row_multiple: int = 1) -> dict[str, np.ndarray]:
    """The rows of ``batch`` (left-aligned, ``segment_ids`` 0 on padding) packed into fewer rows.

    Every feature must have a length axis (token-level: ids, labels, masks). Each source row
    becomes one segment (ids 1, 2, ... within its packed row) with ``position_ids`` from 0; the
    number of packed rows is rounded up to ``row_multiple`` (the data-parallel size). Rows are
    placed longest first into the first row with room, so the result is deterministic.
    """
    seg = batch["segment_ids"]
    full = seg.shape[1]
    if max_length > full:
        raise ValueError(f"pack_batch: max_length {max_length} exceeds the rows' length {full}")
    for k, v in batch.items():
        if v.ndim < 2 or v.shape[1] != full:
            raise ValueError(f"pack_batch: feature {k!r} has no length axis {v.shape}; only token-level rows pack")
    lengths = real_lengths(seg)
    fill: list[int] = []  # tokens used per packed row
    segments: list[int] = []  # segments per packed row
    placed: list[tuple[int, int, int, int]] = []  # (source row, packed row, offset, segment number)
    for r in np.argsort(-lengths, kind="stable"):
        n = int(lengths[r])
        if n == 0:
            continue
        if n > max_length:
            raise ValueError(f"pack_batch: a row of {n} tokens exceeds max_length {max_length}")
        b = next((i for i, f in enumerate(fill) if f + n <= max_length), len(fill))
        if b == len(fill):
            fill.append(0)
            segments.append(0)
        segments[b] += 1
        placed.append((int(r), b, fill[b], segments[b]))
        fill[b] += n
    rows = max(row_multiple, -(-max(len(fill), 1) // row_multiple) * row_multiple)
    out = {k: np.zeros((rows, max_length) + v.shape[2:], v.dtype) for k, v in batch.items()}
    positions = np.zeros((rows, max_length), np.int32)
    for r, b, off, segment in placed:
        n = int(lengths[r])
        for k, v in batch.items():
            out[k][b, off:off + n] = v[r, :n]
        out["segment_ids"][b, off:off + n] = segment
        positions[b, off:off + n] = np.arange(n)
    out["position_ids"] = positions
    return out


def _pad_length(out: np.ndarray, length: int, full: int) -> np.ndarray:
    if length == full or out.ndim < 2 or out.shape[1] != length:
        return out
    pad = [(0, 0)] * out.ndim
    pad[1] = (0, full - length)
    return np.pad(out, pad)


def predict_rows(
    predict_fn: Callable[[Any, dict], Any], params: Any, features: Rows, batch_size: int, data_sharding: Any = None,
    *, exclude: tuple[str, ...] = ("labels", "start_positions", "end_positions"),
    length_buckets: tuple[int, ...] | None = None,
) -> np.ndarray:
    """``predict_fn(params, batch)`` over every row of ``features``; outputs concatenated in row order.

    With ``length_buckets`` each batch runs at its bucket length (see :func:`trim_to_bucket`).
    """
    inputs = {k: v for k, v in features.items() if k not in exclude}
    order = None
    if length_buckets and len(inputs["segment_ids"]):  # similar lengths per batch; row order restored below
        order = np.argsort(real_lengths(inputs), kind="stable")
        inputs = {k: v[order] for k, v in inputs.items()}
    out = []
    for n_real, batch in row_batches(inputs, batch_size):
        full = batch["segment_ids"].shape[1] if length_buckets else 0
        batch = trim_to_bucket(batch, length_buckets)
        length = batch["segment_ids"].shape[1] if length_buckets else 0
        if data_sharding is not None:
            batch = {k: jax.device_put(v, data_sharding) for k, v in batch.items()}
        result = np.asarray(jax.device_get(predict_fn(params, batch)))[:n_real]
        out.append(_pad_length(result, length, full) if length_buckets else result)
    if not out:
        return np.zeros((0,))
    result = np.concatenate(out)
    if order is not None:
        restored = np.empty_like(result)
        restored[order] = result
        result = restored
    return result
