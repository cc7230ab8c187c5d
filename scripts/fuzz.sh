#!/usr/bin/env bash
# Runs every Go fuzz target of the services and pkg/ for a bounded time each
# (`go test -fuzz` takes one target of one package per run). The committed
# seed corpora (testdata/fuzz/<FuzzName>/) run first; a failing input is
# written there by go test, to be committed as a regression case.
#
# Usage: scripts/fuzz.sh [REGEXP]     only the targets whose name matches REGEXP
# Settings: FUZZTIME (10s per target; a duration or Nx for N executions).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
FUZZTIME=${FUZZTIME:-10s}
MATCH=${1:-.}
cd "$REPO"
start=$(date +%s)

# The packages that declare fuzz targets.
mapfile -t dirs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' services pkg |
  xargs -r -n1 dirname | sort -u)
if (( ${#dirs[@]} == 0 )); then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi

ran=0
failed=()
for d in "${dirs[@]}"; do
  list=$(cd "$d" && go test -list '^Fuzz' .) # a build failure stops here
  mapfile -t targets < <(grep -E '^Fuzz' <<<"$list" | grep -E -- "$MATCH" || true)
  for t in "${targets[@]}"; do
    t0=$(date +%s)
    echo "== fuzz $d $t ($FUZZTIME)"
    if (cd "$d" && go test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" .); then
      echo "   $t passed in $(( $(date +%s) - t0 ))s"
    else
      failed+=("$d $t")
      echo "   $t FAILED: the failing input is in $d/testdata/fuzz/$t/ (rerun: cd $d && go test -run '$t')"
    fi
    ran=$((ran + 1))
  done
done

echo "== fuzz: $ran targets, ${#failed[@]} failed, $(( $(date +%s) - start ))s"
if (( ${#failed[@]} > 0 )); then
  printf '   failed: %s\n' "${failed[@]}"
  exit 1
fi
(( ran > 0 )) || { echo "fuzz: no target matched $MATCH" >&2; exit 1; }
