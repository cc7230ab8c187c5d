#!/usr/bin/env bash
# Stop everything and delete all local data under $STATE, keeping secrets/ and the Kafka jars.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=reset

"$INFRA_DIR/down.sh"
[[ -n $STATE && $STATE != / && -d $STATE ]] || die "refusing to reset state dir '$STATE'"
pg_dir="$(pg_root)"
[[ $pg_dir == "$STATE/postgres" ]] || rm -rf "$pg_dir"
rm -rf "${STATE:?}/postgres" "${STATE:?}/redis" "${STATE:?}/clickhouse" \
  "${STATE:?}/kafka/data" "${STATE:?}/kafka/cluster_id" "${STATE:?}/logs" "${STATE:?}/env"
log "wiped data in $STATE (kept secrets/ and kafka/libs)"
