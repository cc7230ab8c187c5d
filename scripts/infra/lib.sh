# shellcheck shell=bash disable=SC2034  # variables here are used by the sourcing scripts
# Shared helpers for scripts/infra/*.sh. Source it; do not run it.

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$INFRA_DIR/../.." && pwd)"
# State dir (git-ignored); made absolute so a relative MERCH_STATE_DIR works from any cwd.
STATE="${MERCH_STATE_DIR:-$REPO/.state}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
LOG_DIR="$STATE/logs"
SECRETS_DIR="$STATE/secrets"
export MERCH_STATE_DIR="$STATE"

# Ports (override through the environment).
PGPORT="${PGPORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
CH_TCP_PORT="${CH_TCP_PORT:-9000}"
CH_HTTP_PORT="${CH_HTTP_PORT:-8123}"

# Every Debian package the four components need (up.sh installs them in one go).
INFRA_APT_PACKAGES=(postgresql redis-server clickhouse-server clickhouse-client curl iproute2)

LOG_TAG="${LOG_TAG:-infra}"

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$LOG_TAG" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2
  exit 1
}

# Milliseconds since the epoch; for timings.
now_ms() { date +%s%3N; }
# Seconds elapsed since a now_ms value, one decimal.
since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100))
}

# wait_for TIMEOUT_S DESCRIPTION CMD...: poll CMD until it succeeds or the deadline passes.
# CMD returning 99 means "will never succeed" (e.g. the process died): give up at once.
wait_for() {
  local timeout=$1 desc=$2 rc
  shift 2
  local deadline=$((SECONDS + timeout))
  while true; do
    if "$@" >/dev/null 2>&1; then return 0; else rc=$?; fi
    if ((rc == 99)); then
      warn "gave up waiting for: $desc"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      warn "timed out after ${timeout}s waiting for: $desc"
      return 1
    fi
    sleep 0.2
  done
}

# proc_alive PID: process exists and is not a zombie (PID 1 here may reap late).
proc_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ ${stat:0:1} != Z ]]
}

# wait_gone TIMEOUT_S PID: poll until the process has exited.
wait_gone() {
  local timeout=$1 pid=$2
  local deadline=$((SECONDS + timeout))
  while proc_alive "$pid"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

# stop_pid PID TIMEOUT_S: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local pid=$1 timeout=$2
  proc_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$timeout" "$pid"; then
    warn "pid $pid did not exit after ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone 10 "$pid" || die "pid $pid survived SIGKILL"
  fi
}

# pid_from_file FILE: print the pid stored in FILE if that process is alive.
pid_from_file() {
  local f=$1 pid
  [[ -r $f ]] || return 1
  read -r pid <"$f" || true
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  proc_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

# pid_cmdline PID: the process command line, NULs turned into spaces.
pid_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_pids PORT: pids of processes listening on TCP PORT (needs ss from iproute2).
port_pids() {
  command -v ss >/dev/null || return 0
  ss -H -ltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# pg_root: home of the files owned by user postgres. Normally $STATE/postgres; when user
# postgres cannot traverse $STATE (e.g. a checkout under /root), a per-checkout dir instead.
pg_root() {
  if id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    echo "/var/lib/postgresql/merch-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
  else
    echo "$STATE/postgres"
  fi
}

# pkg_installed PKG: Debian package is installed.
pkg_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# apt_install PKG...: install the missing packages; apt-get update only when something is missing.
apt_install() {
  local missing=() p
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) -eq 0 ]] || die "need root to install: ${missing[*]}"
  log "installing ${missing[*]} (apt-get update + install)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_secret FILE: print the secret in FILE, creating a random one (mode 600) first if needed.
ensure_secret() {
  local f=$1
  if [[ ! -s $f ]]; then
    mkdir -p "$(dirname "$f")"
    chmod 700 "$(dirname "$f")"
    (
      umask 077
      head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f.tmp"
      mv "$f.tmp" "$f"
    )
  fi
  chmod 600 "$f"
  tr -d '\n' <"$f"
}

ensure_state_dirs() { mkdir -p "$STATE" "$LOG_DIR"; }

# usage_exit NAME COMMANDS
usage_exit() {
  echo "usage: $1 {$2}" >&2
  exit 2
}
