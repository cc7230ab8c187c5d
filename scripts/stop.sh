#!/usr/bin/env bash
# `make stop`: stops the services, then the servers.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
"$REPO/scripts/services.sh" stop
"$REPO/scripts/infra/down.sh"
