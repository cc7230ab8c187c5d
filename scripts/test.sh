#!/usr/bin/env bash
# `make test`: starts the real servers (installing them if missing), runs the
# unit and integration tests of every module, then starts the whole system and
# runs the end-to-end suite over HTTP. MERCH_REQUIRE_INFRA=1 turns a missing
# server into a failure instead of a skip.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${MERCH_STATE_DIR:-$REPO/.state}
start=$(date +%s)
cd "$REPO"

"$REPO/scripts/infra/up.sh"
set -a
# shellcheck disable=SC1091
. "$STATE/env"
set +a
export MERCH_REQUIRE_INFRA=1

echo "== unit and integration tests"
# tests/load: the generator, the report and the seeding helpers (no system needed).
pkgs=(./pkg/... ./tests/chaos/... ./tests/load/...)
for m in services/*/; do pkgs+=("./${m%/}/..."); done
go test -count=1 -race -timeout 20m "${pkgs[@]}"

echo "== end-to-end tests against the running system"
trap '"$REPO/scripts/services.sh" stop' EXIT
"$REPO/scripts/services.sh" start
go test -count=1 -timeout 10m ./tests/e2e/...

echo "== schemathesis: generated requests from the OpenAPI document"
SCHEMATHESIS_MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-30} "$REPO/scripts/schemathesis.sh"

echo "== reconciliation: the ClickHouse history against the ledger"
# The read model trails the ledger; wait (bounded) until every transaction
# the tests made has arrived, then require an exact match.
deadline=$(( $(date +%s) + 120 ))
until out=$("$STATE/bin/reconcile" -settle 0s -timeout 30s 2>&1); do
  if (( $(date +%s) > deadline )); then
    echo "$out" | tail -n 40
    echo "reconciliation failed: ClickHouse differs from the ledger" >&2
    exit 1
  fi
  sleep 1
done
echo "$out"

echo "== all tests passed in $(( $(date +%s) - start ))s"
