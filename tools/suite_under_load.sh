#!/usr/bin/env bash
# Run the default test suite N times in a row while benchmarks/bench_train.py runs beside it
# on the same cores, to check that no test depends on an idle machine (issue 24: timeouts,
# barriers and timing assertions that a busy machine can cross).
#
#   bash tools/suite_under_load.sh [RUNS=3] [LOGDIR=/tmp/suite_under_load]
#
# Uses the python on PATH (activate the project's venv first). Prints one line per run
# (exit status, wall time, pytest's summary line) and exits non-zero if any run failed.
set -u
runs=${1:-3}
logdir=${2:-/tmp/suite_under_load}
mkdir -p "$logdir"
cd "$(dirname "$0")/.."

# the load runs in its own session so that one signal stops the loop and its python
setsid bash -c "while true; do python benchmarks/bench_train.py >>'$logdir/bench_train.log' 2>&1; done" &
load_pid=$!
trap 'kill -- -$load_pid 2>/dev/null' EXIT

failed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  python -m pytest -q >"$logdir/pytest_$i.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  summary=$(tail -n 1 "$logdir/pytest_$i.log")
  echo "run $i: exit $rc, ${secs}s, load $(cut -d' ' -f1-3 /proc/loadavg): $summary"
  [ "$rc" -eq 0 ] || failed=1
done
exit $failed
