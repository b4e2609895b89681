#!/usr/bin/env bash
# Multi-host Cloud TPU VM pretraining: the SAME command on every host of the slice.
#   launch/tpu_vm.sh TPU_NAME ZONE gin/tpu/large_v5p-256.gin /mnt/shared/runs/gatortron_large \
#       --gin.MLMDataConfig.corpus_dir="'/mnt/shared/cache'" --gin.MLMDataConfig.vocab_path="'/mnt/shared/vocab/spm.model'"
#
# How the hosts find each other: `pretrain --distributed` calls jax.distributed.initialize() with
# no arguments; on a TPU VM JAX reads the slice's metadata (worker hostnames, this worker's id,
# the coordinator = worker 0), so no address or rank is passed. Every host must run the same
# command with the same gin file; each feeds its own rows of the global batch.
#
# Paths: MODEL_DIR and the corpus cache (launch/prepare_corpus.sbatch builds it; start-up reads
# only its manifest) must name the same files on every host: a shared filesystem mounted at the
# same path (Filestore/NFS), or a copy at the same path on each host's disk. Checkpoints are
# written cooperatively by all hosts (orbax), so MODEL_DIR must be shared (or gs://...).
#
# Before the first run, install the project with the TPU runtime on every host:
#   SETUP=1 launch/tpu_vm.sh TPU_NAME ZONE ...    (pip install -e '.[tpu]' in REPO_DIR on all workers)
# Check memory first, on any machine:  gatortron-jax plan --target tpu-v5p-256 --gin_file=GIN_FILE
#
# Preemption (spot/preemptible TPUs): pretrain checkpoints on SIGTERM and exits 75; run the
# same command again (after the slice is back) and it resumes from MODEL_DIR.
set -euo pipefail
tpu_name=${1:?TPU name}; zone=${2:?zone}; gin_file=${3:?gin file}; model_dir=${4:?model dir (shared)}; shift 4
repo_dir=${REPO_DIR:-~/gatortron-jax}

quoted=$(printf ' %q' "$@")
setup=""
if [ "${SETUP:-0}" = "1" ]; then
    setup="cd $repo_dir && python3.11 -m venv .venv && .venv/bin/pip install -q -e '.[tpu]' && "
fi
env="export TF_CPP_MIN_LOG_LEVEL=2;"
cmd="$setup cd $repo_dir && $env .venv/bin/gatortron-jax pretrain --distributed --gin_file=$gin_file --model_dir=$model_dir$quoted"

exec gcloud compute tpus tpu-vm ssh "$tpu_name" --zone "$zone" --worker=all --command "$cmd"
