"""The one batched predict loop: fixed-size row batches onto the mesh, predictions back.

Every row-wise inference path (NER windows, sequence-task rows, QA windows, dev evaluation
during fine-tuning) pads the last batch with empty rows so one compiled shape serves all
batches, puts each batch on the data sharding, and keeps only the real rows' outputs.
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


def predict_rows(
    predict_fn: Callable[[Any, dict], Any], params: Any, features: Rows, batch_size: int, data_sharding: Any = None,
    *, exclude: tuple[str, ...] = ("labels", "start_positions", "end_positions"),
) -> np.ndarray:
    """``predict_fn(params, batch)`` over every row of ``features``; outputs concatenated in row order."""
    inputs = {k: v for k, v in features.items() if k not in exclude}
    out = []
    for n_real, batch in row_batches(inputs, batch_size):
        if data_sharding is not None:
            batch = {k: jax.device_put(v, data_sharding) for k, v in batch.items()}
        out.append(np.asarray(jax.device_get(predict_fn(params, batch)))[:n_real])
    return np.concatenate(out) if out else np.zeros((0,))
