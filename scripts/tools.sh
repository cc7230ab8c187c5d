#!/usr/bin/env bash
# Installs the project's pinned Go tools into $MERCH_TOOLS_DIR/bin (default
# ~/.cache/merchshop-tools/bin), once per version. Usage: tools.sh [gen|lint|all]
# (The load generator is a Go command of tests/load, cmd/shoot; scripts/load.sh
# builds it.)
# Prints the bin directory on its last line.
set -euo pipefail

TOOLS_DIR=${MERCH_TOOLS_DIR:-$HOME/.cache/merchshop-tools}
BIN=$TOOLS_DIR/bin
mkdir -p "$BIN" "$TOOLS_DIR/versions"

# name | module path | version. Versions are pins: change them here only.
gen_tools=(
  "protoc-gen-go|google.golang.org/protobuf/cmd/protoc-gen-go|v1.36.12"
  "protoc-gen-go-grpc|google.golang.org/grpc/cmd/protoc-gen-go-grpc|v1.6.2"
  "protoc-gen-grpc-gateway|github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway|v2.33.0"
  "protoc-gen-openapiv2|github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2|v2.33.0"
  # buf v1.75.0 needs Go >= 1.26.7.
  "buf|github.com/bufbuild/buf/cmd/buf|v1.75.0"
)
lint_tools=(
  "golangci-lint|github.com/golangci/golangci-lint/v2/cmd/golangci-lint|v2.15.0"
)

install() {
  local name=$1 module=$2 version=$3
  local marker=$TOOLS_DIR/versions/$name@$version
  if [[ -x $BIN/$name && -f $marker ]]; then
    return
  fi
  echo "tools: installing $name $version" >&2
  # Outside any module so go.work does not apply.
  (cd "$TOOLS_DIR" && GOWORK=off GOBIN=$BIN go install "$module@$version")
  rm -f "$TOOLS_DIR/versions/$name@"*
  touch "$marker"
}

want=${1:-all}
selected=()
case $want in
  gen) selected=("${gen_tools[@]}") ;;
  lint) selected=("${lint_tools[@]}") ;;
  all) selected=("${gen_tools[@]}" "${lint_tools[@]}") ;;
  *) echo "usage: $0 [gen|lint|all]" >&2; exit 2 ;;
esac
for t in "${selected[@]}"; do
  IFS='|' read -r name module version <<<"$t"
  install "$name" "$module" "$version"
done
echo "$BIN"
