#!/usr/bin/env bash
# `make chaos`: the fault suite (tests/chaos). Starts what is missing
# (servers, then the six services, restarted with a short merch recovery age
# so the suite's drains are quick), then runs the workload and the faults
# and prints a Markdown report. CHAOS_QUICK=1 runs the CI subset (~2-3 min).
# The system is left running. Exit status 1: a guarantee failed.
# Report copy: $STATE/chaos/<UTC timestamp>.md. Scripts' output: $STATE/logs/chaos.log.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${MERCH_STATE_DIR:-$REPO/.state}
cd "$REPO"

"$REPO/scripts/infra/up.sh" >/dev/null
set -a
# shellcheck disable=SC1091
. "$STATE/env"
set +a

# Orders left pending by a fault are taken over after MERCH_RECOVERY_AGE;
# services.sh passes the environment on to the services it starts.
export MERCH_RECOVERY_AGE=${MERCH_RECOVERY_AGE:-2s}
export MERCH_RECOVERY_INTERVAL=${MERCH_RECOVERY_INTERVAL:-1s}
"$REPO/scripts/services.sh" start

mkdir -p "$STATE/chaos"
export CHAOS_REPORT=${CHAOS_REPORT:-$STATE/chaos/$(date -u +%Y%m%dT%H%M%SZ).md}
go build -o "$STATE/bin/chaos" ./tests/chaos
exec "$STATE/bin/chaos"
