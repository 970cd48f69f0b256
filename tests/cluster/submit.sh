#!/usr/bin/env bash
# A stand-in for sbatch, for the cluster-generic executor: run the job script as a separate
# background process on this machine (the shared filesystem is the work folder) and print a job id.
# Exit codes land in $SYNTHDISTILL_CLUSTER_DIR/<id>.exit, which status.sh reads.
set -euo pipefail
jobscript="$1"
dir="${SYNTHDISTILL_CLUSTER_DIR:?set SYNTHDISTILL_CLUSTER_DIR}"
mkdir -p "$dir"
id="job$(date +%s%N)$RANDOM"
# Snakemake deletes the job script once the job is done: keep a copy for the job to run.
cp "$jobscript" "$dir/$id.sh"
nohup bash -c '
    bash "$1/$2.sh" > "$1/$2.out" 2>&1
    echo $? > "$1/$2.exit.tmp" && mv "$1/$2.exit.tmp" "$1/$2.exit"
' _ "$dir" "$id" > /dev/null 2>&1 &
echo "$id"
