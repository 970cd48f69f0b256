#!/usr/bin/env bash
# Job status for the cluster-generic executor: running, success or failed (see submit.sh).
set -euo pipefail
dir="${SYNTHDISTILL_CLUSTER_DIR:?set SYNTHDISTILL_CLUSTER_DIR}"
if [[ ! -f "$dir/$1.exit" ]]; then
    echo running
elif [[ "$(cat "$dir/$1.exit")" == 0 ]]; then
    echo success
else
    echo failed
fi
