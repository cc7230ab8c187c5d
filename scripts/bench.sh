#!/usr/bin/env bash
# Go benchmarks of the hot paths (numbers in docs/benchmarks.md):
#   coins  BenchmarkTransferHot/Cold   a transfer against the real PostgreSQL (test database)
#   coins  BenchmarkHistoryLength      `bench.sh history` (make bench-history): info's read
#                                      and a transfer at 0, 10k, 100k and 1M transfers of history
#   user   BenchmarkLogin*             login with and without the credential cache
#   gateway BenchmarkVerify*           the JWT check of every protected request
#   gateway BenchmarkMarshalInfo*      JSON encoding of the GET /api/info answer
# Needs the servers of scripts/infra/up.sh for the coins benchmark (it skips
# without them). Output also goes to tests/load/results/bench.txt.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${MERCH_STATE_DIR:-$REPO/.state}
OUT=${LOAD_RESULTS_DIR:-$REPO/tests/load/results}
mkdir -p "$OUT"
if [[ -f $STATE/env ]]; then
  # shellcheck disable=SC1091
  set -a; . "$STATE/env"; set +a
fi
if [[ ${1:-} == history ]]; then
  # GET /api/info's read and a transfer of a user with 50 counterparts as
  # the history grows (bulk-written; ~70 s to 1M transfers).
  {
    echo "# $(date -u +%FT%TZ) load1 $(cut -d' ' -f1 /proc/loadavg)"
    (cd "$REPO/services/coins" && go test -count=1 -run '^$' -bench 'HistoryLength' -benchtime "${BENCH_N:-2000x}" \
      ./internal/adapters/postgres/)
  } 2>&1 | tee "$OUT/bench-history.txt"
  exit "${PIPESTATUS[0]}"
fi
N=${BENCH_N:-2000x}
# A first login is a bcrypt hash at cost 10 (~0.1 s here): fewer of those.
NLOGIN=${BENCH_N_LOGIN:-200x}
{
  echo "# $(date -u +%FT%TZ) load1 $(cut -d' ' -f1 /proc/loadavg)"
  (cd "$REPO/services/coins" && go test -run '^$' -bench 'Transfer' -benchtime "$N" -benchmem ./internal/adapters/postgres/)
  (cd "$REPO/services/user" && go test -run '^$' -bench 'Login' -benchtime "$NLOGIN" -benchmem ./internal/app/) 
  (cd "$REPO/services/gateway" && go test -run '^$' -bench 'Verify|MarshalInfo' -benchtime "$N" -benchmem \
    ./internal/token/ ./internal/transport/httpapi/)
} 2>&1 | tee "$OUT/bench.txt"
