#!/usr/bin/env bash
# Usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Trains on a slurm cluster: srun starts GPUS tasks (one per GPU, GPUS_PER_NODE per node) and
# each runs tools/train.py with --launcher slurm (rank, world size and master host from
# SLURM_PROCID / SLURM_NTASKS / SLURM_NODELIST; MASTER_PORT, default 29500). Without CUDA the
# tasks use gloo (mmevf/compat/distributed.py).
# Environment: GPUS (default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (more srun
#   options, split on whitespace, e.g. "--time=2:00:00 --qos=normal"), GRES (default
#   gpu:GPUS_PER_NODE; set it empty to leave --gres out on nodes without GPUs).
# PYTHON defaults to <repo>/.venv/bin/python if it exists, else python.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
source "$(dirname "$0")/_slurm.sh"
slurm_run "$1" "$2" tools/train.py "$3" --work-dir="$4" --launcher=slurm "${@:5}"
