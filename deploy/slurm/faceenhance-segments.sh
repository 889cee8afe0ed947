#!/usr/bin/env bash
# Enhance one video on a Slurm cluster: an array job with one task per segment, and a join
# job that starts once every task has succeeded (afterok).
#
#   deploy/slurm/faceenhance-segments.sh INPUT OUTPUT SEGMENTS WORKDIR [faceenhance video options]
#
# INPUT, OUTPUT and WORKDIR must be on storage every node sees (the work folder holds the
# plan, one encoded segment and one record per task). Each node needs the `faceenhance`
# binary (FACEENHANCE=path, default: on PATH), its models and the ONNX Runtime library
# (scripts/install.sh on each node, or on shared storage with FACEENHANCE_MODELS /
# ORT_DYLIB_PATH). Extra sbatch options: SBATCH_OPTS (e.g. "--partition=gpu --gres=gpu:1").
# Prints the two job ids; `faceenhance status WORKDIR` shows the progress. A failed task
# can be re-submitted alone (sbatch --array=K ...): finished segments are kept.
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
input=$(realpath "$1") output=$(realpath -m "$2") n=$3 work=$(realpath -m "$4")
shift 4
fe=${FACEENHANCE:-faceenhance}
# The work folder is faceenhance's or refused (as `faceenhance video --work` does): made
# and marked here, or an empty one marked as adopted, or an earlier run's. Slurm writes
# its logs into it before any task runs, so the mark must come first.
if [ ! -e "$work" ]; then
  mkdir -p "$work"
  echo "created by faceenhance-segments.sh; removed with the folder" > "$work/.faceenhance-work"
elif [ ! -f "$work/plan.json" ] && [ ! -f "$work/.faceenhance-work" ]; then
  if [ -n "$(ls -A "$work")" ]; then
    echo "$work is not a faceenhance work folder (it has files and no plan.json): refusing to use it" >&2
    exit 2
  fi
  echo "adopted by faceenhance-segments.sh: the user's folder, never removed" > "$work/.faceenhance-work"
fi
q() { printf '%q ' "$@"; }
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_OPTS:-} --job-name=faceenhance-seg --array="0-$((n - 1))" \
  --cpus-per-task="${CPUS_PER_TASK:-1}" --output="$work/slurm-%A_%a.log" \
  --wrap="$(q "$fe" video "$input" --no-progress --work "$work" "$@") --segment \$SLURM_ARRAY_TASK_ID/$n")
array=${array%%;*}
# shellcheck disable=SC2086
join=$(sbatch --parsable ${SBATCH_OPTS:-} --job-name=faceenhance-join --dependency="afterok:$array" \
  --output="$work/slurm-join-%j.log" --wrap="$(q "$fe" join "$work" -o "$output" --no-progress)")
echo "$array ${join%%;*}"
