#!/usr/bin/env bash
# Builds and runs the six services as local processes on 127.0.0.1.
#   services.sh start    build, (re)start all six, wait until the gateway is ready
#   services.sh stop     stop them (SIGTERM, then SIGKILL after a deadline)
#   services.sh status   show which run
#   services.sh restart-one NAME   kill -9 NAME and start it again (fault tests)
# Logs: $STATE/logs/<service>.log. Needs the servers of scripts/infra/up.sh.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${MERCH_STATE_DIR:-$REPO/.state}
BIN=$STATE/bin
RUN=$STATE/run
LOGS=$STATE/logs
# Start order: the ones others call first.
SERVICES=(user coins auth merch info gateway)
mkdir -p "$BIN" "$RUN" "$LOGS"

if [[ -f $STATE/env ]]; then
  # shellcheck disable=SC1091
  set -a; . "$STATE/env"; set +a
fi
export MERCH_STATE_DIR=$STATE

db_for() {
  case $1 in
    auth) echo "${AUTH_DATABASE_URL:-}" ;;
    user) echo "${USER_DATABASE_URL:-}" ;;
    coins) echo "${COINS_DATABASE_URL:-}" ;;
    merch) echo "${MERCH_DATABASE_URL:-}" ;;
    *) echo "" ;;
  esac
}

admin_url() {
  case $1 in
    gateway) echo "http://127.0.0.1:8080" ;;
    auth) echo "http://127.0.0.1:8081" ;;
    user) echo "http://127.0.0.1:8082" ;;
    coins) echo "http://127.0.0.1:8083" ;;
    merch) echo "http://127.0.0.1:8084" ;;
    info) echo "http://127.0.0.1:8085" ;;
  esac
}

build() {
  local pkgs=()
  for s in "${SERVICES[@]}"; do pkgs+=("./services/$s/cmd/$s"); done
  (cd "$REPO" && go build -o "$BIN/" "${pkgs[@]}" ./services/info/cmd/reconcile)
}

alive() {
  local pidfile=$RUN/$1.pid
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

ports_of() {
  case $1 in
    gateway) echo 8080 ;;
    auth) echo 50051 8081 ;;
    user) echo 50052 8082 ;;
    coins) echo 50053 8083 ;;
    merch) echo 50054 8084 ;;
    info) echo 50055 8085 ;;
  esac
}

# free_ports NAME: the same service of another checkout (a binary
# .../.state/bin/NAME) holding its ports is stopped, with a warning, as
# scripts/infra does for the servers; anything else there is an error.
free_ports() {
  local s=$1 port pid exe
  for port in $(ports_of "$s"); do
    for pid in $(ss -H -ltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
      exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
      if [[ $exe == */.state/bin/"$s" ]]; then
        echo "WARNING: stopping another $s on port $port (pid $pid: $exe)" >&2
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$(( $(date +%s) + 15 ))
        while kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
          if (( $(date +%s) > deadline )); then kill -KILL "$pid" 2>/dev/null || true; fi
          sleep 0.1
        done
      else
        echo "port $port needed by $s is held by pid $pid (${exe:-unknown}); stop it first" >&2
        return 1
      fi
    done
  done
}

start_one() {
  local s=$1
  if alive "$s"; then
    return
  fi
  free_ports "$s"
  local db
  db=$(db_for "$s")
  # One previous log is kept; a log past 100 MiB is rotated at (re)start.
  if [[ -f $LOGS/$s.log ]] && (( $(stat -c %s "$LOGS/$s.log") > 100 * 1024 * 1024 )); then
    mv -f "$LOGS/$s.log" "$LOGS/$s.log.1"
  fi
  echo "== $(date -u +%FT%TZ) starting $s" >>"$LOGS/$s.log"
  # DATABASE_URL is per service; everything else comes from $STATE/env.
  # GOMAXPROCS: here six services share the machine's cores with
  # PostgreSQL, Redis, Kafka and ClickHouse; with one P each (SERVICE_GOMAXPROCS,
  # default 1) the Go schedulers stop spinning and handing goroutines across
  # threads, which measurably cut the tail latency under load
  # (docs/benchmarks.md). The user service is the exception: a first login
  # is a bcrypt hash (~60 ms of a core), run in a pool of one worker per core
  # (USER_BCRYPT_WORKERS), and with one P that pool would share one core, so
  # a burst of first logins would take twice as long; it gets every core
  # (USER_GOMAXPROCS, default: the number of cores). In Kubernetes, Go
  # derives GOMAXPROCS from the container's CPU limit instead.
  local procs=${SERVICE_GOMAXPROCS:-1}
  if [[ $s == user ]]; then
    procs=${USER_GOMAXPROCS:-$(nproc)}
  fi
  # 9>&-: the service must not inherit the lock of this script (see below).
  GOMAXPROCS=$procs DATABASE_URL=$db setsid nohup "$BIN/$s" >>"$LOGS/$s.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$s.pid"
}

wait_ready() {
  local s=$1 deadline=$(( $(date +%s) + ${2:-90} ))
  local url
  url=$(admin_url "$s")/readyz
  until curl -fs -o /dev/null --max-time 2 "$url"; do
    if ! alive "$s"; then
      echo "$s exited; last log lines:" >&2
      tail -n 30 "$LOGS/$s.log" >&2
      return 1
    fi
    if (( $(date +%s) > deadline )); then
      echo "$s not ready after ${2:-90}s; last log lines:" >&2
      tail -n 30 "$LOGS/$s.log" >&2
      return 1
    fi
    sleep 0.2
  done
}

stop_one() {
  local s=$1 sig=${2:-TERM}
  local pidfile=$RUN/$s.pid
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    local deadline=$(( $(date +%s) + 15 ))
    while kill -0 "$pid" 2>/dev/null; do
      if (( $(date +%s) > deadline )); then
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
}

# reserve_ports takes the gRPC ports (50051-50055) out of the kernel's
# ephemeral range (32768-60999 here): otherwise any outgoing connection of
# any process (a test's, a Kafka or PostgreSQL client's) may be given one of
# them as its local port, and the service that starts next fails with
# "address already in use" (seen once in a CI run). Best effort: it needs
# root; without it the chance stays.
reserve_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports cur
  cur=$(cat "$f" 2>/dev/null || true)
  [[ ,$cur, == *,50051-50055,* ]] && return 0
  if { [[ -w $f ]] && echo "${cur:+$cur,}50051-50055" >"$f"; } 2>/dev/null; then
    echo "reserved ports 50051-50055 from the ephemeral port range ($f)" >&2
  else
    echo "note: could not reserve ports 50051-50055 from the ephemeral range ($f)" >&2
  fi
}

# One start, stop or restart at a time per state directory: two concurrent
# starts would each stop the other's fresh processes and start their own,
# leaving orphans that hold the ports.
if [[ ${1:-} == start || ${1:-} == stop || ${1:-} == restart-one ]]; then
  exec 9>"$RUN/services.lock"
  flock 9
fi

case ${1:-} in
  start)
    reserve_ports
    build
    for s in "${SERVICES[@]}"; do stop_one "$s"; done
    for s in "${SERVICES[@]}"; do start_one "$s"; done
    for s in "${SERVICES[@]}"; do wait_ready "$s" 90; done
    echo "services ready; logs in $LOGS"
    ;;
  stop)
    for ((i=${#SERVICES[@]}-1; i>=0; i--)); do stop_one "${SERVICES[i]}"; done
    echo "services stopped"
    ;;
  status)
    for s in "${SERVICES[@]}"; do
      if alive "$s"; then echo "$s running (pid $(cat "$RUN/$s.pid"))"; else echo "$s stopped"; fi
    done
    ;;
  restart-one)
    s=${2:?service name}
    reserve_ports
    stop_one "$s" KILL
    start_one "$s"
    wait_ready "$s" 90
    ;;
  *)
    echo "usage: $0 start|stop|status|restart-one NAME" >&2
    exit 2
    ;;
esac
