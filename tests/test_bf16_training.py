"""The accelerators' compute mode on CPU: bf16 compute with fp32 master weights trains like fp32.

GPUs and TPUs run GatorTron in bf16 (``gin/gpu``, ``gin/tpu``); nothing else in the default suite
trains in bf16. The same tiny MLM model is trained twice with the real train step (AdamW, fp32
params and moments) on one fixed, learnable data set -- four token sequences, 15% masked anew
each step, so a masked token follows from the visible rest of its row -- once with
``dtype="float32"`` and once with ``dtype="bfloat16"``. The bf16 loss must fall as far and
track the fp32 curve.
"""

import jax
import numpy as np

from gatortron_jax.core import partitioning
from gatortron_jax.core.optimizer import OptimizerConfig, make_optimizer
from gatortron_jax.core.train_state import create_train_state
from gatortron_jax.models.config import EncoderConfig
from gatortron_jax.models.heads import EncoderForMLM
from gatortron_jax.pretraining import steps

VOCAB, SEQ, BATCH, STEPS, MASK_ID = 128, 32, 16, 60, 4
CFG = EncoderConfig(vocab_size=VOCAB, hidden_size=64, num_layers=2, num_heads=4, mlp_dim=256,
                    max_position_embeddings=SEQ, dropout_rate=0.0, attention_dropout_rate=0.0, param_dtype="float32")


def _batches(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    sentences = rng.integers(5, VOCAB, size=(4, SEQ)).astype(np.int32)  # four fixed "notes"
    out = []
    for _ in range(n):
        targets = sentences[rng.integers(0, 4, size=BATCH)]
        masked = rng.random((BATCH, SEQ)) < 0.15
        masked[:, 0] = True  # at least one prediction per row
        out.append({"input_ids": np.where(masked, MASK_ID, targets).astype(np.int32),
                    "token_type_ids": np.zeros_like(targets), "segment_ids": np.ones_like(targets),
                    "position_ids": np.broadcast_to(np.arange(SEQ, dtype=np.int32), targets.shape).copy(),
                    "mlm_targets": targets, "mlm_weights": masked.astype(np.float32)})
    return out


def _train(dtype: str, batches) -> list[float]:
    cfg = CFG.replace(dtype=dtype)
    partitioner = partitioning.Partitioner(partitioning.create_mesh(1, 1, 1, devices=jax.devices()[:1]))
    model = EncoderForMLM(cfg)
    opt = make_optimizer(OptimizerConfig(learning_rate=3e-3, warmup_steps=5, clip_grad_norm=1.0), STEPS)
    state, _ = create_train_state(model, opt, partitioner, jax.random.key(0))
    step = jax.jit(steps.make_train_step(model, opt), donate_argnums=(0,))
    losses = []
    with partitioner.activate():
        for b in batches:
            state, m = step(state, b, jax.random.key(1))
            losses.append(float(m["loss_sum"]) / float(m["weight_sum"]))
    assert jax.tree.leaves(state.params)[0].dtype == np.float32  # master weights stay fp32
    return losses


def test_bf16_compute_with_fp32_master_weights_tracks_fp32():
    batches = _batches(STEPS)
    fp32, bf16 = _train("float32", batches), _train("bfloat16", batches)
    assert abs(bf16[0] - fp32[0]) < 0.05 * fp32[0]  # same init, same first batch
    tail = slice(STEPS - 10, STEPS)
    f_end, b_end = np.mean(fp32[tail]), np.mean(bf16[tail])
    assert f_end < 0.6 * fp32[0], fp32  # it learns (ln 128 = 4.85 at the start)
    assert b_end < 0.6 * bf16[0], bf16
    assert abs(b_end - f_end) < 0.1 * f_end + 0.05, (f_end, b_end)  # bf16 tracks fp32
    # ...along the way, not only at the end
    mid = slice(STEPS // 2 - 5, STEPS // 2 + 5)
    assert abs(np.mean(bf16[mid]) - np.mean(fp32[mid])) < 0.1 * np.mean(fp32[mid]) + 0.05
