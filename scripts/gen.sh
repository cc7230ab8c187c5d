#!/usr/bin/env bash
# Regenerates gen/ from proto/ with the pinned local plugins.
# `gen.sh check` fails when the committed gen/ differs from a fresh generation.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=$("$REPO/scripts/tools.sh" gen | tail -n 1)
export PATH=$BIN:$PATH

generate() {
  local out=$1
  local tmp
  tmp=$(mktemp -d)
  (
    cd "$REPO"
    buf lint proto
    buf generate --template buf.gen.yaml -o "$tmp"
    buf generate --template buf.gen.shop.yaml -o "$tmp"
  )
  # Keep the module files; replace everything generated.
  find "$out" -mindepth 1 -maxdepth 1 ! -name go.mod ! -name go.sum -exec rm -rf {} +
  cp -R "$tmp/gen/." "$out/"
  rm -rf "$tmp"
}

case ${1:-generate} in
  generate)
    generate "$REPO/gen"
    echo "gen/ regenerated"
    ;;
  check)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cp -R "$REPO/gen/." "$work/"
    generate "$work"
    if ! diff -ru "$REPO/gen" "$work" >"$work.diff" 2>&1; then
      cat "$work.diff"
      rm -f "$work.diff"
      echo "gen/ is out of date: run 'make gen' and commit the result" >&2
      exit 1
    fi
    rm -f "$work.diff"
    echo "gen/ matches proto/"
    ;;
  *) echo "usage: $0 [generate|check]" >&2; exit 2 ;;
esac
