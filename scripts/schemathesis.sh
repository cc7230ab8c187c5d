#!/usr/bin/env bash
# Property-based API testing of the RUNNING system with schemathesis (from
# PyPI, pinned, installed once into a venv under $MERCH_TOOLS_DIR). It
# generates requests from the OpenAPI document (gen/openapi/shop.swagger.json,
# Swagger 2.0, which schemathesis reads as it is), authenticated with a real
# token of a fresh user, and checks that no answer is a server error (5xx)
# and that every documented answer (the 200s) matches its schema and content
# type. The error answers (400/401/404/405/413/429) are not in the document
# (generated with disable_default_errors), so status_code_conformance is off:
# see docs/reliability.md.
#
# Usage: scripts/schemathesis.sh            (the system must be running: make run)
# Settings: BASE_URL (http://127.0.0.1:8080), SCHEMATHESIS_MAX_EXAMPLES (100 per
# operation), SCHEMATHESIS_MAX_TIME (unset: no budget; set, the fuzzing phase
# repeats until that many seconds are spent), SCHEMATHESIS_SEED (random),
# SCHEMATHESIS_WORKERS (2).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${MERCH_STATE_DIR:-$REPO/.state}
TOOLS=${MERCH_TOOLS_DIR:-$HOME/.cache/merchshop-tools}
VENV=$TOOLS/venv
VERSION=4.32.5 # the pin: change it here only
BASE=${BASE_URL:-http://127.0.0.1:8080}
BASE=${BASE%/}
SCHEMA=$REPO/gen/openapi/shop.swagger.json
REPORTS=$STATE/schemathesis
start=$(date +%s)

log() { echo "schemathesis: $*" >&2; }

install() {
  local marker=$VENV/.schemathesis-$VERSION
  if [[ -x $VENV/bin/schemathesis && -f $marker ]]; then
    return
  fi
  log "installing schemathesis $VERSION into $VENV"
  mkdir -p "$TOOLS"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
  rm -f "$VENV"/.schemathesis-*
  touch "$marker"
}

install

if ! curl -fs -o /dev/null --max-time 3 "$BASE/readyz"; then
  log "the system is not ready at $BASE (start it with \`make run\` or scripts/services.sh start)"
  exit 1
fi

# A fresh user: the first POST /api/auth registers it.
user="st-$(date +%s)-$RANDOM$RANDOM"
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
token=$(curl -fsS --max-time 10 -c "$jar" -X POST "$BASE/api/auth" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$password\"}" |
  "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])')
if [[ -z $token ]]; then
  log "could not log in $user"
  exit 1
fi
# The refresh cookie too, so that refresh and logout are reached past their
# 401 (the first refresh rotates it; later ones are refused, as they should).
refresh=$(awk '$6 == "refresh_token" { print $7 }' "$jar")
log "testing $BASE as $user with schemathesis $VERSION"

mkdir -p "$REPORTS"
args=(
  run "$SCHEMA"
  --url "$BASE"
  -H "Authorization: Bearer $token"
  -H "Cookie: refresh_token=$refresh"
  --checks "not_a_server_error,response_schema_conformance,content_type_conformance"
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}"
  --workers "${SCHEMATHESIS_WORKERS:-2}"
  --request-timeout 10
  --suppress-health-check too_slow
  --report junit --report-junit-path "$REPORTS/junit.xml"
)
if [[ -n ${SCHEMATHESIS_MAX_TIME:-} ]]; then
  # A time budget makes the fuzzing phase repeat until it is spent.
  args+=(--max-time "$SCHEMATHESIS_MAX_TIME")
fi
if [[ -n ${SCHEMATHESIS_SEED:-} ]]; then
  args+=(--seed "$SCHEMATHESIS_SEED")
fi
rc=0
NO_COLOR=1 "$VENV/bin/schemathesis" "${args[@]}" || rc=$?
log "finished in $(( $(date +%s) - start ))s with exit code $rc (JUnit report: $REPORTS/junit.xml)"
exit "$rc"
