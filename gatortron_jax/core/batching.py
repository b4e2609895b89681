"""The one batched predict loop: fixed-size row batches onto the mesh, predictions back.

Every row-wise inference path (NER windows, sequence-task rows, QA windows, dev evaluation
during fine-tuning) pads the last batch with empty rows so one compiled shape serves all
batches, puts each batch on the data sharding, and keeps only the real rows' outputs.

Length buckets (:func:`bucket_lengths`, :func:`trim_to_bucket`): rows are left-aligned with
``segment_ids`` 0 on padding, so a batch can be cut to the smallest of a few fixed lengths that
holds its longest row; compute then follows real tokens while the number of compiled shapes
stays bounded (7 buckets for 128 positions, 14 for 512). Outputs with a length axis are padded
back with zeros, so callers see full-length rows either way.
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
    longest = int((seg != 0).sum(axis=1).max()) if len(seg) else 0
    length = next((b for b in buckets if b >= longest), full)
    if length >= full:
        return dict(batch)
    return {k: (v[:, :length] if v.ndim >= 2 and v.shape[1] == full else v) for k, v in batch.items()}


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
    out = []
    for n_real, batch in row_batches(inputs, batch_size):
        full = batch["segment_ids"].shape[1] if length_buckets else 0
        batch = trim_to_bucket(batch, length_buckets)
        length = batch["segment_ids"].shape[1] if length_buckets else 0
        if data_sharding is not None:
            batch = {k: jax.device_put(v, data_sharding) for k, v in batch.items()}
        result = np.asarray(jax.device_get(predict_fn(params, batch)))[:n_real]
        out.append(_pad_length(result, length, full) if length_buckets else result)
    return np.concatenate(out) if out else np.zeros((0,))
