"""The one window planner: cut ``n`` tokens into windows of at most ``capacity`` tokens.

Every path that feeds a sequence longer than the model into it uses this: NER/de-id notes
(``finetuning.windowing``: cuts at sentence, else word boundaries), span-QA contexts
(:func:`stride_windows`: SQuAD "document stride") and ``embed``
(fixed stride, last window aligned to the end). One algorithm, three knobs:

* ``overlap``: the next window starts ``overlap`` tokens before the previous one ended
  (always at least one token later, so planning terminates);
* ``cut_quality(b)``: how good a cut before token ``b`` is (higher is better; 0 = inside a
  word). Given, a window ends at the best cut in its second half (stopping at the first of
  quality >= ``good_cut``), and the next window's start moves forward to the first cut of
  quality > 0. Not given, every window is exactly ``capacity`` long;
* ``align_last``: the last window is moved back to end at ``n`` with full length (most
  context for the last tokens) instead of being shorter.

Cost: O(n) windows and O(n * capacity) quality checks at worst, per document.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from gatortron_jax.core.errors import ConfigError


def plan_windows(
    n: int, capacity: int, overlap: int, *, cut_quality: Callable[[int], int] | None = None, good_cut: int = 2,
    align_last: bool = True,
) -> list[tuple[int, int]]:
    """``[start, end)`` token windows covering ``range(n)``; ``[(0, 0)]`` when ``n == 0``."""
    if capacity < 1:
        raise ConfigError(f"window capacity {capacity} is too small")
    overlap = max(0, overlap)
    windows: list[tuple[int, int]] = []
    a = 0
    while True:
        limit = min(a + capacity, n)
        if limit == n:
            windows.append((max(0, n - capacity) if align_last else a, n))
            return windows
        b = limit
        if cut_quality is not None:
            best_q = -1
            for c in range(limit, a + max(capacity // 2, 1), -1):
                q = cut_quality(c)
                if q > best_q:
                    b, best_q = c, q
                    if q >= good_cut:
                        break
        windows.append((a, b))
        nxt = max(b - overlap, a + 1)
        if cut_quality is not None:
            for c in range(nxt, b + 1):
                if c == b or cut_quality(c) > 0:
                    nxt = c
                    break
        a = nxt


def stride_windows(n_context_tokens: int, max_context_tokens: int, doc_stride: int) -> list[tuple[int, int]]:
    """SQuAD "document stride" windows: at most ``max_context_tokens`` each (the model length
    minus the question and specials), the next starting ``doc_stride`` tokens later; the last
    one reaches the end (not aligned back)."""
    if max_context_tokens < 1 or doc_stride < 1:
        raise ConfigError(f"bad window sizes: max_context_tokens={max_context_tokens}, doc_stride={doc_stride}")
    overlap = max_context_tokens - min(doc_stride, max_context_tokens)
    return plan_windows(n_context_tokens, max_context_tokens, overlap, align_last=False)


def max_context_owners(n: int, windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each token, the window where it has the most context on its nearer side (ties → first).

    The BERT SQuAD "max context" rule; merged predictions then cover each token exactly once.
    """
    owner = np.full(n, -1, np.int64)
    best = np.full(n, -1, np.int64)
    for w, (s, e) in enumerate(windows):
        t = np.arange(s, e)
        score = np.minimum(t - s, e - 1 - t)
        better = score > best[s:e]
        owner[s:e][better] = w
        best[s:e][better] = score[better]
    return owner
