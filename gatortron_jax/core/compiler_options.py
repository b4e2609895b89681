"""Per-program XLA compiler options: which CPU matmul library an inference program uses.

XLA:CPU (jax 0.10.2) hands dots to YNNPACK by default (``ynn_fusion`` ops in the compiled
program). Which library wins depends on the dot's element type and size, measured on the 2-core
AVX512_BF16 x86 VM here with ``benchmarks/bench_forward.py``, ours against HF ``BertModel`` in the
same process (benchmarks/RESULTS.md, issue 26):

* **fp32**: Eigen is faster at the encoder's shapes. MiniLM 32 x 256 forward 1,439 -> 1,329 ms
  (0.93x -> 1.06x HF); the batched score and value matmuls at head dim 32 are 2.4x and 1.6x
  faster in Eigen. Below :data:`MIN_HIDDEN_SIZE` it is the other way round.
* **bf16** (f32-accumulating dots) and **int8**: YNNPACK is what makes them fast. With Eigen, the
  bf16 MiniLM forward is 1.42x slower and the int8 one 2.7x slower.
* ``xla_cpu_enable_fast_min_max``: XLA's NaN-propagating max does not vectorise; the softmax row
  max over the [B, N, S, S] scores was a 10 ms-per-layer reduce. With it: 1,293 -> 1,268 ms,
  bit-identical outputs.

So fp32 *inference* programs on CPU compile with YNNPACK off and everything else keeps XLA's
default. Training programs are not changed: ``bench_train`` moved within its run-to-run noise
(0.75-1.5x of HF either way), with no consistent direction.

``jax.jit(..., compiler_options=...)`` scopes the option to one program. ``XLA_FLAGS`` would not
do: it is read once when the backend starts, so a library cannot set it after its caller
imported jax. A ``XLA_FLAGS`` that names the option itself wins, so a user can still choose.
"""

from __future__ import annotations

import os
from typing import Any

YNN_FUSION_OPTION = "xla_cpu_experimental_ynn_fusion_type"
FAST_MIN_MAX_OPTION = "xla_cpu_enable_fast_min_max"
# fp32 inference on CPU: no YNNPACK fusions (dots run on XLA:CPU's Eigen kernels), and max/min
# without NaN-propagating compares, so the softmax row max vectorises. A NaN logit still
# reaches the output: exp(NaN - max) is NaN, and so is the row sum it is divided by.
FP32_CPU_INFERENCE = {YNN_FUSION_OPTION: "", FAST_MIN_MAX_OPTION: True}
# Below this hidden size XLA's defaults are kept: at 32 x 128, 2 layers, Eigen ran H64-H256
# 1.08-1.18x slower than YNNPACK and compiled up to 2x slower (XLA emits small dots as LLVM IR);
# at H384 the two were level at 32 x 128 and Eigen won 1.28x at MiniLM's 32 x 256.
MIN_HIDDEN_SIZE = 384


def fp32_cpu_inference(config: Any) -> bool:
    """True when an inference program of ``config`` compiles with :data:`FP32_CPU_INFERENCE`:
    fp32 compute without int8 matmuls, on CPU, ``cpu_inference_kernels="auto"``, a hidden size
    of at least :data:`MIN_HIDDEN_SIZE`, and ``XLA_FLAGS`` does not choose the dot library.

    The encoder's CPU attention also reads this: its row-blocked scores pay off with Eigen's
    batched dots and cost 1.3x with YNNPACK's (models/encoder.py, ``_score_rows_per_block``).
    """
    fp32 = config.dtype == "float32" and config.matmul_quantization is None
    return (fp32 and config.cpu_inference_kernels == "auto" and config.hidden_size >= MIN_HIDDEN_SIZE
            and config.platform == "cpu" and YNN_FUSION_OPTION not in os.environ.get("XLA_FLAGS", ""))


def inference_compiler_options(config: Any) -> dict[str, Any] | None:
    """``compiler_options`` for jitting an inference (deterministic) program of an ``EncoderConfig``.

    :data:`FP32_CPU_INFERENCE` when :func:`fp32_cpu_inference`, less an option that
    ``XLA_FLAGS`` names (the user's choice wins); otherwise None (XLA's defaults and the user's
    flags apply: a user who chooses the dot library in ``XLA_FLAGS`` gets XLA's kernels
    throughout). Every product site that jits a deterministic forward passes this: predict,
    deid, evaluate, embed, fine-tuning's dev predictions and pretraining's eval step. A program
    jitted without it still computes the same numbers, but runs the row-blocked attention on
    YNNPACK's dots, which is slower.
    """
    if not fp32_cpu_inference(config):
        return None
    user_flags = os.environ.get("XLA_FLAGS", "")
    return {k: v for k, v in FP32_CPU_INFERENCE.items() if k not in user_flags} or None
