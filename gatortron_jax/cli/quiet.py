"""A newcomer's first screen is the project's own output: TensorFlow's start-up notices, muted.

TensorFlow (imported by seqio for the input pipeline) prints from C++ before its logging is
configured, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence it: "All log messages before
absl::InitializeLog()", "oneDNN custom operations are on", "Could not find cuda drivers" and,
when it probes for GPUs, "failed call to cuInit". All are harmless here: TensorFlow only runs
the CPU input pipeline, and JAX, not TensorFlow, owns the accelerators. So the CLI imports
TensorFlow once with file descriptor 2 captured, hides every GPU from it (else it would also
reserve GPU memory next to JAX), and replays any captured line that is not one of those
notices. oneDNN's rewrites are turned off (``TF_ENABLE_ONEDNN_OPTS=0``): they only touch float
kernels our integer/boolean pipeline never runs, and they print a second notice at run time.
"""

from __future__ import annotations

import os
import sys
import tempfile

BENIGN = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "Unable to register cu",  # cuDNN/cuFFT/cuBLAS factory notices of CUDA builds
    "computation placer already registered",
)


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up notices captured and its GPUs hidden (idempotent)."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.set_visible_devices([], "GPU")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        lines = captured.read().decode("utf-8", "replace").splitlines()
    for line in lines:
        if line.strip() and not any(notice in line for notice in BENIGN):
            print(line, file=sys.stderr)
