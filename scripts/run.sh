#!/usr/bin/env bash
# `make run`: installs what is missing, starts PostgreSQL, Redis, Kafka and
# ClickHouse, builds and starts the six services, and waits until the API
# answers on http://127.0.0.1:8080.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
"$REPO/scripts/infra/up.sh"
"$REPO/scripts/services.sh" start
STATE=${MERCH_STATE_DIR:-$REPO/.state}
cat <<TXT

Merch Shop is up in $(( $(date +%s) - start ))s: http://127.0.0.1:8080  (try: curl -s -XPOST localhost:8080/api/auth -d '{"username":"alice","password":"secret"}')
Logs: $STATE/logs/<service>.log    Stop: make stop
TXT
