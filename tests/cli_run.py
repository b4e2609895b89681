"""Running the real ``gatortron-jax`` CLI from tests, and interrupting it at a chosen moment.

One command line (the installed console script next to this interpreter), one environment (one
CPU device, as a user runs it) and one way to stop a run when a condition holds, for every
kill-and-rerun test (training resume, fine-tuning resume, streaming prediction). The limits
here are deadlines for a hung process on a loaded machine, never a measure of speed: a run
that is merely slow still passes.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Sequence

EXE = pathlib.Path(sys.executable).with_name("gatortron-jax")
# A CLI run here takes seconds to a minute; 15 minutes only stops a run that hangs.
RUN_TIMEOUT_S = 900


def cli_cmd(*args: str) -> list[str]:
    """``gatortron-jax ARGS...`` as an argv list."""
    return [str(EXE), *args]


def cli_env(**extra: str) -> dict[str, str]:
    """This environment with one CPU device (no simulated devices), plus ``extra``."""
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="", **extra)


def run_cli(cwd: os.PathLike | str, *args: str, env: dict[str, str] | None = None,
            timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``gatortron-jax ARGS`` to the end; stdout and stderr captured as text."""
    return subprocess.run(cli_cmd(*args), cwd=cwd, env=cli_env() if env is None else env,
                          capture_output=True, text=True, timeout=timeout)


@dataclasses.dataclass
class Interrupted:
    """How an interrupted run ended: its exit status and everything it wrote to stderr."""

    returncode: int
    stderr: str


def interrupt_when(cmd: Sequence[str], cwd: os.PathLike | str, ready: Callable[[str], bool],
                   sig: int = signal.SIGKILL, env: dict[str, str] | None = None,
                   timeout: float = RUN_TIMEOUT_S) -> Interrupted:
    """Start ``cmd``, send ``sig`` as soon as ``ready(stderr so far)`` holds, wait for the exit.

    ``ready`` is polled every 2 ms (some moments are short, such as a checkpoint save in flight),
    so it may also look at files the run writes (ignore the text then). Fails the test, with the stderr tail, if the run exits before
    ``ready`` held (it could not be interrupted where the test meant to) or if ``ready`` does
    not hold within ``timeout`` seconds. With SIGKILL the exit status is ``-SIGKILL``; with
    SIGTERM it is whatever the run chose (the CLI exits 75 after saving its resume point).
    """
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=cli_env() if env is None else env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready("".join(lines)):
                proc.send_signal(sig)
                sent = True
                break
            time.sleep(0.002)
        if sent:
            proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=60)
    text = "".join(lines)
    if not sent:
        why = (f"exited with status {proc.returncode} before" if proc.returncode is not None and
               time.monotonic() < deadline else f"ran {timeout:.0f} s without")
        raise AssertionError(f"{cmd[:2]} {why} the moment to send signal {sig} came; stderr tail:\n{text[-3000:]}")
    return Interrupted(proc.returncode, text)


def kill_when(cmd: Sequence[str], cwd: os.PathLike | str, ready: Callable[[str], bool],
              env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT_S) -> str:
    """SIGKILL ``cmd`` once ``ready`` holds and check that the kill (not the run) ended it; its stderr."""
    got = interrupt_when(cmd, cwd, ready, signal.SIGKILL, env, timeout)
    assert got.returncode == -signal.SIGKILL, \
        f"the run ended with status {got.returncode} before it could be killed:\n{got.stderr[-3000:]}"
    return got.stderr
