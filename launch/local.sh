#!/usr/bin/env bash
# Single-host run: every local device (CPU cores, or all GPUs of this node) in one process.
#   launch/local.sh pretrain gin/pretrain/sample_tiny.gin runs/sample_tiny [--gin.NAME=VALUE ...]
set -euo pipefail
cmd=${1:?subcommand, e.g. pretrain}; gin_file=${2:?gin file}; model_dir=${3:?model dir}; shift 3
cd "$(dirname "$0")/.."
exec gatortron-jax "$cmd" --gin_file="$gin_file" --model_dir="$model_dir" "$@"
