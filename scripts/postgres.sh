#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests: Debian's `postgresql` is installed when
# `initdb` is missing, the cluster is initialized into a temporary folder as an unprivileged
# user (PostgreSQL refuses to run as root), listens on a free port on 127.0.0.1 and on a unix
# socket in that folder, and is stopped and removed at the end.
#
# Sourced (scripts/test.sh):
#     source scripts/postgres.sh && latchkey_pg_up    # exports LATCHKEY_TEST_POSTGRES_URL
#     ...                                            # latchkey_pg_down runs on EXIT
# Standalone:
#     scripts/postgres.sh -- COMMAND...   runs COMMAND with LATCHKEY_TEST_POSTGRES_URL set
#     scripts/postgres.sh                 prints the URL and waits (Ctrl-C stops the cluster)
# LATCHKEY_PG_DURABLE=1 keeps PostgreSQL's durability settings (the tests turn fsync off).
# Single steps (the outage tests stop and restart a cluster of their own):
#     scripts/postgres.sh init DIR [PORT]   a cluster in DIR (which must not exist); prints its URL
#     scripts/postgres.sh start DIR | stop DIR | destroy DIR

# The cluster's owner when we are root: `nobody` owns nothing else, and the folder is its own.
LATCHKEY_PG_USER=${LATCHKEY_PG_USER:-nobody}

_pg_log() { echo "postgres.sh: $*" >&2; }

# The directory of initdb/pg_ctl: PATH first, then Debian's versioned folders (newest first).
_pg_bindir() {
  local initdb
  if initdb=$(command -v initdb 2>/dev/null); then
    dirname "$(readlink -f "$initdb")"
    return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

_pg_install() {
  if _pg_bindir >/dev/null; then return 0; fi
  _pg_log "initdb not found: installing Debian's postgresql"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    postgresql >/dev/null
  _pg_bindir >/dev/null || { _pg_log "installing postgresql gave no initdb"; return 1; }
}

# Runs a command as the cluster's owner (ourselves unless we are root).
_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$LATCHKEY_PG_USER" -- "$@"
  else
    "$@"
  fi
}

_pg_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# init DIR [PORT]: a new cluster in DIR, configured but not started; prints its URL.
latchkey_pg_init() {
  local dir=$1 port=${2:-}
  _pg_install || return 1
  local bin
  bin=$(_pg_bindir) || return 1
  [ -n "$port" ] || port=$(_pg_free_port)
  mkdir -p "$dir" || return 1
  if [ "$(id -u)" -eq 0 ]; then
    chown "$LATCHKEY_PG_USER" "$dir" || return 1
    # Every folder above must be traversable by the owner (mktemp makes 0700 folders).
    local up
    up=$(dirname "$dir")
    chmod o+x "$up" 2>/dev/null || true
  fi
  chmod 700 "$dir"
  _pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
    --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { _pg_log "initdb failed:"; cat "$dir/initdb.log" >&2; return 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 400
shared_buffers = 128MB
log_min_messages = warning
EOF
  # Throw-away: durability off, which makes the tests fast (LATCHKEY_PG_DURABLE=1 keeps the
  # server's defaults, for benchmarks).
  if [ "${LATCHKEY_PG_DURABLE:-0}" != 1 ]; then
    printf '%s\n' 'fsync = off' 'synchronous_commit = off' 'full_page_writes = off' \
      >>"$dir/data/postgresql.conf"
  fi
  echo "$port" >"$dir/port"
  echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

# start DIR: starts the cluster and waits until it accepts connections.
latchkey_pg_start() {
  local dir=$1 bin
  bin=$(_pg_bindir) || return 1
  _pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { _pg_log "the server did not start:"; tail -20 "$dir/server.log" >&2; return 1; }
}

# stop DIR: stops the cluster now (connections are cut, as in a crash or a failover).
latchkey_pg_stop() {
  local dir=$1 bin
  bin=$(_pg_bindir) || return 1
  if [ -f "$dir/data/postmaster.pid" ]; then
    _pg_as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
}

# destroy DIR: stops the cluster and removes its folder.
latchkey_pg_destroy() {
  latchkey_pg_stop "$1"
  rm -rf "$1"
}

# up: a cluster in a new temporary folder, started, LATCHKEY_TEST_POSTGRES_URL exported, and
# stopped and removed on EXIT (chained after an EXIT trap already set).
latchkey_pg_up() {
  LATCHKEY_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-pg.XXXXXX") || return 1
  local url
  url=$(latchkey_pg_init "$LATCHKEY_PG_DIR/cluster") || { rm -rf "$LATCHKEY_PG_DIR"; return 1; }
  latchkey_pg_start "$LATCHKEY_PG_DIR/cluster" || { latchkey_pg_down; return 1; }
  export LATCHKEY_TEST_POSTGRES_URL=$url
  local previous
  previous=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
  # shellcheck disable=SC2064
  trap "latchkey_pg_down; ${previous:-:}" EXIT
  _pg_log "PostgreSQL $("$(_pg_bindir)/postgres" --version | awk '{print $3}') at $url"
}

latchkey_pg_down() {
  if [ -n "${LATCHKEY_PG_DIR:-}" ]; then
    latchkey_pg_destroy "$LATCHKEY_PG_DIR/cluster"
    rm -rf "$LATCHKEY_PG_DIR"
    LATCHKEY_PG_DIR=
  fi
}

# Standalone use.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    init) latchkey_pg_init "$2" "${3:-}" ;;
    start) latchkey_pg_start "$2" ;;
    stop) latchkey_pg_stop "$2" ;;
    destroy) latchkey_pg_destroy "$2" ;;
    --)
      shift
      latchkey_pg_up
      "$@"
      ;;
    "")
      latchkey_pg_up
      echo "export LATCHKEY_TEST_POSTGRES_URL='$LATCHKEY_TEST_POSTGRES_URL'"
      trap 'exit 0' INT TERM
      while sleep 3600; do :; done
      ;;
    *)
      echo "usage: $0 [-- COMMAND...] | init DIR [PORT] | start DIR | stop DIR | destroy DIR" >&2
      exit 2
      ;;
  esac
fi
