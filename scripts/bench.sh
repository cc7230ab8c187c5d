#!/usr/bin/env bash
# Go benchmarks of the hot paths (numbers in docs/benchmarks.md):
#   coins  BenchmarkTransferHot/Cold   a transfer against the real PostgreSQL (test database)
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
