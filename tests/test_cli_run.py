"""The kill-and-rerun helper (tests/cli_run.py) on plain Python processes: it signals at the
moment asked for, reports the exit status, and fails loudly when that moment never comes."""

import signal
import sys

import pytest

from cli_run import interrupt_when, kill_when

# Prints "tick N" to stderr forever (until signalled); exits 75 on SIGTERM like the CLI does.
TICKER = [sys.executable, "-c", (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))\n"
    "i = 0\n"
    "while True:\n"
    "    i += 1\n"
    "    print(f'tick {i}', file=sys.stderr, flush=True)\n"
    "    time.sleep(0.01)\n")]


def test_kill_when_a_line_appears(tmp_path):
    err = kill_when(TICKER, tmp_path, lambda text: "tick 3\n" in text)
    assert "tick 3\n" in err


def test_sigterm_gives_the_run_s_own_exit_status(tmp_path):
    got = interrupt_when(TICKER, tmp_path, lambda text: "tick 2\n" in text, signal.SIGTERM)
    assert got.returncode == 75 and "tick 2\n" in got.stderr


def test_a_run_that_ends_first_is_a_failure_with_its_stderr(tmp_path):
    quick = [sys.executable, "-c", "import sys; print('all done', file=sys.stderr)"]
    with pytest.raises(AssertionError, match=r"(?s)exited with status 0 before.*all done"):
        kill_when(quick, tmp_path, lambda text: "never printed" in text)
