"""The scheduler's preemption notice (SIGTERM), for the training loops.

SLURM, Kubernetes and cloud TPU/GPU schedulers send SIGTERM some seconds before they kill a
job. ``pretrain`` and ``finetune`` then save their resume point at the next step and exit
with status 75 (EX_TEMPFAIL), so a requeued rerun of the same command continues bitwise.
"""

from __future__ import annotations

import signal
import threading

import jax
import numpy as np


class PreemptionNotice:
    """SIGTERM (the scheduler's preemption notice) sets a flag; the loop checkpoints and exits.

    With several processes every host must stop at the same step, so the flag is combined
    across processes, but only every ``log_every`` steps (a host sync is not free).
    """

    def __init__(self) -> None:
        self.received = False
        self._previous = None

    def __enter__(self) -> "PreemptionNotice":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _handle(self, signum, frame) -> None:
        self.received = True

    def agreed(self, check_collectively: bool) -> bool:
        if jax.process_count() == 1:
            return self.received
        if not check_collectively:
            return False
        from jax.experimental import multihost_utils

        return bool(np.max(multihost_utils.process_allgather(np.int32(self.received))))
