#!/usr/bin/env bash
# gofmt, go vet and golangci-lint (pinned, see tools.sh) over every module.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=$("$REPO/scripts/tools.sh" lint | tail -n 1)
cd "$REPO"
unformatted=$(gofmt -l gen pkg services tests deployments)
if [[ -n $unformatted ]]; then
  echo "not gofmt-ed:" >&2
  echo "$unformatted" >&2
  exit 1
fi
modules=(deployments/tests pkg services/auth services/coins services/gateway services/info services/merch services/user tests/chaos tests/e2e tests/load)
for m in "${modules[@]}"; do
  echo "== lint $m"
  (cd "$m" && go vet ./... && "$BIN/golangci-lint" run --config "$REPO/.golangci.yaml" ./...)
done
echo "lint passed"
