"""The one FLOPs formula: analytic training FLOPs of the MLM step.

Shared by ``plan`` (per-device FLOPs, step-time bounds) and the benchmarks (MFU), so the two
never disagree. Analytic, not XLA's ``cost_analysis()``: that counts a scanned layer stack's
while-loop body once, i.e. ~1/L of the real work for an L-layer model.
"""

from __future__ import annotations

from typing import Any


def analytic_flops(cfg: Any, batch: int, seq_len: int, max_predictions: int | None = None, *,
                   predicted_tokens: int | None = None) -> dict[str, float]:
    """Training FLOPs per step for ``EncoderForMLM`` (a multiply-add counts 2).

    Forward, per token and layer: q/k/v/out projections ``2 * 4 * H * (n*d)``, MLP
    ``2 * 2 * H * F``, attention scores and weighted sum ``2 * 2 * S * (n*d)`` (the full S x S,
    as the kernel computes it even for packed rows). MLM head on the predicted positions:
    transform ``2 * H^2`` and tied logits ``2 * H * V``. Backward = 2 x forward. ``model``
    is the MFU convention (no recomputation); ``with_remat`` adds the rematerialised forward
    of the encoder blocks (the whole block for ``full``, none for ``none``/``dots``; an upper bound for the others).
    ``predicted_tokens`` (total over the batch) overrides ``batch * max_predictions`` when the
    count is known exactly (e.g. a benchmark's masked positions).
    """
    hidden, inner, layers = cfg.hidden_size, cfg.num_heads * cfg.kv_dim, cfg.num_layers
    tokens = batch * seq_len
    predicted = predicted_tokens if predicted_tokens is not None else batch * (max_predictions or seq_len)
    proj = 2 * 4 * hidden * inner
    mlp = 2 * 2 * hidden * cfg.mlp_dim
    attn = 2 * 2 * seq_len * inner
    block_fwd = tokens * layers * (proj + mlp + attn)
    head_fwd = predicted * 2 * (hidden * hidden + hidden * cfg.vocab_size)
    forward = block_fwd + head_fwd
    model = 3 * forward
    # "dots" saves every matmul output, so only elementwise work is recomputed (no matmul FLOPs).
    recompute = {"none": 0.0, "dots": 0.0, "full": 1.0}.get(cfg.remat_policy, 1.0) * block_fwd
    encoder_params = layers * (4 * hidden * inner + 2 * hidden * cfg.mlp_dim)
    head_params = hidden * hidden + hidden * cfg.vocab_size
    return {
        "forward": float(forward),
        "model": float(model),
        "with_remat": float(model + recompute),
        "attention": float(3 * tokens * layers * attn),
        "encoder_matmul_params": float(encoder_params),
        "head_matmul_params": float(head_params),
        "tokens": float(tokens),
        "predicted_tokens": float(predicted),
    }
