#!/usr/bin/env bash
# Training on a Slurm cluster (one task per GPU).
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args...]
# Preemption (docs/reliability.md): every task handles SIGTERM / SIGUSR1 (PreemptionHook), saves
# one checkpoint after its current step and exits with code 75. Ask Slurm for the warning signal
# with SRUN_ARGS="--signal=USR1@180". Inside an sbatch job (with --requeue allowed), REQUEUE=1
# requeues the job on exit code 75 (`scontrol requeue $SLURM_JOB_ID`), and a run whose work dir
# already holds a last_checkpoint starts with --resume.
#   REQUEUE=1 SRUN_ARGS="--signal=USR1@180" bash tools/slurm_train.sh PARTITION JOB CONFIG \
#       --work-dir work_dirs/JOB
set -uo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-8}
SRUN_ARGS=${SRUN_ARGS:-""}
REQUEUE=${REQUEUE:-0}
PREEMPTED_EXIT_CODE=75  # silc_seg.engine.checkpointing.PREEMPTED_EXIT_CODE
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ARGS=("${@:4}")

if [[ "$REQUEUE" == 1 ]]; then
    # The work dir: --work-dir if given, else tools/train.py's default (work_dirs/CONFIG_NAME).
    WORK_DIR="work_dirs/$(basename "$CONFIG" .py)"
    for ((i = 0; i < ${#ARGS[@]}; i++)); do
        [[ "${ARGS[$i]}" == --work-dir ]] && WORK_DIR="${ARGS[$((i + 1))]}"
        [[ "${ARGS[$i]}" == --work-dir=* ]] && WORK_DIR="${ARGS[$i]#--work-dir=}"
    done
    if [[ -s "$WORK_DIR/last_checkpoint" && ! " ${ARGS[*]} " =~ " --resume" ]]; then
        ARGS+=(--resume)
    fi
fi

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    python -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "${ARGS[@]}"
STATUS=$?

if [[ "$STATUS" == "$PREEMPTED_EXIT_CODE" && "$REQUEUE" == 1 ]]; then
    if [[ -n "${SLURM_JOB_ID:-}" ]]; then
        echo "Preempted (exit code $STATUS): requeueing Slurm job $SLURM_JOB_ID" >&2
        scontrol requeue "$SLURM_JOB_ID"
    else
        echo "Preempted (exit code $STATUS), but not inside a Slurm job: not requeued" >&2
    fi
fi
exit "$STATUS"
