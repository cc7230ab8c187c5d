#!/usr/bin/env bash
# Stop kafka, clickhouse, redis, postgres (reverse of up.sh). Idempotent.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=down

rc=0
for c in kafka clickhouse redis postgres; do
  "$INFRA_DIR/$c.sh" stop || rc=1
done
exit "$rc"
