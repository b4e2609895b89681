"""Dynamic int8 matmuls for CPU inference (``EncoderConfig.matmul_quantization="dynamic_int8"``).

Why: on XLA:CPU the encoder's dense layers are most of the forward. One layer's four dense
matmuls at MiniLM's predict shape (32 x 256 token rows, H384, FFN 1536) took 550 ms in fp32
and 382 ms (1.44x) as int8 x int8 -> int32 dots with the scheme below; weight-only int8
(dequantised, then an fp32 dot) was no faster (519 ms): the win is the int8 arithmetic, not
the smaller weights (``benchmarks/bench_int8.py``, issue 26). PyTorch's ``quantize_dynamic``
is the same scheme.

The scheme (symmetric, no zero points):

* activations: one scale per token row, ``max |x| / 127`` over the contracted axes, computed at
  run time (so outliers in one token do not cost the others their precision);
* weights: one scale per output channel, ``max |w| / 127`` over the contracted axes, computed
  *inside* the jitted forward from the stored fp32 kernel. Params, checkpoints and the model
  dir stay fp32 and unchanged; quantising a kernel is O(params), negligible next to the
  O(rows x params) matmul at predict batch sizes;
* ``round`` to int8, an int8 x int8 dot accumulated exactly in int32, then
  ``acc * x_scale * w_scale`` in fp32 (plus the bias).

Error: each operand is rounded to 1/254 of its row's (channel's) largest magnitude, so an
output carries a relative error of order ``sqrt(K) / 254`` of ``|x| |w|`` before the
accumulation averages it; measured ~1e-2 of the output's largest magnitude on random data
(tests/test_quantization.py). Inference only: ``round`` has no useful gradient, so the encoder
refuses to train with it (:class:`gatortron_jax.models.encoder.Encoder`).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array

MODES = ("dynamic_int8",)
_QMAX = 127.0


def quantize_symmetric(x: Array, axes: Sequence[int]) -> tuple[Array, Array]:
    """(int8 values, fp32 scale with ``axes`` kept as size 1): ``x ~= values * scale``.

    The scale is ``max |x| / 127`` over ``axes``; an all-zero slice gets scale 1 (values 0).
    """
    x = x.astype(jnp.float32)
    amax = jnp.max(jnp.abs(x), axis=tuple(axes), keepdims=True)
    scale = jnp.where(amax > 0, amax / _QMAX, 1.0)
    return jnp.clip(jnp.round(x / scale), -_QMAX, _QMAX).astype(jnp.int8), scale


def _parse(equation: str) -> tuple[str, str, str]:
    eq = equation.replace(" ", "")
    if "..." in eq or "->" not in eq or eq.count(",") != 1:
        raise ValueError(f"int8_einsum: {equation!r}: need an explicit two-operand 'ab,bc->ac' equation")
    ins, out = eq.split("->")
    x_axes, w_axes = ins.split(",")
    if set(x_axes) & set(w_axes) & set(out):
        raise ValueError(f"int8_einsum: {equation!r}: batch axes shared by both operands are not supported")
    return x_axes, w_axes, out


def _in_output_layout(scale: Array, letters: str, free: str, out: str) -> Array:
    """``scale`` (over ``letters``, contracted ones size 1) laid out to broadcast against ``out``."""
    s = scale.reshape([scale.shape[letters.index(c)] for c in free])
    s = jnp.transpose(s, sorted(range(len(free)), key=lambda i: out.index(free[i])))
    ordered = sorted(free, key=out.index)
    return s.reshape([s.shape[ordered.index(c)] if c in free else 1 for c in out])


def int8_einsum(equation: str, x: Array, kernel: Array, bias: Array | None = None) -> Array:
    """``einsum(equation, x, kernel) (+ bias)`` with dynamic int8 operands and int32 accumulation.

    ``x``'s axes that also appear in the output are its rows (one scale each); ``kernel``'s axes
    in the output are its output channels (one scale each); the axes both share and the output
    lacks are contracted. Rescaled and ``bias`` added in fp32 (broadcast from the right), returned
    in ``x``'s floating dtype.
    """
    x_axes, w_axes, out = _parse(equation)
    contracted = set(x_axes) & set(w_axes)
    xq, x_scale = quantize_symmetric(x, [i for i, c in enumerate(x_axes) if c in contracted])
    wq, w_scale = quantize_symmetric(kernel, [i for i, c in enumerate(w_axes) if c in contracted])
    acc = jnp.einsum(equation, xq, wq, preferred_element_type=jnp.int32)
    x_free = "".join(c for c in x_axes if c not in contracted)
    w_free = "".join(c for c in w_axes if c not in contracted)
    y = (acc.astype(jnp.float32) * _in_output_layout(x_scale, x_axes, x_free, out)
         * _in_output_layout(w_scale, w_axes, w_free, out))
    if bias is not None:
        y = y + bias.astype(jnp.float32)
    return y.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else y


def int8_dot_general(lhs: Array, rhs: Array, dimension_numbers, precision=None,
                     preferred_element_type=None) -> Array:
    """:func:`int8_einsum` behind ``lax.dot_general``'s signature (``nn.Dense(dot_general=...)``);
    contractions without batch dimensions only, which is what a dense layer does."""
    (lc, rc), (lb, rb) = dimension_numbers
    if lb or rb:
        raise ValueError("int8_dot_general: batch dimensions are not supported")
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    x_axes = [next(letters) for _ in range(lhs.ndim)]
    w_axes = [next(letters) for _ in range(rhs.ndim)]
    for i, j in zip(lc, rc):
        w_axes[j] = x_axes[i]
    out = [c for i, c in enumerate(x_axes) if i not in lc] + [c for j, c in enumerate(w_axes) if j not in rc]
    return int8_einsum(f"{''.join(x_axes)},{''.join(w_axes)}->{''.join(out)}", lhs, rhs)
