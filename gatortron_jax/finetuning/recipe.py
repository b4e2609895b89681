"""What it takes to trace and rerun a score: content fingerprints and package versions.

``evaluate`` writes these next to its metrics (``recipe`` in the eval JSON) and ``finetune``
records the init checkpoint's fingerprint in config.json, so a number in a paper names the
exact data files, starting weights, configuration, seed and software it came from.

Cost: one sha256 pass over the bytes hashed — a split file or directory (MBs, milliseconds),
and at fine-tuning start the init checkpoint (GatorTron-base: ~1.4 GB, ~3 s; the 8.9B model:
~36 GB, ~1.5 min at ~400 MB/s).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from typing import Any

from gatortron_jax.core.fingerprints import tree_sha256

PACKAGES = ("gatortron-jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "sentencepiece",
            "seqio", "tensorflow")


def model_dir_fingerprint(model_dir: str) -> str:
    """sha256 of a model dir's config.json model_config/vocab and checkpoint files (not logs)."""
    h = hashlib.sha256()
    for part in ("checkpoints", "vocab"):
        p = os.path.join(model_dir, part)
        if os.path.exists(p):
            h.update(part.encode() + tree_sha256(p).encode())
    return h.hexdigest()


def package_versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
