#!/usr/bin/env bash
# Validates the deployment artefacts without a cluster or a Docker engine:
#   1. helm lint --strict of deployments/helm/merch-shop (default, dev and
#      all-external values);
#   2. helm template of the same three into a temporary directory;
#   3. the Go tests of deployments/tests on those renderings (strict decoding
#      into the Kubernetes API types and the chart's invariants) and on
#      docker-compose.yml (compose-spec loader), plus the image health probe's
#      own tests;
#   4. actionlint on .github/workflows.
# helm and actionlint are installed, pinned, into $MERCH_TOOLS_DIR/bin
# (default ~/.cache/merchshop-tools/bin) once per version. Idempotent: run it
# as often as you like. Usage: scripts/deploy-check.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TOOLS_DIR=${MERCH_TOOLS_DIR:-$HOME/.cache/merchshop-tools}
BIN=$TOOLS_DIR/bin
CHART=$REPO/deployments/helm/merch-shop
# helm template assumes Kubernetes 1.20 unless told; the chart needs >= 1.30.
KUBE_VERSION=1.34.0
HELM_VERSION=v3.22.0
ACTIONLINT_VERSION=v1.7.12
start=$(date +%s)
mkdir -p "$BIN" "$TOOLS_DIR/versions"

# install NAME MODULE VERSION: go install into $BIN unless that version is there.
install() {
  local name=$1 module=$2 version=$3
  local marker=$TOOLS_DIR/versions/$name@$version
  if [[ -x $BIN/$name && -f $marker ]]; then
    return
  fi
  echo "deploy-check: installing $name $version" >&2
  local t0=$SECONDS
  # From a directory outside any module, so go.work does not apply.
  (cd "$TOOLS_DIR" && GOWORK=off GOBIN=$BIN go install "$module@$version")
  rm -f "$TOOLS_DIR/versions/$name@"*
  touch "$marker"
  echo "deploy-check: $name installed in $((SECONDS - t0))s" >&2
}

install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
install actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
helm=$BIN/helm

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# name -> extra helm arguments
declare -A variants=(
  [default]=""
  [dev]="-f $CHART/values-dev.yaml"
  [external]="-f $REPO/deployments/tests/testdata/values-external.yaml"
)

echo "== helm $HELM_VERSION lint and template (Kubernetes $KUBE_VERSION)"
for v in default dev external; do
  # shellcheck disable=SC2086 # the variants' arguments are meant to split
  "$helm" lint --strict --quiet "$CHART" --kube-version "$KUBE_VERSION" ${variants[$v]}
  # shellcheck disable=SC2086
  "$helm" template merch-shop "$CHART" --namespace merch-shop --kube-version "$KUBE_VERSION" \
    ${variants[$v]} >"$out/$v.yaml"
  echo "$v: $(grep -c '^kind:' "$out/$v.yaml") objects"
done

echo "== chart and compose tests"
(cd "$REPO" && MERCH_RENDERED_DIR=$out go test -count=1 ./deployments/tests/...)
(cd "$REPO/deployments/docker/healthcheck" && GOWORK=off go vet ./... && GOWORK=off go test -count=1 ./...)

echo "== actionlint"
(cd "$REPO" && "$BIN/actionlint")

echo "== deploy-check passed in $(($(date +%s) - start))s"
