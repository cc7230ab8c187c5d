#!/usr/bin/env bash
# Load runs against the system `make run` starts (loopback only). Usage:
#   load.sh seed [USERS]                register / log in USERS (100000) users, write their tokens
#   load.sh run PROFILE [RATE] [DURATION]
#                                       one open-model run: mixed (2000/s), info (4000/s), auth (1000/s)
#   load.sh step PROFILE [START] [STEP] [MAX] [STEP_DURATION]
#                                       raise the rate until the SLI breaks; report the highest rate that met it
#   load.sh sweep PROFILE "RATES" [DURATION]  one run per rate, whatever the outcome (chart points)
#   load.sh overload                    mixed at 1x, 2x, 4x of LOAD_SLI_RATE (1000): goodput, p99 of the
#                                       200s, 503s and 500s per step, then reconcile; fails on any 500
#   load.sh pprof [PROFILE] [RATE]      20 s CPU profiles of all six services under load (restarts them with PPROF=1)
#   load.sh writes [N]                  PostgreSQL transactions and rows written per first login, repeat
#                                       login, purchase and transfer (N of each, 200), from pg_stat_database
#   load.sh machine                     the machine, for docs/benchmarks.md
# The load generator is tests/load/cmd/shoot (vegeta's library; exits 99 when a
# run misses the SLI): p99 <= 50 ms and >= 99.99% of requests answered 200.
# Figures land in tests/load/results/ (git-ignored): runs.csv, one .md, .shoot.json,
# .shoot.log and .procstat.json per run, users.tsv, seed.json, pprof/.
# Settings: LOAD_USERS (100000), LOAD_SEED_WORKERS (32), LOAD_SEED_BCRYPT_COST (4),
# LOAD_MAX_WORKERS (2000 requests in flight at most), LOAD_QUIET_LOAD1 (1.5) and
# LOAD_QUIET_WAIT (0 s: how long to wait for the machine to calm down before a
# run), LOAD_RESULTS_DIR, MERCH_STATE_DIR; for overload LOAD_SLI_RATE (1000),
# LOAD_OVERLOAD_FACTORS ("1 2 4"), LOAD_OVERLOAD_STEP (30s), LOAD_RECONCILE_WAIT (120 s).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${MERCH_STATE_DIR:-$REPO/.state}
OUT=${LOAD_RESULTS_DIR:-$REPO/tests/load/results}
USERS=${LOAD_USERS:-100000}
USERS_FILE=$OUT/users.tsv
BASE=http://127.0.0.1:8080
# Tokens live AUTH_ACCESS_TTL (1 h): log the users in again when older than this.
TOKEN_MAX_AGE=${LOAD_TOKEN_MAX_AGE:-2400}
mkdir -p "$OUT" "$OUT/bin"

log() { echo "load: $*" >&2; }

tools() {
  # The generator and the helpers are Go commands of tests/load, built once
  # per change (go build caches).
  (cd "$REPO/tests/load" && go build -o "$OUT/bin/" ./cmd/shoot ./cmd/seed ./cmd/procstat ./cmd/report ./cmd/ammo)
}

ready() { curl -fs -o /dev/null --max-time 3 "$BASE/readyz"; }

ensure_system() {
  if ready; then return; fi
  log "the system is not answering on $BASE; starting it (scripts/run.sh)"
  "$REPO/scripts/run.sh"
}

# wait_quiet waits (up to LOAD_QUIET_WAIT seconds) for the 1-minute load to
# drop below LOAD_QUIET_LOAD1, so that other jobs on the machine do not skew
# a run; it says what it found either way.
wait_quiet() {
  local limit=${LOAD_QUIET_LOAD1:-1.5} wait=${LOAD_QUIET_WAIT:-0}
  local deadline=$(( $(date +%s) + wait )) l1
  while :; do
    l1=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v a="$l1" -v b="$limit" 'BEGIN{exit !(a < b)}'; then
      return
    fi
    if (( $(date +%s) >= deadline )); then
      log "1-minute load is $l1 (>= $limit): other work is running; the figures may be disturbed. Busiest processes:"
      ps -eo pid,pcpu,comm --sort=-pcpu | head -n 6 >&2
      return
    fi
    sleep 30
  done
}

svc_pid() { cat "$STATE/run/$1.pid"; }

# restart_svc NAME [VAR=value...] restarts a service gracefully with the
# given environment (scripts/services.sh passes the environment through).
restart_svc() {
  local name=$1 pid
  shift
  pid=$(svc_pid "$name" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  env "$@" "$REPO/scripts/services.sh" restart-one "$name" >&2
}

restart_user() { restart_svc user "$@"; }

# trust_loopback_proxy makes sure the gateway takes X-Forwarded-For from
# 127.0.0.1 (GATEWAY_TRUSTED_PROXIES), as it would from an ingress, so that
# the auth profile's logins come from one address per user: the login limit
# per client address (AUTH_RATE_PER_IP) then applies per user instead of to
# the whole load, which all leaves from 127.0.0.1.
trust_loopback_proxy() {
  local pid
  pid=$(svc_pid gateway 2>/dev/null || true)
  if [[ -n $pid ]] && tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'GATEWAY_TRUSTED_PROXIES=127.0.0.1/32'; then
    return
  fi
  log "restarting the gateway with GATEWAY_TRUSTED_PROXIES=127.0.0.1/32 (logins carry X-Forwarded-For, one address per user)"
  restart_svc gateway GATEWAY_TRUSTED_PROXIES=127.0.0.1/32
}

seed() {
  local n=${1:-$USERS} cost=${LOAD_SEED_BCRYPT_COST:-4}
  ensure_system
  tools
  local marker=$OUT/registered-$n
  if [[ ! -f $marker ]]; then
    # First logins register: bcrypt at the production cost 10 takes ~60 ms of
    # a core per user (100k users: hours on 2 cores). Seeding registers them
    # at a lower cost, through the same code path, and says so.
    log "registering $n users with the user service at USER_BCRYPT_COST=$cost (seeding only)"
    # bcrypt-bound registrations: the user service runs on every core
    # (USER_GOMAXPROCS in scripts/services.sh).
    restart_user USER_BCRYPT_COST="$cost"
  else
    log "logging the $n registered users in again (new tokens)"
  fi
  local rc=0
  "$OUT/bin/seed" -url "$BASE" -users "$n" -workers "${LOAD_SEED_WORKERS:-32}" -out "$USERS_FILE" \
    -summary "$OUT/seed.json" || rc=$?
  if [[ ! -f $marker ]]; then
    log "restarting the user service at its default bcrypt cost"
    restart_user
    if (( rc == 0 )); then
      { echo "registered with USER_BCRYPT_COST=$cost"; cat "$OUT/seed.json"; } >"$marker"
    fi
  fi
  return "$rc"
}

ensure_users() {
  local need=0
  if [[ ! -f $USERS_FILE ]] || (( $(wc -l <"$USERS_FILE") < USERS )); then
    need=1
  elif (( $(date +%s) - $(stat -c %Y "$USERS_FILE") > TOKEN_MAX_AGE )); then
    need=1
  fi
  if (( need )); then seed "$USERS"; fi
}

# one_run PROFILE RATE DURATION MODE: a shoot run with procstat sampling
# beside it; prints the report and returns shoot's status (99: the SLI was
# not met).
one_run() {
  local profile=$1 rate=$2 dur=$3 mode=$4
  local id
  id=$(date -u +%Y%m%dT%H%M%SZ)-$profile-$rate
  LAST_SUMMARY=$OUT/$id.shoot.json
  local secs=${dur%s}
  wait_quiet
  local rc=0
  local extra=()
  if [[ $profile == auth ]]; then
    trust_loopback_proxy
    extra=(-forwarded-for)
  fi
  log "$mode $profile at $rate req/s for $dur ($id)"
  "$OUT/bin/shoot" -url "$BASE" -profile "$profile" -rate "$rate" -duration "$dur" -users "$USERS_FILE" \
    -max-workers "${LOAD_MAX_WORKERS:-2000}" -summary "$OUT/$id.shoot.json" "${extra[@]}" >"$OUT/$id.shoot.log" 2>&1 &
  local gen_pid=$!
  # shoot reads the users file (a fraction of a second for 100k users)
  # before the first request: sample the processes from when the gateway
  # sees the load.
  local before now deadline=$(( $(date +%s) + 60 ))
  before=$(gateway_requests)
  while kill -0 "$gen_pid" 2>/dev/null && (( $(date +%s) < deadline )); do
    sleep 0.5
    now=$(gateway_requests)
    if (( now - before > rate / 4 )); then break; fi
    before=$now
  done
  "$OUT/bin/procstat" -state "$STATE" -duration "$(( secs > 8 ? secs - 3 : secs ))s" -out "$OUT/$id.procstat.json" &
  local ps_pid=$!
  wait "$gen_pid" || rc=$?
  kill -TERM "$ps_pid" 2>/dev/null || true
  wait "$ps_pid" || true
  if [[ ! -s $OUT/$id.shoot.json ]] || (( rc != 0 && rc != 99 )); then
    log "shoot failed (status $rc):"
    tail -n 30 "$OUT/$id.shoot.log" >&2
    return 2
  fi
  local csv=$OUT/runs.csv
  [[ $mode != pprof ]] || csv=""
  # The report says how the users were registered (their bcrypt cost).
  local users_note="" marker
  for marker in "$OUT"/registered-*; do
    [[ -f $marker ]] || continue
    users_note="$(basename "$marker" | cut -d- -f2) users, $(head -n1 "$marker") (seeding only; the service's default is 10)"
    break
  done
  "$OUT/bin/report" -mode "$mode" -summary "$OUT/$id.shoot.json" -users "$users_note" \
    -procstat "$OUT/$id.procstat.json" -csv "$csv" | tee "$OUT/$id.md"
  return "$rc"
}

# reconcile_money compares the ledger with itself (every balance is the sum
# of its entries) and with the history read model, waiting (up to
# LOAD_RECONCILE_WAIT seconds) for the read model to catch up.
reconcile_money() {
  (cd "$REPO" && go build -o "$OUT/bin/" ./services/info/cmd/reconcile)
  local deadline=$(( $(date +%s) + ${LOAD_RECONCILE_WAIT:-120} )) out rc
  while :; do
    rc=0
    # shellcheck disable=SC1091
    out=$(set -a; . "$STATE/env"; set +a; "$OUT/bin/reconcile" -settle 0s -timeout 30s 2>&1) || rc=$?
    if (( rc == 0 )); then
      log "reconcile: $out"
      return 0
    fi
    if (( rc != 1 || $(date +%s) > deadline )); then
      echo "$out" | tail -n 40 >&2
      log "reconcile failed (status $rc): the ledger or the history is not consistent"
      return 1
    fi
    sleep 2
  done
}

# gateway_requests is the gateway's count of answered requests.
gateway_requests() {
  curl -fs --max-time 2 "$BASE/metrics" | awk '/^http_requests_total/ {s += $2} END {printf "%d\n", s}'
}

default_rate() {
  case $1 in
    mixed) echo 2000 ;;
    info) echo 4000 ;;
    auth) echo 1000 ;;
    buy|send) echo 300 ;;
    *) echo "unknown profile $1 (mixed, info, auth, buy, send)" >&2; exit 2 ;;
  esac
}

# pgstats prints "db commits rows_written" for the services' databases.
pgstats() {
  PGPASSWORD=$PG_PASSWORD psql -X -q -At -F' ' -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -c \
    "SELECT datname, xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database
     WHERE datname IN ('auth', 'users', 'coins', 'merch') ORDER BY datname"
}

# settled_pgstats prints pgstats once two readings 11 s apart agree: an
# idle backend publishes its pending counters within 10 s (PostgreSQL's
# PGSTAT_IDLE_INTERVAL), and events are consumed after the relays' rounds.
# After 90 s it prints what it has, with a warning.
settled_pgstats() {
  local prev cur deadline=$(( $(date +%s) + 90 ))
  prev=$(pgstats)
  while :; do
    sleep 11 # the polling interval, longer than the stats' publishing delay
    cur=$(pgstats)
    if [[ $cur == "$prev" ]]; then echo "$cur"; return; fi
    if (( $(date +%s) >= deadline )); then log "writes: counters still moving after 90 s"; echo "$cur"; return; fi
    prev=$cur
  done
}

# writes_phase NAME N CMD...: runs CMD N times (8 at a time, the index as
# its last argument) between two settled readings, prints per-action deltas.
writes_phase() {
  local name=$1 n=$2; shift 2
  local before after
  before=$(settled_pgstats)
  seq 1 "$n" | xargs -P 8 -I{} "$@" {}
  after=$(settled_pgstats)
  join <(echo "$before") <(echo "$after") | awk -v name="$name" -v n="$n" '
    { c = ($4 - $2) / n; r = ($5 - $3) / n; tc += c; tr += r
      printf "| %s | %s | %.2f | %.2f |\n", name, $1, c, r }
    END { printf "| %s | all | %.2f | %.2f |\n", name, tc, tr }'
}

writes() {
  local n=${1:-200} run pw=writes-pw
  run=w$(date +%s)
  # shellcheck disable=SC1091
  set -a; . "$STATE/env"; set +a
  export BASE OUT run pw
  login() { curl -fs -o /dev/null --max-time 30 -H 'Content-Type: application/json' \
    -d "{\"username\":\"$run-$1\",\"password\":\"$pw\"}" "$BASE/api/auth"; }
  token() { curl -fs --max-time 30 -H 'Content-Type: application/json' \
    -d "{\"username\":\"$run-$1\",\"password\":\"$pw\"}" "$BASE/api/auth" | sed 's/.*"token":"\([^"]*\)".*/\1/'; }
  buy() { curl -fs -o /dev/null --max-time 30 -H "Authorization: Bearer $(cat "$OUT/$run.tok.$(( $1 % 20 ))")" \
    -H "Idempotency-Key: $run-b$1" "$BASE/api/buy/pen"; }
  send() { curl -fs -o /dev/null --max-time 30 -H "Authorization: Bearer $(cat "$OUT/$run.tok.$(( $1 % 20 ))")" \
    -H "Idempotency-Key: $run-s$1" -H 'Content-Type: application/json' \
    -d "{\"toUser\":\"$run-$(( ($1 + 1) % 20 ))\",\"amount\":1}" "$BASE/api/sendCoin"; }
  export -f login token buy send
  echo "| action | database | commits per action | rows written per action |"
  echo "|---|---|---|---|"
  writes_phase "first login" "$n" bash -c 'login "$0"'
  writes_phase "repeat login" "$n" bash -c 'login "$0"'
  for i in $(seq 0 19); do token "$i" >"$OUT/$run.tok.$i"; done
  writes_phase "purchase (pen)" "$n" bash -c 'buy "$0"'
  writes_phase "transfer" "$n" bash -c 'send "$0"'
  rm -f "$OUT/$run".tok.*
}

cmd=${1:-}
shift || true
case $cmd in
  seed)
    seed "${1:-$USERS}"
    ;;
  run)
    profile=${1:?profile: mixed, info or auth}
    rate=${2:-$(default_rate "$profile")}
    ensure_system
    tools
    ensure_users
    one_run "$profile" "$rate" "${3:-60s}" run
    ;;
  step)
    profile=${1:?profile: mixed, info or auth}
    start=${2:-100}
    step=${3:-100}
    max=${4:-$(( 2 * $(default_rate "$profile") ))}
    dur=${5:-30s}
    ensure_system
    tools
    ensure_users
    best=0
    for (( rate = start; rate <= max; rate += step )); do
      if one_run "$profile" "$rate" "$dur" step; then
        best=$rate
        # The previous step is what keeps the load average up now; other
        # work during a step shows as "other" in its CPU table.
        LOAD_QUIET_WAIT=0
      else
        rc=$?
        (( rc == 99 )) || exit "$rc"
        log "$profile: the SLI broke at $rate req/s"
        break
      fi
    done
    log "$profile: highest rate that met the SLI (p99 <= 50 ms, >= 99.99% answered 200): $best req/s"
    echo "$profile step: highest rate meeting the SLI: $best req/s" >>"$OUT/steps.txt"
    ;;
  sweep)
    # Like step, without stopping at the first miss: the points of the
    # latency-against-throughput chart (docs/benchmarks-latency.png).
    profile=${1:?profile: mixed, info or auth}
    ensure_system
    tools
    ensure_users
    for rate in ${2:?rates, e.g. "100 200 300"}; do
      rc=0
      one_run "$profile" "$rate" "${3:-30s}" sweep || rc=$?
      (( rc == 0 || rc == 99 )) || exit "$rc"
      LOAD_QUIET_WAIT=0
    done
    ;;
  overload)
    # Past its capacity the system must refuse the excess quickly (503 with
    # Retry-After) and keep serving what it can with a bounded latency: the
    # mixed profile at each factor of LOAD_SLI_RATE, then the money check.
    # A 500 is a bug (an overload is never one): any makes this fail.
    base=${LOAD_SLI_RATE:-1000}
    step_dur=${LOAD_OVERLOAD_STEP:-30s}
    ensure_system
    tools
    ensure_users
    sums=()
    for f in ${LOAD_OVERLOAD_FACTORS:-1 2 4}; do
      rc=0
      one_run mixed "$(( base * f ))" "$step_dur" overload || rc=$?
      (( rc == 0 || rc == 99 )) || exit "$rc"
      sums+=("$LAST_SUMMARY")
      LOAD_QUIET_WAIT=0
    done
    table=$OUT/$(date -u +%Y%m%dT%H%M%SZ)-overload-$base.md
    rc=0
    { echo; echo "mixed overload, LOAD_SLI_RATE=$base, steps of $step_dur:"; echo
      "$OUT/bin/report" -overload "${sums[@]}"; } >"$table" || rc=$?
    cat "$table"
    money=0
    reconcile_money || money=1
    if (( rc == 3 )); then
      log "overload: requests were answered 500 (see $table)"
      exit 1
    fi
    (( rc == 0 )) || exit "$rc"
    (( money == 0 )) || exit 1
    log "overload: no 500s; table in $table"
    ;;
  pprof)
    profile=${1:-mixed}
    rate=${2:-$(default_rate "$profile")}
    ensure_system
    tools
    ensure_users
    dir=$OUT/pprof/$(date -u +%Y%m%dT%H%M%SZ)-$profile-$rate
    mkdir -p "$dir"
    # Backends serve /debug/pprof/ on their admin port with PPROF=1, the
    # gateway on PPROF_ADDR (127.0.0.1:8086).
    log "restarting the services with PPROF=1"
    export PPROF=1 # also for a gateway restart of the auth profile
    "$REPO/scripts/services.sh" start >&2
    secs=20
    ( sleep 10
      for s in gateway:8086 auth:8081 user:8082 coins:8083 merch:8084 info:8085; do
        curl -fs -o "$dir/${s%%:*}.cpu.pprof" "http://127.0.0.1:${s##*:}/debug/pprof/profile?seconds=$secs" &
      done
      wait ) &
    prof=$!
    one_run "$profile" "$rate" 45s pprof || true
    wait "$prof" || true
    cp "$STATE/bin/"{gateway,auth,user,coins,merch,info} "$dir/" 2>/dev/null || true
    for s in gateway auth user coins merch info; do
      [[ -s $dir/$s.cpu.pprof ]] || { log "no profile from $s"; continue; }
      go tool pprof -top -nodecount=35 "$dir/$s" "$dir/$s.cpu.pprof" >"$dir/$s.top.txt" 2>/dev/null || true
    done
    log "restarting the services without PPROF"
    unset PPROF
    "$REPO/scripts/services.sh" start >&2
    log "profiles in $dir (go tool pprof -http=: $dir/<svc> $dir/<svc>.cpu.pprof)"
    ;;
  writes)
    ensure_system
    writes "${1:-200}"
    ;;
  machine)
    echo "cores: $(nproc); memory: $(free -h | awk '/^Mem:/{print $2}'); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "kernel: $(uname -r); Go: $(go version | cut -d' ' -f3)"
    ;;
  *)
    sed -n '2,23p' "$0" >&2
    exit 2
    ;;
esac
