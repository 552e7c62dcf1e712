#!/usr/bin/env bash
# Stops the Slurm daemons .ci/slurm-up.sh started (by the pids it recorded), newest first,
# and nothing else. Idempotent.
set -uo pipefail
SLURM_CI_DIR="${SLURM_CI_DIR:-/tmp/report-slurm-ci}"
started="$SLURM_CI_DIR/started"
[ -f "$started" ] || exit 0
for pid in $(tac "$started"); do
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
done
rm -f "$started"
echo "slurm-down: stopped the daemons slurm-up started"
