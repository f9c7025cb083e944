# Sourced by tools/slurm_train.sh and tools/slurm_test.sh: `slurm_run PARTITION JOB_NAME
# SCRIPT [ARGS...]` starts GPUS tasks of `python -u SCRIPT ARGS...` through srun, as mmdet's
# slurm scripts do. Environment: GPUS (default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS (more srun options, split on whitespace, e.g. "--time=2:00:00 --qos=normal"), GRES
# (default gpu:GPUS_PER_NODE; set it empty to leave --gres out on nodes without GPUs).
# PYTHON defaults to <repo>/.venv/bin/python if it exists, else python.
_MMEVF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$_MMEVF_ROOT/tools/_python.sh"

slurm_run() {
    local partition=$1 job_name=$2 script=$3
    shift 3
    local gpus=${GPUS:-8} gpus_per_node=${GPUS_PER_NODE:-8}
    local gres=${GRES-gpu:$gpus_per_node}
    # shellcheck disable=SC2086  # SRUN_ARGS holds several options
    PYTHONPATH="$_MMEVF_ROOT:${PYTHONPATH:-}" \
    srun -p "$partition" \
        --job-name="$job_name" \
        ${gres:+--gres="$gres"} \
        --ntasks="$gpus" \
        --ntasks-per-node="$gpus_per_node" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "$PYTHON" -u "$_MMEVF_ROOT/$script" "$@"
}
